#include "portier/policy/pac.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using portier::Cidr;
using portier::SocketAddress;
using namespace portier::policy;

namespace {

Cidr cidr(const char* s) { return *Cidr::parse(s); }
SocketAddress addr(const char* s) { return *portier::parse_socket_address(s); }

// The line "var NAME = ...;" of a script (up to the ';' that ends the statement).
std::string var(const std::string& script, const std::string& name) {
  const auto at = script.find("var " + name + " = ");
  if (at == std::string::npos) return "<missing>";
  const auto end = script.find(";\n", at);
  return script.substr(at, end - at + 1);
}

}  // namespace

TEST_SUITE("policy.pac") {
  TEST_CASE("js_string escapes what could end the string or the script") {
    CHECK(js_string("corp.example") == "\"corp.example\"");
    CHECK(js_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(js_string("x\n</script>\x01") == "\"x\\x0a</script>\\x01\"");
    CHECK(js_string("\xc3\xa9") == "\"\\xc3\\xa9\"");
    CHECK(js_string("") == "\"\"");
  }

  TEST_CASE("the proxy list names each proxy in order, HTTPS for TLS listeners") {
    std::vector<PacProxy> proxies{{"a.example:3128", false}, {"b.example:3129", true}};
    CHECK(pac_proxy_list(proxies, false) == "PROXY a.example:3128; HTTPS b.example:3129");
    CHECK(pac_proxy_list(proxies, true) == "PROXY a.example:3128; HTTPS b.example:3129; DIRECT");
    SUBCASE("no proxy at all means DIRECT, never an empty answer") {
      CHECK(pac_proxy_list({}, false) == "DIRECT");
      CHECK(pac_proxy_list({}, true) == "DIRECT");
    }
  }

  TEST_CASE("the script's data follows the rules; the function never resolves a name") {
    PacRules r;
    r.domains = {"corp.example", "intranet"};
    r.subdomains = {"lab.example"};
    r.networks = {cidr("10.0.0.0/8"), cidr("172.16.0.0/12"), cidr("192.0.2.7"), cidr("fd00::/8")};
    r.proxied_networks = {cidr("10.20.0.0/16"), cidr("::1/128")};
    const std::string s = render_pac(r).text(std::vector<PacProxy>{{"proxy.example:3128", false}});
    CHECK(var(s, "PROXY") == "var PROXY = \"PROXY proxy.example:3128\";");
    CHECK(var(s, "DIRECT_PLAIN_HOSTS") == "var DIRECT_PLAIN_HOSTS = true;");
    CHECK(var(s, "DIRECT_DOMAINS") == "var DIRECT_DOMAINS = [\n  \"corp.example\",\n  \"intranet\"\n];");
    CHECK(var(s, "DIRECT_SUBDOMAINS") == "var DIRECT_SUBDOMAINS = [\n  \"lab.example\"\n];");
    // IPv6 ranges are left out: isInNet knows IPv4 only.
    CHECK(var(s, "DIRECT_NETS") == "var DIRECT_NETS = [\n  [\"10.0.0.0\", \"255.0.0.0\"],\n"
                                   "  [\"172.16.0.0\", \"255.240.0.0\"],\n  [\"192.0.2.7\", \"255.255.255.255\"]\n];");
    CHECK(var(s, "PROXIED_NETS") == "var PROXIED_NETS = [\n  [\"10.20.0.0\", \"255.255.0.0\"]\n];");
    CHECK(var(s, "PRIVATE_NETS").find("[\"192.168.0.0\", \"255.255.0.0\"]") != std::string::npos);
    CHECK(var(s, "PRIVATE_NETS").find("[\"100.64.0.0\", \"255.192.0.0\"]") != std::string::npos);
    CHECK(s.find("function FindProxyForURL(url, host) {") != std::string::npos);
    CHECK(s.find("dnsResolve(") == std::string::npos);
    CHECK(s.find("myIpAddress(") == std::string::npos);
  }

  TEST_CASE("switches off: no plain-host or private-range DIRECT, empty lists, fallback DIRECT") {
    PacRules r;
    r.plain_hosts = false;
    r.private_networks = false;
    r.fallback_direct = true;
    r.proxied_networks = {cidr("10.20.0.0/16")};
    const std::string s = render_pac(r).text(std::vector<PacProxy>{{"p:1", true}});
    CHECK(var(s, "PROXY") == "var PROXY = \"HTTPS p:1; DIRECT\";");
    CHECK(var(s, "DIRECT_PLAIN_HOSTS") == "var DIRECT_PLAIN_HOSTS = false;");
    CHECK(var(s, "DIRECT_DOMAINS") == "var DIRECT_DOMAINS = [];");
    CHECK(var(s, "DIRECT_NETS") == "var DIRECT_NETS = [];");
    CHECK(var(s, "PROXIED_NETS") == "var PROXIED_NETS = [];");
    CHECK(var(s, "PRIVATE_NETS") == "var PRIVATE_NETS = [];");
  }

  TEST_CASE("a /0 range has the mask 0.0.0.0") {
    PacRules r;
    r.networks = {cidr("0.0.0.0/0")};
    CHECK(var(render_pac(r).text({}), "DIRECT_NETS") == "var DIRECT_NETS = [\n  [\"0.0.0.0\", \"0.0.0.0\"]\n];");
  }

  TEST_CASE("the proxy list is escaped into the script") {
    const std::string s = render_pac(PacRules{}).text(std::vector<PacProxy>{{"a\"b:1", false}});
    CHECK(var(s, "PROXY") == "var PROXY = \"PROXY a\\\"b:1\";");
  }

  TEST_CASE("derived proxies: wildcard addresses become the host the browser reached") {
    std::vector<PacListener> ls{
        {{addr("0.0.0.0:3128"), addr("127.0.0.1:3130")}, false},
        {{addr("[::]:3129")}, true},
        {{addr("0.0.0.0:3128")}, false},  // the same proxy again: left out
    };
    auto p = derived_proxies(ls, "proxy.corp.example");
    REQUIRE(p.size() == 3);
    CHECK(p[0] == PacProxy{"proxy.corp.example:3128", false});
    CHECK(p[1] == PacProxy{"127.0.0.1:3130", false});
    CHECK(p[2] == PacProxy{"proxy.corp.example:3129", true});
    SUBCASE("an IPv6 literal gets brackets") {
      auto q = derived_proxies(ls, "fd00::5");
      CHECK(q[0].address == "[fd00::5]:3128");
    }
    SUBCASE("nothing reached: wildcard addresses are left out") {
      auto q = derived_proxies(ls, "");
      REQUIRE(q.size() == 1);
      CHECK(q[0].address == "127.0.0.1:3130");
    }
  }
}

// The "pac" section: validation with JSON pointers, and the script compiled into the snapshot.
#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "portier/config/config.hpp"

using portier::config::Config;
using portier::config::ConfigError;
using portier::config::format_error;
using portier::config::parse_config;
using portier::policy::PacProxy;

namespace {

std::string doc(std::string_view pac, std::string_view extra = "") {
  return R"({"listeners": [{"name": "office", "listen": ["127.0.0.1:3128"]},
                           {"name": "site", "listen": ["127.0.0.1:8080"], "mode": "reverse"}],
             "reverse": {"routes": [{"pool": "p"}], "pools": {"p": {"backends": ["127.0.0.1:9"]}}},
             "pac": )" + std::string(pac) + std::string(extra) + "}";
}

Config valid(const std::string& json) {
  auto r = parse_config(json);
  for (const auto& e : r.errors) FAIL_CHECK(format_error(e));
  REQUIRE(r.config.has_value());
  return *r.config;
}

void check_error(const std::string& json, const std::string& pointer, const std::string& message) {
  auto r = parse_config(json);
  REQUIRE_MESSAGE(r.errors.size() == 1, r.errors.size(), " errors; first: ",
                  r.errors.empty() ? std::string("none") : format_error(r.errors.front()));
  CHECK(r.errors[0].pointer == pointer);
  CHECK(r.errors[0].message == message);
}

}  // namespace

TEST_SUITE("config.pac") {
  TEST_CASE("defaults: /proxy.pac on the admin endpoint only, derived proxies, the usual DIRECTs") {
    Config c = valid(R"({"listeners": [{"name": "office", "listen": ["127.0.0.1:3128"]}]})");
    CHECK(c.pac.path == "/proxy.pac");
    CHECK_FALSE(c.pac.served_on(c.listeners[0]));
    CHECK(c.pac.proxies.empty());
    CHECK(c.pac.rules.plain_hosts);
    CHECK(c.pac.rules.private_networks);
    CHECK_FALSE(c.pac.rules.fallback_direct);
  }

  TEST_CASE("every key") {
    Config c = valid(doc(R"({"path": "/wpad.dat", "listeners": ["office"],
        "proxy": ["proxy.corp.example:3128", "https://Proxy2.corp.example:3129", "http://[fd00::5]:3128"],
        "direct": ["Corp.Example", "*.lab.example", "intranet", "printer.corp.example.", "10.0.0.0/8", "192.168.1.5"],
        "direct_plain_hosts": false, "direct_private": false, "fallback_direct": true})"));
    CHECK(c.pac.path == "/wpad.dat");
    CHECK(c.pac.served_on(c.listeners[0]));
    CHECK_FALSE(c.pac.served_on(c.listeners[1]));
    CHECK(c.pac.proxies == std::vector<PacProxy>{{"proxy.corp.example:3128", false},
                                                 {"proxy2.corp.example:3129", true},
                                                 {"[fd00::5]:3128", false}});
    CHECK(c.pac.rules.domains == std::vector<std::string>{"corp.example", "intranet", "printer.corp.example"});
    CHECK(c.pac.rules.subdomains == std::vector<std::string>{"lab.example"});
    REQUIRE(c.pac.rules.networks.size() == 2);
    CHECK(c.pac.rules.networks[0].to_string() == "10.0.0.0/8");
    CHECK(c.pac.rules.networks[1].to_string() == "192.168.1.5/32");
    CHECK_FALSE(c.pac.rules.plain_hosts);
    CHECK_FALSE(c.pac.rules.private_networks);
    CHECK(c.pac.rules.fallback_direct);
  }

  TEST_CASE("listeners: true serves on every forward listener, never on a reverse one") {
    Config c = valid(doc(R"({"listeners": true, "proxy": "p.example:3128"})"));
    CHECK(c.pac.served_on(c.listeners[0]));
    CHECK_FALSE(c.pac.served_on(c.listeners[1]));
    CHECK(c.pac.proxies == std::vector<PacProxy>{{"p.example:3128", false}});
  }

  TEST_CASE("errors carry their pointers") {
    check_error(doc(R"({"path": "proxy.pac"})"), "/pac/path",
                "expected a path such as \"/proxy.pac\" or \"/wpad.dat\" (no query, no escapes), got \"proxy.pac\"");
    check_error(doc(R"({"path": "/a?b"})"), "/pac/path",
                "expected a path such as \"/proxy.pac\" or \"/wpad.dat\" (no query, no escapes), got \"/a?b\"");
    check_error(doc(R"({"path": "/metrics"})"), "/pac/path", "\"/metrics\" is an admin endpoint's path");
    check_error(doc(R"({"listeners": "office"})"), "/pac/listeners",
                "expected true, false or an array of forward listener names, got \"office\"");
    check_error(doc(R"({"listeners": ["office", "nope"]})"), "/pac/listeners/1",
                "unknown listener \"nope\"; the listeners are \"office\", \"site\"");
    check_error(doc(R"({"listeners": ["site"]})"), "/pac/listeners/0",
                "listener \"site\" is not a forward listener: only browsers' proxies serve the PAC");
    check_error(doc(R"({"proxy": ["p.example"]})"), "/pac/proxy/0",
                "expected \"host:port\", \"http://host:port\" or \"https://host:port\" (the address browsers use), "
                "got \"p.example\"");
    check_error(doc(R"({"proxy": "http://u:pw@p.example:3128"})"), "/pac/proxy",
                "a PAC cannot carry proxy credentials (browsers ask the user for them); give \"host:port\"");
    check_error(doc(R"({"proxy": []})"), "/pac/proxy",
                "expected \"host:port\" or an array of 1 to 16 of them (tried in order), got []");
    check_error(doc(R"({"direct": ["ok.example", "bad..example"]})"), "/pac/direct/1",
                "expected a domain (\"corp.example\"), a wildcard (\"*.corp.example\"), a host name (\"intranet\") or "
                "an IPv4 range (\"10.0.0.0/8\"), got \"bad..example\"");
    check_error(doc(R"({"direct": ["*"]})"), "/pac/direct/0",
                "expected a domain (\"corp.example\"), a wildcard (\"*.corp.example\"), a host name (\"intranet\") or "
                "an IPv4 range (\"10.0.0.0/8\"), got \"*\"");
    check_error(doc(R"({"direct": ["10.0.0.0/33"]})"), "/pac/direct/0",
                "expected an IPv4 range like \"10.0.0.0/8\" or an IPv4 address, got \"10.0.0.0/33\"");
    check_error(doc(R"({"direct": ["fd00::/8"]})"), "/pac/direct/0",
                "a PAC can check only IPv4 ranges (isInNet), got \"fd00::/8\"");
    check_error(doc(R"({"direct": "corp.example"})"), "/pac/direct",
                "expected an array of at most 10000 domains (\"corp.example\", \"*.corp.example\") and IPv4 ranges "
                "(\"10.0.0.0/8\"), got \"corp.example\"");
    check_error(doc(R"({"direct_private": "yes"})"), "/pac/direct_private", "expected true or false, got \"yes\"");
    check_error(doc(R"({"direkt": []})"), "/pac/direkt", "unknown key \"direkt\", did you mean \"direct\"?");
  }

  TEST_CASE("compile: the script once per snapshot; ssrf.allow ranges go through the proxy") {
    auto fixed = portier::config::compile(valid(doc(R"({"proxy": "p.example:3128", "direct": ["corp.example"]})",
                                                    R"(, "ssrf": {"allow": ["10.20.0.0/16", "fd00::/8"]})")));
    REQUIRE(fixed.snapshot);
    const std::string& s = fixed.snapshot->pac_text;
    CHECK(s.find("var PROXY = \"PROXY p.example:3128\";") != std::string::npos);
    CHECK(s.find("\"corp.example\"") != std::string::npos);
    CHECK(s.find("var PROXIED_NETS = [\n  [\"10.20.0.0\", \"255.255.0.0\"]\n];") != std::string::npos);

    auto derived = portier::config::compile(valid(doc("{}")));
    REQUIRE(derived.snapshot);
    CHECK(derived.snapshot->pac_text.empty());  // filled in per request
  }
}

#include "portier/session/pac.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace portier;
using session::BoundListener;

namespace {

std::shared_ptr<const config::Snapshot> snapshot(const std::string& json) {
  auto parsed = config::parse_config(json);
  for (const auto& e : parsed.errors) FAIL_CHECK(config::format_error(e));
  REQUIRE(parsed.config);
  auto compiled = config::compile(std::move(*parsed.config));
  for (const auto& e : compiled.errors) FAIL_CHECK(config::format_error(e));
  REQUIRE(compiled.snapshot);
  return compiled.snapshot;
}

// The proxy list of a script: the value of its "var PROXY = ...;" line.
std::string proxy_of(const std::string& script) {
  const std::string key = "var PROXY = \"";
  const auto at = script.find(key);
  if (at == std::string::npos) return "<missing>";
  return script.substr(at + key.size(), script.find("\";\n", at) - at - key.size());
}

SocketAddress addr(const char* s) { return *parse_socket_address(s); }

constexpr const char* kListeners = R"({"listeners": [
    {"name": "office", "listen": ["0.0.0.0:3128", "127.0.0.1:0"]},
    {"name": "lab", "listen": ["10.0.0.5:3129"]},
    {"name": "site", "listen": ["127.0.0.1:8080"], "mode": "reverse"}],
  "reverse": {"routes": [{"pool": "p"}], "pools": {"p": {"backends": ["127.0.0.1:9"]}}})";

}  // namespace

TEST_SUITE("session.pac") {
  TEST_CASE("on a forward listener the proxy is that listener as the browser reached it") {
    auto snap = snapshot(R"({"listeners": [{"name": "office", "listen": ["0.0.0.0:3128"]}], "pac": {"listeners": true}})");
    const config::Listener& l = snap->config.listeners[0];
    const SocketAddress local = addr("192.0.2.1:3128");
    std::string host = "Proxy.Corp.Example:3128";
    CHECK(proxy_of(session::pac_for_listener(*snap, l, &host, local)) == "PROXY proxy.corp.example:3128");
    SUBCASE("no port in Host: the scheme's") {
      host = "proxy.corp.example";
      CHECK(proxy_of(session::pac_for_listener(*snap, l, &host, local)) == "PROXY proxy.corp.example:80");
      config::Listener tls = l;
      tls.tls = config::ListenerTls{};
      CHECK(proxy_of(session::pac_for_listener(*snap, tls, &host, local)) == "HTTPS proxy.corp.example:443");
    }
    SUBCASE("no Host, or a malformed one: the address the connection came in on") {
      CHECK(proxy_of(session::pac_for_listener(*snap, l, nullptr, local)) == "PROXY 192.0.2.1:3128");
      host = "a b\";alert(1)";
      CHECK(proxy_of(session::pac_for_listener(*snap, l, &host, local)) == "PROXY 192.0.2.1:3128");
    }
  }

  TEST_CASE("on the admin endpoint: every forward listener as bound, wildcards as the Host's name") {
    auto snap = snapshot(kListeners + std::string("}"));
    std::vector<BoundListener> bound{{"office", {addr("0.0.0.0:3128"), addr("127.0.0.1:40001")}},
                                     {"lab", {addr("10.0.0.5:3129")}},
                                     {"site", {addr("127.0.0.1:8080")}}};
    std::string host = "proxy.corp.example:9090";
    const IpAddress local = *IpAddress::parse("192.0.2.1");
    CHECK(proxy_of(session::pac_for_admin(*snap, bound, &host, local)) ==
          "PROXY proxy.corp.example:3128; PROXY 127.0.0.1:40001; PROXY 10.0.0.5:3129");
    SUBCASE("no Host: the admin connection's local address") {
      CHECK(proxy_of(session::pac_for_admin(*snap, bound, nullptr, local)) ==
            "PROXY 192.0.2.1:3128; PROXY 127.0.0.1:40001; PROXY 10.0.0.5:3129");
    }
    SUBCASE("an IPv6 Host") {
      host = "[fd00::1]:9090";
      CHECK(proxy_of(session::pac_for_admin(*snap, bound, &host, local)).starts_with("PROXY [fd00::1]:3128; "));
    }
    SUBCASE("a listener that is not bound (added by a reload) is left out") {
      bound.erase(bound.begin() + 1);
      CHECK(proxy_of(session::pac_for_admin(*snap, bound, &host, local)) ==
            "PROXY proxy.corp.example:3128; PROXY 127.0.0.1:40001");
    }
    SUBCASE("nothing bound known: as configured, port 0 left out") {
      CHECK(proxy_of(session::pac_for_admin(*snap, {}, &host, local)) ==
            "PROXY proxy.corp.example:3128; PROXY 10.0.0.5:3129");
    }
  }

  TEST_CASE("on the admin endpoint pac.listeners picks the listeners") {
    auto snap = snapshot(kListeners + std::string(R"(, "pac": {"listeners": ["lab"], "fallback_direct": true}})"));
    CHECK(proxy_of(session::pac_for_admin(*snap, {}, nullptr, IpAddress{})) == "PROXY 10.0.0.5:3129; DIRECT");
  }

  TEST_CASE("configured proxies win everywhere") {
    auto snap = snapshot(kListeners + std::string(R"(, "pac": {"listeners": true,
        "proxy": ["proxy.corp.example:3128", "https://proxy.corp.example:3129"]}})"));
    std::string host = "elsewhere:1";
    const std::string want = "PROXY proxy.corp.example:3128; HTTPS proxy.corp.example:3129";
    CHECK(proxy_of(session::pac_for_admin(*snap, {}, &host, IpAddress{})) == want);
    CHECK(proxy_of(session::pac_for_listener(*snap, snap->config.listeners[0], &host, addr("127.0.0.1:1"))) == want);
  }
}

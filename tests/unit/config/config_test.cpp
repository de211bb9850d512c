#include "portier/config/config.hpp"

#include <crypt.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

#include "portier/policy/block_page.hpp"

using namespace std::chrono_literals;
using portier::config::Config;
using portier::config::ConfigError;
using portier::config::format_error;
using portier::config::ListKind;
using portier::config::parse_config;
using portier::policy::Action;
using portier::policy::AuthMode;
using portier::policy::Challenge;
using portier::policy::Deny;
using portier::policy::Forward;
using portier::policy::RefuseMode;
using portier::policy::RequestFacts;
using portier::policy::Tunnel;

namespace {

constexpr std::string_view kMinimal = R"({"listeners": [{"listen": ["127.0.0.1:3128"]}]})";

Config valid(std::string_view json) {
  auto r = parse_config(json);
  for (const auto& e : r.errors) FAIL_CHECK(format_error(e));
  REQUIRE(r.config.has_value());
  return *r.config;
}

std::vector<ConfigError> errors_of(std::string_view json) {
  auto r = parse_config(json);
  CHECK_FALSE(r.config.has_value());
  return r.errors;
}

// The document has exactly one error, at `pointer`, with `message`.
void check_error(std::string_view json, const std::string& pointer, const std::string& message) {
  auto errors = errors_of(json);
  REQUIRE_MESSAGE(errors.size() == 1, errors.size(), " errors; first: ",
                  errors.empty() ? std::string("none") : format_error(errors.front()));
  CHECK(errors[0].pointer == pointer);
  CHECK(errors[0].message == message);
}

// A config with one valid listener and `section` spliced in as further root members.
std::string with(std::string_view section) {
  return std::string(R"({"listeners": [{"name": "a", "listen": ["127.0.0.1:3128"]}], )") + std::string(section) + "}";
}

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/portier_config_test_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  void write(const std::string& name, const std::string& text) const {
    std::filesystem::path p = std::filesystem::path(path) / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
  }
};

// A SHA-512-crypt hash made by libxcrypt, as `htpasswd -5` or `openssl passwd -6` write them.
std::string sha512_crypt(const std::string& password) {
  crypt_data data{};
  const char* hash = crypt_r(password.c_str(), "$6$portiertest$", &data);
  REQUIRE(hash != nullptr);
  REQUIRE(hash[0] == '$');
  return hash;
}

std::shared_ptr<const portier::config::Snapshot> compiled(std::string_view json) {
  auto result = portier::config::compile(valid(json));
  for (const auto& e : result.errors) FAIL_CHECK(format_error(e));
  REQUIRE(result.snapshot != nullptr);
  return result.snapshot;
}

// Compiles `json` as if it were a file in `dir` (relative paths resolve there).
portier::config::CompileResult compile_config(const TempDir& dir, std::string_view json) {
  Config c = valid(json);
  c.base_dir = dir.path;
  return portier::config::compile(std::move(c));
}

RequestFacts connect_to(std::string_view host, std::uint16_t port) {
  RequestFacts f;
  f.listener = "a";
  f.client = *portier::IpAddress::parse("192.0.2.10");
  f.method = "CONNECT";
  f.is_connect = true;
  f.host = host;
  f.port = port;
  return f;
}

// A plain-HTTP GET of `url` ("http://host/path"); the views point into the literal.
RequestFacts get_url(std::string_view url) {
  RequestFacts f = connect_to("", 80);
  f.method = "GET";
  f.is_connect = false;
  std::string_view rest = url.substr(url.find("//") + 2);
  auto slash = rest.find('/');
  f.host = rest.substr(0, slash);
  f.path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  f.url = url;
  return f;
}

}  // namespace

TEST_SUITE("config") {

TEST_CASE("a minimal config gets every default") {
  Config c = valid(kMinimal);
  CHECK(c.workers == 0);
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == "listener-0");
  CHECK(c.listeners[0].mode == portier::config::ListenerMode::forward);
  REQUIRE(c.listeners[0].listen.size() == 1);
  CHECK(c.listeners[0].listen[0].to_string() == "127.0.0.1:3128");

  CHECK(c.access_log.path == "-");
  CHECK_FALSE(c.access_log.log_query);

  CHECK(c.forward.via == "1.1 portier");
  CHECK_FALSE(c.forward.x_forwarded_for);
  REQUIRE(c.forward.connect_ports.size() == 1);
  CHECK(c.forward.connect_ports[0].first == 443);
  CHECK(c.forward.connect_ports[0].last == 443);

  CHECK(c.ssrf_allow.empty());

  CHECK(c.timeouts.header == 10000ms);
  CHECK(c.timeouts.keepalive == 60000ms);
  CHECK(c.timeouts.connect == 5000ms);
  CHECK(c.timeouts.response == 60000ms);
  CHECK(c.timeouts.tunnel_idle == 300000ms);
  CHECK(c.timeouts.shutdown_grace == 10000ms);

  CHECK(c.limits.max_header_bytes == 65536);
  CHECK(c.limits.max_url_bytes == 8192);
  CHECK(c.limits.max_headers == 100);

  CHECK(c.origin_pool.max_idle_per_host == 128);
  CHECK(c.origin_pool.max_idle_total == 2048);
  CHECK(c.origin_pool.idle == 30000ms);
}

TEST_CASE("a full config sets every key") {
  Config c = valid(R"({
    "workers": 4,
    "listeners": [
      {"name": "office", "listen": ["127.0.0.1:3128", "[::1]:3128"], "mode": "forward"},
      {"name": "lab.2_x-y", "listen": ["10.0.0.1:8080"]}
    ],
    "access_log": {"path": "/var/log/portier/access.log", "log_query": true},
    "forward": {"via": "1.1 gate", "x_forwarded_for": true, "connect_ports": [443, "8000-8100", "563"]},
    "ssrf": {"allow": ["127.0.0.0/8", "::1/128", "10.1.2.3"]},
    "timeouts": {"header_ms": 1001, "keepalive_ms": 1002, "connect_ms": 1003,
                 "response_ms": 1004, "tunnel_idle_ms": 1005, "shutdown_grace_ms": 1006},
    "limits": {"max_header_bytes": 16384, "max_url_bytes": 4096, "max_headers": 50},
    "origin_pool": {"max_idle_per_host": 2, "max_idle_total": 20, "idle_ms": 1007}
  })");
  CHECK(c.workers == 4);
  REQUIRE(c.listeners.size() == 2);
  CHECK(c.listeners[0].name == "office");
  REQUIRE(c.listeners[0].listen.size() == 2);
  CHECK(c.listeners[0].listen[0].to_string() == "127.0.0.1:3128");
  CHECK(c.listeners[0].listen[1].to_string() == "[::1]:3128");
  CHECK(c.listeners[1].name == "lab.2_x-y");
  CHECK(c.listeners[1].listen[0].to_string() == "10.0.0.1:8080");

  CHECK(c.access_log.path == "/var/log/portier/access.log");
  CHECK(c.access_log.log_query);

  CHECK(c.forward.via == "1.1 gate");
  CHECK(c.forward.x_forwarded_for);
  REQUIRE(c.forward.connect_ports.size() == 3);
  CHECK(c.forward.connect_ports[0].first == 443);
  CHECK(c.forward.connect_ports[0].last == 443);
  CHECK(c.forward.connect_ports[1].first == 8000);
  CHECK(c.forward.connect_ports[1].last == 8100);
  CHECK(c.forward.connect_ports[2].first == 563);
  CHECK(c.forward.connect_ports[2].last == 563);

  REQUIRE(c.ssrf_allow.size() == 3);
  CHECK(c.ssrf_allow[0].to_string() == "127.0.0.0/8");
  CHECK(c.ssrf_allow[1].to_string() == "::1/128");
  CHECK(c.ssrf_allow[2].to_string() == "10.1.2.3/32");

  CHECK(c.timeouts.header == 1001ms);
  CHECK(c.timeouts.keepalive == 1002ms);
  CHECK(c.timeouts.connect == 1003ms);
  CHECK(c.timeouts.response == 1004ms);
  CHECK(c.timeouts.tunnel_idle == 1005ms);
  CHECK(c.timeouts.shutdown_grace == 1006ms);

  CHECK(c.limits.max_header_bytes == 16384);
  CHECK(c.limits.max_url_bytes == 4096);
  CHECK(c.limits.max_headers == 50);

  CHECK(c.origin_pool.max_idle_per_host == 2);
  CHECK(c.origin_pool.max_idle_total == 20);
  CHECK(c.origin_pool.idle == 1007ms);
}

TEST_CASE("via false and an empty connect_ports list are accepted") {
  Config c = valid(with(R"("forward": {"via": false, "connect_ports": []}, "access_log": {"path": "off"})"));
  CHECK(c.forward.via.empty());
  CHECK(c.forward.connect_ports.empty());
  CHECK(c.access_log.path == "off");
  CHECK(valid(with(R"("forward": {"via": ""})")).forward.via.empty());
}

TEST_CASE("listen port 0 is allowed, also twice") {
  Config c = valid(R"({"listeners": [{"name": "a", "listen": ["127.0.0.1:0", "[::1]:0"]},
                                     {"name": "b", "listen": ["127.0.0.1:0"]}]})");
  CHECK(c.listeners[0].listen[0].port == 0);
  CHECK(c.listeners[1].listen[0].port == 0);
}

TEST_CASE("a small max_header_bytes pulls the default max_url_bytes down with it") {
  Config c = valid(with(R"("limits": {"max_header_bytes": 4096})"));
  CHECK(c.limits.max_header_bytes == 4096);
  CHECK(c.limits.max_url_bytes == 4096);
}

TEST_CASE("boundary values are accepted") {
  Config c = valid(R"({"workers": 256, "listeners": [{"listen": ["[::]:65535"]}],
    "timeouts": {"header_ms": 1, "tunnel_idle_ms": 86400000},
    "limits": {"max_header_bytes": 1048576, "max_url_bytes": 1048576, "max_headers": 10000},
    "origin_pool": {"max_idle_per_host": 0, "max_idle_total": 0},
    "forward": {"connect_ports": [1, 65535, "1-65535", "7-7"]}})");
  CHECK(c.workers == 256);
  CHECK(c.timeouts.header == 1ms);
  CHECK(c.timeouts.tunnel_idle == 24h);
  CHECK(c.limits.max_url_bytes == 1048576);
  CHECK(c.origin_pool.max_idle_total == 0);
}

TEST_CASE("invalid JSON is one error at the root naming the position") {
  auto errors = errors_of(R"({"listeners": [}")");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "");
  CHECK(errors[0].message.find("parse error at line 1, column 16") == 0);
  CHECK(errors[0].message.find("(byte 16)") != std::string::npos);
  CHECK(format_error(errors[0]).find("config error: /: parse error") == 0);

  CHECK(errors_of("").size() == 1);
  CHECK(errors_of(R"({"listeners": []} x)").size() == 1);
  CHECK(errors_of("{\"a\": 1,\n \"b\" 2}")[0].message.find("line 2, column 6") != std::string::npos);
}

TEST_CASE("the root must be an object with listeners") {
  check_error("[]", "", "expected an object, got []");
  check_error("{}", "", "missing required key \"listeners\"");
  check_error(R"({"listeners": []})", "/listeners", "expected at least one listener, got []");
  check_error(R"({"listeners": {"listen": ["127.0.0.1:1"]}})", "/listeners",
              R"(expected an array of listeners, got {"listen":["127.0.0.1:1"]})");
  check_error(R"({"listeners": [7]})", "/listeners/0", "expected an object, got 7");
}

TEST_CASE("listener errors point into the listener") {
  check_error(R"({"listeners": [{"name": "a"}]})", "/listeners/0", "missing required key \"listen\"");
  check_error(R"({"listeners": [{"listen": []}]})", "/listeners/0/listen",
              "expected at least one \"ip:port\" address, got []");
  check_error(R"({"listeners": [{"listen": "127.0.0.1:1"}]})", "/listeners/0/listen",
              R"(expected an array of "ip:port" strings, got "127.0.0.1:1")");
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1", 3128]}]})", "/listeners/0/listen/1",
              "expected a string, got 3128");
  check_error(R"({"listeners": [{"name": 5, "listen": ["127.0.0.1:1"]}]})", "/listeners/0/name",
              "expected a string, got 5");
  check_error(R"({"listeners": [{"name": "a b", "listen": ["127.0.0.1:1"]}]})", "/listeners/0/name",
              R"(expected a name of 1 to 64 letters, digits, ".", "_" or "-", got "a b")");
  check_error(R"({"listeners": [{"name": "", "listen": ["127.0.0.1:1"]}]})", "/listeners/0/name",
              R"(expected a name of 1 to 64 letters, digits, ".", "_" or "-", got "")");
}

TEST_CASE("bad listen addresses are rejected with the address shown") {
  for (const char* bad : {"localhost:3128", "::1:3128", "127.0.0.1", "127.0.0.1:65536", "[::1]", "10.0.0.1:http"}) {
    CAPTURE(bad);
    std::string json = std::string(R"({"listeners": [{"listen": ["127.0.0.1:1", ")") + bad + R"("]}]})";
    check_error(json, "/listeners/0/listen/1",
                std::string(R"(expected "ip:port" or "[ipv6]:port" with an IP literal, got ")") + bad + "\"");
  }
}

TEST_CASE("listener modes: forward, reverse, redirect") {
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "mode": "socks"}]})", "/listeners/0/mode",
              R"(expected "forward", "reverse" or "redirect", got "socks")");
  auto c = valid(R"({"listeners": [{"name": "r", "listen": ["127.0.0.1:1"], "mode": "reverse"},
                                   {"name": "x", "listen": ["127.0.0.1:2"], "mode": "redirect",
                                    "redirect": {"https_port": 8443, "status": 301}}]})");
  CHECK(c.listeners[0].mode == portier::config::ListenerMode::reverse);
  CHECK(c.listeners[1].mode == portier::config::ListenerMode::redirect);
  CHECK(c.listeners[1].redirect.https_port == 8443);
  CHECK(c.listeners[1].redirect.status == 301);
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "mode": "redirect", "redirect": {"status": 303}}]})",
              "/listeners/0/redirect/status", "expected 301, 302, 307 or 308, got 303");
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "redirect": {}}]})", "/listeners/0/redirect",
              R"(only a listener with "mode": "redirect" redirects)");
  check_error(R"({"auth": {"users_file": "u"}, "listeners": [{"listen": ["127.0.0.1:1"], "mode": "reverse", "auth": "required"}]})",
              "/listeners/0/auth", "proxy authentication applies to forward listeners only");
}

TEST_CASE("reverse: routes and pools are read with their defaults") {
  auto c = valid(R"({"listeners": [{"name": "site", "listen": ["127.0.0.1:1"], "mode": "reverse"}],
    "reverse": {
      "trusted_proxies": ["10.0.0.0/8"],
      "routes": [
        {"name": "api", "host": "app.test", "path": "/api/", "path_regex": "^/api/v[0-9]+/", "pool": "api",
         "listeners": "site", "host_header": "backend", "strip_prefix": true,
         "connect_timeout_ms": 1500, "response_timeout_ms": 9000},
        {"host": "*.app.test", "pool": "web", "host_header": "internal.example:8080"},
        {"pool": "web"}
      ],
      "pools": {
        "api": {"balance": "hash_header", "hash_header": "X-User",
                "backends": ["127.0.0.1:9001", {"address": "backend.internal:9002", "weight": 3,
                                                "tls": {"verify": false, "server_name": "api.internal"}}],
                "health": {"path": "/healthz", "interval_ms": 200, "expect": "200-299", "rise": 1, "fall": 4},
                "passive": {"fail_after": 2, "down_ms": 500}},
        "web": {"backends": ["[::1]:80"]}
      }}})");
  const auto& r = c.reverse;
  REQUIRE(r.routes.size() == 3);
  CHECK(r.trusted_proxies.size() == 1);
  CHECK(r.routes[0].name == "api");
  CHECK(r.routes[0].listeners == std::vector<std::string>{"site"});
  CHECK(r.routes[0].host_header == portier::config::HostHeader::backend);
  CHECK(r.routes[0].strip_prefix);
  CHECK(r.routes[0].connect_timeout == 1500ms);
  CHECK(r.routes[0].response_timeout == 9000ms);
  CHECK(r.routes[1].name == "/reverse/routes/1");
  CHECK(r.routes[1].host_header == portier::config::HostHeader::fixed);
  CHECK(r.routes[1].host_value == "internal.example:8080");
  CHECK(r.routes[2].path == "/");
  CHECK_FALSE(r.routes[2].connect_timeout.has_value());
  REQUIRE(r.pools.size() == 2);
  const auto* api = r.pool("api");
  REQUIRE(api != nullptr);
  CHECK(api->balance == portier::config::PoolBalance::hash_header);
  CHECK(api->hash_header == "X-User");
  REQUIRE(api->backends.size() == 2);
  CHECK(api->backends[0].address == "127.0.0.1:9001");
  CHECK(api->backends[0].url.scheme == portier::http::ProxyScheme::http);
  CHECK(api->backends[1].weight == 3);
  CHECK(api->backends[1].url.scheme == portier::http::ProxyScheme::https);
  CHECK_FALSE(api->backends[1].url.tls.verify);
  CHECK(api->backends[1].url.tls.server_name == "api.internal");
  CHECK(api->health.enabled);
  CHECK(api->health.interval == 200ms);
  CHECK(api->health.timeout == 2000ms);
  CHECK(api->health.expect_low == 200);
  CHECK(api->health.expect_high == 299);
  CHECK(api->health.rise == 1);
  CHECK(api->health.fall == 4);
  CHECK(api->fail_after == 2);
  CHECK(api->down_for == 500ms);
  const auto* web = r.pool("web");
  REQUIRE(web != nullptr);
  CHECK(web->balance == portier::config::PoolBalance::round_robin);
  CHECK(web->backends[0].address == "[::1]:80");
  CHECK_FALSE(web->health.enabled);
  CHECK(web->fail_after == 1);
}

TEST_CASE("reverse: config errors name the key") {
  const std::string head = R"({"listeners": [{"name": "site", "listen": ["127.0.0.1:1"], "mode": "reverse"},
                                             {"name": "fwd", "listen": ["127.0.0.1:2"]}], "reverse": )";
  auto err = [&](const std::string& reverse, const std::string& pointer, const std::string& message) {
    CAPTURE(reverse);
    check_error(head + reverse + "}", pointer, message);
  };
  const std::string pools = R"("pools": {"web": {"backends": ["127.0.0.1:1"]}})";
  err(R"({"routes": [{"pool": "nope"}], )" + pools + "}", "/reverse/routes/0/pool",
      R"(unknown pool "nope"; the pools are "web")");
  err(R"({"routes": [{"host": "a.test"}], )" + pools + "}", "/reverse/routes/0", R"(missing required key "pool")");
  err(R"({"routes": [{"pool": "web", "path": "api"}], )" + pools + "}", "/reverse/routes/0/path",
      R"(expected a path prefix starting with "/", got "api")");
  err(R"({"routes": [{"pool": "web", "host": "a b"}], )" + pools + "}", "/reverse/routes/0/host",
      R"(expected a host name ("app.example") or a wildcard ("*.example.com"), got "a b")");
  err(R"({"routes": [{"pool": "web", "path_regex": "("}], )" + pools + "}", "/reverse/routes/0/path_regex",
      R"(RE2 rejected "(": missing ): ()");
  err(R"({"routes": [{"pool": "web", "listeners": ["fwd"]}], )" + pools + "}", "/reverse/routes/0/listeners/0",
      R"(listener "fwd" is not a reverse listener ("mode": "reverse"))");
  err(R"({"routes": [{"pool": "web", "listeners": "ghost"}], )" + pools + "}", "/reverse/routes/0/listeners",
      R"(unknown listener "ghost"; the listeners are "site", "fwd")");
  err(R"({"routes": [{"pool": "web", "host_header": ""}], )" + pools + "}", "/reverse/routes/0/host_header",
      R"(expected "preserve", "backend" or a host[:port] to send, got "")");
  err(R"({"pools": {"p": {"balance": "hash_header", "backends": ["127.0.0.1:1"]}}})", "/reverse/pools/p/balance",
      R"(balance "hash_header" needs "hash_header": the header to hash)");
  err(R"({"pools": {"p": {"backends": []}}})", "/reverse/pools/p/backends",
      R"(expected a non-empty array of backends ("host:port" or {"address": ...}), got [])");
  err(R"({"pools": {"p": {"backends": ["nohost"]}}})", "/reverse/pools/p/backends/0",
      R"(expected a backend "host:port", got "nohost")");
  err(R"({"pools": {"p": {"backends": ["127.0.0.1:1", "127.0.0.1:1"]}}})", "/reverse/pools/p/backends/1",
      R"(duplicate backend "127.0.0.1:1" (also /reverse/pools/p/backends/0))");
  err(R"({"pools": {"p": {"backends": [{"address": "127.0.0.1:1", "weight": 0}]}}})", "/reverse/pools/p/backends",
      "every backend has weight 0: none would ever be chosen");
  err(R"({"pools": {"p": {"backends": ["127.0.0.1:1"], "health": {"interval_ms": 100}}}})", "/reverse/pools/p/health",
      R"(missing required key "path")");
  err(R"({"pools": {"p": {"backends": ["127.0.0.1:1"], "health": {"path": "/h", "expect": "399-200"}}}})",
      "/reverse/pools/p/health/expect", R"(expected a status or a range of statuses such as "200-399", got "399-200")");
  err(R"({"pools": {"p": {"backends": ["127.0.0.1:1"], "balanse": "x"}}})", "/reverse/pools/p/balanse",
      R"(unknown key "balanse", did you mean "balance"?)");
}

TEST_CASE("duplicate listener names are rejected at the second name") {
  check_error(R"({"listeners": [{"name": "a", "listen": ["127.0.0.1:1"]},
                                {"name": "b", "listen": ["127.0.0.1:2"]},
                                {"name": "a", "listen": ["127.0.0.1:3"]}]})",
              "/listeners/2/name", R"(duplicate listener name "a" (also /listeners/0))");
}

TEST_CASE("duplicate listen addresses are rejected, across listeners too") {
  check_error(R"({"listeners": [{"name": "a", "listen": ["127.0.0.1:3128"]},
                                {"name": "b", "listen": ["[::1]:3128", "127.0.0.1:3128"]}]})",
              "/listeners/1/listen/1", R"(duplicate listen address "127.0.0.1:3128" (also /listeners/0/listen/0))");
  check_error(R"({"listeners": [{"listen": ["[::1]:80", "[0:0::1]:80"]}]})", "/listeners/0/listen/1",
              R"(duplicate listen address "[::1]:80" (also /listeners/0/listen/0))");
  check_error(R"({"listeners": [{"listen": ["[::ffff:127.0.0.1]:80", "127.0.0.1:80"]}]})", "/listeners/0/listen/1",
              R"(duplicate listen address "127.0.0.1:80" (also /listeners/0/listen/0))");
}

TEST_CASE("a wildcard address overlaps specific addresses of its family on the same port") {
  check_error(R"({"listeners": [{"name": "a", "listen": ["0.0.0.0:3128"]},
                                {"name": "b", "listen": ["127.0.0.1:3128"]}]})",
              "/listeners/1/listen/0", R"(listen address "127.0.0.1:3128" overlaps "0.0.0.0:3128" (/listeners/0/listen/0))");
  check_error(R"({"listeners": [{"listen": ["[::1]:3128", "[::]:3128"]}]})", "/listeners/0/listen/1",
              R"(listen address "[::]:3128" overlaps "[::1]:3128" (/listeners/0/listen/0))");
  // Different families or ports do not clash.
  valid(R"({"listeners": [{"listen": ["0.0.0.0:3128", "[::]:3128", "127.0.0.1:3129", "[::1]:3129"]}]})");
}

TEST_CASE("wrong types name what was expected and what was found") {
  check_error(with(R"("workers": "abc")"), "/workers", R"(expected an integer, got "abc")");
  check_error(with(R"("workers": 1.5)"), "/workers", "expected an integer, got 1.5");
  check_error(with(R"("workers": null)"), "/workers", "expected an integer, got null");
  check_error(with(R"("access_log": "-")"), "/access_log", R"(expected an object, got "-")");
  check_error(with(R"("access_log": {"log_query": "yes"})"), "/access_log/log_query",
              R"(expected true or false, got "yes")");
  check_error(with(R"("access_log": {"path": 1})"), "/access_log/path", "expected a string, got 1");
  check_error(with(R"("forward": {"x_forwarded_for": 1})"), "/forward/x_forwarded_for",
              "expected true or false, got 1");
  check_error(with(R"("forward": {"via": true})"), "/forward/via", "expected a string or false, got true");
  check_error(with(R"("forward": {"connect_ports": 443})"), "/forward/connect_ports",
              R"(expected an array of ports (443) or port ranges ("8000-8100"), got 443)");
  check_error(with(R"("ssrf": {"allow": "10.0.0.0/8"})"), "/ssrf/allow",
              R"(expected an array of CIDR ranges, got "10.0.0.0/8")");
  check_error(with(R"("timeouts": [])"), "/timeouts", "expected an object, got []");
  check_error(with(R"("timeouts": {"connect_ms": "5s"})"), "/timeouts/connect_ms",
              R"(expected an integer, got "5s")");
}

TEST_CASE("long values are cut short in messages") {
  std::string long_value(200, 'x');
  auto errors = errors_of(with(R"("workers": ")" + long_value + "\""));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].message.size() < 100);
  CHECK(errors[0].message.find("...") != std::string::npos);
}

TEST_CASE("out of range values show the allowed range") {
  check_error(with(R"("workers": 257)"), "/workers", "expected an integer in 0..256, got 257");
  check_error(with(R"("workers": -1)"), "/workers", "expected an integer in 0..256, got -1");
  check_error(with(R"("workers": 18446744073709551615)"), "/workers",
              "expected an integer in 0..256, got 18446744073709551615");
  check_error(with(R"("timeouts": {"header_ms": 0})"), "/timeouts/header_ms",
              "expected an integer in 1..86400000, got 0");
  check_error(with(R"("timeouts": {"tunnel_idle_ms": 86400001})"), "/timeouts/tunnel_idle_ms",
              "expected an integer in 1..86400000, got 86400001");
  check_error(with(R"("timeouts": {"shutdown_grace_ms": -5})"), "/timeouts/shutdown_grace_ms",
              "expected an integer in 1..86400000, got -5");
  check_error(with(R"("origin_pool": {"idle_ms": 0})"), "/origin_pool/idle_ms",
              "expected an integer in 1..86400000, got 0");
  check_error(with(R"("limits": {"max_header_bytes": 1023})"), "/limits/max_header_bytes",
              "expected an integer in 1024..1048576, got 1023");
  check_error(with(R"("limits": {"max_header_bytes": 1048577})"), "/limits/max_header_bytes",
              "expected an integer in 1024..1048576, got 1048577");
  check_error(with(R"("limits": {"max_headers": 0})"), "/limits/max_headers",
              "expected an integer in 1..10000, got 0");
  check_error(with(R"("limits": {"max_headers": 10001})"), "/limits/max_headers",
              "expected an integer in 1..10000, got 10001");
  check_error(with(R"("limits": {"max_url_bytes": 0})"), "/limits/max_url_bytes",
              "expected an integer in 1..1048576, got 0");
}

TEST_CASE("max_url_bytes may not exceed max_header_bytes") {
  check_error(with(R"("limits": {"max_header_bytes": 4096, "max_url_bytes": 8192})"), "/limits/max_url_bytes",
              "expected at most max_header_bytes (4096), got 8192");
  check_error(with(R"("limits": {"max_url_bytes": 65537})"), "/limits/max_url_bytes",
              "expected at most max_header_bytes (65536), got 65537");
  // Order of the keys does not matter.
  check_error(with(R"("limits": {"max_url_bytes": 2000, "max_header_bytes": 1024})"), "/limits/max_url_bytes",
              "expected at most max_header_bytes (1024), got 2000");
}

TEST_CASE("connect_ports entries are ports or a-b ranges") {
  const std::string expected = R"(expected a port 1..65535 or a range "a-b" with 1 <= a <= b <= 65535, got )";
  check_error(with(R"("forward": {"connect_ports": [443, 0]})"), "/forward/connect_ports/1",
              "expected an integer in 1..65535, got 0");
  check_error(with(R"("forward": {"connect_ports": [65536]})"), "/forward/connect_ports/0",
              "expected an integer in 1..65535, got 65536");
  for (const char* bad : {"100-90", "0-10", "1-65536", "a-b", "80-", "-80", "80-90-100", " 80", "80 - 90", ""}) {
    CAPTURE(bad);
    check_error(with(std::string(R"("forward": {"connect_ports": [")") + bad + "\"]}"), "/forward/connect_ports/0",
                expected + "\"" + bad + "\"");
  }
  check_error(with(R"("forward": {"connect_ports": [true]})"), "/forward/connect_ports/0", expected + "true");
  check_error(with(R"("forward": {"connect_ports": [443.5]})"), "/forward/connect_ports/0", expected + "443.5");
}

TEST_CASE("ssrf.allow entries must be CIDR ranges or addresses") {
  const std::string expected = R"(expected a CIDR range like "10.0.0.0/8" or an IP address, got )";
  check_error(with(R"("ssrf": {"allow": ["127.0.0.0/8", "10.0.0.0/33"]})"), "/ssrf/allow/1",
              expected + "\"10.0.0.0/33\"");
  check_error(with(R"("ssrf": {"allow": ["localhost"]})"), "/ssrf/allow/0", expected + "\"localhost\"");
  check_error(with(R"("ssrf": {"allow": [10]})"), "/ssrf/allow/0", expected + "10");
}

TEST_CASE("access_log path and via must be usable") {
  check_error(with(R"("access_log": {"path": ""})"), "/access_log/path",
              R"(expected "-" (stdout), "off" or a file path, got "")");
  check_error(with(R"("forward": {"via": "1.1 portier\r\nX-Evil: 1"})"), "/forward/via",
              R"(expected printable text of at most 256 characters (it becomes a header value), got "1.1 portier\r\nX-Evil: 1")");
}

TEST_CASE("unknown keys are errors, with a hint for a near miss") {
  check_error(R"({"listner": [], "listeners": [{"listen": ["127.0.0.1:1"]}]})", "/listner",
              R"(unknown key "listner", did you mean "listeners"?)");
  check_error(with(R"("timeouts": {"conect_ms": 1})"), "/timeouts/conect_ms",
              R"(unknown key "conect_ms", did you mean "connect_ms"?)");
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "nmae": "x"}]})", "/listeners/0/nmae",
              R"(unknown key "nmae", did you mean "name"?)");
  check_error(with(R"("colour": "blue")"), "/colour", R"(unknown key "colour")");
  check_error(with(R"("a/b~c": 1)"), "/a~1b~0c", R"(unknown key "a/b~c")");
}

TEST_CASE("a key given twice is an error at its first position") {
  check_error(R"({"workers": 1, "listeners": [{"listen": ["127.0.0.1:1"]}], "workers": 2})", "/workers",
              R"(duplicate key "workers": only the last value would be used)");
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"]}, {"name": "x", "name": "y", "listen": ["127.0.0.1:2"]}]})",
              "/listeners/1/name", R"(duplicate key "name": only the last value would be used)");
}

TEST_CASE("all errors of a document are reported in document order") {
  auto errors = errors_of(R"({
    "workers": -1,
    "listeners": [
      {"name": "a", "listen": ["127.0.0.1:3128", "nope"]},
      {"name": "a", "listen": ["127.0.0.1:3128"], "mode": "tunnel"}
    ],
    "forward": {"via": 1, "connect_ports": ["9-1"]},
    "listner": 1,
    "timeouts": {"connect_ms": 0, "header_ms": "x"}
  })");
  std::vector<std::string> pointers;
  for (const auto& e : errors) pointers.push_back(e.pointer);
  const std::vector<std::string> expected = {
      "/workers",
      "/listeners/0/listen/1",
      "/listeners/1/name",
      "/listeners/1/listen/0",
      "/listeners/1/mode",
      "/forward/via",
      "/forward/connect_ports/0",
      "/listner",
      "/timeouts/connect_ms",
      "/timeouts/header_ms",
  };
  CHECK(pointers == expected);
}

TEST_CASE("format_error shows the pointer, with / for the root") {
  CHECK(format_error({"/listeners/0/listen/1", R"(expected "ip:port", got "foo")"}) ==
        R"(config error: /listeners/0/listen/1: expected "ip:port", got "foo")");
  CHECK(format_error({"", "missing required key \"listeners\""}) ==
        R"(config error: /: missing required key "listeners")");
}

TEST_CASE("load_config_file reads a file and names an unreadable one") {
  auto missing = portier::config::load_config_file("/nonexistent/portier.json");
  CHECK_FALSE(missing.config.has_value());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].pointer == "");
  CHECK(missing.errors[0].message ==
        R"(cannot read config file "/nonexistent/portier.json": No such file or directory)");

  auto dir = portier::config::load_config_file("/");
  REQUIRE(dir.errors.size() == 1);
  CHECK(dir.errors[0].message == R"(cannot read config file "/": Is a directory)");

  char path[] = "/tmp/portier_config_test_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  std::FILE* f = fdopen(fd, "w");
  REQUIRE(f != nullptr);
  std::fputs(kMinimal.data(), f);
  std::fclose(f);
  auto loaded = portier::config::load_config_file(path);
  std::remove(path);
  CHECK(loaded.errors.empty());
  REQUIRE(loaded.config.has_value());
  CHECK(loaded.config->listeners[0].listen[0].port == 3128);
}

TEST_CASE("listeners take auth, trusted, allow_clients and refuse") {
  Config c = valid(R"({"listeners": [
      {"name": "office", "listen": ["127.0.0.1:3128"], "auth": "required", "trusted": ["10.1.0.0/16", "fd00::1"],
       "allow_clients": ["10.0.0.0/8"], "refuse": "close"},
      {"name": "lab", "listen": ["127.0.0.1:3129"], "auth": "optional", "trusted": [], "refuse": "403"},
      {"name": "open", "listen": ["127.0.0.1:3130"], "auth": "off"}],
    "auth": {"users_file": "users.htpasswd"}})");
  const auto& l = c.listeners;
  CHECK(l[0].auth == AuthMode::required);
  REQUIRE(l[0].trusted.size() == 2);
  CHECK(l[0].trusted[0].to_string() == "10.1.0.0/16");
  CHECK(l[0].trusted[1].to_string() == "fd00::1/128");
  REQUIRE(l[0].allow_clients.size() == 1);
  CHECK(l[0].refuse == RefuseMode::close);
  CHECK(l[1].auth == AuthMode::optional);
  CHECK(l[1].trusted.empty());
  CHECK(l[1].refuse == RefuseMode::forbid);
  CHECK(l[2].auth == AuthMode::off);

  Config d = valid(kMinimal);
  CHECK(d.listeners[0].auth == AuthMode::off);
  CHECK(d.listeners[0].allow_clients.empty());
  CHECK(d.listeners[0].refuse == RefuseMode::forbid);
}

TEST_CASE("listener auth fields are checked at their pointers") {
  const std::string auth = R"(, "auth": {"users_file": "u"})";
  auto listener = [&](const std::string& fields) {
    return R"({"listeners": [{"listen": ["127.0.0.1:1"], )" + fields + "}]" + auth + "}";
  };
  check_error(listener(R"("auth": "yes")"), "/listeners/0/auth",
              R"(expected "off", "optional" or "required", got "yes")");
  check_error(listener(R"("auth": true)"), "/listeners/0/auth",
              R"(expected "off", "optional" or "required", got true)");
  check_error(listener(R"("trusted": ["10.0.0.0/33"])"), "/listeners/0/trusted/0",
              R"(expected a CIDR range like "10.0.0.0/8" or an IP address, got "10.0.0.0/33")");
  check_error(listener(R"("trusted": "10.0.0.0/8")"), "/listeners/0/trusted",
              R"(expected an array of CIDR ranges, got "10.0.0.0/8")");
  check_error(listener(R"("allow_clients": [])"), "/listeners/0/allow_clients",
              "expected at least one CIDR range (leave the key out to admit every client), got []");
  check_error(listener(R"("allow_clients": ["10.0.0.0/8", "lan"])"), "/listeners/0/allow_clients/1",
              R"(expected a CIDR range like "10.0.0.0/8" or an IP address, got "lan")");
  check_error(listener(R"("refuse": 403)"), "/listeners/0/refuse", R"(expected "403" or "close", got 403)");
  check_error(listener(R"("refuse": "drop")"), "/listeners/0/refuse", R"(expected "403" or "close", got "drop")");
  check_error(listener(R"("auht": "off")"), "/listeners/0/auht", R"(unknown key "auht", did you mean "auth"?)");
}

TEST_CASE("auth on a listener needs a users file") {
  const std::string expected = R"( needs "users_file" in /auth: there are no users to check credentials against)";
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "auth": "required"}]})", "/listeners/0/auth",
              R"(auth "required")" + expected);
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "auth": "optional"}], "auth": {"realm": "x"}})",
              "/listeners/0/auth", R"(auth "optional")" + expected);
  // The auth section may come after the listeners.
  valid(R"({"listeners": [{"listen": ["127.0.0.1:1"], "auth": "required"}], "auth": {"users_file": "u"}})");
  valid(R"({"auth": {"users_file": "u"}, "listeners": [{"listen": ["127.0.0.1:1"], "auth": "required"}]})");
  // A users file with a bad value still counts: its own error is enough.
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "auth": "required"}], "auth": {"users_file": 1}})",
              "/auth/users_file", "expected a string, got 1");
}

TEST_CASE("the auth section sets realm, users file, groups and the failure limits") {
  Config c = valid(with(R"("auth": {"realm": "Example Corp", "users_file": "/etc/portier/users",
      "groups": {"staff": ["alice", "bob"], "admins": ["alice"], "nobody": []},
      "cache_ttl_ms": 0, "max_failures": 3, "failure_window_ms": 1000, "block_ms": 2000})"));
  CHECK(c.auth.realm == "Example Corp");
  CHECK(c.auth.users_file == "/etc/portier/users");
  REQUIRE(c.auth.groups.size() == 3);
  CHECK(c.auth.groups[0].first == "staff");
  CHECK(c.auth.groups[0].second == std::vector<std::string>{"alice", "bob"});
  CHECK(c.auth.groups[1].first == "admins");
  CHECK(c.auth.groups[2].second.empty());
  CHECK(c.auth.cache_ttl == 0ms);
  CHECK(c.auth.max_failures == 3);
  CHECK(c.auth.failure_window == 1000ms);
  CHECK(c.auth.block == 2000ms);

  Config d = valid(kMinimal);
  CHECK(d.auth.realm == "portier");
  CHECK(d.auth.users_file.empty());
  CHECK(d.auth.cache_ttl == 300000ms);
  CHECK(d.auth.max_failures == 10);
  CHECK(d.auth.failure_window == 60000ms);
  CHECK(d.auth.block == 60000ms);
}

TEST_CASE("auth values are checked") {
  check_error(with(R"("auth": [])"), "/auth", "expected an object, got []");
  check_error(with(R"("auth": {"realm": "a\"b"})"), "/auth/realm",
              R"(expected 1 to 256 printable characters without '"' or '\', got "a\"b")");
  check_error(with(R"("auth": {"realm": ""})"), "/auth/realm",
              R"(expected 1 to 256 printable characters without '"' or '\', got "")");
  check_error(with(R"("auth": {"users_file": ""})"), "/auth/users_file", R"(expected a file path, got "")");
  check_error(with(R"("auth": {"user_file": "u"})"), "/auth/user_file",
              R"(unknown key "user_file", did you mean "users_file"?)");
  check_error(with(R"("auth": {"groups": []})"), "/auth/groups", "expected an object of named groups, got []");
  check_error(with(R"("auth": {"groups": {"staff": "alice"}})"), "/auth/groups/staff",
              R"(expected an array of user names, got "alice")");
  check_error(with(R"("auth": {"groups": {"staff": ["alice", "a b"]}})"), "/auth/groups/staff/1",
              R"(expected a user name of 1 to 128 bytes without spaces, ":" or control characters, got "a b")");
  check_error(with(R"("auth": {"groups": {"staff": ["al:ce"]}})"), "/auth/groups/staff/0",
              R"(expected a user name of 1 to 128 bytes without spaces, ":" or control characters, got "al:ce")");
  check_error(with(R"("auth": {"groups": {"my staff": []}})"), "/auth/groups/my staff",
              R"(expected a name of 1 to 64 letters, digits, ".", "_" or "-", got "my staff")");
  check_error(with(R"("auth": {"groups": {"a": [], "a": []}})"), "/auth/groups/a",
              R"(duplicate key "a": only the last value would be used)");
  check_error(with(R"("auth": {"cache_ttl_ms": -1})"), "/auth/cache_ttl_ms", "expected an integer in 0..86400000, got -1");
  check_error(with(R"("auth": {"max_failures": 0})"), "/auth/max_failures", "expected an integer in 1..1000000, got 0");
  check_error(with(R"("auth": {"failure_window_ms": 0})"), "/auth/failure_window_ms",
              "expected an integer in 1..86400000, got 0");
  check_error(with(R"("auth": {"block_ms": "1m"})"), "/auth/block_ms", R"(expected an integer, got "1m")");
}

TEST_CASE("lists are named, with a file and a match kind") {
  Config c = valid(with(R"("lists": {"ads": {"file": "lists/ads.txt", "match": "domain"},
                                     "trackers": {"file": "/srv/t.txt", "match": "regex", "max_mem_mb": 8},
                                     "plain": {"file": "p.txt"}})"));
  REQUIRE(c.lists.size() == 3);
  CHECK(c.lists[0].name == "ads");
  CHECK(c.lists[0].file == "lists/ads.txt");
  CHECK(c.lists[0].kind == ListKind::domain);
  CHECK(c.lists[0].pointer == "/lists/ads");
  CHECK(c.lists[1].kind == ListKind::regex);
  CHECK(c.lists[1].max_mem_mb == 8);
  CHECK(c.lists[2].kind == ListKind::domain);
  CHECK(c.lists[2].max_mem_mb == 64);
}

TEST_CASE("list declarations are checked") {
  check_error(with(R"("lists": [])"), "/lists", "expected an object of named lists, got []");
  check_error(with(R"("lists": {"ads": "ads.txt"})"), "/lists/ads", R"(expected an object, got "ads.txt")");
  check_error(with(R"("lists": {"ads": {"match": "domain"}})"), "/lists/ads", R"(missing required key "file")");
  check_error(with(R"("lists": {"ads": {"file": "a", "match": "glob"}})"), "/lists/ads/match",
              R"(expected "domain" or "regex", got "glob")");
  check_error(with(R"("lists": {"ads": {"file": "a", "max_mem_mb": 8}})"), "/lists/ads/max_mem_mb",
              R"(max_mem_mb applies to "match": "regex" lists only)");
  check_error(with(R"("lists": {"ads": {"file": "a", "match": "regex", "max_mem_mb": 0}})"), "/lists/ads/max_mem_mb",
              "expected an integer in 1..4096, got 0");
  check_error(with(R"("lists": {"ads/x": {"file": "a"}})"), "/lists/ads~1x",
              R"(expected a name of 1 to 64 letters, digits, ".", "_" or "-", got "ads/x")");
  check_error(with(R"("lists": {"ads": {"file": "a", "matches": "regex"}})"), "/lists/ads/matches",
              R"(unknown key "matches", did you mean "match"?)");
}

TEST_CASE("policy settings: default_action, block_page, sni and time") {
  Config c = valid(with(R"("default_action": "deny", "block_page": {"template": "block.html"},
                           "sni": {"require_match": false}, "time": {"zone": "UTC", "override": "wed 13:05"})"));
  CHECK(c.policy.default_action == Action::deny);
  CHECK(c.policy.block_page == "block.html");
  CHECK_FALSE(c.policy.sni_must_match);
  CHECK(c.policy.time_utc);
  REQUIRE(c.policy.time_override.has_value());
  CHECK(*c.policy.time_override == 2 * 1440 + 13 * 60 + 5);

  Config d = valid(kMinimal);
  CHECK(d.policy.default_action == Action::allow);
  CHECK(d.policy.block_page.empty());
  CHECK(d.policy.sni_must_match);
  CHECK_FALSE(d.policy.time_utc);
  CHECK_FALSE(d.policy.time_override.has_value());
  CHECK_FALSE(d.policy.rules.has_value());

  CHECK(*valid(with(R"("time": {"override": "mon 00:00"})")).policy.time_override == 0);
  CHECK(*valid(with(R"("time": {"override": "sun 23:59"})")).policy.time_override == 7 * 1440 - 1);
  CHECK_FALSE(valid(with(R"("time": {"zone": "local"})")).policy.time_utc);
}

TEST_CASE("policy settings are checked") {
  check_error(with(R"("default_action": "block")"), "/default_action", R"(expected "allow" or "deny", got "block")");
  check_error(with(R"("block_page": "block.html")"), "/block_page", R"(expected an object, got "block.html")");
  check_error(with(R"("block_page": {"template": ""})"), "/block_page/template", R"(expected a file path, got "")");
  check_error(with(R"("block_page": {"file": "x"})"), "/block_page/file", R"(unknown key "file")");
  check_error(with(R"("sni": {"require_match": "yes"})"), "/sni/require_match", R"(expected true or false, got "yes")");
  check_error(with(R"("time": {"zone": "utc"})"), "/time/zone", R"(expected "local" or "UTC", got "utc")");
  for (const char* bad : {"monday 09:30", "mon 9:30", "mon 24:00", "mon 09:60", "xyz 09:30", "mon  09:30", "Mon 09:30"}) {
    CAPTURE(bad);
    check_error(with(std::string(R"("time": {"override": ")") + bad + "\"}"), "/time/override",
                std::string(R"(expected a day and a time like "mon 09:30", got ")") + bad + "\"");
  }
  check_error(with(R"("time": {"override": 570})"), "/time/override",
              R"(expected a day and a time like "mon 09:30", got 570)");
}

TEST_CASE("rules of every kind are read in order") {
  Config c = valid(R"({"listeners": [{"name": "office", "listen": ["127.0.0.1:3128"], "auth": "required"}],
    "auth": {"users_file": "users.htpasswd", "groups": {"admins": ["alice"]}},
    "lists": {"ads": {"file": "ads.txt"}},
    "egress": {"regions": {"fi": {"exits": ["http://127.0.0.1:3129"]}}},
    "rules": [
      {"id": "no-ads", "when": {"list": "ads"}, "action": "deny", "reason": "advertising", "category": "ads"},
      {"id": "ssh-admins", "when": {"group": "admins", "method": "connect", "port": [22]}, "action": "allow"},
      {"id": "office-hours-only", "when": {"host": "(^|\\.)games\\.example$",
        "time": [{"days": ["mon","tue","wed","thu","fri"], "from": "09:00", "to": "17:00"}]}, "action": "deny"},
      {"id": "fi-exit", "when": {"user": ["alice"], "listener": "office"}, "action": "egress", "egress": "fi"},
      {"id": "connect-tls-only", "when": {"method": "CONNECT"}, "unless": {"port": [443, "8443-8445"]},
       "action": "deny", "reason": "CONNECT only to TLS ports"},
      {"id": "all.else_1", "when": {}, "action": "allow"},
      {"id": "misc", "when": {"client": "10.0.0.0/8", "url": "^http://x/", "time": {"from": "22:00", "to": "06:00"}},
       "action": "allow"}
    ]})");
  REQUIRE(c.policy.rules.has_value());
  const auto& r = *c.policy.rules;
  REQUIRE(r.size() == 7);
  CHECK(r[0].id == "no-ads");
  CHECK(r[0].pointer == "/rules/0");
  CHECK(r[0].when.lists == std::vector<std::string>{"ads"});
  CHECK(r[0].action == Action::deny);
  CHECK(r[0].reason == "advertising");
  CHECK(r[0].category == "ads");
  CHECK(r[1].when.groups == std::vector<std::string>{"admins"});
  CHECK(r[1].when.methods == std::vector<std::string>{"CONNECT"});  // normalized to upper case
  REQUIRE(r[1].when.ports.size() == 1);
  CHECK(r[1].when.ports[0].first == 22);
  CHECK(r[2].when.host == "(^|\\.)games\\.example$");
  REQUIRE(r[2].when.times.size() == 1);
  CHECK(r[2].when.times[0].days == 0x1f);
  CHECK(r[2].when.times[0].from == 9 * 60);
  CHECK(r[2].when.times[0].to == 17 * 60);
  CHECK(r[3].when.users == std::vector<std::string>{"alice"});
  CHECK(r[3].when.listeners == std::vector<std::string>{"office"});
  CHECK(r[3].action == Action::egress);
  CHECK(r[3].egress == "fi");
  REQUIRE(r[4].unless.has_value());
  REQUIRE(r[4].unless->ports.size() == 2);
  CHECK(r[4].unless->ports[1].first == 8443);
  CHECK(r[4].unless->ports[1].last == 8445);
  CHECK_FALSE(r[3].unless.has_value());
  CHECK(r[5].id == "all.else_1");
  CHECK(r[5].when.listeners.empty());
  CHECK(r[5].when.host.empty());
  REQUIRE(r[6].when.clients.size() == 1);
  CHECK(r[6].when.url == "^http://x/");
  REQUIRE(r[6].when.times.size() == 1);
  CHECK(r[6].when.times[0].days == 0x7f);
  CHECK(r[6].when.times[0].from == 22 * 60);
  CHECK(r[6].when.times[0].to == 6 * 60);

  CHECK(valid(with(R"("rules": [])")).policy.rules->empty());
}

TEST_CASE("rule fields are checked") {
  check_error(with(R"("rules": {})"), "/rules", "expected an array of rules, got {}");
  check_error(with(R"("rules": [1])"), "/rules/0", "expected an object, got 1");
  check_error(with(R"("rules": [{"when": {}, "action": "allow"}])"), "/rules/0", R"(missing required key "id")");
  check_error(with(R"("rules": [{"id": "a", "action": "allow"}])"), "/rules/0",
              R"(missing required key "when" ({} matches every request))");
  check_error(with(R"("rules": [{"id": "a", "when": {}}])"), "/rules/0", R"(missing required key "action")");
  check_error(with(R"("rules": [{"id": "a b", "when": {}, "action": "allow"}])"), "/rules/0/id",
              R"(expected an id of 1 to 64 letters, digits, ".", "_" or "-", got "a b")");
  check_error(with(R"("rules": [{"id": ")" + std::string(65, 'x') + R"(", "when": {}, "action": "allow"}])"),
              "/rules/0/id",
              R"(expected an id of 1 to 64 letters, digits, ".", "_" or "-", got "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)");
  check_error(with(R"("rules": [{"id": 7, "when": {}, "action": "allow"}])"), "/rules/0/id", "expected a string, got 7");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "allow"},
                                {"id": "b", "when": {}, "action": "allow"},
                                {"id": "a", "when": {}, "action": "deny"}])"),
              "/rules/2/id", R"(duplicate rule id "a" (also /rules/0))");
  for (const char* reserved : {"connect_ports", "client_network", "sni_mismatch", "default"}) {
    CAPTURE(reserved);
    check_error(with(std::string(R"("rules": [{"id": ")") + reserved + R"(", "when": {}, "action": "deny"}])"),
                "/rules/0/id", std::string("rule id \"") + reserved + "\" is reserved for a built-in check");
  }
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "block"}])"), "/rules/0/action",
              R"(expected "allow", "deny" or "egress", got "block")");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "egress"}])"), "/rules/0",
              R"(action "egress" needs "egress": the name of the region to leave through)");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "deny", "egress": "direct"}])"), "/rules/0/egress",
              R"("egress" is only used with action "egress")");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "egress", "egress": ""}])"), "/rules/0/egress",
              R"(expected a region name of 1 to 64 printable characters, got "")");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "deny", "reason": "a\nb"}])"), "/rules/0/reason",
              R"(expected printable text of at most 256 characters, got "a\nb")");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "deny", "category": ")" + std::string(257, 'c') +
                   R"("}])"),
              "/rules/0/category",
              R"(expected printable text of at most 256 characters, got "cccccccccccccccccccccccccccccccccccccccccccccccccccccccc...)");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "deny", "reason": 5}])"), "/rules/0/reason",
              "expected a string, got 5");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "deny", "resaon": "x"}])"), "/rules/0/resaon",
              R"(unknown key "resaon", did you mean "reason"?)");
  check_error(with(R"("rules": [{"id": "a", "when": [], "action": "deny"}])"), "/rules/0/when",
              "expected an object, got []");
  check_error(with(R"("rules": [{"id": "a", "when": {"hosts": "x"}, "action": "deny"}])"), "/rules/0/when/hosts",
              R"(unknown key "hosts", did you mean "host"?)");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "unless": {"prot": 443}, "action": "deny"}])"),
              "/rules/0/unless/prot", R"(unknown key "prot", did you mean "port"?)");
}

TEST_CASE("a host or url pattern RE2 rejects is reported with RE2's message") {
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "allow"},
                                {"id": "b", "when": {}, "action": "allow"},
                                {"id": "c", "when": {}, "action": "allow"},
                                {"id": "d", "when": {"host": "(ads|"}, "action": "deny"}])"),
              "/rules/3/when/host", R"(RE2 rejected "(ads|": missing ): (ads|)");
  auto errors = errors_of(with(R"("rules": [{"id": "a", "when": {"host": "(ads|"}, "action": "deny"}])"));
  REQUIRE(errors.size() == 1);
  CHECK(format_error(errors[0]) == R"(config error: /rules/0/when/host: RE2 rejected "(ads|": missing ): (ads|)");
  check_error(with(R"("rules": [{"id": "a", "when": {"url": "a**"}, "action": "deny"}])"), "/rules/0/when/url",
              R"(RE2 rejected "a**": bad repetition operator: **)");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "unless": {"url": "[z-a]"}, "action": "deny"}])"),
              "/rules/0/unless/url", R"(RE2 rejected "[z-a]": invalid character class range: z-a)");
  check_error(with(R"("rules": [{"id": "a", "when": {"host": ""}, "action": "deny"}])"), "/rules/0/when/host",
              R"(expected an RE2 pattern of 1 to 4096 characters (leave the key out to match anything), got "")");
  check_error(with(R"("rules": [{"id": "a", "when": {"host": ["a"]}, "action": "deny"}])"), "/rules/0/when/host",
              R"(expected a string, got ["a"])");
}

TEST_CASE("rule conditions name declared listeners, groups and lists") {
  const std::string decls = R"("auth": {"users_file": "u", "groups": {"staff": [], "ops": []}},
                               "lists": {"ads": {"file": "a"}, "trackers": {"file": "t", "match": "regex"}}, )";
  auto rule = [&](const std::string& when) {
    return with(decls + R"("rules": [{"id": "r", "when": )" + when + R"(, "action": "deny"}])");
  };
  valid(rule(R"({"listener": "a", "group": ["staff", "ops"], "list": ["ads", "trackers"]})"));
  check_error(rule(R"({"listener": ["a", "b"]})"), "/rules/0/when/listener/1", R"(unknown listener "b"; the listeners are "a")");
  check_error(rule(R"({"group": "admins"})"), "/rules/0/when/group",
              R"(unknown group "admins"; the groups in /auth/groups are "staff", "ops")");
  check_error(rule(R"({"list": ["ads", "malware"]})"), "/rules/0/when/list/1",
              R"(unknown list "malware"; the lists in /lists are "ads", "trackers")");
  check_error(with(R"("rules": [{"id": "r", "when": {"group": "admins"}, "action": "deny"}])"), "/rules/0/when/group",
              R"(unknown group "admins": no groups are declared in /auth/groups)");
  check_error(with(R"("rules": [{"id": "r", "when": {"list": "ads"}, "action": "deny"}])"), "/rules/0/when/list",
              R"(unknown list "ads": no lists are declared in /lists)");
  // A listener without a name is called listener-<index>.
  valid(R"({"listeners": [{"listen": ["127.0.0.1:1"]}, {"listen": ["127.0.0.1:2"]}],
            "rules": [{"id": "r", "when": {"listener": "listener-1"}, "action": "deny"}]})");
  // Declarations may follow the rules that use them.
  valid(R"({"rules": [{"id": "r", "when": {"list": "ads", "group": "g", "listener": "x"}, "action": "deny"}],
            "lists": {"ads": {"file": "a"}}, "auth": {"groups": {"g": []}},
            "listeners": [{"name": "x", "listen": ["127.0.0.1:1"]}]})");
  // A declaration with errors of its own is reported there only.
  check_error(with(R"("lists": {"ads": {"file": 1}}, "rules": [{"id": "r", "when": {"list": "ads"}, "action": "deny"}])"),
              "/lists/ads/file", "expected a string, got 1");
}

TEST_CASE("name conditions take a string or a non-empty array of strings") {
  auto rule = [&](const std::string& when) {
    return with(R"("rules": [{"id": "r", "when": )" + when + R"(, "action": "deny"}])");
  };
  Config c = valid(rule(R"({"user": ["alice", "bob"], "method": ["get", "Post", "CONNECT"]})"));
  CHECK((*c.policy.rules)[0].when.users == std::vector<std::string>{"alice", "bob"});
  CHECK((*c.policy.rules)[0].when.methods == std::vector<std::string>{"GET", "POST", "CONNECT"});
  check_error(rule(R"({"user": []})"), "/rules/0/when/user", "expected a string or a non-empty array of strings, got []");
  check_error(rule(R"({"user": 5})"), "/rules/0/when/user", "expected a string or a non-empty array of strings, got 5");
  check_error(rule(R"({"user": ["alice", 5]})"), "/rules/0/when/user/1", "expected a string, got 5");
  check_error(rule(R"({"user": "a b"})"), "/rules/0/when/user",
              R"(expected a user name of 1 to 128 bytes without spaces, ":" or control characters, got "a b")");
  check_error(rule(R"({"method": "GE T"})"), "/rules/0/when/method",
              R"(expected an HTTP method of letters only, like "CONNECT" or "GET", got "GE T")");
  check_error(rule(R"({"method": ["GET", "M-SEARCH"]})"), "/rules/0/when/method/1",
              R"(expected an HTTP method of letters only, like "CONNECT" or "GET", got "M-SEARCH")");
  check_error(rule(R"({"method": ""})"), "/rules/0/when/method",
              R"(expected an HTTP method of letters only, like "CONNECT" or "GET", got "")");
}

TEST_CASE("client, port and time conditions") {
  auto rule = [&](const std::string& when) {
    return with(R"("rules": [{"id": "r", "when": )" + when + R"(, "action": "deny"}])");
  };
  auto when = [&](const std::string& w) { return (*valid(rule(w)).policy.rules)[0].when; };

  CHECK(when(R"({"client": "10.0.0.0/8"})").clients.size() == 1);
  CHECK(when(R"({"client": ["10.0.0.0/8", "::1"]})").clients.size() == 2);
  check_error(rule(R"({"client": 5})"), "/rules/0/when/client", "expected a CIDR range or a non-empty array of them, got 5");
  check_error(rule(R"({"client": []})"), "/rules/0/when/client", "expected a CIDR range or a non-empty array of them, got []");
  check_error(rule(R"({"client": "10.0.0.0/40"})"), "/rules/0/when/client",
              R"(expected a CIDR range like "10.0.0.0/8" or an IP address, got "10.0.0.0/40")");
  check_error(rule(R"({"client": ["10.0.0.0/8", "x"]})"), "/rules/0/when/client/1",
              R"(expected a CIDR range like "10.0.0.0/8" or an IP address, got "x")");

  auto p = when(R"({"port": 22})").ports;
  REQUIRE(p.size() == 1);
  CHECK(p[0].first == 22);
  CHECK(p[0].last == 22);
  p = when(R"({"port": "8000-8100"})").ports;
  REQUIRE(p.size() == 1);
  CHECK(p[0].last == 8100);
  CHECK(when(R"({"port": [80, "443", "8000-8100"]})").ports.size() == 3);
  const std::string port_msg = R"(expected a port 1..65535 or a range "a-b" with 1 <= a <= b <= 65535, got )";
  check_error(rule(R"({"port": "x"})"), "/rules/0/when/port", port_msg + "\"x\"");
  check_error(rule(R"({"port": [443, "9-1"]})"), "/rules/0/when/port/1", port_msg + "\"9-1\"");
  check_error(rule(R"({"port": 0})"), "/rules/0/when/port", "expected an integer in 1..65535, got 0");
  check_error(rule(R"({"port": []})"), "/rules/0/when/port",
              R"(expected a port, a range "a-b" or a non-empty array of them, got [])");

  auto t = when(R"({"time": {"days": ["sat", "sun"], "from": "00:00", "to": "24:00"}})").times;
  REQUIRE(t.size() == 1);
  CHECK(t[0].days == 0x60);
  CHECK(t[0].from == 0);
  CHECK(t[0].to == 1440);
  t = when(R"({"time": [{"days": ["mon"], "from": "22:30"}, {"to": "06:15"}]})").times;
  REQUIRE(t.size() == 2);
  CHECK(t[0].days == 0x01);
  CHECK(t[0].from == 22 * 60 + 30);
  CHECK(t[0].to == 1440);
  CHECK(t[1].days == 0x7f);
  CHECK(t[1].from == 0);
  CHECK(t[1].to == 6 * 60 + 15);

  check_error(rule(R"({"time": "9-5"})"), "/rules/0/when/time",
              R"(expected a time window {"days", "from", "to"} or a non-empty array of them, got "9-5")");
  check_error(rule(R"({"time": []})"), "/rules/0/when/time",
              R"(expected a time window {"days", "from", "to"} or a non-empty array of them, got [])");
  check_error(rule(R"({"time": [{"from": "09:00"}, 5]})"), "/rules/0/when/time/1", "expected an object, got 5");
  check_error(rule(R"({"time": {"days": ["mon", "monday"]}})"), "/rules/0/when/time/days/1",
              R"(expected a day "mon", "tue", "wed", "thu", "fri", "sat" or "sun", got "monday")");
  check_error(rule(R"({"time": {"days": []}})"), "/rules/0/when/time/days",
              R"(expected a non-empty array of days ("mon" .. "sun"), got [])");
  check_error(rule(R"({"time": {"days": "mon"}})"), "/rules/0/when/time/days",
              R"(expected a non-empty array of days ("mon" .. "sun"), got "mon")");
  for (const char* bad : {"24:00", "9:00", "09:60", "0900", "09:00 ", "-1:00"}) {
    CAPTURE(bad);
    check_error(rule(std::string(R"({"time": {"from": ")") + bad + "\"}}"), "/rules/0/when/time/from",
                std::string(R"(expected a time "HH:MM" from "00:00" to "23:59", got ")") + bad + "\"");
  }
  check_error(rule(R"({"time": {"to": "24:01"}})"), "/rules/0/when/time/to",
              R"(expected a time "HH:MM" from "00:00" to "24:00", got "24:01")");
  check_error(rule(R"({"time": {"from": "09:00", "to": "09:00"}})"), "/rules/0/when/time/to",
              R"(the window from "09:00" to "09:00" is empty; use "00:00" to "24:00" for whole days)");
  check_error(rule(R"({"time": {"to": "00:00"}})"), "/rules/0/when/time/to",
              R"(the window from "00:00" to "00:00" is empty; use "00:00" to "24:00" for whole days)");
  check_error(rule(R"({"time": {"form": "09:00"}})"), "/rules/0/when/time/form",
              R"(unknown key "form", did you mean "from"?)");
}

TEST_CASE("errors in the new sections come out in document order") {
  auto errors = errors_of(R"({
    "listeners": [{"name": "a", "listen": ["127.0.0.1:1"], "auth": "required", "refuse": "x"}],
    "rules": [
      {"id": "r1", "when": {"list": "nope", "host": "("}, "action": "deny"},
      {"id": "r1", "when": {"port": 0}, "action": "egress"}
    ],
    "lists": {"ads": {"file": "a", "match": "x"}},
    "default_action": "maybe"
  })");
  std::vector<std::string> pointers;
  for (const auto& e : errors) pointers.push_back(e.pointer);
  const std::vector<std::string> expected = {
      "/listeners/0/auth", "/listeners/0/refuse", "/rules/0/when/list", "/rules/0/when/host",
      "/rules/1/id",       "/rules/1/when/port",  "/rules/1",           "/lists/ads/match",
      "/default_action",
  };
  CHECK(pointers == expected);
}

TEST_CASE("parse_config leaves base_dir empty and load_config_file sets it to the file's directory") {
  CHECK(valid(kMinimal).base_dir.empty());
  TempDir dir;
  dir.write("sub/p.json", std::string(kMinimal));
  auto loaded = portier::config::load_config_file(dir.path + "/sub/p.json");
  REQUIRE(loaded.config.has_value());
  CHECK(loaded.config->base_dir == dir.path + "/sub");
}

TEST_CASE("compile puts forward.connect_ports first as the built-in rule") {
  auto snap = compiled(with(R"("forward": {"connect_ports": [443, "8000-8100"]},
                              "rules": [{"id": "all", "when": {}, "action": "allow"}])"));
  const auto& rules = snap->policy.rules;
  REQUIRE(rules.size() == 2);
  CHECK(rules[0].id == "connect_ports");
  CHECK(rules[0].action == Action::deny);
  CHECK(rules[0].when.methods == std::vector<std::string>{"CONNECT"});
  REQUIRE(rules[0].unless.has_value());
  REQUIRE(rules[0].unless->ports.size() == 2);
  CHECK(rules[0].unless->ports[1].first == 8000);
  CHECK(rules[0].reason == "CONNECT is only allowed to ports 443, 8000-8100");
  CHECK(rules[1].id == "all");

  // It wins over a later allow-everything rule.
  auto d = decide(connect_to("example.com", 22), snap->policy);
  REQUIRE(std::holds_alternative<Deny>(d));
  CHECK(std::get<Deny>(d).rule == "connect_ports");
  CHECK(std::get<Deny>(d).reason == "CONNECT is only allowed to ports 443, 8000-8100");
  CHECK(std::holds_alternative<Tunnel>(decide(connect_to("example.com", 8080), snap->policy)));
  CHECK(std::get<Tunnel>(decide(connect_to("example.com", 443), snap->policy)).rule == "all");
}

TEST_CASE("without rules the built-in connect_ports rule is the only rule") {
  auto snap = compiled(kMinimal);
  const auto& rules = snap->policy.rules;
  REQUIRE(rules.size() == 1);
  const auto expected = portier::policy::default_rules();
  REQUIRE(expected.size() == 1);
  CHECK(rules[0].id == expected[0].id);
  CHECK(rules[0].reason == "CONNECT is only allowed to port 443");
  CHECK(rules[0].when.methods == expected[0].when.methods);
  REQUIRE(rules[0].unless.has_value());
  REQUIRE(rules[0].unless->ports.size() == 1);
  CHECK(rules[0].unless->ports[0].first == 443);
  CHECK(rules[0].unless->ports[0].last == 443);
  CHECK(snap->policy.default_action == Action::allow);
  CHECK(snap->policy.realm == "portier");
  CHECK(snap->policy.sni_must_match);
  REQUIRE(snap->policy.listeners.size() == 1);
  CHECK(snap->policy.listeners[0].name == "listener-0");
  CHECK(snap->users == nullptr);
  CHECK(snap->user_groups.empty());
  CHECK(snap->block_page == portier::policy::default_block_page());
  CHECK(snap->block_page.find("{{host}}") != std::string::npos);

  CHECK(std::holds_alternative<Tunnel>(decide(connect_to("example.com", 443), snap->policy)));
  CHECK(std::holds_alternative<Deny>(decide(connect_to("example.com", 80), snap->policy)));
  CHECK(std::holds_alternative<Forward>(decide(get_url("http://example.com/"), snap->policy)));

  // An empty connect_ports list refuses every CONNECT.
  auto none = compiled(with(R"("forward": {"connect_ports": []})"));
  REQUIRE(none->policy.rules.size() == 1);
  CHECK_FALSE(none->policy.rules[0].unless.has_value());
  auto d = decide(connect_to("example.com", 443), none->policy);
  REQUIRE(std::holds_alternative<Deny>(d));
  CHECK(std::get<Deny>(d).reason == "CONNECT is not allowed by this proxy");
}

TEST_CASE("compile carries listeners, SSRF allow list and policy settings into the snapshot") {
  auto snap = compiled(R"({"listeners": [
      {"name": "a", "listen": ["127.0.0.1:1"], "allow_clients": ["10.0.0.0/8"], "trusted": ["10.1.0.0/16"],
       "refuse": "close"}],
    "ssrf": {"allow": ["127.0.0.0/8", "fd00::/8"]},
    "auth": {"realm": "Corp"}, "default_action": "deny", "sni": {"require_match": false},
    "rules": [{"id": "ok", "when": {"host": "^Allowed\\.example$"}, "action": "allow"}]})");
  CHECK(snap->ssrf_allow.ranges().size() == 2);
  CHECK(snap->ssrf_allow.contains(*portier::IpAddress::parse("fd12::1")));
  CHECK_FALSE(snap->ssrf_allow.contains(*portier::IpAddress::parse("10.0.0.1")));
  CHECK(snap->policy.realm == "Corp");
  CHECK(snap->policy.default_action == Action::deny);
  CHECK_FALSE(snap->policy.sni_must_match);
  REQUIRE(snap->policy.listeners.size() == 1);
  const auto& l = snap->policy.listeners[0];
  CHECK(l.name == "a");
  CHECK(l.refuse == RefuseMode::close);
  CHECK(l.allow_clients.size() == 1);
  CHECK(l.trusted.size() == 1);
  CHECK(snap->config.listeners[0].name == "a");

  // Host patterns ignore case; the default action denies the rest.
  auto f = connect_to("allowed.example", 443);
  f.listener = "a";
  f.client = *portier::IpAddress::parse("10.2.3.4");
  CHECK(std::get<Tunnel>(decide(f, snap->policy)).rule == "ok");
  f.host = "other.example";
  CHECK(std::get<Deny>(decide(f, snap->policy)).rule == "default");
  f.client = *portier::IpAddress::parse("192.0.2.1");
  CHECK(std::get<Deny>(decide(f, snap->policy)).close);
}

TEST_CASE("compile loads the users file and lists, and decide denies with the list entry") {
  TempDir dir;
  dir.write("users.htpasswd", "# demo\nalice:" + sha512_crypt("alice-pw") + "\nbob:" + sha512_crypt("bob-pw") + "\n");
  dir.write("lists/ads.txt", "# ads\nads.example\n0.0.0.0 tracker.example\n||banner.example^\n");
  dir.write("lists/trackers.txt", "# trackers\n/pixel\\.gif\n");
  dir.write("block.html", "<p>{{reason}}</p>");
  dir.write("portier.json", R"({
    "listeners": [{"name": "office", "listen": ["127.0.0.1:3128"], "auth": "required"}],
    "auth": {"users_file": "users.htpasswd", "groups": {"staff": ["alice", "bob"], "admins": ["alice"]}},
    "lists": {"ads": {"file": "lists/ads.txt"}, "trackers": {"file": "lists/trackers.txt", "match": "regex"}},
    "rules": [
      {"id": "no-ads", "when": {"list": "ads"}, "action": "deny", "reason": "advertising", "category": "ads"},
      {"id": "no-trackers", "when": {"list": "trackers"}, "action": "deny", "category": "tracking"},
      {"id": "bob-out", "when": {"user": "bob", "host": "^blocked\\.example$"}, "action": "deny"}
    ],
    "block_page": {"template": "block.html"}
  })");
  auto result = portier::config::load_and_compile(dir.path + "/portier.json");
  for (const auto& e : result.errors) FAIL_CHECK(format_error(e));
  REQUIRE(result.snapshot != nullptr);
  const auto& snap = *result.snapshot;

  REQUIRE(snap.users != nullptr);
  CHECK(snap.users->size() == 2);
  CHECK(snap.users->check("alice", "alice-pw") == portier::policy::CheckResult::ok);
  CHECK(snap.users->check("alice", "bob-pw") == portier::policy::CheckResult::wrong_password);
  CHECK(snap.user_groups.at("alice") == std::vector<std::string>{"staff", "admins"});
  CHECK(snap.user_groups.at("bob") == std::vector<std::string>{"staff"});
  CHECK(snap.block_page == "<p>{{reason}}</p>");
  REQUIRE(snap.policy.rules.size() == 4);
  REQUIRE(snap.policy.rules[1].when.lists.size() == 1);
  CHECK(snap.policy.rules[1].when.lists[0]->matches_hosts());
  CHECK_FALSE(snap.policy.rules[2].when.lists[0]->matches_hosts());

  const std::vector<std::string> alice_groups = snap.user_groups.at("alice");
  auto as_alice = [&](RequestFacts f) {
    f.listener = "office";
    f.credentials_present = true;
    f.user = "alice";
    f.groups = &alice_groups;
    return f;
  };
  const std::string ads = dir.path + "/lists/ads.txt";
  auto d = decide(as_alice(connect_to("x.banner.example", 443)), snap.policy);
  REQUIRE(std::holds_alternative<Deny>(d));
  CHECK(std::get<Deny>(d).rule == "no-ads");
  CHECK(std::get<Deny>(d).reason == "advertising");
  CHECK(std::get<Deny>(d).category == "ads");
  CHECK(std::get<Deny>(d).entry == ads + ":4");
  CHECK(std::get<Deny>(decide(as_alice(get_url("http://tracker.example/a")), snap.policy)).entry == ads + ":3");
  CHECK(std::get<Deny>(decide(as_alice(get_url("http://ads.example/")), snap.policy)).entry == ads + ":2");

  auto t = decide(as_alice(get_url("http://news.example/img/pixel.gif?id=1")), snap.policy);
  REQUIRE(std::holds_alternative<Deny>(t));
  CHECK(std::get<Deny>(t).rule == "no-trackers");
  CHECK(std::get<Deny>(t).entry == dir.path + "/lists/trackers.txt:2");

  CHECK(std::holds_alternative<Forward>(decide(as_alice(get_url("http://news.example/")), snap.policy)));
  CHECK(std::holds_alternative<Tunnel>(decide(as_alice(connect_to("blocked.example", 443)), snap.policy)));
  auto bob = as_alice(connect_to("blocked.example", 443));
  bob.user = "bob";
  CHECK(std::get<Deny>(decide(bob, snap.policy)).rule == "bob-out");
  // No credentials on a listener that requires them: a challenge.
  auto anon = connect_to("news.example", 443);
  anon.listener = "office";
  CHECK(std::holds_alternative<Challenge>(decide(anon, snap.policy)));
}

TEST_CASE("list and users file errors are reported with file:line at the pointer of the file") {
  TempDir dir;
  dir.write("users", "alice:" + sha512_crypt("pw") + "\ncarol:$1$abcdefgh$0123456789abcdefghijkl\n");
  dir.write("ads.txt", "ads.example\n\n@@||good.example^\n");
  dir.write("re.txt", "ok\n(ads|\n");
  auto result = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
    "auth": {"users_file": "users", "groups": {"staff": ["nobody"]}},
    "lists": {"ads": {"file": "ads.txt"}, "trackers": {"file": "re.txt", "match": "regex"},
              "gone": {"file": "missing.txt"}},
    "rules": [{"id": "r", "when": {"user": "nobody", "list": ["ads", "gone"]}, "action": "deny"}]})");
  CHECK(result.snapshot == nullptr);
  std::vector<std::string> pointers;
  for (const auto& e : result.errors) pointers.push_back(e.pointer);
  // Users of a users file that failed to load are not checked again.
  const std::vector<std::string> expected = {"/auth/users_file", "/lists/ads/file", "/lists/trackers/file",
                                             "/lists/gone/file"};
  REQUIRE(pointers == expected);
  CHECK(result.errors[0].message.rfind(dir.path + "/users:2: ", 0) == 0);
  CHECK(result.errors[1].message.rfind(dir.path + "/ads.txt:3: ", 0) == 0);
  CHECK(result.errors[2].message == dir.path + R"(/re.txt:2: RE2 rejected "(ads|": missing ): (ads|)");
  CHECK(result.errors[3].message.rfind(dir.path + "/missing.txt: ", 0) == 0);
  CHECK(result.errors[3].message.find("No such file or directory") != std::string::npos);
  for (const auto& e : result.errors) CHECK(e.message.find("0123456789abcdefghijkl") == std::string::npos);
}

TEST_CASE("users named in groups and rules must be in the users file") {
  TempDir dir;
  dir.write("users", "alice:" + sha512_crypt("pw") + "\nbob:" + sha512_crypt("pw") + "\n");
  auto result = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
    "auth": {"users_file": "users", "groups": {"staff": ["alice", "carol"], "ops": ["bob"]}},
    "rules": [{"id": "a", "when": {"user": ["bob", "dave"]}, "unless": {"user": "erin"}, "action": "deny"}]})");
  CHECK(result.snapshot == nullptr);
  REQUIRE(result.errors.size() == 3);
  CHECK(result.errors[0].pointer == "/auth/groups/staff/1");
  CHECK(result.errors[0].message == "unknown user \"carol\": not in the users file " + dir.path + "/users");
  CHECK(result.errors[1].pointer == "/rules/0/when/user");
  CHECK(result.errors[1].message == "unknown user \"dave\": not in the users file " + dir.path + "/users");
  CHECK(result.errors[2].pointer == "/rules/0/unless/user");

  // Without a users file no user can ever be verified.
  auto none = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
    "rules": [{"id": "a", "when": {"user": "bob"}, "action": "deny"}]})");
  REQUIRE(none.errors.size() == 1);
  CHECK(none.errors[0].pointer == "/rules/0/when/user");
  CHECK(none.errors[0].message == R"(unknown user "bob": there is no users file (/auth/users_file))");
}

TEST_CASE("an unreadable users file or block page template is an error at its pointer") {
  TempDir dir;
  auto result = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
    "auth": {"users_file": "nope.htpasswd"}, "block_page": {"template": "nope.html"}})");
  REQUIRE(result.errors.size() == 2);
  CHECK(result.errors[0].pointer == "/auth/users_file");
  CHECK(result.errors[0].message.rfind(dir.path + "/nope.htpasswd", 0) == 0);
  CHECK(result.errors[1].pointer == "/block_page/template");
  CHECK(result.errors[1].message ==
        "cannot read block page template \"" + dir.path + "/nope.html\": No such file or directory");
}

TEST_CASE("paths are resolved against the config file's directory") {
  TempDir dir;
  dir.write("etc/users", "alice:" + sha512_crypt("pw") + "\n");
  dir.write("lists/ads.txt", "ads.example\n");
  dir.write("etc/conf/portier.json", R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
    "auth": {"users_file": "../users"}, "lists": {"ads": {"file": ")" + dir.path + R"(/lists/ads.txt"}},
    "rules": [{"id": "ads", "when": {"list": "ads"}, "action": "deny"}]})");
  auto result = portier::config::load_and_compile(dir.path + "/etc/conf/portier.json");
  for (const auto& e : result.errors) FAIL_CHECK(format_error(e));
  REQUIRE(result.snapshot != nullptr);
  CHECK(result.snapshot->users->contains("alice"));
  CHECK(std::get<Deny>(decide(connect_to("ads.example", 443), result.snapshot->policy)).entry ==
        dir.path + "/lists/ads.txt:1");

  auto bad = portier::config::load_and_compile(dir.path + "/missing.json");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].pointer == "");
  CHECK(bad.snapshot == nullptr);
}

TEST_CASE("the example configs in rules/ compile") {
  const char* root = std::getenv("PORTIER_SOURCE_ROOT");
  if (root == nullptr || *root == '\0') {
    MESSAGE("PORTIER_SOURCE_ROOT is not set: skipping the rules/ examples");
    return;
  }
  for (std::string file : {"rules/portier.json", "rules/examples/lan-proxy.json", "rules/examples/office.json",
                           "rules/examples/reverse.json"}) {
    CAPTURE(file);
    auto result = portier::config::load_and_compile(std::string(root) + "/" + file);
    for (const auto& e : result.errors) FAIL_CHECK(format_error(e));
    CHECK(result.snapshot != nullptr);
  }
}

}  // TEST_SUITE

TEST_CASE("egress: regions, exits, chains, defaults and the user name grammar") {
  Config c = valid(R"({"listeners": [{"listen": ["127.0.0.1:3128"]}],
    "auth": {"groups": {"staff": ["alice"]}},
    "egress": {
      "default": "fi",
      "regions": {
        "fi": {"exits": ["http://u:p%40ss@127.0.0.1:3129",
                         ["http://127.0.0.1:3130", "socks5://127.0.0.1:1080"],
                         {"name": "fi-local", "via": "direct", "bind": "127.0.0.2", "weight": 3},
                         {"name": "fi-connect", "via": "http://127.0.0.1:3131", "http_forward": "connect", "weight": 0}],
               "balance": "least_conn", "on_exit_down": "strict", "fallback": ["de", "direct"],
               "users": ["alice"], "groups": "staff",
               "probe": {"interval_ms": 1000, "timeout_ms": 500, "rise": 1, "fall": 2, "target": "example.com:443"}},
        "de": {"exits": ["direct"]}
      },
      "users": {"alice": "de"},
      "groups": {"staff": "fi"},
      "username": {"separator": "_", "keys": {"region": "country", "session": "sid", "sesstime": "ttl"}, "groups": ["staff"]},
      "sessions": {"default_minutes": 5, "max_minutes": 60, "max_entries": 1000},
      "health": {"fail_after": 2, "down_ms": 1500}
    }})");
  const auto& e = c.egress;
  CHECK(e.default_region == "fi");
  REQUIRE(e.regions.size() == 2);
  const auto* fi = e.region("fi");
  REQUIRE(fi != nullptr);
  REQUIRE(fi->exits.size() == 4);
  CHECK(fi->exits[0].name == "fi-1");
  REQUIRE(fi->exits[0].hops.size() == 1);
  CHECK(fi->exits[0].hops[0].password == "p@ss");
  CHECK(fi->exits[1].name == "fi-2");
  CHECK(fi->exits[1].hops.size() == 2);
  CHECK(fi->exits[1].hops[1].scheme == portier::http::ProxyScheme::socks5);
  CHECK(fi->exits[2].name == "fi-local");
  CHECK(fi->exits[2].hops.empty());
  REQUIRE(fi->exits[2].bind.has_value());
  CHECK(fi->exits[2].bind->to_string() == "127.0.0.2");
  CHECK(fi->exits[2].weight == 3);
  CHECK(fi->exits[3].connect_all);
  CHECK(fi->exits[3].weight == 0);
  CHECK(fi->balance == portier::config::Balance::least_conn);
  CHECK(fi->on_exit_down == portier::config::OnExitDown::strict);
  CHECK(fi->fallback == std::vector<std::string>{"de", "direct"});
  CHECK(fi->audience.users == std::vector<std::string>{"alice"});
  CHECK(fi->audience.groups == std::vector<std::string>{"staff"});
  CHECK(fi->probe.enabled);
  CHECK(fi->probe.rise == 1);
  REQUIRE(fi->probe.target.has_value());
  CHECK(fi->probe.target->port == 443);
  CHECK(e.user_region == std::vector<std::pair<std::string, std::string>>{{"alice", "de"}});
  CHECK(e.group_region == std::vector<std::pair<std::string, std::string>>{{"staff", "fi"}});
  CHECK(e.username.separator == "_");
  CHECK(e.username.region_key == "country");
  CHECK(e.username_audience.groups == std::vector<std::string>{"staff"});
  CHECK(e.session_default_minutes == 5);
  CHECK(e.session_max_minutes == 60);
  CHECK(e.max_sessions == 1000);
  CHECK(e.fail_after == 2);
  CHECK(e.down_for == std::chrono::milliseconds(1500));
}

TEST_CASE("egress: every mistake is reported with its pointer, and passwords are never echoed") {
  check_error(with(R"("egress": {"default": "mars"})"), "/egress/default", R"(unknown region "mars"; the regions are "direct")");
  check_error(with(R"("egress": {"regions": {"direct": {"exits": ["direct"]}}})"), "/egress/regions/direct",
              R"("direct" is built in (no parent proxy); give this region another name)");
  check_error(with(R"("egress": {"regions": {"fi": {}}})"), "/egress/regions/fi", R"(missing required key "exits")");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": []}}})"), "/egress/regions/fi/exits",
              R"(expected a non-empty array of exits ("direct", a proxy URL, an array of URLs for a chain, or an object), got [])");
  auto errors = errors_of(with(R"("egress": {"regions": {"fi": {"exits": ["ftp://u:topsecret@h:1"]}}})"));
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/egress/regions/fi/exits/0");
  CHECK(errors[0].message.find("topsecret") == std::string::npos);
  CHECK(errors[0].message.find("unsupported scheme") != std::string::npos);
  check_error(with(R"("egress": {"regions": {"fi": {"exits": ["http://h"]}}})"), "/egress/regions/fi/exits/0",
              "bad proxy URL: expected host:port after the scheme (the port is required)");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"name": "x", "via": "direct"}]},
                                             "de": {"exits": [{"name": "x", "via": "direct"}]}}})"),
              "/egress/regions/de/exits/0", R"(duplicate exit name "x" (also /egress/regions/fi/exits/0))");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": ["direct"], "fallback": ["fi"]}}})"),
              "/egress/regions/fi/fallback/0", "a region cannot fall back to itself");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": ["direct"], "fallback": "xx"}}})"),
              "/egress/regions/fi/fallback", R"(unknown region "xx"; the regions are "direct", "fi")");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": "direct", "bind": "nowhere"}]}}})"),
              "/egress/regions/fi/exits/0/bind", R"(expected the IP address to connect from, got "nowhere")");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": ["direct"], "balance": "random"}}})"),
              "/egress/regions/fi/balance", R"(expected "round_robin", "least_conn" or "weighted_random", got "random")");
  check_error(with(R"("egress": {"groups": {"nobody": "direct"}})"), "/egress/groups/nobody",
              R"(unknown group "nobody"; declare it in /auth/groups)");
  check_error(with(R"("egress": {"username": {"keys": {"region": "x", "session": "x"}}})"), "/egress/username/keys",
              "the three keys must differ");
  check_error(with(R"("egress": {"sessions": {"default_minutes": 90, "max_minutes": 60}})"),
              "/egress/sessions/default_minutes", "default_minutes is above max_minutes (60)");
  check_error(with(R"("rules": [{"id": "a", "when": {}, "action": "egress", "egress": "fi"}])"), "/rules/0/egress",
              R"(unknown region "fi"; the regions are "direct")");
  std::string chain = R"("egress": {"regions": {"fi": {"exits": [[)";
  for (int i = 0; i < 9; ++i) chain += std::string(i ? "," : "") + "\"http://h:" + std::to_string(3000 + i) + "\"";
  chain += "]]}}}";
  check_error(with(chain), "/egress/regions/fi/exits/0", "a chain has at most 8 hops");
}

TEST_CASE("tls: https hops take ca_file, verify and server_name; other hops do not") {
  auto snap = compiled(with(R"("egress": {"regions": {"fi": {"exits": [
      "https://u:p@parent.example:3129",
      {"via": [{"url": "https://10.0.0.5:3129", "verify": false, "server_name": "proxy.example"},
               "socks5://h:1080"]}]}}})"));
  const auto& exits = snap->config.egress.regions.at(0).exits;
  REQUIRE(exits.size() == 2);
  CHECK(exits[0].hops.at(0).scheme == portier::http::ProxyScheme::https);
  CHECK(exits[0].hops.at(0).tls.verify);
  CHECK(exits[0].hops.at(0).tls.context != nullptr);  // compiled: the system store
  CHECK_FALSE(exits[1].hops.at(0).tls.verify);
  CHECK(exits[1].hops.at(0).tls.server_name == "proxy.example");
  CHECK(exits[1].hops.at(0).tls.context != nullptr);
  CHECK(exits[1].hops.at(1).tls.context == nullptr);  // socks5: no TLS

  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": {"url": "http://h:1", "verify": false}}]}}})"),
              "/egress/regions/fi/exits/0/via/verify", "only https:// parents have a certificate to verify");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": [{"url": "socks5://h:1", "ca_file": "a.pem"}]}]}}})"),
              "/egress/regions/fi/exits/0/via/0/ca_file", "only https:// parents have a certificate to verify");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": {"ca_file": "a.pem"}}]}}})"),
              "/egress/regions/fi/exits/0/via", R"(missing required key "url")");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": {"url": "https://h:1", "server_name": "a b"}}]}}})"),
              "/egress/regions/fi/exits/0/via/server_name", R"(expected a host name, got "a b")");
  check_error(with(R"("egress": {"regions": {"fi": {"exits": [{"via": {"url": "https://h:1", "tls": 1}}]}}})"),
              "/egress/regions/fi/exits/0/via/tls", R"(unknown key "tls")");
}

TEST_CASE("tls: a listener takes one certificate or a list of them, and cipher lists") {
  auto single = valid(R"({"listeners": [{"listen": ["127.0.0.1:1"],
      "tls": {"cert_file": "proxy.crt", "key_file": "proxy.key"}}]})");
  REQUIRE(single.listeners.at(0).tls.has_value());
  const auto& one = *single.listeners[0].tls;
  REQUIRE(one.certificates.size() == 1);
  CHECK(one.certificates[0].cert_file == "proxy.crt");
  CHECK(one.certificates[0].key_file == "proxy.key");
  CHECK(one.certificates[0].pointer == "/listeners/0/tls");  // errors keep the single form's pointer
  CHECK(one.pointer == "/listeners/0/tls");
  CHECK(one.ciphers.empty());
  CHECK(one.ciphersuites.empty());

  auto list = valid(R"({"listeners": [{"listen": ["127.0.0.1:1"], "tls": {
      "certificates": [{"cert_file": "a.crt", "key_file": "a.key"}, {"key_file": "b.key", "cert_file": "b.crt"}],
      "ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20", "ciphersuites": "TLS_AES_256_GCM_SHA384"}}]})");
  const auto& two = *list.listeners.at(0).tls;
  REQUIRE(two.certificates.size() == 2);
  CHECK(two.certificates[0].cert_file == "a.crt");
  CHECK(two.certificates[0].pointer == "/listeners/0/tls/certificates/0");
  CHECK(two.certificates[1].cert_file == "b.crt");
  CHECK(two.certificates[1].key_file == "b.key");
  CHECK(two.certificates[1].pointer == "/listeners/0/tls/certificates/1");
  CHECK(two.ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20");
  CHECK(two.ciphersuites == "TLS_AES_256_GCM_SHA384");

  auto cipher_only = valid(R"({"listeners": [{"listen": ["127.0.0.1:1"],
      "tls": {"cert_file": "a.crt", "key_file": "a.key", "ciphersuites": "TLS_CHACHA20_POLY1305_SHA256"}}]})");
  CHECK(cipher_only.listeners.at(0).tls->ciphersuites == "TLS_CHACHA20_POLY1305_SHA256");
  CHECK(cipher_only.listeners.at(0).tls->certificates.size() == 1);
}

TEST_CASE("tls: both certificate forms at once, an empty list and malformed cipher lists are refused") {
  auto tls = [](std::string_view body) {
    return R"({"listeners": [{"listen": ["127.0.0.1:1"], "tls": )" + std::string(body) + "}]}";
  };
  check_error(tls(R"({"cert_file": "a.crt", "key_file": "a.key",
                       "certificates": [{"cert_file": "b.crt", "key_file": "b.key"}]})"),
              "/listeners/0/tls", R"(expected either "certificates" or "cert_file" and "key_file", not both)");
  check_error(tls(R"({"certificates": [{"cert_file": "b.crt", "key_file": "b.key"}], "key_file": "a.key"})"),
              "/listeners/0/tls", R"(expected either "certificates" or "cert_file" and "key_file", not both)");
  check_error(tls(R"({"certificates": []})"), "/listeners/0/tls/certificates",
              "expected at least one certificate, got []");
  check_error(tls(R"({"certificates": {"cert_file": "a.crt", "key_file": "a.key"}})"), "/listeners/0/tls/certificates",
              R"(expected an array of {"cert_file", "key_file"} objects, got )"
              R"({"cert_file":"a.crt","key_file":"a.key"})");
  check_error(tls(R"({"certificates": [{"cert_file": "a.crt", "key_file": "a.key"}, {"cert_file": "b.crt"}]})"),
              "/listeners/0/tls/certificates/1", R"(missing required key "key_file")");
  check_error(tls(R"({"certificates": [{"cert_file": "a.crt", "key_file": "a.key", "ca_file": "c.pem"}]})"),
              "/listeners/0/tls/certificates/0/ca_file", R"(unknown key "ca_file")");
  check_error(tls(R"({"certificates": ["a.crt"]})"), "/listeners/0/tls/certificates/0",
              R"(expected an object, got "a.crt")");
  check_error(tls(R"({})"), "/listeners/0/tls",
              R"(missing required key "certificates" (or "cert_file" and "key_file"))");
  check_error(tls(R"({"ciphers": "HIGH"})"), "/listeners/0/tls",
              R"(missing required key "certificates" (or "cert_file" and "key_file"))");
  check_error(tls(R"({"cert_file": "a.crt", "key_file": "a.key", "ciphers": ""})"), "/listeners/0/tls/ciphers",
              R"(expected an OpenSSL cipher list such as "ECDHE+AESGCM:ECDHE+CHACHA20", got "")");
  check_error(tls(R"({"cert_file": "a.crt", "key_file": "a.key", "ciphersuites": 3})"), "/listeners/0/tls/ciphersuites",
              "expected a string, got 3");
  check_error(tls(R"({"cert_file": "a.crt", "key_file": "a.key", "cipher": "HIGH"})"), "/listeners/0/tls/cipher",
              R"(unknown key "cipher", did you mean "ciphers"?)");
}

TEST_CASE("tls: cipher lists OpenSSL does not know are refused at compile time, at their key") {
  TempDir dir;  // the certificate files are missing too: every error is reported
  auto r = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"], "tls": {
      "certificates": [{"cert_file": "a.crt", "key_file": "a.key"}],
      "ciphers": "FOO", "ciphersuites": "AES128-SHA"}}]})");
  REQUIRE(r.errors.size() == 3);
  CHECK(r.snapshot == nullptr);
  CHECK(r.errors[0].pointer == "/listeners/0/tls/ciphers");
  CHECK(r.errors[0].message == R"(no cipher in "FOO" is known to OpenSSL)");
  CHECK(r.errors[1].pointer == "/listeners/0/tls/ciphersuites");
  CHECK(r.errors[1].message == R"(no TLS 1.3 cipher suite in "AES128-SHA" is known to OpenSSL)");
  CHECK(r.errors[2].pointer == "/listeners/0/tls/certificates/0/cert_file");
  CHECK(r.errors[2].message == dir.path + "/a.crt: No such file or directory");
}

TEST_CASE("tls: certificate and CA files are loaded at compile time, errors name the key") {
  TempDir dir;
  auto missing = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"],
      "tls": {"cert_file": "nope.crt", "key_file": "nope.key"}}]})");
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].pointer == "/listeners/0/tls");
  CHECK(missing.errors[0].message.find("cert_file " + dir.path + "/nope.crt") == 0);
  CHECK(missing.snapshot == nullptr);

  dir.write("garbage.pem", "not a certificate\n");
  auto garbage = compile_config(dir, R"({"listeners": [{"listen": ["127.0.0.1:1"]}],
      "egress": {"regions": {"fi": {"exits": [{"via": {"url": "https://h:1", "ca_file": "garbage.pem"}}]}}}})");
  REQUIRE(garbage.errors.size() == 1);
  CHECK(garbage.errors[0].pointer == "/egress/regions/fi/exits/0/via");
  CHECK(garbage.errors[0].message.find("ca_file " + dir.path + "/garbage.pem: ") == 0);

  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "tls": {"cert_file": "a.crt"}}]})", "/listeners/0/tls",
              R"(missing required key "key_file")");
}

TEST_CASE("limits: connections, per-user rate and bandwidth") {
  Config d = valid(std::string(kMinimal));
  CHECK(d.traffic.max_connections == 0);
  CHECK_FALSE(d.traffic.per_user());
  CHECK(d.traffic.log_interval == 60000ms);

  Config c = valid(with(R"("auth": {"users_file": "u", "groups": {"admins": []}},
    "limits": {"max_connections": 1000, "max_connections_per_client": 20, "log_interval_ms": 5000,
               "per_user": {"requests_per_second": 0.5, "bytes_per_second": 65536, "exempt_groups": ["admins"]}})"));
  CHECK(c.traffic.max_connections == 1000);
  CHECK(c.traffic.max_connections_per_client == 20);
  CHECK(c.traffic.requests_per_second == 0.5);
  CHECK(c.traffic.request_burst == 1);  // at least one request
  CHECK(c.traffic.bytes_per_second == 65536);
  CHECK(c.traffic.burst_bytes == 65536);  // one second's worth
  CHECK(c.traffic.exempt_groups == std::vector<std::string>{"admins"});
  CHECK(c.traffic.log_interval == 5000ms);
  CHECK(c.traffic.per_user());

  Config b = valid(with(R"("limits": {"per_user": {"requests_per_second": 5, "burst": 50, "bytes_per_second": 2048, "burst_bytes": 8192}})"));
  CHECK(b.traffic.request_burst == 50);
  CHECK(b.traffic.burst_bytes == 8192);
  CHECK(valid(with(R"("limits": {"per_user": {"requests_per_second": 20}})")).traffic.request_burst == 20);

  check_error(with(R"("limits": {"max_connections": -1})"), "/limits/max_connections",
              "expected an integer in 0..10000000, got -1");
  check_error(with(R"("limits": {"per_user": {"requests_per_second": "10"}})"), "/limits/per_user/requests_per_second",
              R"(expected a number of requests per second in 0..1000000 (0.5 = one every 2 s), got "10")");
  check_error(with(R"("limits": {"per_user": {"bytes_per_second": 100}})"), "/limits/per_user/bytes_per_second",
              "expected an integer in 1024..1099511627776, got 100");
  check_error(with(R"("limits": {"per_user": {"burst": 5}})"), "/limits/per_user/burst", "burst needs requests_per_second");
  check_error(with(R"("limits": {"per_user": {"burst_bytes": 4096}})"), "/limits/per_user/burst_bytes",
              "burst_bytes needs bytes_per_second");
  check_error(with(R"("limits": {"per_user": {"exempt_groups": ["staff"]}})"), "/limits/per_user/exempt_groups/0",
              R"(unknown group "staff"; declare it in /auth/groups)");
  check_error(with(R"("limits": {"per_usr": {}})"), "/limits/per_usr", R"(unknown key "per_usr", did you mean "per_user"?)");
}

TEST_CASE("error_log: the level") {
  CHECK(valid(std::string(kMinimal)).error_log.level == "info");
  CHECK(valid(with(R"("error_log": {"level": "warning"})")).error_log.level == "warning");
  check_error(with(R"("error_log": {"level": "warn"})"), "/error_log/level",
              R"(expected "debug", "info", "warning" or "error", got "warn")");
}

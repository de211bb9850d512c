#include "portier/config/config.hpp"

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using portier::config::Config;
using portier::config::ConfigError;
using portier::config::format_error;
using portier::config::parse_config;

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

TEST_CASE("modes other than forward are not supported yet") {
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "mode": "reverse"}]})", "/listeners/0/mode",
              R"(unsupported mode "reverse": only "forward" is supported)");
  check_error(R"({"listeners": [{"listen": ["127.0.0.1:1"], "mode": 1}]})", "/listeners/0/mode",
              "expected a string, got 1");
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
      {"name": "a", "listen": ["127.0.0.1:3128"], "mode": "reverse"}
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

TEST_CASE("compile carries connect ports and the SSRF allow list into the snapshot") {
  Config c = valid(with(R"("forward": {"connect_ports": [443, "8000-8100"]},
                           "ssrf": {"allow": ["127.0.0.0/8", "fd00::/8"]})"));
  auto snap = portier::config::compile(c);
  REQUIRE(snap != nullptr);
  REQUIRE(snap->policy.connect_ports.size() == 2);
  CHECK(snap->policy.connect_ports[1].first == 8000);
  CHECK(snap->policy.connect_ports[1].last == 8100);
  CHECK(snap->ssrf_allow.ranges().size() == 2);
  CHECK(snap->ssrf_allow.contains(*portier::IpAddress::parse("127.0.0.1")));
  CHECK(snap->ssrf_allow.contains(*portier::IpAddress::parse("fd12::1")));
  CHECK_FALSE(snap->ssrf_allow.contains(*portier::IpAddress::parse("10.0.0.1")));
  CHECK(snap->config.listeners[0].name == "a");
  CHECK(snap->config.forward.connect_ports.size() == 2);

  auto defaults = portier::config::compile(valid(kMinimal));
  REQUIRE(defaults->policy.connect_ports.size() == 1);
  CHECK(defaults->policy.connect_ports[0].first == 443);
  CHECK(defaults->ssrf_allow.empty());
}

}  // TEST_SUITE

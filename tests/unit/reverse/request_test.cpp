#include <doctest/doctest.h>

#include "portier/reverse/request.hpp"

using namespace portier;
using reverse::normalize_path;

TEST_CASE("reverse: normalize_path resolves dot segments so a route cannot be bypassed") {
  struct Case {
    const char* in;
    const char* out;  // nullptr: refused (400)
  };
  const Case cases[] = {
      {"/", "/"},
      {"/api/users", "/api/users"},
      {"/api/", "/api/"},
      {"/api/../admin", "/admin"},
      {"/api/./x", "/api/x"},
      {"/api/x/..", "/api/"},
      {"/api/x/.", "/api/x/"},
      {"/a/b/../../c", "/c"},
      {"/api/%2e%2e/admin", "/admin"},
      {"/api/%2E%2e/admin", "/admin"},
      {"/api/.%2e/admin", "/admin"},
      {"//admin", "/admin"},
      {"/api//x///y", "/api/x/y"},
      {"/%41%62c", "/Abc"},
      {"/a%2fb", "/a%2Fb"},          // an encoded slash stays data, not a separator
      {"/a/..%2fadmin", "/a/..%2Fadmin"},  // so this is one odd segment, not a climb
      {"/x%20y", "/x%20y"},
      {"/%7euser", "/~user"},
      {"/..", nullptr},
      {"/../etc/passwd", nullptr},
      {"/a/../../b", nullptr},
      {"/%2e%2e/x", nullptr},
      {"/bad%zz", nullptr},
      {"/bad%4", nullptr},
      {"/bad%", nullptr},
      {"/nul%00", nullptr},
      {"relative", nullptr},
      {"", nullptr},
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    auto r = normalize_path(c.in);
    if (c.out == nullptr) {
      CHECK_FALSE(r.has_value());
    } else {
      REQUIRE(r.has_value());
      CHECK(*r == c.out);
    }
  }
}

TEST_CASE("reverse: forwarding headers from an untrusted client replace what it sent") {
  http::Headers h;
  h.add("X-Forwarded-For", "1.2.3.4");
  h.add("X-Forwarded-Proto", "https");
  h.add("X-Forwarded-Host", "evil.example");
  h.add("Forwarded", "for=1.2.3.4");
  reverse::apply_forwarded(h, {"127.0.0.1", "http", "app.test:8080", false});
  CHECK(*h.find("X-Forwarded-For") == "127.0.0.1");
  CHECK(*h.find("X-Forwarded-Proto") == "http");
  CHECK(*h.find("X-Forwarded-Host") == "app.test:8080");
  CHECK(*h.find("Forwarded") == "for=127.0.0.1;proto=http;host=\"app.test:8080\"");
  CHECK(h.size() == 4);
}

TEST_CASE("reverse: forwarding headers from a trusted proxy are appended to") {
  http::Headers h;
  h.add("X-Forwarded-For", "1.2.3.4");
  h.add("X-Forwarded-Proto", "https");
  h.add("Forwarded", "for=1.2.3.4;proto=https");
  reverse::apply_forwarded(h, {"10.0.0.1", "http", "app.test", true});
  CHECK(*h.find("X-Forwarded-For") == "1.2.3.4, 10.0.0.1");
  CHECK(*h.find("X-Forwarded-Proto") == "https");      // the first hop's scheme is kept
  CHECK(*h.find("X-Forwarded-Host") == "app.test");    // absent: ours
  CHECK(*h.find("Forwarded") == "for=1.2.3.4;proto=https, for=10.0.0.1;proto=http;host=app.test");
}

TEST_CASE("reverse: Forwarded quotes IPv6 clients") {
  http::Headers h;
  reverse::apply_forwarded(h, {"::1", "https", "", false});
  CHECK(*h.find("X-Forwarded-For") == "::1");
  CHECK(*h.find("Forwarded") == "for=\"[::1]\";proto=https");
  CHECK_FALSE(h.contains("X-Forwarded-Host"));
}

TEST_CASE("reverse: only WebSocket upgrades pass") {
  http::Headers ws;
  ws.add("Connection", "keep-alive, Upgrade");
  ws.add("Upgrade", "websocket");
  REQUIRE(reverse::websocket_upgrade(ws).has_value());
  CHECK(*reverse::websocket_upgrade(ws) == "websocket");

  http::Headers h2c;
  h2c.add("Connection", "Upgrade, HTTP2-Settings");
  h2c.add("Upgrade", "h2c");
  CHECK_FALSE(reverse::websocket_upgrade(h2c).has_value());

  http::Headers no_connection;
  no_connection.add("Upgrade", "websocket");
  CHECK_FALSE(reverse::websocket_upgrade(no_connection).has_value());
}

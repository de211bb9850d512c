#include "portier/http/target.hpp"

#include <string>

#include <doctest/doctest.h>

using portier::errc;
using portier::http::AbsoluteUrl;
using portier::http::Authority;
using portier::http::classify_target;
using portier::http::parse_absolute_url;
using portier::http::parse_authority;
using portier::http::TargetForm;

TEST_SUITE("http.target") {

TEST_CASE("classify_target tells the four request-target forms apart") {
  CHECK(classify_target("GET", "/index.html") == TargetForm::origin);
  CHECK(classify_target("GET", "http://example.com/") == TargetForm::absolute);
  CHECK(classify_target("GET", "HTTPS://example.com") == TargetForm::absolute);
  CHECK(classify_target("GET", "ftp://example.com/") == TargetForm::absolute);
  CHECK(classify_target("CONNECT", "example.com:443") == TargetForm::authority);
  CHECK(classify_target("CONNECT", "[::1]:443") == TargetForm::authority);
  CHECK(classify_target("OPTIONS", "*") == TargetForm::asterisk);
}

TEST_CASE("classify_target rejects what fits no form") {
  CHECK(classify_target("GET", "") == TargetForm::invalid);
  CHECK(classify_target("GET", "example.com:443") == TargetForm::invalid);
  CHECK(classify_target("GET", "example.com/") == TargetForm::invalid);
  CHECK(classify_target("GET", "://x") == TargetForm::invalid);
  CHECK(classify_target("CONNECT", "example.com") == TargetForm::invalid);
  CHECK(classify_target("CONNECT", "http://example.com/") == TargetForm::invalid);
  CHECK(classify_target("CONNECT", "/path") == TargetForm::invalid);
}

TEST_CASE("parse_authority reads host:port and lowercases the host") {
  auto a = parse_authority("Example.COM:443");
  REQUIRE(a);
  CHECK(a->host == "example.com");
  CHECK(a->port == 443);
  CHECK_FALSE(a->host_is_ipv6);
  CHECK(a->to_string() == "example.com:443");

  auto b = parse_authority("my_host-1.internal:65535");
  REQUIRE(b);
  CHECK(b->port == 65535);

  auto v4 = parse_authority("10.0.0.1:8080");
  REQUIRE(v4);
  CHECK(v4->host == "10.0.0.1");
  CHECK(v4->port == 8080);
}

TEST_CASE("parse_authority reads bracketed IPv6 literals") {
  auto a = parse_authority("[2001:DB8::1]:8443");
  REQUIRE(a);
  CHECK(a->host == "2001:db8::1");
  CHECK(a->host_is_ipv6);
  CHECK(a->port == 8443);
  CHECK(a->to_string() == "[2001:db8::1]:8443");
  CHECK(parse_authority("[::1]:1"));
}

TEST_CASE("parse_authority rejects malformed authorities as bad_authority") {
  for (const char* text : {
           "",                    // empty
           "example.com",         // missing port
           "example.com:",        // empty port
           ":443",                // empty host
           "example.com:0",       // port 0
           "example.com:65536",   // port too large
           "example.com:99999999",
           "example.com:44a",     // non-digit port
           "example.com:-1",
           "example.com:+443",
           "example.com: 443",
           "user@example.com:443",   // userinfo
           "user:pw@example.com:443",
           "exa mple.com:443",    // bad characters
           "exa\tmple.com:443",
           "example.com/x:443",
           "ex%41mple.com:443",
           "a..b:443",            // empty label
           ".a:443",
           "::1:443",             // unbracketed v6
           "2001:db8::1:443",
           "[::1]",               // bracketed without port
           "[::1]443",
           "[::1:443",
           "[zz::1]:443",         // not an IPv6 literal
           "[1.2.3.4]:443",       // v4 in brackets
           "[fe80::1%eth0]:443",  // zone id
           "127.1:443",           // numeric host that is not a dotted quad
           "0x7f.0.0.1:443",
           "2130706433:443",
           "1.2.3.256:443",
       }) {
    CAPTURE(text);
    auto a = parse_authority(text);
    REQUIRE_FALSE(a);
    CHECK(a.error().is(errc::bad_authority));
  }
}

TEST_CASE("parse_absolute_url splits scheme, authority, path and query") {
  auto u = parse_absolute_url("http://Example.com:8080/a/b?x=1&y=2#frag");
  REQUIRE(u);
  CHECK(u->scheme == "http");
  CHECK(u->authority.host == "example.com");
  CHECK(u->authority.port == 8080);
  CHECK(u->path == "/a/b");
  CHECK(u->query == "x=1&y=2");
  CHECK(u->has_query);
  CHECK(u->origin_form() == "/a/b?x=1&y=2");
}

TEST_CASE("parse_absolute_url fills defaults: port from the scheme, path /") {
  auto u = parse_absolute_url("HTTP://example.com");
  REQUIRE(u);
  CHECK(u->scheme == "http");
  CHECK(u->authority.port == 80);
  CHECK(u->path == "/");
  CHECK_FALSE(u->has_query);
  CHECK(u->origin_form() == "/");

  auto s = parse_absolute_url("https://example.com/p");
  REQUIRE(s);
  CHECK(s->scheme == "https");
  CHECK(s->authority.port == 443);

  auto q = parse_absolute_url("http://example.com?q");
  REQUIRE(q);
  CHECK(q->path == "/");
  CHECK(q->query == "q");
  CHECK(q->origin_form() == "/?q");

  auto empty_query = parse_absolute_url("http://example.com/p?");
  REQUIRE(empty_query);
  CHECK(empty_query->has_query);
  CHECK(empty_query->origin_form() == "/p?");

  auto frag = parse_absolute_url("http://example.com#top");
  REQUIRE(frag);
  CHECK(frag->origin_form() == "/");

  auto empty_port = parse_absolute_url("http://example.com:/x");
  REQUIRE(empty_port);
  CHECK(empty_port->authority.port == 80);
}

TEST_CASE("parse_absolute_url reads IPv6 hosts") {
  auto u = parse_absolute_url("http://[::1]:8080/x");
  REQUIRE(u);
  CHECK(u->authority.host == "::1");
  CHECK(u->authority.host_is_ipv6);
  CHECK(u->authority.port == 8080);
  auto d = parse_absolute_url("http://[::1]/x");
  REQUIRE(d);
  CHECK(d->authority.port == 80);
}

TEST_CASE("parse_absolute_url rejects userinfo, other schemes and bad hosts") {
  for (const char* text : {
           "http://user@example.com/",
           "http://user:pw@example.com/",
           "ftp://example.com/",
           "ws://example.com/",
           "example.com/",
           "/path",
           "http://",
           "http:///path",
           "http://:80/",
           "http://exa mple.com/",
           "http://example.com:0/",
           "http://example.com:70000/",
           "http://example.com:8x/",
           "http://::1/",
           "http://[::1/",
           "http://example.com/a b",
           "http://example.com/\x01",
           "http://example.com/\xc3\xa9",
       }) {
    CAPTURE(text);
    auto u = parse_absolute_url(text);
    REQUIRE_FALSE(u);
    CHECK(u.error().is(errc::bad_request));
  }
}

}  // TEST_SUITE

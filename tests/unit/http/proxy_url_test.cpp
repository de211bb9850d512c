#include <doctest/doctest.h>

#include "portier/http/proxy_url.hpp"

using namespace portier::http;

TEST_SUITE("http.proxy_url") {
  TEST_CASE("schemes, credentials and labels") {
    auto u = parse_proxy_url("http://127.0.0.1:3128");
    REQUIRE(u);
    CHECK(u->scheme == ProxyScheme::http);
    CHECK(u->authority.host == "127.0.0.1");
    CHECK(u->authority.port == 3128);
    CHECK_FALSE(u->has_credentials());
    CHECK(u->label() == "http://127.0.0.1:3128");

    auto s = parse_proxy_url("SOCKS5://bob:s%40cret%3A1@Parent.Example:1080/");
    REQUIRE(s);
    CHECK(s->scheme == ProxyScheme::socks5);
    CHECK(s->user == "bob");
    CHECK(s->password == "s@cret:1");
    CHECK(s->authority.host == "parent.example");
    CHECK(s->label() == "socks5://parent.example:1080");

    auto t = parse_proxy_url("https://u@[::1]:8443");
    REQUIRE(t);
    CHECK(t->scheme == ProxyScheme::https);
    CHECK(t->user == "u");
    CHECK(t->password.empty());
    CHECK(t->label() == "https://[::1]:8443");

    CHECK(parse_proxy_url("socks5h://h:1")->scheme == ProxyScheme::socks5);
    // The last '@' ends the userinfo.
    auto at = parse_proxy_url("http://a:b@c@h:1");
    REQUIRE(at);
    CHECK(at->password == "b@c");
  }

  TEST_CASE("bad URLs are refused without echoing the password") {
    for (const char* text : {"127.0.0.1:3128", "ftp://h:1", "http://h", "http://h:0", "http://h:70000", "http://h:1/path",
                             "http://h:1?q", "http://:pw@h:1", "http://u:p%zz@h:1", "http://u:p%0a@h:1", "http://", "",
                             "http://u:secret-pw@h"}) {
      auto r = parse_proxy_url(text);
      CHECK_MESSAGE(!r, text);
      if (!r) CHECK(r.error().context.find("secret-pw") == std::string::npos);
    }
    std::string long_user(256, 'u');
    CHECK_FALSE(parse_proxy_url("http://" + long_user + ":p@h:1"));
  }
}

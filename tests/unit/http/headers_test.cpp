#include "portier/http/headers.hpp"

#include <doctest/doctest.h>

using portier::http::Headers;
using portier::http::iequals;

TEST_SUITE("http.headers") {

TEST_CASE("iequals compares ASCII case-insensitively and needs equal lengths") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("Host", "Hos"));
  CHECK_FALSE(iequals("Host", "Hosz"));
}

TEST_CASE("fields keep their order and duplicates, and find returns the first") {
  Headers h;
  h.add("Set-Cookie", "a=1");
  h.add("X-Other", "x");
  h.add("set-cookie", "b=2");
  REQUIRE(h.size() == 3);
  CHECK(h.fields()[0].value == "a=1");
  CHECK(h.fields()[2].name == "set-cookie");
  REQUIRE(h.find("SET-COOKIE") != nullptr);
  CHECK(*h.find("SET-COOKIE") == "a=1");
  CHECK(h.find("Missing") == nullptr);
  CHECK(h.contains("x-other"));
  CHECK_FALSE(h.contains("x-oth"));
}

TEST_CASE("set replaces every field of that name with one, in place of the first") {
  Headers h;
  h.add("A", "1");
  h.add("Host", "old");
  h.add("B", "2");
  h.add("host", "older");
  h.set("Host", "new");
  REQUIRE(h.size() == 3);
  CHECK(h.fields()[1].name == "Host");
  CHECK(h.fields()[1].value == "new");
  CHECK(h.fields()[2].name == "B");

  SUBCASE("set appends when the field is absent") {
    h.set("Via", "1.1 p");
    REQUIRE(h.size() == 4);
    CHECK(h.fields().back().name == "Via");
  }
}

TEST_CASE("remove drops every field of that name and counts them") {
  Headers h;
  h.add("A", "1");
  h.add("a", "2");
  h.add("B", "3");
  CHECK(h.remove("A") == 2);
  CHECK(h.size() == 1);
  CHECK(h.remove("A") == 0);
  h.clear();
  CHECK(h.empty());
}

TEST_CASE("has_token finds a token in comma lists across fields") {
  Headers h;
  h.add("Connection", "keep-alive , Upgrade");
  h.add("Connection", "X-Foo");
  CHECK(h.has_token("connection", "upgrade"));
  CHECK(h.has_token("Connection", "KEEP-ALIVE"));
  CHECK(h.has_token("Connection", "x-foo"));
  CHECK_FALSE(h.has_token("Connection", "close"));
  CHECK_FALSE(h.has_token("Connection", "X-Fo"));
  CHECK_FALSE(h.has_token("Upgrade", "x-foo"));
  Headers empty_list;
  empty_list.add("Connection", " , ");
  CHECK_FALSE(empty_list.has_token("Connection", ""));
}

}  // TEST_SUITE

#include "portier/http/headers.hpp"

#include <doctest/doctest.h>

#include "header_text.hpp"

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
  CHECK(h[0].value == "a=1");
  CHECK(h[2].name == "set-cookie");
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
  CHECK(h[1].name == "Host");
  CHECK(h[1].value == "new");
  CHECK(h[2].name == "B");

  SUBCASE("set appends when the field is absent") {
    h.set("Via", "1.1 p");
    REQUIRE(h.size() == 4);
    CHECK(h.back().name == "Via");
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

using portier::http::test::header_text;
using portier::http::test::make_headers;

TEST_CASE("remove_if keeps the other fields in order") {
  Headers h = make_headers({{"A", "1"}, {"x1", "-"}, {"B", "2"}, {"x2", "-"}, {"C", "3"}, {"x3", "-"}});
  CHECK(h.remove_if([](const portier::http::Header& f) { return f.name[0] == 'x'; }) == 3);
  CHECK(header_text(h) == "A: 1\nB: 2\nC: 3\n");
}

TEST_CASE("add_first puts a field before the others") {
  Headers h = make_headers({{"A", "1"}, {"B", "2"}});
  h.add_first("Host", "h");
  CHECK(header_text(h) == "Host: h\nA: 1\nB: 2\n");
}

TEST_CASE("slots are reused after clear and remove, without stale contents or allocation") {
  Headers h;
  const std::string long_value(100, 'v');
  h.add("Long-Field-Name-Beyond-SSO", long_value);
  h.add("B", long_value);
  const char* first_name = h[0].name.data();
  const char* second_value = h[1].value.data();
  h.clear();
  CHECK(h.empty());
  CHECK(h.begin() == h.end());
  h.add("C", "3");
  CHECK(header_text(h) == "C: 3\n");
  CHECK(h[0].name.data() == first_name);  // the slot's memory came back, not a new block
  portier::http::Header& e = h.add_empty();
  CHECK(e.name.empty());
  CHECK(e.value.empty());
  CHECK(e.value.data() == second_value);
  e.name = "D";
  CHECK(h.remove("C") == 1);
  CHECK(header_text(h) == "D: \n");
}

TEST_CASE("a copy has the fields only, and assignment replaces them") {
  Headers h = make_headers({{"A", "1"}, {"B", "2"}, {"C", "3"}});
  h.remove("B");
  Headers copy(h);
  CHECK(header_text(copy) == "A: 1\nC: 3\n");
  Headers other = make_headers({{"Z", "9"}});
  other = h;
  CHECK(header_text(other) == "A: 1\nC: 3\n");
  Headers moved(std::move(other));
  CHECK(header_text(moved) == "A: 1\nC: 3\n");
  CHECK(other.empty());  // NOLINT(bugprone-use-after-move): a moved-from Headers is empty, not broken
  other.add("N", "1");
  CHECK(header_text(other) == "N: 1\n");
  Headers assigned;
  assigned = std::move(moved);
  CHECK(header_text(assigned) == "A: 1\nC: 3\n");
  CHECK(moved.empty());  // NOLINT(bugprone-use-after-move)
}

}  // TEST_SUITE

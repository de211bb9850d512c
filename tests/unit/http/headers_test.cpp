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

namespace {
std::string joined(const Headers& h) {
  std::string out;
  for (const auto& f : h) out += f.name + "=" + f.value + ";";
  return out;
}
}  // namespace

TEST_CASE("remove_if keeps the other fields in order") {
  Headers h;
  for (const char* n : {"A", "x1", "B", "x2", "C", "x3"}) h.add(n, std::string(n) + "v");
  CHECK(h.remove_if([](const portier::http::Header& f) { return f.name[0] == 'x'; }) == 3);
  CHECK(joined(h) == "A=Av;B=Bv;C=Cv;");
}

TEST_CASE("add_first puts a field before the others") {
  Headers h;
  h.add("A", "1");
  h.add("B", "2");
  h.add_first("Host", "h");
  CHECK(joined(h) == "Host=h;A=1;B=2;");
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
  CHECK(joined(h) == "C=3;");
  CHECK(h[0].name.data() == first_name);  // the slot's memory came back, not a new block
  portier::http::Header& e = h.add_empty();
  CHECK(e.name.empty());
  CHECK(e.value.empty());
  CHECK(e.value.data() == second_value);
  e.name = "D";
  CHECK(h.remove("C") == 1);
  CHECK(joined(h) == "D=;");
}

TEST_CASE("a copy has the fields only, and assignment replaces them") {
  Headers h;
  h.add("A", "1");
  h.add("B", "2");
  h.add("C", "3");
  h.remove("B");
  Headers copy(h);
  CHECK(joined(copy) == "A=1;C=3;");
  Headers other;
  other.add("Z", "9");
  other = h;
  CHECK(joined(other) == "A=1;C=3;");
  Headers moved(std::move(other));
  CHECK(joined(moved) == "A=1;C=3;");
}

}  // TEST_SUITE

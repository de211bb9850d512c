#include "portier/reverse/route.hpp"

#include <doctest/doctest.h>
#include <re2/re2.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "portier/core/hash.hpp"

using namespace portier;
using namespace portier::reverse;

namespace {

Route route(std::string id, std::string host, std::string prefix = "/", std::size_t order = 0) {
  Route r;
  r.id = std::move(id);
  r.host = std::move(host);
  r.path_prefix = std::move(prefix);
  r.pool = r.id;
  r.order = order;
  return r;
}

std::shared_ptr<const re2::RE2> regex(const char* pattern) {
  auto re = std::make_shared<const re2::RE2>(pattern);
  REQUIRE(re->ok());
  return re;
}

std::vector<std::string> ids(const RouteTable& t) {
  std::vector<std::string> out;
  for (const auto& r : t.routes()) out.push_back(r.id);
  return out;
}

// The id of the matching route, or "404".
std::string hit(const RouteTable& t, std::string_view host, std::string_view path, std::string_view listener = "site") {
  const Route* r = t.match(listener, portier::reverse::normalize_host(host), path);
  return r ? r->id : "404";
}

// Backends named "b0".."b<n-1>" (the names outlive the states, which borrow them).
struct Pool {
  std::vector<std::string> names;
  std::vector<BackendState> states;
  explicit Pool(std::size_t n) {
    names.reserve(n);
    for (std::size_t i = 0; i < n; ++i) names.push_back("10.0.0." + std::to_string(i) + ":8080");
    for (const auto& name : names) states.push_back(BackendState{1, true, false, 0, name});
  }
  std::optional<std::size_t> pick(Balance m, std::uint64_t counter, std::string_view key = {}) const {
    return pick_backend(m, states, counter, key);
  }
};

std::string key_of(int i) { return "192.0.2." + std::to_string(i % 256) + "/" + std::to_string(i); }

constexpr Balance kAllMethods[] = {Balance::round_robin, Balance::least_conn, Balance::weighted, Balance::hash_client,
                                   Balance::hash_header};

}  // namespace

// ---- routes ---------------------------------------------------------------------------------------

TEST_CASE("reverse: routes sort by host specificity: exact, longer suffix, shorter suffix, any") {
  RouteTable t({route("any", "", "/", 0), route("short", "*.example.com", "/", 1),
                route("long", "*.app.example.com", "/", 2), route("exact", "x.app.example.com", "/", 3)});
  CHECK(ids(t) == std::vector<std::string>{"exact", "long", "short", "any"});
  CHECK(hit(t, "x.app.example.com", "/") == "exact");
  CHECK(hit(t, "y.app.example.com", "/") == "long");
  CHECK(hit(t, "app.example.com", "/") == "short");  // "*.app.example.com" excludes app.example.com itself
  CHECK(hit(t, "example.com", "/") == "any");
  CHECK(hit(t, "other.test", "/") == "any");
}

TEST_CASE("reverse: host specificity beats path length") {
  RouteTable t({route("any-long-path", "", "/api/v1/", 0), route("host-root", "app.example", "/", 1)});
  CHECK(ids(t) == std::vector<std::string>{"host-root", "any-long-path"});
  CHECK(hit(t, "app.example", "/api/v1/x") == "host-root");
  CHECK(hit(t, "other.example", "/api/v1/x") == "any-long-path");
}

TEST_CASE("reverse: same host: the longer path prefix first") {
  RouteTable t({route("root", "app.example", "/", 0), route("api", "app.example", "/api/", 1),
                route("v1", "app.example", "/api/v1/", 2)});
  CHECK(ids(t) == std::vector<std::string>{"v1", "api", "root"});
  CHECK(hit(t, "app.example", "/api/v1/users") == "v1");
  CHECK(hit(t, "app.example", "/api/v2/users") == "api");
  CHECK(hit(t, "app.example", "/index.html") == "root");
}

TEST_CASE("reverse: same host and prefix: a route with a path regex before one without") {
  Route plain = route("plain", "app.example", "/img/", 0);
  Route rx = route("png", "app.example", "/img/", 1);
  rx.path_regex = regex(R"(\.png$)");
  RouteTable t({plain, rx});
  CHECK(ids(t) == std::vector<std::string>{"png", "plain"});
  CHECK(hit(t, "app.example", "/img/a.png") == "png");
  CHECK(hit(t, "app.example", "/img/a.jpg") == "plain");
}

TEST_CASE("reverse: full ties keep config order") {
  // Given out of order: the table sorts by `order`, not by position in the vector.
  RouteTable t({route("third", "app.example", "/", 7), route("first", "app.example", "/", 2),
                route("second", "app.example", "/", 5)});
  CHECK(ids(t) == std::vector<std::string>{"first", "second", "third"});
  CHECK(hit(t, "app.example", "/") == "first");
}

TEST_CASE("reverse: host normalization") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"app.example", "app.example"},
      {"APP.Example", "app.example"},
      {"app.example:8080", "app.example"},
      {"app.example:", "app.example"},  // RFC 3986: an empty port is allowed
      {"app.example.", "app.example"},
      {"App.Example.:443", "app.example"},
      {"  app.example\t", "app.example"},  // surrounding whitespace (OWS) is trimmed
      {"10.0.0.5:80", "10.0.0.5"},
      {"[::1]", "::1"},
      {"[::1]:8080", "::1"},
      {"[2001:DB8::A]:443", "2001:db8::a"},
      {"[::ffff:192.0.2.1]", "::ffff:192.0.2.1"},
      {"under_score.example", "under_score.example"},
      // empty or malformed
      {"", ""},
      {"   ", ""},
      {".", ""},
      {":80", ""},
      {"app.example..", ""},
      {".app.example", ""},
      {"a..example", ""},
      {"app.example:http", ""},
      {"app.example:65536", ""},
      {"app.example:123456", ""},
      {"app.example:80:80", ""},
      {"::1", ""},  // an IPv6 literal must be bracketed
      {"[::1", ""},
      {"[]", ""},
      {"[::1]x", ""},
      {"[::1]:x", ""},
      {"[fe80::1%25eth0]", ""},  // zone ids are not supported
      {"[v1.abc]", ""},
      {"[127.0.0.1]", ""},
      {"*.example.com", ""},
      {"user@app.example", ""},
      {"app.example/path", ""},
      {"app example", ""},
      {"b\xc3\xa4r.example", ""},  // raw UTF-8: a Host carries the punycode form
  };
  for (const auto& c : cases) {
    CAPTURE(c.in);
    CHECK(normalize_host(c.in) == c.out);
  }
  CHECK(normalize_host(std::string(63, 'a') + ".example") == std::string(63, 'a') + ".example");
  CHECK(normalize_host(std::string(64, 'a') + ".example").empty());
  std::string long_name;
  while (long_name.size() < 253) long_name += "abcdefg.";
  long_name.resize(253);
  if (long_name.back() == '.') long_name.back() = 'x';
  CHECK(normalize_host(long_name) == long_name);
  CHECK(normalize_host(long_name + ".") == long_name);
  CHECK(normalize_host(long_name + "x").empty());
}

TEST_CASE("reverse: match normalizes the request host") {
  RouteTable t({route("app", "app.example"), route("v6", "::1")});
  for (const char* h : {"app.example", "APP.EXAMPLE", "app.example:8443", "app.example.", "App.Example.:1"}) {
    CAPTURE(h);
    CHECK(hit(t, h, "/") == "app");
  }
  CHECK(hit(t, "[::1]:8080", "/") == "v6");
  CHECK(hit(t, "app.example.com", "/") == "404");
  CHECK(hit(t, "", "/") == "404");
  CHECK(hit(t, "app..example", "/") == "404");
}

TEST_CASE("reverse: route hosts compare case-insensitively") {
  RouteTable t({route("exact", "App.Example"), route("wild", "*.Example.COM")});
  CHECK(hit(t, "app.example", "/") == "exact");
  CHECK(hit(t, "a.example.com", "/") == "wild");
}

TEST_CASE("reverse: wildcard hosts cover every name under the suffix, not the suffix itself") {
  RouteTable t({route("wild", "*.example.com")});
  CHECK(hit(t, "a.example.com", "/") == "wild");
  CHECK(hit(t, "a.b.example.com", "/") == "wild");
  CHECK(hit(t, "A.B.EXAMPLE.COM:80", "/") == "wild");
  CHECK(hit(t, "example.com", "/") == "404");
  CHECK(hit(t, "badexample.com", "/") == "404");  // the dot belongs to the suffix
  CHECK(hit(t, "example.com.evil", "/") == "404");
  CHECK(hit(t, ".example.com", "/") == "404");  // malformed
}

TEST_CASE("reverse: an any-host route also takes requests with a missing or malformed host") {
  RouteTable t({route("named", "app.example"), route("catch-all", "")});
  CHECK(hit(t, "", "/") == "catch-all");
  CHECK(hit(t, "bad host", "/") == "catch-all");
  CHECK(hit(t, "app.example", "/") == "named");
}

TEST_CASE("reverse: listener filter") {
  Route a = route("a-only", "app.example", "/", 0);
  a.listeners = {"a"};
  Route bc = route("b-or-c", "app.example", "/", 1);
  bc.listeners = {"b", "c"};
  Route all = route("all", "app.example", "/", 2);
  RouteTable t({a, bc, all});
  CHECK(hit(t, "app.example", "/", "a") == "a-only");
  CHECK(hit(t, "app.example", "/", "b") == "b-or-c");
  CHECK(hit(t, "app.example", "/", "c") == "b-or-c");
  CHECK(hit(t, "app.example", "/", "d") == "all");
  CHECK(hit(t, "app.example", "/", "A") == "all");  // listener names are exact

  RouteTable only_a({a});
  CHECK(hit(only_a, "app.example", "/", "b") == "404");
}

TEST_CASE("reverse: path regex is a partial match on the path, and every condition must hold") {
  Route partial = route("partial", "app.example", "/", 0);
  partial.path_regex = regex(R"(/v[0-9]+/)");
  Route anchored = route("anchored", "", "/files/", 1);
  anchored.path_regex = regex(R"(^/files/[a-z]+$)");
  RouteTable t({partial, anchored});
  CHECK(hit(t, "app.example", "/api/v2/users") == "partial");  // anywhere in the path
  CHECK(hit(t, "app.example", "/api/users") == "404");         // regex fails: no fallback on that route
  CHECK(hit(t, "other", "/files/abc") == "anchored");
  CHECK(hit(t, "other", "/files/abc/def") == "404");
  CHECK(hit(t, "other", "/api/v2/users") == "404");  // regex holds but the host does not
}

TEST_CASE("reverse: path_under") {
  CHECK(path_under("/api", "/api"));
  CHECK(path_under("/api/", "/api"));
  CHECK(path_under("/api/x", "/api"));
  CHECK(path_under("/api?x=1", "/api"));  // '?' ends the segment, for a path with its query
  CHECK_FALSE(path_under("/apix", "/api"));
  CHECK_FALSE(path_under("/ap", "/api"));

  CHECK(path_under("/api/", "/api/"));
  CHECK(path_under("/api/x", "/api/"));
  CHECK(path_under("/api/x/y", "/api/"));
  CHECK_FALSE(path_under("/api", "/api/"));  // no redirect or implicit slash here
  CHECK_FALSE(path_under("/apix", "/api/"));

  CHECK(path_under("/", "/"));
  CHECK(path_under("/anything", "/"));
  CHECK(path_under("/anything", ""));  // an empty prefix is "/"
  CHECK_FALSE(path_under("*", "/"));
  CHECK_FALSE(path_under("", "/"));
  CHECK_FALSE(path_under("/API/x", "/api/"));  // paths are case-sensitive
}

TEST_CASE("reverse: strip_prefix") {
  CHECK(strip_prefix("/api/users", "/api/") == "/users");
  CHECK(strip_prefix("/api/", "/api/") == "/");
  CHECK(strip_prefix("/api/users", "/api") == "/users");
  CHECK(strip_prefix("/api", "/api") == "/");
  CHECK(strip_prefix("/api/a/b/", "/api") == "/a/b/");
  CHECK(strip_prefix("/api//x", "/api/") == "//x");  // the prefix's own '/' is the new root

  CHECK(strip_prefix("/api?x=1", "/api") == "/?x=1");
  CHECK(strip_prefix("/api/?x=1", "/api/") == "/?x=1");
  CHECK(strip_prefix("/api/users?id=7&q=a/b", "/api/") == "/users?id=7&q=a/b");
  CHECK(strip_prefix("/api/users?id=7", "/api") == "/users?id=7");

  CHECK(strip_prefix("/x?y", "/") == "/x?y");
  CHECK(strip_prefix("/x", "") == "/x");
  CHECK(strip_prefix("/other/x", "/api/") == "/other/x");  // not under the prefix: unchanged
  CHECK(strip_prefix("", "/api/") == "/");
  CHECK(strip_prefix("?q", "/") == "/?q");
}

TEST_CASE("reverse: nothing matches -> null (404)") {
  RouteTable empty;
  CHECK(empty.match("site", "app.example", "/") == nullptr);

  Route r = route("api", "app.example", "/api/");
  r.listeners = {"site"};
  RouteTable t({r});
  CHECK(t.match("site", "app.example", "/api/x") != nullptr);
  CHECK(t.match("site", "app.example", "/web/") == nullptr);    // path
  CHECK(t.match("site", "other.example", "/api/x") == nullptr);  // host
  CHECK(t.match("admin", "app.example", "/api/x") == nullptr);   // listener
}

// ---- balancing ------------------------------------------------------------------------------------

TEST_CASE("reverse: round robin goes through the eligible backends in order") {
  Pool p(3);
  std::vector<std::size_t> got;
  for (std::uint64_t c = 0; c < 7; ++c) got.push_back(*p.pick(Balance::round_robin, c));
  CHECK(got == std::vector<std::size_t>{0, 1, 2, 0, 1, 2, 0});
  CHECK(p.pick(Balance::round_robin, std::numeric_limits<std::uint64_t>::max()).has_value());
}

TEST_CASE("reverse: every method skips unhealthy, tried and zero-weight backends") {
  Pool p(4);
  p.states[0].healthy = false;
  p.states[1].tried = true;
  p.states[3].weight = 0;
  for (Balance m : kAllMethods) {
    CAPTURE(static_cast<int>(m));
    for (std::uint64_t c = 0; c < 50; ++c) CHECK(p.pick(m, c, key_of(static_cast<int>(c))) == 2u);
  }

  Pool q(4);
  q.states[1].healthy = false;
  std::vector<std::size_t> got;
  for (std::uint64_t c = 0; c < 6; ++c) got.push_back(*q.pick(Balance::round_robin, c));
  CHECK(got == std::vector<std::size_t>{0, 2, 3, 0, 2, 3});
}

TEST_CASE("reverse: no eligible backend -> nullopt") {
  Pool p(3);
  p.states[0].healthy = false;
  p.states[1].tried = true;
  p.states[2].weight = 0;
  Pool none(0);
  for (Balance m : kAllMethods) {
    CAPTURE(static_cast<int>(m));
    CHECK_FALSE(p.pick(m, 0, "k").has_value());
    CHECK_FALSE(p.pick(m, 12345, "k").has_value());
    CHECK_FALSE(none.pick(m, 0, "k").has_value());
  }
}

TEST_CASE("reverse: least_conn takes the fewest active, ties by round robin") {
  Pool p(4);
  p.states[0].active = 3;
  p.states[1].active = 1;
  p.states[2].active = 2;
  p.states[3].active = 5;
  for (std::uint64_t c = 0; c < 8; ++c) CHECK(p.pick(Balance::least_conn, c) == 1u);

  p.states[2].active = 1;  // 1 and 2 tie
  std::vector<std::size_t> got;
  for (std::uint64_t c = 0; c < 4; ++c) got.push_back(*p.pick(Balance::least_conn, c));
  CHECK(got == std::vector<std::size_t>{1, 2, 1, 2});

  p.states[0].active = 0;  // fewer, but not eligible
  p.states[0].healthy = false;
  CHECK(p.pick(Balance::least_conn, 0) == 1u);
  p.states[1].tried = true;
  CHECK(p.pick(Balance::least_conn, 0) == 2u);
  CHECK(p.pick(Balance::least_conn, 1) == 2u);
}

namespace {
// The longest cyclic run of one backend over a full window of picks.
std::size_t longest_run(const std::vector<std::size_t>& seq, std::size_t who) {
  std::size_t best = 0, run = 0;
  for (std::size_t i = 0; i < 2 * seq.size(); ++i) {
    run = seq[i % seq.size()] == who ? run + 1 : 0;
    best = std::max(best, run);
  }
  return std::min(best, seq.size());
}
}  // namespace

TEST_CASE("reverse: weighted 90/10 is exact per 100 picks and spread out") {
  Pool p(2);
  p.states[0].weight = 90;
  p.states[1].weight = 10;
  // Any 100 consecutive counters are one full window, wherever they start.
  for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{37}, std::uint64_t{1} << 40}) {
    CAPTURE(start);
    std::vector<std::size_t> seq;
    for (std::uint64_t c = start; c < start + 100; ++c) seq.push_back(*p.pick(Balance::weighted, c));
    CHECK(std::count(seq.begin(), seq.end(), 0u) == 90);
    CHECK(std::count(seq.begin(), seq.end(), 1u) == 10);
    // Bound: the ideal, 9 A's between two B's; never two B's together.
    CHECK(longest_run(seq, 0) == 9);
    CHECK(longest_run(seq, 1) == 1);
  }
}

TEST_CASE("reverse: weighted is exact per window and spread for many weight sets") {
  // Deterministic pseudo-random weight sets. Over every window of T = sum(weights) counters each
  // backend gets exactly its weight, and the gap between two of its picks (cyclically) stays within
  // ceil(T / w) + n positions of the ideal schedule.
  std::uint64_t seed = 0x9e3779b97f4a7c15ULL;
  auto next = [&seed](unsigned mod) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return static_cast<unsigned>(seed % mod);
  };
  for (int round = 0; round < 200; ++round) {
    const std::size_t n = 1 + next(7);
    Pool p(n);
    std::uint64_t total = 0;
    for (auto& s : p.states) total += (s.weight = 1 + next(round % 2 ? 20 : 200));
    CAPTURE(round);
    std::vector<std::size_t> seq;
    const std::uint64_t start = next(1000);
    for (std::uint64_t c = start; c < start + total; ++c) seq.push_back(*p.pick(Balance::weighted, c));
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(i);
      const unsigned w = p.states[i].weight;
      CHECK(static_cast<std::uint64_t>(std::count(seq.begin(), seq.end(), i)) == w);
      std::size_t last = 0, max_gap = 0;
      bool seen = false;
      for (std::size_t k = 0; k < 2 * seq.size(); ++k) {
        if (seq[k % seq.size()] != i) continue;
        if (seen) max_gap = std::max(max_gap, k - last);
        last = k;
        seen = true;
      }
      CHECK(max_gap <= (total + w - 1) / w + n);
    }
  }
}

TEST_CASE("reverse: weighted leaves ineligible backends out of the window") {
  Pool p(3);
  p.states[0].weight = 3;
  p.states[1].weight = 5;
  p.states[1].tried = true;
  p.states[2].weight = 2;
  std::vector<std::size_t> seq;
  for (std::uint64_t c = 0; c < 5; ++c) seq.push_back(*p.pick(Balance::weighted, c));
  CHECK(std::count(seq.begin(), seq.end(), 0u) == 3);
  CHECK(std::count(seq.begin(), seq.end(), 2u) == 2);

  Pool big(2);  // weights too large for 64-bit deadline arithmetic take the 128-bit path
  big.states[0].weight = 3'000'000'000u;
  big.states[1].weight = 1'000'000'000u;
  std::map<std::size_t, int> count;
  for (std::uint64_t c = 0; c < 4000; ++c) ++count[*big.pick(Balance::weighted, c)];
  CHECK(count[0] == 3000);
  CHECK(count[1] == 1000);
}

TEST_CASE("reverse: consistent hash: same key, same backend; removing one moves only its keys") {
  Pool p(5);
  for (Balance m : {Balance::hash_client, Balance::hash_header}) {
    for (int i = 0; i < 100; ++i) CHECK(p.pick(m, 0, key_of(i)) == p.pick(m, 999, key_of(i)));  // counter ignored
  }

  std::vector<std::string> before(1000);
  std::map<std::string, int> load;
  for (int i = 0; i < 1000; ++i) {
    before[i] = p.names[*p.pick(Balance::hash_client, 0, key_of(i))];
    ++load[before[i]];
  }
  for (const auto& [name, n] : load) {  // each of 5 takes about 200
    CAPTURE(name);
    CHECK(n > 130);
    CHECK(n < 270);
  }

  // Taken out by health: keys on b2 move, every other key stays.
  Pool sick = p;
  for (std::size_t i = 0; i < sick.states.size(); ++i) sick.states[i].key = sick.names[i];
  sick.states[2].healthy = false;
  // Removed from the pool (indices shift; compare by identity).
  Pool removed(0);
  removed.names = p.names;
  for (std::size_t i = 0; i < removed.names.size(); ++i) {
    if (i != 2) removed.states.push_back(BackendState{1, true, false, 0, removed.names[i]});
  }
  for (const Pool* q : {&sick, &removed}) {
    int moved = 0;
    for (int i = 0; i < 1000; ++i) {
      const std::string now{q->states[*q->pick(Balance::hash_client, 0, key_of(i))].key};
      CHECK(now != p.names[2]);
      if (before[i] != p.names[2]) {
        CHECK(now == before[i]);
      } else {
        ++moved;
      }
    }
    CHECK(moved == load[p.names[2]]);
  }
}

TEST_CASE("reverse: consistent hash: adding a backend moves about 1/n of the keys, all to it") {
  Pool five(5);
  Pool six(6);  // the same five names plus one
  int moved = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto a = *five.pick(Balance::hash_client, 0, key_of(i));
    const auto b = *six.pick(Balance::hash_client, 0, key_of(i));
    if (a != b) {
      ++moved;
      CHECK(b == 5u);
    }
  }
  CHECK(moved > 100);  // about 1000 / 6 = 167
  CHECK(moved < 240);
}

TEST_CASE("reverse: consistent hash follows weights and agrees with rendezvous_pick") {
  Pool p(2);
  p.states[0].weight = 3;
  p.states[1].weight = 1;
  int first = 0;
  for (int i = 0; i < 4000; ++i) first += *p.pick(Balance::hash_header, 0, key_of(i)) == 0u;
  CHECK(first > 2800);  // about 3000
  CHECK(first < 3200);

  // A pool larger than the internal chunk of candidates gives the same answer as one call over all.
  Pool big(100);
  big.states[7].healthy = false;
  big.states[40].weight = 5;
  big.states[77].tried = true;
  std::vector<portier::HashCandidate> all;
  for (const auto& s : big.states) all.push_back(portier::HashCandidate{s.key, s.weight, s.healthy && !s.tried});
  for (int i = 0; i < 2000; ++i) {
    CAPTURE(i);
    CHECK(big.pick(Balance::hash_client, 0, key_of(i)) == portier::rendezvous_pick(key_of(i), all));
  }
}

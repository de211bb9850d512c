#include "portier/policy/egress.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace portier;
using namespace portier::policy;

namespace {

UsernameParams parse_ok(std::string_view name, const UsernameGrammar& g = {}) {
  auto r = parse_username(name, g);
  REQUIRE_MESSAGE(r.has_value(), (std::string(name) + ": " + (r ? std::string() : r.error().context)));
  return *r;
}

std::string parse_error(std::string_view name, const UsernameGrammar& g = {}) {
  auto r = parse_username(name, g);
  REQUIRE_MESSAGE(!r.has_value(), (std::string(name) + " parsed"));
  CHECK(r.error().is(errc::bad_request));
  CHECK(r.error().side == Side::downstream);
  return r.error().context;
}

// String literals only: an ExitCandidate borrows its name.
std::vector<ExitCandidate> exits(std::initializer_list<const char*> names) {
  std::vector<ExitCandidate> out;
  for (const char* n : names) out.push_back(ExitCandidate{n, 1, true});
  return out;
}

std::string key_of(int i) { return "alice:s" + std::to_string(i); }

}  // namespace

TEST_SUITE("policy.egress") {
  TEST_CASE("user names without parameters are all base") {
    for (const char* name : {"alice", "mary-jane", "bob.smith", "a", "", "alice-x-y"}) {
      CAPTURE(name);
      auto p = parse_ok(name);
      CHECK(p.base == name);
      CHECK(p.region.empty());
      CHECK(p.session.empty());
      CHECK_FALSE(p.sesstime_minutes);
    }
  }

  TEST_CASE("parameters are read from the right; the base keeps its separators") {
    auto p = parse_ok("mary-jane-region-fi");
    CHECK(p.base == "mary-jane");
    CHECK(p.region == "fi");

    // "session" inside the base is not a parameter: the pair before it ("alice", "session") has no key.
    auto q = parse_ok("alice-session-region-fi");
    CHECK(q.base == "alice-session");
    CHECK(q.region == "fi");
  }

  TEST_CASE("all three keys, in any order") {
    for (const char* name : {"alice-region-fi-session-s1-sesstime-10", "alice-sesstime-10-region-fi-session-s1",
                             "alice-session-s1-sesstime-10-region-fi", "alice-session-s1-region-fi-sesstime-10"}) {
      CAPTURE(name);
      auto p = parse_ok(name);
      CHECK(p.base == "alice");
      CHECK(p.region == "fi");
      CHECK(p.session == "s1");
      REQUIRE(p.sesstime_minutes);
      CHECK(*p.sesstime_minutes == 10);
    }
    auto s = parse_ok("alice-session-Ab_9.x");
    CHECK(s.session == "Ab_9.x");
    CHECK(s.region.empty());
    CHECK(parse_ok("alice-sesstime-65535").sesstime_minutes == 65535u);
    CHECK(parse_ok("alice-sesstime-1").sesstime_minutes == 1u);
  }

  TEST_CASE("custom separator and key names") {
    UsernameGrammar g;
    g.separator = "_";
    g.region_key = "country";
    g.session_key = "sid";
    g.sesstime_key = "ttl";
    auto p = parse_ok("mary-jane_country_de_sid_abc_ttl_30", g);
    CHECK(p.base == "mary-jane");
    CHECK(p.region == "de");
    CHECK(p.session == "abc");
    CHECK(p.sesstime_minutes == 30u);
    // The default keys mean nothing under this grammar.
    CHECK(parse_ok("alice_region_fi", g).base == "alice_region_fi");

    UsernameGrammar multi;
    multi.separator = "::";
    auto m = parse_ok("alice::region::fi", multi);
    CHECK(m.base == "alice");
    CHECK(m.region == "fi");
    CHECK(parse_error("alice::region::::fi", multi) == "proxy user name: empty part between separators");
    CHECK(parse_error("alice::region::", multi) == "proxy user name: key \"region\" has an empty value");
  }

  TEST_CASE("a disabled grammar leaves the name alone") {
    UsernameGrammar off;
    off.enabled = false;
    for (const char* name : {"alice-region-fi", "-region-fi", "alice--", "alice-region-fi-region-se"}) {
      CAPTURE(name);
      auto p = parse_ok(name, off);
      CHECK(p.base == name);
      CHECK(p.region.empty());
    }
    // The length limit still guards whatever follows.
    CHECK(parse_error(std::string(kMaxUsernameBytes + 1, 'a'), off) == "proxy user name: longer than 256 bytes");
  }

  TEST_CASE("hostile user names are refused with a clear message") {
    struct Case {
      std::string name;
      std::string message;
    };
    const std::string long_value(kMaxParamValueBytes + 1, 'x');
    const Case cases[] = {
        {std::string(kMaxUsernameBytes + 1, 'a'), "longer than 256 bytes"},
        {"alice-region-fi-region-se", "key \"region\" given twice"},
        {"alice-region-fi-region-fi", "key \"region\" given twice"},
        {"alice-session-a-session-b", "key \"session\" given twice"},
        {"alice-sesstime-5-sesstime-6", "key \"sesstime\" given twice"},
        {"alice-region-", "key \"region\" has an empty value"},
        {"alice-region--session-s1", "key \"region\" has an empty value"},
        {"alice-session-", "key \"session\" has an empty value"},
        {"alice-sesstime-", "key \"sesstime\" has an empty value"},
        {"alice-region-" + long_value, "value of \"region\" is longer than 64 bytes"},
        {"alice-session-" + long_value, "value of \"session\" is longer than 64 bytes"},
        {"alice-region-f!", "value of \"region\" may only contain letters, digits, '_' and '.'"},
        {"alice-session-a/b", "value of \"session\" may only contain letters, digits, '_' and '.'"},
        {"alice-region-f i", "value of \"region\" may only contain letters, digits, '_' and '.'"},
        {std::string("alice-region-f\0i", 16), "value of \"region\" may only contain letters, digits, '_' and '.'"},
        {"alice-region-\xc3\xa4", "value of \"region\" may only contain letters, digits, '_' and '.'"},
        {"alice-sesstime-0", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"alice-sesstime-65536", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"alice-sesstime-99999999999999999999", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"alice-sesstime-10x", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"alice-sesstime-+5", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"alice-sesstime-1.5", "\"sesstime\" must be a number of minutes from 1 to 65535"},
        {"-region-fi", "no user before the parameters"},
        {"region-fi", "no user before the parameters"},
        {"region-fi-session-s1", "no user before the parameters"},
        {"alice-region-fi-", "empty part between separators"},
        {"alice-", "empty part between separators"},
        {"-alice", "empty part between separators"},
        {"alice--region-fi", "empty part between separators"},
        {"mary--jane", "empty part between separators"},
        {"-", "empty part between separators"},
        {"alice-sesstime--1", "empty part between separators"},  // "-1" splits at the separator
    };
    for (const auto& c : cases) {
      CAPTURE(c.name);
      CHECK(parse_error(c.name) == "proxy user name: " + c.message);
    }
    // With another separator "-1" is a value, and not a number.
    UsernameGrammar g;
    g.separator = "_";
    CHECK(parse_error("alice_sesstime_-1", g) ==
          "proxy user name: \"sesstime\" must be a number of minutes from 1 to 65535");
  }

  TEST_CASE("limits are inclusive") {
    const std::string value(kMaxParamValueBytes, 'v');
    CHECK(parse_ok("alice-region-" + value).region == value);
    std::string name = "alice-session-" + value;
    name = std::string(kMaxUsernameBytes - name.size(), 'a') + name;
    REQUIRE(name.size() == kMaxUsernameBytes);
    CHECK(parse_ok(name).session == value);
  }

  TEST_CASE("messages never echo the client's values") {
    for (const char* name : {"alice-region-s3cr3t!", "alice-session-s3cr3t/x", "alice-sesstime-s3cr3t"}) {
      CAPTURE(name);
      CHECK(parse_error(name).find("s3cr3t") == std::string::npos);
    }
  }

  TEST_CASE("audiences") {
    const std::vector<std::string> staff{"staff"};
    const std::vector<std::string> none;
    Audience anyone;
    CHECK(anyone.admits("alice", nullptr));
    CHECK_FALSE(anyone.admits("", nullptr));
    Audience some{{"alice"}, {"staff"}};
    CHECK(some.admits("alice", nullptr));
    CHECK(some.admits("bob", &staff));
    CHECK_FALSE(some.admits("bob", &none));
    CHECK_FALSE(some.admits("bob", nullptr));
    CHECK_FALSE(some.admits("", &staff));
  }

  TEST_CASE("regions a policy knows") {
    EgressPolicy e;
    e.regions["fi"] = {};
    CHECK(e.knows("direct"));
    CHECK(e.knows("fi"));
    CHECK_FALSE(e.knows("se"));
    CHECK_FALSE(e.knows(""));
  }

  TEST_CASE("stable_hash never changes") {
    // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; these are it and others through the splitmix64 mix.
    // Changing them remaps every sticky session of every deployment.
    CHECK(stable_hash("") == 0xf52a15e9a9b5e89bULL);
    CHECK(stable_hash("a") == 0x02c0bdbf481420f8ULL);
    CHECK(stable_hash("alice") == 0xc5d1556d66774a5cULL);
    CHECK(stable_hash("alice:s1") == 0xde2693eca267cde9ULL);
    CHECK(stable_hash("fi-1") == 0xede8acf623870454ULL);
    CHECK(stable_hash("fi-1", 1) == 0x0b5299d5fca0bb9bULL);
    CHECK(stable_hash("fi-1", stable_hash("alice:s1")) == 0xf3fb6b188e491b5cULL);
  }

  TEST_CASE("rendezvous: deterministic, nullopt without eligible exits") {
    auto c = exits({"fi-1", "fi-2", "fi-3"});
    for (int i = 0; i < 100; ++i) CHECK(rendezvous_pick(key_of(i), c) == rendezvous_pick(key_of(i), c));
    CHECK_FALSE(rendezvous_pick("k", std::span<const ExitCandidate>{}));
    for (auto& x : c) x.eligible = false;
    CHECK_FALSE(rendezvous_pick("k", c));
    auto zero = exits({"a", "b"});
    for (auto& x : zero) x.weight = 0;
    CHECK_FALSE(rendezvous_pick("k", zero));
  }

  TEST_CASE("rendezvous: every exit gets keys") {
    auto c = exits({"fi-1", "fi-2", "fi-3", "fi-4"});
    std::vector<int> wins(c.size());
    for (int i = 0; i < 2000; ++i) ++wins[*rendezvous_pick(key_of(i), c)];
    for (int w : wins) CHECK(w > 400);  // 500 expected each
  }

  TEST_CASE("rendezvous: removing an exit moves only the keys it had") {
    const auto all = exits({"fi-1", "fi-2", "fi-3", "fi-4", "fi-5"});
    std::vector<ExitCandidate> fewer = {all[0], all[1], all[3], all[4]};  // fi-3 gone
    int moved = 0;
    for (int i = 0; i < 2000; ++i) {
      const auto before = all[*rendezvous_pick(key_of(i), all)].name;
      const auto after = fewer[*rendezvous_pick(key_of(i), fewer)].name;
      if (before != "fi-3") {
        CHECK(after == before);
      } else {
        ++moved;
      }
    }
    CHECK(moved > 0);
    // The same holds when fi-3 stays in the list but becomes ineligible (failover).
    auto down = all;
    down[2].eligible = false;
    for (int i = 0; i < 2000; ++i) {
      const auto before = *rendezvous_pick(key_of(i), all);
      const auto after = *rendezvous_pick(key_of(i), down);
      CHECK(after != 2u);
      if (before != 2u) CHECK(after == before);
    }
  }

  TEST_CASE("rendezvous: adding an exit moves keys only to it") {
    const auto before = exits({"fi-1", "fi-2", "fi-3"});
    const auto after = exits({"fi-1", "fi-2", "fi-3", "fi-4"});
    int gained = 0;
    for (int i = 0; i < 2000; ++i) {
      const auto a = *rendezvous_pick(key_of(i), before);
      const auto b = *rendezvous_pick(key_of(i), after);
      if (b == 3u) {
        ++gained;
      } else {
        CHECK(b == a);
      }
    }
    CHECK(gained > 300);  // about a quarter of 2,000
  }

  TEST_CASE("rendezvous: weights share the keys") {
    std::vector<ExitCandidate> c = {{"big", 3, true}, {"small", 1, true}};
    int big = 0;
    const int n = 10000;
    for (int i = 0; i < n; ++i) big += *rendezvous_pick(key_of(i), c) == 0u;
    CHECK(big > n * 70 / 100);
    CHECK(big < n * 80 / 100);
  }

  TEST_CASE("rendezvous: weight 0 and ineligible exits are never chosen") {
    std::vector<ExitCandidate> c = {{"a", 0, true}, {"b", 1, false}, {"c", 1, true}, {"d", 5, false}};
    for (int i = 0; i < 1000; ++i) CHECK(rendezvous_pick(key_of(i), c) == 2u);
  }

  TEST_CASE("rendezvous: equal names tie to the lowest index") {
    std::vector<ExitCandidate> c = {{"x", 1, false}, {"same", 1, true}, {"same", 1, true}};
    for (int i = 0; i < 100; ++i) CHECK(rendezvous_pick(key_of(i), c) == 1u);
  }
}

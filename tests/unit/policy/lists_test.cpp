#include "portier/policy/lists.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <re2/re2.h>

using namespace portier::policy;

namespace {

ListSpec spec(std::string name, ListKind kind, std::string path = "rules/lists/test.txt") {
  ListSpec s;
  s.name = std::move(name);
  s.path = std::move(path);
  s.kind = kind;
  return s;
}

std::vector<std::string> describe_all(const std::vector<LineError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.describe());
  return out;
}

// "file:line entry" of the match, "" for none, "error: ..." when matching failed.
std::string hit(const NamedList& list, std::string_view subject) {
  auto m = list.match(subject);
  if (!m) return "error: " + m.error().context;
  if (!*m) return "";
  return (*m)->describe() + " " + std::string((*m)->entry);
}

// A file in a fresh temporary directory, removed at scope end.
struct TempFile {
  std::string dir;
  std::string path;
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/portier-lists-XXXXXX";
    dir = ::mkdtemp(tmpl);
    path = dir + "/list.txt";
    std::ofstream(path) << content;
  }
  ~TempFile() {
    std::remove(path.c_str());
    ::rmdir(dir.c_str());
  }
};

}  // namespace

TEST_SUITE("policy.lists") {

TEST_CASE("regex list lines are patterns; comments and blank lines are skipped") {
  auto p = parse_regex_list("# trackers\n\n  ^ads?[0-9]*\\.  \ntrack(er|ing)\\.\n\t#indented comment\nfoo#bar\n", "t.txt");
  REQUIRE(p.errors.empty());
  REQUIRE(p.entries.size() == 3);
  CHECK(p.entries[0].pattern == "^ads?[0-9]*\\.");
  CHECK(p.entries[0].line == 3);
  CHECK(p.entries[1].line == 4);
  CHECK(p.entries[2].pattern == "foo#bar");
  CHECK(p.entries[2].line == 6);
}

TEST_CASE("a bad regex is reported with its line and RE2's message") {
  auto p = parse_regex_list("ok\n(ads|\nfine\na{2,1}\n", "rules/lists/track.txt");
  auto e = describe_all(p.errors);
  REQUIRE(e.size() == 2);
  CHECK(e[0] == "rules/lists/track.txt:2: RE2 rejected \"(ads|\": missing ): (ads|");
  CHECK(e[1].starts_with("rules/lists/track.txt:4: RE2 rejected \"a{2,1}\": "));
  CHECK(p.entries.size() == 2);

  SUBCASE("and the list does not load") {
    auto load = compile_list(spec("track", ListKind::regex, "rules/lists/track.txt"), "ok\n(ads|\n");
    CHECK_FALSE(load.ok());
    CHECK(describe_all(load.errors) ==
          std::vector<std::string>{"rules/lists/track.txt:2: RE2 rejected \"(ads|\": missing ): (ads|"});
  }
}

TEST_CASE("a regex list reports the matching entry with the lowest line") {
  // Lines 1 and 3 have no literal of 3+ characters, so they go to an RE2::Set; 2, 4 and 5 are prefiltered.
  std::string text = "[0-9]{5}\nbanner\n^h\n/ads/\nexample\n";
  for (std::size_t shard_size : {0, 1, 2}) {
    CAPTURE(shard_size);
    RegexOptions o;
    o.shard_size = shard_size;
    auto parsed = parse_regex_list(text, "r.txt");
    auto set = RegexSet::build("r", "r.txt", parsed.entries, o);
    REQUIRE(set);
    CHECK(set->prefiltered() == 3);
    CHECK(set->shards() == (shard_size == 1 ? 2 : 1));
    auto line_of = [&](std::string_view subject) -> std::uint32_t {
      auto m = set->match(subject);
      REQUIRE(m);
      return *m == nullptr ? 0 : (*m)->line;
    };
    CHECK(line_of("http://example.com/ads/banner12345") == 1);
    CHECK(line_of("http://example.com/ads/banner") == 2);
    CHECK(line_of("http://example.com/ads/") == 3);
    CHECK(line_of("x/ads/example") == 4);
    CHECK(line_of("xEXAMPLE") == 5);
    CHECK(line_of("other.test") == 0);
    auto m = set->match("x/ads/");
    REQUIRE(m);
    REQUIRE(*m != nullptr);
    CHECK(set->pattern(**m) == "/ads/");
  }
}

TEST_CASE("a literal that occurs only in a longer literal's suffix is still found") {
  // Aho-Corasick failure links: "ads" ends inside "loads" and inside "xads".
  auto load = compile_list(spec("r", ListKind::regex), "loadsx\nads[0-9]\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "downloads7") == "rules/lists/test.txt:2 ads[0-9]");
  CHECK(hit(*load.list, "xloadsx") == "rules/lists/test.txt:1 loadsx");
  CHECK(hit(*load.list, "loads").empty());
}

TEST_CASE("a literal-only pattern matches its literal anywhere, an anchored one only where anchored") {
  auto load = compile_list(spec("r", ListKind::regex), "track(er|ing)\\.example\\.(com|net)\n^ads\\.example\\.org/\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "https://TRACKING.example.net/p") == "rules/lists/test.txt:1 track(er|ing)\\.example\\.(com|net)");
  CHECK(hit(*load.list, "https://tracker.example.org/").empty());
  CHECK(hit(*load.list, "ads.example.org/x") == "rules/lists/test.txt:2 ^ads\\.example\\.org/");
  CHECK(hit(*load.list, "https://ads.example.org/x").empty());
}

TEST_CASE("a pattern needing two literals is a candidate only when both occur") {
  auto load = compile_list(spec("r", ListKind::regex), "/banner[0-9]+/acme\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "https://x.test/banner12/acme/a.png") == "rules/lists/test.txt:1 /banner[0-9]+/acme");
  CHECK(hit(*load.list, "https://x.test/banner/acme/a.png").empty());
  CHECK(hit(*load.list, "https://x.test/acme/banner12/").empty());
}

TEST_CASE("patterns whose only literals are common still match, through an RE2::Set") {
  std::string text;
  for (int n = 8; n < 28; ++n) text += "^https?://[a-z]{" + std::to_string(n) + "}[0-9]{2}\\.com/\n";
  auto parsed = parse_regex_list(text, "r.txt");
  REQUIRE(parsed.errors.empty());
  auto set = RegexSet::build("r", "r.txt", parsed.entries);
  REQUIRE(set);
  CHECK(set->prefiltered() == 0);
  CHECK(set->shards() == 1);
  auto m = set->match("http://abcdefghij12.com/x");
  REQUIRE(m);
  REQUIRE(*m != nullptr);
  CHECK((*m)->line == 3);
  m = set->match("http://abcdefghij123.com/x");
  REQUIRE(m);
  CHECK(*m == nullptr);
}

TEST_CASE("a pattern with many literals and a non-ASCII pattern match correctly") {
  auto load = compile_list(spec("r", ListKind::regex),
                           "(alpha|bravo|charlie|delta|echo|foxtrot|golf|hotel)-x\nstraße\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "a/HOTEL-x") == "rules/lists/test.txt:1 (alpha|bravo|charlie|delta|echo|foxtrot|golf|hotel)-x");
  CHECK(hit(*load.list, "a/hotel-y").empty());
  CHECK(hit(*load.list, "/STRASSE").empty());
  CHECK(hit(*load.list, "/STRAßE") == "rules/lists/test.txt:2 straße");
}

TEST_CASE("a case-sensitive list does not match a literal in another case") {
  auto s = spec("r", ListKind::regex);
  s.case_insensitive = false;
  auto load = compile_list(s, "Tracker\\.example\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "https://tracker.example/").empty());
  CHECK(hit(*load.list, "https://Tracker.example/") == "rules/lists/test.txt:1 Tracker\\.example");
}

TEST_CASE("matching agrees with trying every pattern in line order") {
  // Mixed shapes: exact literals, literal conditions, anchored patterns, no literals at all.
  const char* patterns[] = {
      "^ads?[0-9]*\\.",       "track(er|ing)\\.",      "/banner[0-9]+/",   "[?&]utm_[a-z]+=",
      "\\.(gif|png)\\?",      "pixel",                 "^https?://[0-9]+", "(ad|pop)under",
      "[a-z]{20}",            "doubleclick\\.net/",    "/ads/",            "beacon[_-]?[0-9]",
  };
  std::string text;
  for (const char* p : patterns) text += std::string(p) + "\n";
  auto parsed = parse_regex_list(text, "r.txt");
  REQUIRE(parsed.errors.empty());
  auto set = RegexSet::build("r", "r.txt", parsed.entries, RegexOptions{true, kDefaultRegexMaxMem, 3});
  REQUIRE(set);
  std::vector<std::unique_ptr<RE2>> each;
  RE2::Options o;
  o.set_case_sensitive(false);
  for (const char* p : patterns) each.push_back(std::make_unique<RE2>(p, o));
  const char* texts[] = {
      "ads.example.com",           "ad3.example.com",         "https://tracker.example/",   "x/banner12/y",
      "x/banner/y",                "a?utm_source=x",          "img.gif?x",                  "img.gif",
      "PIXEL",                     "https://123.example",     "popunder.js",                "abcdefghijklmnopqrstuvwxyz",
      "ad.doubleclick.net/x",      "doubleclick.net",         "x/ads/y",                    "beacon-7",
      "beacon7",                   "plain text",              "",                           "TRACKING.ads/ads/",
  };
  for (const char* t : texts) {
    CAPTURE(t);
    std::uint32_t want = 0;
    for (std::size_t i = 0; i < each.size(); ++i) {
      if (RE2::PartialMatch(t, *each[i])) {
        want = static_cast<std::uint32_t>(i + 1);
        break;
      }
    }
    auto m = set->match(t);
    REQUIRE(m);
    CHECK((*m == nullptr ? 0 : (*m)->line) == want);
  }
}

TEST_CASE("regex lists are case-insensitive unless configured otherwise") {
  auto ci = compile_list(spec("r", ListKind::regex), "^ADS\\.\n");
  REQUIRE(ci.ok());
  CHECK(hit(*ci.list, "ads.example.com") == "rules/lists/test.txt:1 ^ADS\\.");

  auto s = spec("r", ListKind::regex);
  s.case_insensitive = false;
  auto cs = compile_list(s, "^ADS\\.\n");
  REQUIRE(cs.ok());
  CHECK(hit(*cs.list, "ads.example.com").empty());
  CHECK(hit(*cs.list, "ADS.example.com") == "rules/lists/test.txt:1 ^ADS\\.");
}

TEST_CASE("a regex list over its memory budget names the list and the budget") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "track(er|ing)[0-9]{1,3}\\.site" + std::to_string(i) + "\\.example/\n";
  auto s = spec("ads", ListKind::regex, "rules/lists/ads.txt");
  s.max_mem = 64 * 1024;
  s.shard_size = 0;
  auto load = compile_list(s, text);
  REQUIRE_FALSE(load.ok());
  CHECK(describe_all(load.errors) ==
        std::vector<std::string>{"rules/lists/ads.txt: regex list ads: compiled automaton exceeds max_mem 64 KiB; "
                                 "raise lists.ads.max_mem_mb or split the list"});

  SUBCASE("the default budget compiles it") {
    s.max_mem = kDefaultRegexMaxMem;
    auto ok = compile_list(s, text);
    REQUIRE(ok.ok());
    CHECK(hit(*ok.list, "http://tracker12.site7.example/x") == "rules/lists/ads.txt:8 track(er|ing)[0-9]{1,3}\\.site7\\.example/");
  }
}

TEST_CASE("a domain list loads from a file and reports the entry as file:line") {
  TempFile f("# ads\n0.0.0.0 ads.example\n||track.example^\n");
  auto load = load_list(spec("ads", ListKind::domain, f.path));
  REQUIRE(load.ok());
  CHECK(load.list->name() == "ads");
  CHECK(load.list->kind() == ListKind::domain);
  CHECK(load.list->size() == 2);
  CHECK(hit(*load.list, "cdn.track.example") == f.path + ":3 track.example");
  CHECK(hit(*load.list, "ads.example") == f.path + ":2 ads.example");
  CHECK(hit(*load.list, "example.com").empty());
}

TEST_CASE("a domain list with bad lines reports all of them and does not load") {
  auto load = compile_list(spec("ads", ListKind::domain, "rules/lists/ads.txt"),
                           "ok.example\n@@||x.example^\nbücher.example\n");
  CHECK_FALSE(load.ok());
  CHECK(describe_all(load.errors) ==
        std::vector<std::string>{"rules/lists/ads.txt:2: exception rules (@@) are not supported",
                                 "rules/lists/ads.txt:3: non-ASCII domain: write it in punycode (xn--...)"});
}

TEST_CASE("an unreadable list file is reported with the system's reason") {
  auto load = load_list(spec("ads", ListKind::domain, "/nonexistent/portier/ads.txt"));
  CHECK_FALSE(load.ok());
  CHECK(describe_all(load.errors) ==
        std::vector<std::string>{"/nonexistent/portier/ads.txt: cannot read: No such file or directory"});

  SUBCASE("a directory is not a list") {
    auto dir = load_list(spec("ads", ListKind::domain, "/tmp"));
    CHECK(describe_all(dir.errors) == std::vector<std::string>{"/tmp: cannot read: Is a directory"});
  }
}

TEST_CASE("a list file over the size limit is refused") {
  TempFile f("ads.example\ntrack.example\n");
  auto s = spec("ads", ListKind::domain, f.path);
  s.max_file_bytes = 10;
  auto load = load_list(s);
  CHECK(describe_all(load.errors) == std::vector<std::string>{f.path + ": file is larger than 10 bytes"});
}

TEST_CASE("a list set finds lists by name") {
  ListSet lists;
  lists.add(compile_list(spec("ads", ListKind::domain), "ads.example\n").list);
  lists.add(compile_list(spec("track", ListKind::regex), "track(er|ing)\\.\n").list);
  REQUIRE(lists.size() == 2);
  REQUIRE(lists.find("ads") != nullptr);
  CHECK(lists.find("ads")->kind() == ListKind::domain);
  CHECK(lists.find("track")->kind() == ListKind::regex);
  CHECK(hit(*lists.find("track"), "http://tracker.example/") == "rules/lists/test.txt:1 track(er|ing)\\.");
  CHECK(lists.find("nope") == nullptr);
  lists.add(compile_list(spec("ads", ListKind::domain), "other.example\n").list);
  CHECK(lists.size() == 2);
  CHECK(hit(*lists.find("ads"), "other.example") == "rules/lists/test.txt:1 other.example");
}

TEST_CASE("an empty regex list matches nothing") {
  auto load = compile_list(spec("r", ListKind::regex), "# nothing yet\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "anything").empty());
}

}  // TEST_SUITE

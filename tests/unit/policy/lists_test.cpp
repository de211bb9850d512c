#include "portier/policy/lists.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <fstream>
#include <functional>
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

// ---- compact verification (TinyProgram) ----------------------------------------------------------

namespace {

// The compiled set and the line each text should get: the first pattern RE2::PartialMatch accepts.
struct Reference {
  std::vector<std::unique_ptr<RE2>> each;
  RegexSet set;

  Reference(const std::vector<std::string>& patterns, bool case_insensitive, std::size_t shard_size = 0) {
    std::string text;
    for (const auto& p : patterns) text += p + "\n";
    auto parsed = parse_regex_list(text, "r.txt", case_insensitive);
    REQUIRE(parsed.errors.empty());
    REQUIRE(parsed.entries.size() == patterns.size());
    auto built = RegexSet::build("r", "r.txt", parsed.entries, RegexOptions{case_insensitive, kDefaultRegexMaxMem, shard_size});
    REQUIRE(built);
    set = std::move(built).value();
    RE2::Options o;
    o.set_case_sensitive(!case_insensitive);
    o.set_log_errors(false);
    for (const auto& p : patterns) each.push_back(std::make_unique<RE2>(p, o));
  }
  std::uint32_t want(std::string_view t) const {
    for (std::size_t i = 0; i < each.size(); ++i) {
      if (RE2::PartialMatch(re2::StringPiece(t.data(), t.size()), *each[i])) return static_cast<std::uint32_t>(i + 1);
    }
    return 0;
  }
  std::uint32_t got(std::string_view t) const {
    auto m = set.match(t);
    REQUIRE(m);
    return *m == nullptr ? 0 : (*m)->line;
  }
};

}  // namespace

TEST_CASE("compact verification: a literal with optional and alternative parts") {
  Reference r({"sertra[_-]?(pixel|beacon)\\.gif"}, true);
  CHECK(r.set.compact_verified() == 1);  // not "exact": FilteredRE2 gives up on the '?'
  for (const char* t : {"https://img.test/sertra-beacon.gif?x=1", "x/SERTRA_Pixel.GIF", "sertrapixel.gif"}) {
    CAPTURE(t);
    CHECK(r.got(t) == 1);
  }
  for (const char* t : {"sertra--pixel.gif", "sertra-pixelxgif", "sertra-pixel.gi", "sertra/beacon.gif", "ertra-beacon.gif",
                        "beacon.gif sertra", ""}) {
    CAPTURE(t);
    CHECK(r.got(t) == 0);
  }
}

TEST_CASE("compact verification: ^ at the start and $ at the end anchor the whole pattern") {
  Reference r({"^ads?[0-9]*\\.foo\\.", "\\.barz\\.js$", "^https?://([a-z0-9-]+\\.)*quux\\.com/", "^exact\\.one$"}, true);
  CHECK(r.set.compact_verified() == 4);
  CHECK(r.got("ads12.foo.com") == 1);
  CHECK(r.got("AD.foo.") == 1);
  CHECK(r.got("x.ads1.foo.") == 0);
  CHECK(r.got("adss.foo.") == 0);
  CHECK(r.got("https://cdn.barz.js") == 2);
  CHECK(r.got("https://cdn.barz.js?x") == 0);
  CHECK(r.got("https://cdn.barz.js\n") == 0);  // RE2's $ is the end of the text, not before a newline
  CHECK(r.got("https://quux.com/") == 3);
  CHECK(r.got("http://a.b-c.quux.com/x") == 3);
  CHECK(r.got("http://a_b.quux.com/") == 0);
  CHECK(r.got("x https://quux.com/") == 0);
  CHECK(r.got("exact.one") == 4);
  CHECK(r.got("exact.one.") == 0);
  CHECK(r.got(" exact.one") == 0);
}

TEST_CASE("compact verification: classes, escapes and counted repeats mean what RE2 says") {
  Reference r({"/x[^/]{2,3}\\d\\.jsq", "\\w+@bannerz\\.", "[[:digit:]]{2}bannery", "trackq.er", "tracker[^a]zzz",
               "pop(up|under){2}win[0-9]", "\\x41\\x{42}ctrk[0-9]+", "tag\\.(js)?\\?v=[0-9]+&"},
              true);
  CHECK(r.set.compact_verified() == 8);  // ("pop(up|under){2}win" alone would be exact: no run at all)
  CHECK(r.got("https://t/xab7.jsq") == 1);
  CHECK(r.got("https://t/xabc7.jsq") == 1);
  CHECK(r.got("https://t/xa7.jsq") == 0);
  CHECK(r.got("https://t/xabcd7.jsq") == 0);
  CHECK(r.got("https://t/xa/c7.jsq") == 0);
  CHECK(r.got("mailto:joe_1@bannerz.x") == 2);
  CHECK(r.got("mailto:@bannerz.x") == 0);
  CHECK(r.got("/12bannery") == 3);
  CHECK(r.got("/1bannery") == 0);
  CHECK(r.got("trackqXer") == 4);
  CHECK(r.got("trackq\ner") == 0);  // '.' does not match a newline
  CHECK(r.got("tracker\nzzz") == 5);  // a negated class does
  CHECK(r.got("trackerazzz") == 0);
  CHECK(r.got("popupunderwin1") == 6);
  CHECK(r.got("popupwin1") == 0);
  CHECK(r.got("abctrk5") == 7);  // \x41 is 'A', case-insensitively also 'a'
  CHECK(r.got("tag.?v=12&") == 8);
  CHECK(r.got("tag.js?v=1&") == 8);
  CHECK(r.got("tag.js?v=&") == 0);
}

TEST_CASE("compact verification: a case-sensitive list stays case-sensitive") {
  Reference r({"Banner[0-9]/Acme"}, false);
  CHECK(r.set.compact_verified() == 1);
  CHECK(r.got("x/Banner1/Acme") == 1);
  CHECK(r.got("x/banner1/acme") == 0);
  CHECK(r.got("x/BANNER1/ACME") == 0);
}

TEST_CASE("patterns outside the compact subset are still verified by RE2") {
  // ^ that anchors one branch only, \b, inline flags, \A and \z, a literal '$' and '^'
  Reference r({"^trackx|pixely[0-9]", "\\bbanner[0-9]+\\b", "(?-i)CaseQ[0-9]+", "\\Astarty[0-9]+\\z", "costz\\$[0-9]+",
               "[$^]price[0-9]+"},
              true);
  CHECK(r.set.compact_verified() == 2);  // the last two
  CHECK(r.got("trackx.example") == 1);
  CHECK(r.got("a.trackx.example") == 0);
  CHECK(r.got("a.pixely7") == 1);
  CHECK(r.got("a banner12 b") == 2);
  CHECK(r.got("abanner12") == 0);
  CHECK(r.got("CaseQ12") == 3);
  CHECK(r.got("caseq12") == 0);
  CHECK(r.got("starty12") == 4);
  CHECK(r.got("starty12x") == 0);
  CHECK(r.got("costz$12") == 5);
  CHECK(r.got("costz12") == 0);
  CHECK(r.got("^price1") == 6);
  CHECK(r.got("price1") == 0);
}

TEST_CASE("inline flags: a case-sensitive part of a case-insensitive list is no exact literal") {
  // FilteredRE2 gives "trackme" for "(?-i)trackme", and the scan finds it in "TRACKME" too.
  Reference r({"(?-i)trackme", "a(?-i)bcdef", "(?-i:abc|ABC)xyz", "(?i)ignored(?:x|y)"}, true);
  CHECK(r.got("TRACKME") == 0);
  CHECK(r.got("/trackme") == 1);
  CHECK(r.got("aBCDEF") == 0);
  CHECK(r.got("Abcdef") == 2);
  CHECK(r.got("aBcxyz") == 0);
  CHECK(r.got("ABCXYZ") == 3);
  CHECK(r.got("IGNOREDX") == 4);
}

TEST_CASE("non-ASCII texts: RE2's Unicode case folding is honoured") {
  // RE2 lets a case-insensitive 's' match U+017F and 'k' U+212A; the literal scan sees them as s and k.
  Reference ci({"track[0-9]+/seo", "pixel(x|y)\\.kom", "onlyliteral\\.sk"}, true);
  CHECK(ci.got("track1/\xC5\xBF" "eo") == 1);
  CHECK(ci.got("track1/s\xC3\xA9o") == 0);
  CHECK(ci.got("pixelx.\xE2\x84\xAA" "om") == 2);
  CHECK(ci.got("a.onlyliteral.\xC5\xBF\xE2\x84\xAA") == 3);
  CHECK(ci.got("a.onlyliteral.\xC5\xBF") == 0);
  // A case-sensitive non-ASCII literal: FilteredRE2 lower-cases it, so it must not be prefiltered.
  Reference cs({"CAF\xC3\x89/x[0-9]"}, false);
  CHECK(cs.got("/CAF\xC3\x89/x1") == 1);
  CHECK(cs.got("/caf\xC3\xA9/x1") == 0);
  Reference cs2({"track[0-9]+/seo"}, false);
  CHECK(cs2.got("track1/\xC5\xBF" "eo") == 0);
}

TEST_CASE("matching agrees with RE2 pattern by pattern on generated lists (differential)") {
  // Patterns are built from pieces each with a sample text it matches; texts are samples with
  // random context, some mutated, some with upper case, newlines or non-ASCII bytes. Literals come
  // from a small pool so that patterns share them and candidates overlap.
  struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
      std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  } r{20250601};
  const char* words[] = {"ad", "ban", "ner", "pix", "el", "trk", "cdn", "go", "sk", "Ks", "s", "k", "AD", "Pix", "ly"};
  struct Atom {
    const char* pattern;
    const char* sample;
  };
  const Atom atoms[] = {{"\\.", "."}, {"/", "/"}, {"\\?", "?"}, {"-", "-"}, {"=", "="}, {"_", "_"}, {"&", "&"},
                        {"[0-9]", "7"}, {"[a-z]", "q"}, {"[^/]", "%"}, {"\\d", "3"}, {"\\w", "W"}, {".", "~"},
                        {"[_-]", "-"}, {"[[:alpha:]]", "b"}, {"\\x41", "a"}, {"[a-c]", "C"}, {"\\s", " "},
                        {"[^a-z]", "\n"}, {"\\b", ""}, {"\\$", "$"}, {"[.]", "."}};
  auto word = [&] {
    std::string w = words[r.below(std::size(words))];
    if (r.below(2) == 0) w += words[r.below(std::size(words))];
    return w;
  };
  std::function<void(int, std::string&, std::string&)> piece = [&](int depth, std::string& p, std::string& t) {
    switch (r.below(depth < 2 ? 6 : 3)) {
      case 0: {
        auto w = word();
        p += w;
        t += w;
        return;
      }
      case 1: {
        const Atom& a = atoms[r.below(std::size(atoms))];
        p += a.pattern;
        t += a.sample;
        return;
      }
      case 2: {
        auto w = word();
        p += w;
        t += r.below(3) == 0 ? w.substr(0, w.size() - 1) : w;  // a near miss
        return;
      }
      case 3: {  // alternation
        std::string a, at, b, bt;
        piece(depth + 1, a, at);
        piece(depth + 1, b, bt);
        p += (r.below(2) == 0 ? "(" : "(?:") + a + "|" + b + (r.below(5) == 0 ? "|" : "") + ")";
        t += r.below(2) == 0 ? at : bt;
        return;
      }
      default: {  // repetition of a group
        std::string a, at;
        piece(depth + 1, a, at);
        const char* ops[] = {"?", "*", "+", "{2}", "{1,3}", "{0,2}", "{2,}", "*?", "+?", "??"};
        const int min_count[] = {0, 0, 1, 2, 1, 0, 2, 0, 1, 0};
        std::size_t op = r.below(std::size(ops));
        p += "(?:" + a + ")" + ops[op];
        int n = min_count[op] + static_cast<int>(r.below(2));
        for (int k = 0; k < n; ++k) t += at;
        return;
      }
    }
  };
  std::vector<std::string> patterns, samples;
  for (int i = 0; i < 300; ++i) {
    std::string p, t;
    bool start = r.below(6) == 0, end = r.below(6) == 0;
    std::size_t pieces = 1 + r.below(4);
    for (std::size_t k = 0; k < pieces; ++k) piece(0, p, t);
    // One required literal, so that few patterns match most texts; or, for one in ten, none of 3
    // characters, so that the pattern goes to an RE2::Set.
    std::string w = r.below(10) == 0 ? "q" : word() + word();
    if (r.below(2) == 0) {
      p += w;
      t += w;
    } else if (w == "q") {  // no literal of 3 characters is required
      p = "(?:" + p + ")?q[0-9]+z";
      t += "q" + std::to_string(r.below(100)) + "z";
    } else {
      p = w + p;
      t = w + t;
    }
    if (std::size_t f = r.below(20); f < 2) p = (f == 0 ? "(?i)" : "(?-i)") + p;  // inline flags
    patterns.push_back((start ? "^" : "") + p + (end ? "$" : ""));
    samples.push_back(t);
  }
  std::vector<std::string> texts;
  const char* noise[] = {"https://", "www.", "x", "/", "?a=1&", ".com", "ADS", "\n", "\xC5\xBF", "\xE2\x84\xAA", "\xC3\xA9",
                         "k", "S", "ban", "trk"};
  for (int i = 0; i < 1500; ++i) {
    std::string t;
    for (std::size_t k = r.below(3); k > 0; --k) t += noise[r.below(std::size(noise))];
    if (r.below(5) != 0) {
      std::string s = samples[r.below(samples.size())];
      if (!s.empty() && r.below(4) == 0) s[r.below(s.size())] = "xS/.9\n"[r.below(6)];
      if (!s.empty() && r.below(4) == 0) {
        for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      t += s;
    }
    for (std::size_t k = r.below(3); k > 0; --k) t += noise[r.below(std::size(noise))];
    texts.push_back(std::move(t));
  }
  for (bool case_insensitive : {true, false}) {
    for (std::size_t shard_size : {std::size_t{0}, std::size_t{16}}) {
      CAPTURE(case_insensitive);
      CAPTURE(shard_size);
      Reference ref(patterns, case_insensitive, shard_size);
      CHECK(ref.set.compact_verified() > 100);
      std::size_t matched = 0, mismatches = 0;
      for (const auto& t : texts) {
        auto want = ref.want(t);
        auto got = ref.got(t);
        matched += want != 0;
        if (got != want && ++mismatches <= 5) {
          CAPTURE(t);
          CAPTURE(want == 0 ? std::string("-") : patterns[want - 1]);
          CAPTURE(got == 0 ? std::string("-") : patterns[got - 1]);
          CHECK(got == want);
        }
      }
      CHECK(mismatches == 0);
      CHECK(matched > texts.size() / 3);  // the texts exercise matches, not only misses
      CHECK(matched < texts.size());
    }
  }
}

TEST_CASE("an empty regex list matches nothing") {
  auto load = compile_list(spec("r", ListKind::regex), "# nothing yet\n");
  REQUIRE(load.ok());
  CHECK(hit(*load.list, "anything").empty());
}

}  // TEST_SUITE

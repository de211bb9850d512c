#include "portier/policy/domain_set.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using namespace portier::policy;

namespace {

constexpr std::string_view kFile = "rules/lists/ads.txt";

// Keeps the parsed text alive with the set, since parsed entries view into it.
struct Built {
  std::string text;
  ParsedDomainList parsed;
  DomainSet set;
};

Built build(std::string text) {
  Built b;
  b.text = std::move(text);
  b.parsed = parse_domain_list(b.text, kFile);
  b.set = DomainSet::build(b.parsed.entries, std::string(kFile));
  return b;
}

// "domain@line" of the entry matching host, or "" when none does.
std::string hit(const DomainSet& set, std::string_view host) {
  const auto* e = set.match(host);
  if (e == nullptr) return "";
  return std::string(set.domain(*e)) + "@" + std::to_string(e->line);
}

std::vector<std::string> errors(const ParsedDomainList& p) {
  std::vector<std::string> out;
  for (const auto& e : p.errors) out.push_back(e.describe());
  return out;
}

}  // namespace

TEST_SUITE("policy.domain_set") {

TEST_CASE("a listed domain matches itself and its subdomains, not other names ending in it") {
  auto b = build("example.com\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "example.com") == "example.com@1");
  CHECK(hit(b.set, "a.example.com") == "example.com@1");
  CHECK(hit(b.set, "a.b.example.com") == "example.com@1");
  CHECK(hit(b.set, "badexample.com").empty());
  CHECK(hit(b.set, "example.com.evil.net").empty());
  CHECK(hit(b.set, "com").empty());
  CHECK(hit(b.set, "example.org").empty());
  CHECK(hit(b.set, "").empty());
}

TEST_CASE("matching is case-insensitive in the list and in the host") {
  auto b = build("Ads.EXAMPLE.com\n");
  CHECK(hit(b.set, "ads.example.com") == "ads.example.com@1");
  CHECK(hit(b.set, "X.ADS.Example.COM") == "ads.example.com@1");
}

TEST_CASE("one trailing dot on the host or the list entry is ignored") {
  auto b = build("example.com.\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "example.com.") == "example.com@1");
  CHECK(hit(b.set, "www.example.com.") == "example.com@1");
  CHECK(hit(b.set, "example.com") == "example.com@1");
  CHECK(hit(b.set, "example.com..").empty());
}

TEST_CASE("punycode hosts match punycode entries") {
  auto b = build("xn--bcher-kva.example\n");
  CHECK(hit(b.set, "xn--bcher-kva.example") == "xn--bcher-kva.example@1");
  CHECK(hit(b.set, "shop.XN--BCHER-KVA.example") == "xn--bcher-kva.example@1");
  CHECK(hit(b.set, "bücher.example").empty());
}

TEST_CASE("IP literal hosts never match a domain list") {
  auto b = build("example.com\nintranet\n");
  CHECK(hit(b.set, "10.0.0.1").empty());
  CHECK(hit(b.set, "::1").empty());
  CHECK(hit(b.set, "[::1]").empty());
  CHECK(hit(b.set, "1.2.3.4.").empty());
  CHECK(is_ip_literal_host("192.0.2.1"));
  CHECK(is_ip_literal_host("2001:db8::1"));
  CHECK_FALSE(is_ip_literal_host("example.com"));
}

TEST_CASE("the most specific listed domain is reported") {
  auto b = build("example.com\nads.example.com\ncom\n");
  CHECK(hit(b.set, "x.ads.example.com") == "ads.example.com@2");
  CHECK(hit(b.set, "ads.example.com") == "ads.example.com@2");
  CHECK(hit(b.set, "www.example.com") == "example.com@1");
  CHECK(hit(b.set, "other.com") == "com@3");
}

TEST_CASE("duplicates are merged and the lowest line is kept") {
  auto b = build("tracker.example\nads.example\ntracker.example\nADS.example\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(b.set.size() == 2);
  CHECK(hit(b.set, "tracker.example") == "tracker.example@1");
  CHECK(hit(b.set, "ads.example") == "ads.example@2");
}

TEST_CASE("a wildcard entry matches subdomains only") {
  auto b = build("*.example.com\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "a.example.com") == "example.com@1");
  CHECK(hit(b.set, "a.b.example.com") == "example.com@1");
  CHECK(hit(b.set, "example.com").empty());

  SUBCASE("a shorter listed parent still matches the apex") {
    auto p = build("*.example.com\ncom\n");
    CHECK(hit(p.set, "example.com") == "com@2");
  }
  SUBCASE("a plain line for the same domain wins, since it matches more") {
    auto p = build("*.example.com\nexample.com\n");
    CHECK(p.set.size() == 1);
    CHECK(hit(p.set, "example.com") == "example.com@2");
    CHECK(hit(p.set, "a.example.com") == "example.com@2");
  }
}

TEST_CASE("comments, blank lines and trailing comments are skipped") {
  auto b = build("# a comment\n\n   \n! adblock comment\n[Adblock Plus 2.0]\nads.example   # why\n\tads2.example\t\n");
  REQUIRE(b.parsed.errors.empty());
  REQUIRE(b.parsed.entries.size() == 2);
  CHECK(b.parsed.entries[0].line == 6);
  CHECK(b.parsed.entries[0].domain == "ads.example");
  CHECK(b.parsed.entries[1].line == 7);
  CHECK(b.parsed.entries[1].domain == "ads2.example");
}

TEST_CASE("CRLF line ends and a byte-order mark are accepted") {
  auto b = build("\xEF\xBB\xBF" "ads.example\r\ntrack.example\r\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "ads.example") == "ads.example@1");
  CHECK(hit(b.set, "track.example") == "track.example@2");
}

TEST_CASE("hosts-file lines list every name after the address") {
  auto b = build(
      "127.0.0.1 localhost\n"
      "::1 localhost ip6-localhost ip6-loopback\n"
      "fe80::1%lo0 localhost\n"
      "255.255.255.255 broadcasthost\n"
      "0.0.0.0 0.0.0.0\n"
      "0.0.0.0 ads.example\n"
      "127.0.0.1 a.example b.example  # two names\n"
      ":: v6.example\n");
  REQUIRE(errors(b.parsed).empty());
  REQUIRE(b.parsed.entries.size() == 4);
  CHECK(hit(b.set, "ads.example") == "ads.example@6");
  CHECK(hit(b.set, "a.example") == "a.example@7");
  CHECK(hit(b.set, "x.b.example") == "b.example@7");
  CHECK(hit(b.set, "v6.example") == "v6.example@8");
  CHECK(hit(b.set, "localhost").empty());
}

TEST_CASE("adblock ||domain^ lines match the domain and its subdomains") {
  auto b = build("||ads.example^\n||track.example^|\n||x.example^$important\n");
  REQUIRE(errors(b.parsed).empty());
  CHECK(hit(b.set, "ads.example") == "ads.example@1");
  CHECK(hit(b.set, "cdn.ads.example") == "ads.example@1");
  CHECK(hit(b.set, "track.example") == "track.example@2");
  CHECK(hit(b.set, "x.example") == "x.example@3");
}

TEST_CASE("a Squid-style leading dot means the domain and its subdomains") {
  auto b = build(".example.com\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "example.com") == "example.com@1");
  CHECK(hit(b.set, "a.example.com") == "example.com@1");
}

TEST_CASE("single-label names are accepted") {
  auto b = build("intranet\n");
  REQUIRE(b.parsed.errors.empty());
  CHECK(hit(b.set, "intranet") == "intranet@1");
  CHECK(hit(b.set, "wiki.intranet") == "intranet@1");
}

TEST_CASE("every bad line is reported with its file, line and reason") {
  std::string long_label(64, 'a');
  std::string long_name;
  for (int i = 0; i < 26; ++i) long_name += "abcdefghi.";
  long_name += "com";  // 263 characters
  auto b = build(
      "good.example\n"                                   // 1
      "bücher.example\n"                                 // 2
      "@@||ads.example^\n"                               // 3
      "||ads.example^$third-party\n"                     // 4
      "||ads.example/banner\n"                           // 5
      "||ads.example\n"                                  // 6
      "ads.example^\n"                                   // 7
      "-ads.example\n"                                   // 8
      + long_label + ".example\n"                        // 9
      + long_name + "\n"                                 // 10
      "a..example\n"                                     // 11
      "1.2.3.4\n"                                        // 12
      "host.123\n"                                       // 13
      "ads.*.example\n"                                  // 14
      "foo bar\n"                                        // 15
      "0.0.0.0 ok.example bad_.example- \n"              // 16
      "example.com##.banner\n"                           // 17
      "also-good.example\n");                            // 18
  auto e = errors(b.parsed);
  REQUIRE(e.size() == 16);
  CHECK(e[0] == "rules/lists/ads.txt:2: non-ASCII domain: write it in punycode (xn--...)");
  CHECK(e[1] == "rules/lists/ads.txt:3: exception rules (@@) are not supported");
  CHECK(e[2].starts_with("rules/lists/ads.txt:4: adblock option \"$third-party\" is not supported"));
  CHECK(e[3] == "rules/lists/ads.txt:5: adblock rules with a path or pattern are not supported; only ||domain^");
  CHECK(e[4] == "rules/lists/ads.txt:6: adblock rule without '^' after the domain; only ||domain^ is supported");
  CHECK(e[5] == "rules/lists/ads.txt:7: invalid character '^' in \"ads.example^\"");
  CHECK(e[6] == "rules/lists/ads.txt:8: label \"-ads\" starts or ends with '-'");
  CHECK(e[7].starts_with("rules/lists/ads.txt:9: label \"aaaa"));
  CHECK(e[7].ends_with("is longer than 63 characters"));
  CHECK(e[8] == "rules/lists/ads.txt:10: domain is 263 characters long; the limit is 253");
  CHECK(e[9] == "rules/lists/ads.txt:11: empty label in \"a..example\"");
  CHECK(e[10] == "rules/lists/ads.txt:12: \"1.2.3.4\" is an IP address; domain lists hold host names");
  CHECK(e[11] == "rules/lists/ads.txt:13: last label \"123\" is all digits: not a domain name");
  CHECK(e[12].starts_with("rules/lists/ads.txt:14: '*' is accepted only as a leading \"*.\""));
  CHECK(e[13].starts_with("rules/lists/ads.txt:15: expected one domain per line, or \"ADDRESS NAME...\""));
  CHECK(e[14] == "rules/lists/ads.txt:16: label \"example-\" starts or ends with '-'");
  CHECK(e[15] == "rules/lists/ads.txt:17: cosmetic (element hiding) rules are not supported");
  // the good lines, and the good name of line 16, are still parsed
  REQUIRE(b.parsed.entries.size() == 3);
  CHECK(b.parsed.entries[0].domain == "good.example");
  CHECK(b.parsed.entries[1].domain == "ok.example");
  CHECK(b.parsed.entries[2].line == 18);
}

TEST_CASE("underscores are accepted in labels") {
  auto b = build("_dmarc.example\nads_1.example\n");
  CHECK(b.parsed.errors.empty());
  CHECK(hit(b.set, "x.ads_1.example") == "ads_1.example@2");
}

TEST_CASE("very long hosts still match through their last 253 characters") {
  auto b = build("ads.example\n");
  std::string host;
  for (int i = 0; i < 60; ++i) host += "abcdefgh.";
  host += "ads.example";
  CHECK(hit(b.set, host) == "ads.example@1");
}

TEST_CASE("an empty set matches nothing") {
  DomainSet empty;
  CHECK(empty.match("example.com") == nullptr);
  auto b = build("# only comments\n");
  CHECK(b.set.empty());
  CHECK(hit(b.set, "example.com").empty());
}

TEST_CASE("a large set keeps every entry findable") {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "host" + std::to_string(i) + ".example\n";
  auto b = build(std::move(text));
  REQUIRE(b.set.size() == 20000);
  CHECK(hit(b.set, "host0.example") == "host0.example@1");
  CHECK(hit(b.set, "a.host19999.example") == "host19999.example@20000");
  CHECK(hit(b.set, "host20000.example").empty());
}

}  // TEST_SUITE

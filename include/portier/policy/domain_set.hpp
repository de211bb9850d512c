#pragma once
// Domain lists: a set of domains that each match themselves and all their subdomains, built for
// about a million entries. The domains live in one arena; a flat open-addressing table maps the
// 64-bit hash of each listed domain to its entry. A lookup hashes the host once from right to left,
// which yields the hash of every suffix that starts at a label boundary, and probes the longest
// suffix first: the first hit is the most specific listed domain. A hit is confirmed by comparing
// the strings, so a hash collision can never match. Nothing is allocated per lookup.
//
// List files are parsed by parse_domain_list; the line formats are described there.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portier::policy {

// A bad line of a list file: "rules/lists/ads.txt:12: invalid character '^' in ...".
// line 0 means the whole file (unreadable, too large, or a list that does not compile).
struct LineError {
  std::string file;
  std::uint32_t line = 0;
  std::string reason;

  std::string describe() const;  // "file:line: reason", or "file: reason" for line 0
};

// One domain taken from a list file. `domain` views into the parsed text (which must outlive it) and
// may still hold upper-case letters; DomainSet::build lowercases it.
struct DomainLine {
  std::string_view domain;
  std::uint32_t line = 0;
  bool subdomains_only = false;  // written as "*.example.com": subdomains match, example.com itself does not
};

struct ParsedDomainList {
  std::vector<DomainLine> entries;
  std::vector<LineError> errors;  // in line order; every bad line, not just the first
};

// Parses a domain list. Per line (after an optional UTF-8 byte-order mark; CRLF is accepted):
//   - blank lines, and lines starting with '#' or '!' are comments; "[Adblock Plus 2.0]"-style header
//     lines are skipped. A '#' preceded by a space or tab starts a trailing comment.
//   - "ads.example.com": the domain and all its subdomains. A leading dot (".ads.example.com", Squid
//     style) and one trailing dot mean the same.
//   - "*.ads.example.com": only the subdomains of ads.example.com, not ads.example.com itself. '*' is
//     accepted only as that leading "*." label.
//   - hosts-file lines "0.0.0.0 ads.example", "127.0.0.1 a.example b.example", ":: ads.example": an IP
//     address followed by one or more names, each meaning the name and its subdomains. The names
//     localhost, localhost.localdomain, local, broadcasthost, ip6-localhost, ip6-loopback, ip6-localnet,
//     ip6-mcastprefix, ip6-allnodes, ip6-allrouters, ip6-allhosts and 0.0.0.0 are skipped silently.
//   - adblock "||ads.example^" (optionally followed by '|'): the domain and its subdomains. The options
//     $important and $all are accepted (they don't narrow the rule); any other option ($third-party,
//     $script, $domain=...) is a bad line, since portier blocks whole domains and would block more than
//     the rule says. Exception rules "@@..." are bad lines ("exception rules are not supported"), and so
//     are rules with a path or pattern ("||ads.example/banner") and cosmetic rules ("example.com##.ad").
// A domain has labels of [a-z0-9_-] (upper case is accepted and lowercased; '_' appears in real lists),
// 1..63 characters each, not starting or ending with '-', at most 253 characters in all. Single-label
// names ("intranet") are accepted and match that name and its subdomains. Non-ASCII names are bad lines
// ("non-ASCII domain: write it in punycode (xn--...)"), and so are IP addresses and names whose last
// label is all digits, since IP-literal hosts never match a domain list. Duplicates are fine.
ParsedDomainList parse_domain_list(std::string_view text, std::string_view file_name);

// Why `domain` (without a trailing dot) is not a valid list entry, or an empty string when it is.
std::string domain_problem(std::string_view domain);

// True for hosts that are IP literals ("10.0.0.1", "::1", "[::1]") or look like one (last label all
// digits): these never match a domain list.
bool is_ip_literal_host(std::string_view host) noexcept;

class DomainSet {
 public:
  struct Entry {
    std::uint32_t offset = 0;  // of the lower-case domain in the arena
    std::uint32_t line = 0;    // line in the list file
    std::uint8_t length = 0;
    bool subdomains_only = false;
  };

  DomainSet() = default;

  // Builds the set from parsed lines (`file` names the list file for messages and the access log).
  // Domains are lowercased and a trailing dot dropped; lines that are empty or longer than 253
  // characters are ignored (parse_domain_list reports them). For a domain listed more than once, a
  // plain line wins over a "*." line (it matches more), and otherwise the lowest line is kept.
  static DomainSet build(std::span<const DomainLine> lines, std::string file);

  // The most specific entry that matches `host` (the host itself, else its parent domains from the
  // longest), or nullptr. Case-insensitive; one trailing dot is ignored; IP literals never match.
  // Hosts longer than 253 characters still match through their last 253 characters.
  const Entry* match(std::string_view host) const noexcept;

  std::string_view domain(const Entry& e) const noexcept { return {arena_.data() + e.offset, e.length}; }
  const std::string& file() const noexcept { return file_; }
  std::size_t size() const noexcept { return entries_.size(); }  // distinct domains
  bool empty() const noexcept { return entries_.empty(); }
  std::size_t memory_bytes() const noexcept;  // arena + entries + table, for metrics and the benchmark

 private:
  struct Slot {
    std::uint32_t tag = 0;    // upper 32 bits of the hash
    std::uint32_t entry = 0;  // index into entries_ plus one; 0 = empty slot
  };

  const Entry* find(std::string_view lower_or_host, std::uint64_t hash) const noexcept;

  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<Slot> slots_;
  std::uint64_t mask_ = 0;
  std::string file_;
};

}  // namespace portier::policy

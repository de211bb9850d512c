#pragma once
// Named lists loaded from files under rules/ and compiled once at config load:
//   - `domain` lists (see parse_domain_list for the line formats) compile to a DomainSet;
//   - `regex` lists (one RE2 pattern a line) compile to a literal prefilter plus RE2 (see RegexSet)
//     under a memory budget.
// Loading reports every bad line with file:line and reason (what --check prints); matching returns
// the entry that matched with its file and line, for the access log ("rules/lists/ads.txt:123").
// Loading reads the list file; matching is pure (no I/O, no clock, no allocation on the domain path).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "portier/core/error.hpp"
#include "portier/policy/domain_set.hpp"

namespace portier::policy {

inline constexpr std::size_t kDefaultRegexMaxMem = std::size_t{64} << 20;  // per regex list
inline constexpr std::size_t kDefaultRegexShardSize = 2000;                // patterns per RE2::Set (see RegexSet)
inline constexpr std::size_t kMaxListFileBytes = std::size_t{512} << 20;

// ---- regex lists ----------------------------------------------------------------------------------

// One pattern taken from a list file; `pattern` views into the parsed text.
struct RegexLine {
  std::string_view pattern;
  std::uint32_t line = 0;
};

struct ParsedRegexList {
  std::vector<RegexLine> entries;
  std::vector<LineError> errors;  // RE2's message for each pattern it rejects, in line order
};

// One RE2 pattern per line (after an optional UTF-8 byte-order mark; CRLF is accepted). Leading and
// trailing spaces and tabs are trimmed (write [ ] or \x20 for a significant edge space). Blank lines
// and lines whose first non-blank character is '#' are comments; there are no trailing comments,
// since '#' and spaces are ordinary characters in a pattern. Each pattern is parsed by RE2:
//   rules/lists/track.txt:7: RE2 rejected "(ads|": missing ): (ads|
ParsedRegexList parse_regex_list(std::string_view text, std::string_view file_name, bool case_insensitive = true);

struct RegexOptions {
  bool case_insensitive = true;
  // Memory budget for the whole compiled list (RE2's max_mem): the literal index, the programs of
  // the prefiltered patterns, and the RE2::Sets of the other patterns (which get what is left, split
  // evenly, for their programs and lazily built DFA caches).
  std::size_t max_mem = kDefaultRegexMaxMem;
  // Patterns per RE2::Set for the patterns that are not prefiltered (0 = one Set for all of them).
  std::size_t shard_size = kDefaultRegexShardSize;
};

// A regex list compiled for many patterns; matching is unanchored (a pattern matches anywhere unless
// it says ^ or $). One RE2::Set over thousands of patterns is slow on varied text: its lazy DFA needs
// new states for almost every new URL and thrashes its cache (measured: p50 360 us for 10,000
// patterns; 11 us sharded by 2,000). So the list is split:
//   - Prefiltered patterns. RE2's FilteredRE2, run on each pattern alone, gives the literals a match
//     must contain (at least 3 characters: "tracker.", "/banner") and the exact boolean condition
//     over them. One pass over the text finds the literals present (a Wu-Manber scan keyed by each
//     literal's rarest 4 bytes), which selects the patterns whose condition holds; each of those runs
//     as its own RE2, lowest line first. A pattern whose condition is "any of its literals" and whose
//     literals are all whole matches of it (no anchors, case-insensitive list), such as
//     "track(er|ing)\.example\.(com|net)", needs no RE2 run at all.
//     A candidate's own RE2 is cold (each pattern matches rarely) and costs 4-10 us in dependent cache
//     misses, so a pattern in a simple subset of the syntax (literals, classes, groups, |, ?, *, +,
//     {n,m}, ^ first and $ last) is verified on ASCII texts by a TinyProgram instead: its position
//     automaton, a few hundred contiguous bytes that are prefetched for all candidates at once and
//     run bit-parallel (about 0.3 us). What each character or class accepts is asked of RE2 at build
//     time, so the answer is RE2's; other texts and patterns use the RE2.
//   - The rest: patterns with no usable literal ("^[a-z]{12}[0-9]+\.") or whose condition holds on
//     common literals alone (required by more than 16 patterns: "http", ".com/") go to RE2::Sets of
//     shard_size patterns, one DFA pass per Set.
// Matching allocates nothing once a thread's scratch space is warm (RE2::Set allocates only for a
// text that matches one of its patterns).
class RegexSet {
 public:
  struct Entry {
    std::uint32_t offset = 0;  // of the pattern in the arena
    std::uint32_t length = 0;
    std::uint32_t line = 0;
  };

  RegexSet();
  RegexSet(RegexSet&&) noexcept;
  RegexSet& operator=(RegexSet&&) noexcept;
  ~RegexSet();

  // `list_name` is used in messages. Fails when a pattern is rejected, or when the compiled list does
  // not fit the budget:
  //   regex list ads: compiled automaton exceeds max_mem 64 MiB; raise lists.ads.max_mem_mb or split the list
  static Result<RegexSet> build(std::string_view list_name, std::string file, std::span<const RegexLine> lines,
                                const RegexOptions& options = {});

  // The matching entry with the lowest line, or nullptr when none matches. An error only when an
  // RE2::Set's DFA runs out of its memory budget on this text (the caller decides whether that denies
  // or allows).
  Result<const Entry*> match(std::string_view text) const;

  std::string_view pattern(const Entry& e) const noexcept { return {arena_.data() + e.offset, e.length}; }
  const std::string& file() const noexcept { return file_; }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t prefiltered() const noexcept;     // patterns behind the literal prefilter
  std::size_t compact_verified() const noexcept;  // of those, verified by a TinyProgram (ASCII texts)
  std::size_t shards() const noexcept;          // RE2::Sets for the other patterns
  std::size_t compiled_bytes() const noexcept;  // what the budget check counted (Sets: their share)

 private:
  struct Impl;

  std::string name_;
  std::string file_;
  std::string arena_;
  std::vector<Entry> entries_;
  std::unique_ptr<Impl> impl_;
};

// ---- named lists ----------------------------------------------------------------------------------

enum class ListKind { domain, regex };
const char* list_kind_name(ListKind k) noexcept;  // "domain", "regex"

struct ListSpec {
  std::string name;          // "ads"
  std::string path;          // file to read ("rules/lists/ads.txt"); also the name in messages and logs
  ListKind kind = ListKind::domain;
  bool case_insensitive = true;  // regex lists only; domain lists are always case-insensitive
  std::size_t max_mem = kDefaultRegexMaxMem;  // regex lists only
  std::size_t shard_size = kDefaultRegexShardSize;  // regex lists only
  std::size_t max_file_bytes = kMaxListFileBytes;
};

// What matched, for the decision and the access log. Views into the NamedList.
struct ListMatch {
  std::string_view list;   // "ads"
  std::string_view entry;  // the lower-case domain or the pattern
  std::string_view file;   // "rules/lists/ads.txt"
  std::uint32_t line = 0;

  std::string describe() const;  // "rules/lists/ads.txt:123"
};

class NamedList {
 public:
  NamedList(std::string name, DomainSet set) : name_(std::move(name)), impl_(std::move(set)) {}
  NamedList(std::string name, RegexSet set) : name_(std::move(name)), impl_(std::move(set)) {}

  const std::string& name() const noexcept { return name_; }
  ListKind kind() const noexcept { return impl_.index() == 0 ? ListKind::domain : ListKind::regex; }
  const std::string& file() const noexcept;
  std::size_t size() const noexcept;

  // Domain lists: `subject` is the host (never fails). Regex lists: `subject` is the text the rule
  // matches (host or URL); fails only when RE2 runs out of memory (see RegexSet::match).
  Result<std::optional<ListMatch>> match(std::string_view subject) const;

  const DomainSet* domains() const noexcept { return std::get_if<DomainSet>(&impl_); }
  const RegexSet* regexes() const noexcept { return std::get_if<RegexSet>(&impl_); }

 private:
  std::string name_;
  std::variant<DomainSet, RegexSet> impl_;
};

// The compiled list, or every error (each bad line, an unreadable file, a list over its budget).
struct ListLoad {
  std::shared_ptr<const NamedList> list;  // null when errors is not empty
  std::vector<LineError> errors;

  bool ok() const noexcept { return list != nullptr; }
};

// Reads spec.path (at most spec.max_file_bytes) and compiles it. Any bad line fails the whole list.
ListLoad load_list(const ListSpec& spec);
// The same from text already in memory; spec.path only names it in messages.
ListLoad compile_list(const ListSpec& spec, std::string_view text);

// Whole-file read with the limit; "cannot read: No such file or directory" and the like.
Result<std::string> read_list_file(const std::string& path, std::size_t max_bytes = kMaxListFileBytes);

// The lists of one snapshot, found by name.
class ListSet {
 public:
  void add(std::shared_ptr<const NamedList> list);  // replaces a list of the same name
  const NamedList* find(std::string_view name) const noexcept;
  std::size_t size() const noexcept { return lists_.size(); }

 private:
  std::vector<std::shared_ptr<const NamedList>> lists_;
};

}  // namespace portier::policy

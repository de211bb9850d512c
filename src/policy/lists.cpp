#include "portier/policy/lists.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <unordered_map>

#include <re2/filtered_re2.h>
#include <re2/re2.h>
#include <re2/set.h>

namespace portier::policy {
namespace {

std::string_view trim_blanks(std::string_view s) noexcept {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

std::string format_bytes(std::size_t n) {
  if (n >= (std::size_t{1} << 20) && n % (std::size_t{1} << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

RE2::Options re2_options(bool case_insensitive, std::size_t max_mem) {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_case_sensitive(!case_insensitive);
  o.set_never_capture(true);
  o.set_max_mem(static_cast<int64_t>(max_mem));
  return o;
}

re2::StringPiece piece(std::string_view s) noexcept { return {s.data(), s.size()}; }

Error list_error(std::string message) { return Error(errc::internal, Side::internal, std::move(message)); }

}  // namespace

// ---- regex lists ----------------------------------------------------------------------------------

ParsedRegexList parse_regex_list(std::string_view text, std::string_view file_name, bool case_insensitive) {
  ParsedRegexList out;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  // RE2::Set::Add parses without compiling, which is all a syntax check needs.
  RE2::Set checker(re2_options(case_insensitive, kDefaultRegexMaxMem), RE2::UNANCHORED);
  std::string problem;
  std::uint32_t number = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = trim_blanks(text.substr(0, nl));
    ++number;
    if (!line.empty() && line.front() != '#') {
      problem.clear();
      if (checker.Add(piece(line), &problem) < 0) {
        std::string shown(line.substr(0, 80));
        if (line.size() > 80) shown += "...";
        out.errors.push_back({std::string(file_name), number, "RE2 rejected \"" + shown + "\": " + problem});
      } else {
        out.entries.push_back({line, number});
      }
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

namespace {

// Required literals shorter than this are not used for prefiltering (".js" is, "ad" is not).
constexpr int kMinAtomLen = 3;
// Per-pattern RE2 limit for the prefiltered patterns (their programs count against the list budget).
constexpr std::size_t kPatternMaxMem = std::size_t{1} << 20;
// RE2 instructions are 16 bytes; the budget check counts programs by instruction.
constexpr std::size_t kInstBytes = 16;
// A literal required by more patterns than this is common (".com/", "http", ".gif"). A pattern whose
// prefilter passes on common literals alone would be a candidate for most texts: it goes to a Set.
constexpr std::size_t kCommonLiteral = 16;
// Patterns with at most this many literals get an exact truth table of their prefilter (2^6 bits);
// a pattern with more is a candidate as soon as any of its literals is found (a superset).
constexpr std::size_t kMaxTableAtoms = 6;

// Finds the prefilter's literals in a text, Wu-Manber style. A literal of 8 or more bytes is keyed
// by its rarest 8-byte window, one of 4..7 bytes by its rarest 4-byte window, one of 3 bytes by
// itself. The scan rolls an 8-byte value over the text (ASCII folded to lower case, as the literals
// are); per width, a bitmap of the keys (at most 128 KiB) rejects almost every window, and only a
// window that passes is looked up and the literals keyed by it compared at their offset. Long keys
// rarely occur by accident, so few windows get that far. The structure is a few MB for tens of
// thousands of literals, where a dense Aho-Corasick automaton is tens of MB and misses the cache on
// almost every byte.
class LiteralScanner {
 public:
  void build(const std::vector<std::string>& atoms) {
    arena_.clear();
    atoms_.clear();
    for (const auto& a : atoms) {
      atoms_.push_back({static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(a.size())});
      for (char c : a) arena_.push_back(static_cast<char>(fold(static_cast<unsigned char>(c))));
    }
    for (std::size_t t = 0; t < kWidths.size(); ++t) {
      std::size_t width = kWidths[t];
      std::size_t longest = t == 0 ? SIZE_MAX : kWidths[t - 1] - 1;
      // How many literals each window occurs in, to key each literal by its rarest window.
      std::unordered_map<std::uint64_t, std::uint32_t> count;
      std::vector<std::size_t> mine;
      for (std::size_t i = 0; i < atoms_.size(); ++i) {
        auto a = text_of(i);
        if (a.size() < width || a.size() > longest) continue;
        mine.push_back(i);
        std::vector<std::uint64_t> grams;
        for (std::size_t k = 0; k + width <= a.size(); ++k) grams.push_back(gram(a, k, width));
        std::sort(grams.begin(), grams.end());
        grams.erase(std::unique(grams.begin(), grams.end()), grams.end());
        for (auto g : grams) ++count[g];
      }
      std::vector<std::pair<std::uint64_t, Keyed>> keyed;
      for (std::size_t i : mine) {
        auto a = text_of(i);
        std::size_t best = 0;
        std::uint32_t best_count = ~0u;
        for (std::size_t k = 0; k + width <= a.size(); ++k) {
          auto c = count[gram(a, k, width)];
          if (c < best_count) {
            best_count = c;
            best = k;
          }
        }
        keyed.push_back({gram(a, best, width), {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(best)}});
      }
      tables_[t] = Table::build(keyed);
    }
  }

  // Appends the index of every literal occurrence (repeats included) to `found`.
  void scan(std::string_view text, std::vector<int>& found) const {
    if (atoms_.empty()) return;
    std::uint64_t g = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      g = (g << 8) | fold(static_cast<unsigned char>(text[i]));
      for (std::size_t t = 0; t < kWidths.size(); ++t) {
        std::size_t width = kWidths[t];
        if (i + 1 < width || tables_[t].empty()) continue;
        std::uint64_t key = width == 8 ? g : g & ((std::uint64_t{1} << (8 * width)) - 1);
        tables_[t].probe(key, i + 1 - width, text, *this, found);
      }
    }
  }

  std::size_t bytes() const noexcept {
    std::size_t n = arena_.capacity() + atoms_.capacity() * sizeof(Atom);
    for (const auto& t : tables_) n += t.bytes();
    return n;
  }

 private:
  static constexpr std::array<std::size_t, 3> kWidths = {8, 4, 3};
  struct Atom {
    std::uint32_t offset;
    std::uint32_t length;
  };
  struct Keyed {
    std::uint32_t atom;
    std::uint32_t offset;  // of the key within the literal
  };

  static unsigned char fold(unsigned char c) noexcept { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
  std::string_view text_of(std::size_t i) const noexcept { return {arena_.data() + atoms_[i].offset, atoms_[i].length}; }
  // The window's bytes big-endian, as the scan's rolling value holds them.
  static std::uint64_t gram(std::string_view s, std::size_t k, std::size_t width) noexcept {
    std::uint64_t g = 0;
    for (std::size_t j = 0; j < width; ++j) g = (g << 8) | static_cast<unsigned char>(s[k + j]);
    return g;
  }

  bool occurs(std::uint32_t atom, std::string_view text, std::size_t start) const noexcept {
    const Atom& a = atoms_[atom];
    if (start + a.length > text.size()) return false;
    const char* p = arena_.data() + a.offset;
    for (std::size_t k = 0; k < a.length; ++k) {
      if (fold(static_cast<unsigned char>(text[start + k])) != static_cast<unsigned char>(p[k])) return false;
    }
    return true;
  }

  // Keys -> literals: a bitmap in front of an open-addressing table of key slots, each naming a run
  // of (literal, offset) pairs.
  class Table {
   public:
    static Table build(std::vector<std::pair<std::uint64_t, Keyed>>& keyed) {
      Table t;
      if (keyed.empty()) return t;
      std::sort(keyed.begin(), keyed.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
      std::size_t keys = 0;
      for (std::size_t i = 0; i < keyed.size(); ++i) keys += i == 0 || keyed[i].first != keyed[i - 1].first;
      std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, keys * 2));
      t.slots_.assign(capacity, Slot{});
      t.mask_ = capacity - 1;
      // About 32 bits per key, so that few text windows pass the bitmap by accident, at most 128 KiB.
      std::size_t bits = std::clamp<std::size_t>(std::bit_ceil(keys * 32), 4096, kMaxBitmapBits);
      t.bit_shift_ = 64 - std::countr_zero(bits);
      t.bitmap_.assign(bits / 64, 0);
      for (std::size_t i = 0; i < keyed.size();) {
        std::size_t j = i;
        while (j < keyed.size() && keyed[j].first == keyed[i].first) t.keyed_.push_back(keyed[j++].second);
        std::uint64_t key = keyed[i].first;
        t.bitmap_[t.bit(key) / 64] |= std::uint64_t{1} << (t.bit(key) % 64);
        for (std::size_t h = hash(key) & t.mask_;; h = (h + 1) & t.mask_) {
          if (t.slots_[h].end != 0) continue;
          t.slots_[h] = {key, static_cast<std::uint32_t>(t.keyed_.size() - (j - i)),
                         static_cast<std::uint32_t>(t.keyed_.size())};
          break;
        }
        i = j;
      }
      return t;
    }

    bool empty() const noexcept { return slots_.empty(); }

    void probe(std::uint64_t key, std::size_t pos, std::string_view text, const LiteralScanner& scanner,
               std::vector<int>& found) const {
      if ((bitmap_[bit(key) / 64] >> (bit(key) % 64) & 1) == 0) return;
      for (std::size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
        const Slot& s = slots_[h];
        if (s.end == 0) return;
        if (s.key != key) continue;
        for (auto k = s.begin; k < s.end; ++k) {
          const Keyed& e = keyed_[k];
          if (pos >= e.offset && scanner.occurs(e.atom, text, pos - e.offset)) found.push_back(static_cast<int>(e.atom));
        }
        return;
      }
    }

    std::size_t bytes() const noexcept {
      return slots_.capacity() * sizeof(Slot) + keyed_.capacity() * sizeof(Keyed) + bitmap_.capacity() * 8;
    }

   private:
    static constexpr std::size_t kMaxBitmapBits = std::size_t{1} << 20;
    struct Slot {
      std::uint64_t key = 0;
      std::uint32_t begin = 0;
      std::uint32_t end = 0;  // 0 = empty slot (a used slot names at least one literal)
    };
    static std::uint64_t hash(std::uint64_t key) noexcept { return (key * 0x9E3779B97F4A7C15ull) >> 32; }
    std::uint64_t bit(std::uint64_t key) const noexcept { return (key * 0xC2B2AE3D27D4EB4Full) >> bit_shift_; }

    std::vector<Slot> slots_;
    std::vector<Keyed> keyed_;
    std::vector<std::uint64_t> bitmap_;
    std::size_t mask_ = 0;
    int bit_shift_ = 52;
  };

  std::string arena_;
  std::vector<Atom> atoms_;
  std::array<Table, kWidths.size()> tables_;
};

// What RE2's prefilter says about one pattern, as a boolean function of its required literals.
struct PatternFilter {
  std::vector<std::string> atoms;  // lower case, distinct
  std::uint64_t table = 0;         // bit m set: passes when the atoms in mask m are present
  bool unfiltered = false;         // passes with no literal: no prefilter possible
  bool any = false;                // more than kMaxTableAtoms literals: treated as "any present"
  bool exact = false;              // finding any literal is a match: no RE2 run needed

  bool passes(std::uint32_t mask) const noexcept { return any ? mask != 0 : ((table >> mask) & 1) != 0; }
};

// No ^, $, \b, \B, \A or \z anywhere (a '^' in a class counts too: this only has to be safe).
bool without_assertions(std::string_view pattern) noexcept {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '^' || c == '$') return false;
    if (c == '\\' && i + 1 < pattern.size()) {
      char n = pattern[++i];
      if (n == 'b' || n == 'B' || n == 'A' || n == 'z') return false;
    }
  }
  return true;
}

// FilteredRE2 over the one pattern gives its literals and, asked with each subset of them, its exact
// prefilter (a FilteredRE2 over many patterns prunes common literals out of AND conditions, which
// makes it let far more candidates through).
RE2::ErrorCode analyze(std::string_view pattern, const RE2::Options& o, PatternFilter& out) {
  re2::FilteredRE2 f(kMinAtomLen);
  int id = 0;
  auto code = f.Add(piece(pattern), o, &id);
  if (code != RE2::NoError) return code;
  f.Compile(&out.atoms);
  std::vector<int> present, passed;
  f.AllPotentials(present, &passed);
  if (!passed.empty() || out.atoms.empty()) {
    out.unfiltered = true;
    return RE2::NoError;
  }
  // The scan folds ASCII case only: a case-insensitive pattern with a non-ASCII literal can't be prefiltered.
  if (!o.case_sensitive()) {
    for (const auto& a : out.atoms) {
      if (std::any_of(a.begin(), a.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
        out.unfiltered = true;
        return RE2::NoError;
      }
    }
  }
  if (out.atoms.size() > kMaxTableAtoms) {
    out.any = true;
  } else {
    for (std::uint32_t m = 1; m < (1u << out.atoms.size()); ++m) {
      present.clear();
      for (std::size_t b = 0; b < out.atoms.size(); ++b) {
        if ((m >> b) & 1) present.push_back(static_cast<int>(b));
      }
      f.AllPotentials(present, &passed);
      if (!passed.empty()) out.table |= std::uint64_t{1} << m;
    }
  }
  // Exact: the prefilter passes on any one literal, each literal is itself a match of the pattern,
  // and the pattern has no anchor or word boundary, so a literal anywhere in the text is a match
  // ("track(er|ing)\.example\.(com|net)"). Only for case-insensitive patterns, as the scan folds case.
  if (o.case_sensitive() || !without_assertions(pattern)) return RE2::NoError;
  for (std::size_t b = 0; b < out.atoms.size(); ++b) {
    present.assign(1, static_cast<int>(b));
    f.AllPotentials(present, &passed);
    if (passed.empty() || !RE2::FullMatch(piece(out.atoms[b]), f.GetRE2(0))) return RE2::NoError;
  }
  out.exact = true;
  return RE2::NoError;
}

std::string budget_message(std::string_view name, std::size_t max_mem) {
  return "regex list " + std::string(name) + ": compiled automaton exceeds max_mem " + format_bytes(max_mem) +
         "; raise lists." + std::string(name) + ".max_mem_mb or split the list";
}

// Per-thread scratch for matching, reused so that a match allocates nothing once warm. The marks are
// cleared after every use, so lists of any size can share them.
struct MatchScratch {
  std::vector<int> found;  // literal occurrences
  std::vector<std::uint8_t> seen;  // by literal
  std::vector<std::uint32_t> seen_list;
  std::vector<std::uint8_t> touched;  // by prefiltered pattern
  std::vector<std::uint32_t> touched_list;
  std::vector<std::uint32_t> candidates;
  std::vector<int> hits;  // RE2::Set matches
};

}  // namespace

struct RegexSet::Impl {
  struct Shard {
    explicit Shard(const RE2::Options& o) : set(o, RE2::UNANCHORED) {}
    RE2::Set set;
    std::vector<std::uint32_t> entry;  // Set index -> entry index (ascending)
  };

  // Prefiltered patterns, in entry order ("strong" index s).
  std::vector<std::unique_ptr<RE2>> re;     // s -> its RE2 (null for exact patterns)
  std::vector<std::uint32_t> strong_entry;  // s -> entry index
  std::vector<std::uint64_t> table;         // s -> truth table over its literals
  std::vector<std::uint8_t> any;            // s -> passes on any literal
  std::vector<std::uint8_t> exact;          // s -> a passing prefilter is a match
  std::vector<std::uint32_t> atom_begin;    // s -> range in atom_ids (size strong + 1)
  std::vector<std::uint32_t> atom_ids;      // the literals of each pattern, as global ids
  std::vector<std::uint32_t> posting_begin;  // literal -> range in postings (size literals + 1)
  std::vector<std::uint32_t> postings;       // patterns keyed by each literal
  LiteralScanner literals;
  std::size_t literal_count = 0;

  std::vector<std::unique_ptr<Shard>> shards;  // the other patterns, in entry order
  std::size_t compiled_bytes = 0;
  std::size_t max_mem = 0;
};

RegexSet::RegexSet() = default;
RegexSet::RegexSet(RegexSet&&) noexcept = default;
RegexSet& RegexSet::operator=(RegexSet&&) noexcept = default;
RegexSet::~RegexSet() = default;

std::size_t RegexSet::prefiltered() const noexcept { return impl_ ? impl_->re.size() : 0; }
std::size_t RegexSet::shards() const noexcept { return impl_ ? impl_->shards.size() : 0; }
std::size_t RegexSet::compiled_bytes() const noexcept { return impl_ ? impl_->compiled_bytes : 0; }

Result<RegexSet> RegexSet::build(std::string_view list_name, std::string file, std::span<const RegexLine> lines,
                                 const RegexOptions& options) {
  RegexSet rs;
  rs.name_ = std::string(list_name);
  rs.file_ = std::move(file);
  rs.impl_ = std::make_unique<Impl>();
  Impl& impl = *rs.impl_;
  impl.max_mem = options.max_mem;
  std::size_t bytes = 0;
  for (const auto& l : lines) bytes += l.pattern.size();
  rs.arena_.reserve(bytes);
  rs.entries_.reserve(lines.size());
  for (const auto& l : lines) {
    rs.entries_.push_back({static_cast<std::uint32_t>(rs.arena_.size()), static_cast<std::uint32_t>(l.pattern.size()),
                           l.line});
    rs.arena_.append(l.pattern);
  }
  if (lines.empty()) return rs;

  auto pattern_options = re2_options(options.case_insensitive, std::min(options.max_mem, kPatternMaxMem));
  auto rejected = [&](std::size_t i, RE2::ErrorCode code) {
    std::string where = "regex list " + rs.name_ + ", line " + std::to_string(lines[i].line) + ": ";
    if (code == RE2::ErrorPatternTooLarge) {
      return list_error(where + "pattern compiles to more than RE2's per-pattern limit of " +
                        format_bytes(std::min(options.max_mem, kPatternMaxMem)) + "; simplify it");
    }
    return list_error(where + "RE2 rejected \"" + std::string(lines[i].pattern) + "\"");
  };

  // 1. Each pattern's literals and prefilter.
  std::vector<PatternFilter> filters(lines.size());
  std::unordered_map<std::string_view, std::uint32_t> frequency;  // literal -> patterns requiring it
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (auto code = analyze(lines[i].pattern, pattern_options, filters[i]); code != RE2::NoError) {
      return rejected(i, code);
    }
    if (filters[i].unfiltered) continue;
    for (const auto& a : filters[i].atoms) ++frequency[a];
  }

  // 2. Prefilter the patterns that need a rare literal; the rest go to the Sets.
  std::vector<std::uint32_t> rest;
  std::unordered_map<std::string_view, std::uint32_t> literal_id;
  std::vector<std::string> literals;
  std::vector<std::vector<std::uint32_t>> keyed;  // literal -> strong patterns
  impl.atom_begin.push_back(0);
  for (std::uint32_t i = 0; i < lines.size(); ++i) {
    const auto& f = filters[i];
    bool weak = f.unfiltered;
    if (!weak) {
      std::uint64_t common = 0;
      for (std::size_t b = 0; b < f.atoms.size(); ++b) {
        if (frequency[f.atoms[b]] > kCommonLiteral) common |= std::uint64_t{1} << std::min<std::size_t>(b, 63);
      }
      weak = f.any ? common != 0 : f.passes(static_cast<std::uint32_t>(common));
    }
    if (weak) {
      rest.push_back(i);
      continue;
    }
    // Key literals: enough that every text passing the prefilter holds one of them, rarest kept. A
    // literal can be left out when the prefilter still fails with all the left-out ones present.
    std::vector<std::size_t> order(f.atoms.size());
    for (std::size_t b = 0; b < order.size(); ++b) order[b] = b;
    std::uint32_t left_out = 0;
    if (!f.any) {
      std::stable_sort(order.begin(), order.end(),
                       [&](std::size_t x, std::size_t y) { return frequency[f.atoms[x]] > frequency[f.atoms[y]]; });
      for (std::size_t b : order) {
        if (!f.passes(left_out | (1u << b))) left_out |= 1u << b;
      }
      if (left_out == (1u << f.atoms.size()) - 1) left_out = 0;  // (a prefilter that passes on nothing)
    }
    auto s = static_cast<std::uint32_t>(impl.re.size());
    for (std::size_t b = 0; b < f.atoms.size(); ++b) {
      auto [it, added] = literal_id.try_emplace(f.atoms[b], static_cast<std::uint32_t>(literals.size()));
      if (added) {
        literals.push_back(f.atoms[b]);
        keyed.emplace_back();
      }
      impl.atom_ids.push_back(it->second);
      if (f.any || ((left_out >> b) & 1) == 0) keyed[it->second].push_back(s);
    }
    impl.atom_begin.push_back(static_cast<std::uint32_t>(impl.atom_ids.size()));
    impl.table.push_back(f.table);
    impl.any.push_back(f.any ? 1 : 0);
    impl.exact.push_back(f.exact ? 1 : 0);
    impl.strong_entry.push_back(i);
    if (f.exact) {  // never run: finding a literal is the match
      impl.re.push_back(nullptr);
      continue;
    }
    auto re = std::make_unique<RE2>(piece(lines[i].pattern), pattern_options);
    if (!re->ok()) return rejected(i, re->error_code());
    impl.re.push_back(std::move(re));
  }
  impl.literal_count = literals.size();
  impl.posting_begin.push_back(0);
  for (const auto& k : keyed) {
    impl.postings.insert(impl.postings.end(), k.begin(), k.end());
    impl.posting_begin.push_back(static_cast<std::uint32_t>(impl.postings.size()));
  }
  impl.literals.build(literals);
  literal_id.clear();  // views into `literals` and `filters`
  frequency.clear();

  std::size_t used = impl.literals.bytes() +
                     (impl.atom_ids.size() + impl.atom_begin.size() + impl.postings.size() +
                      impl.posting_begin.size() + impl.strong_entry.size()) * sizeof(std::uint32_t) +
                     impl.table.size() * sizeof(std::uint64_t) + impl.any.size() + impl.exact.size();
  for (const auto& re : impl.re) {
    if (re) used += static_cast<std::size_t>(re->ProgramSize()) * kInstBytes;
  }
  if (used > options.max_mem) return list_error(budget_message(rs.name_, options.max_mem));
  impl.compiled_bytes = used;

  // 3. The rest: RE2::Sets of shard_size patterns sharing what is left of the budget.
  if (!rest.empty()) {
    std::size_t per_shard = options.shard_size == 0 ? rest.size() : options.shard_size;
    std::size_t shard_count = (rest.size() + per_shard - 1) / per_shard;
    std::size_t share = (options.max_mem - used) / shard_count;
    auto o = re2_options(options.case_insensitive, std::max<std::size_t>(share, 1));
    for (std::size_t first = 0; first < rest.size(); first += per_shard) {
      auto shard = std::make_unique<Impl::Shard>(o);
      for (std::size_t k = first; k < std::min(rest.size(), first + per_shard); ++k) {
        std::string problem;
        if (shard->set.Add(piece(rs.pattern(rs.entries_[rest[k]])), &problem) < 0) {
          return list_error("regex list " + rs.name_ + ", line " + std::to_string(lines[rest[k]].line) +
                            ": RE2 rejected \"" + std::string(lines[rest[k]].pattern) + "\": " + problem);
        }
        shard->entry.push_back(rest[k]);
      }
      if (!shard->set.Compile()) return list_error(budget_message(rs.name_, options.max_mem));
      impl.compiled_bytes += share;
      impl.shards.push_back(std::move(shard));
    }
  }
  return rs;
}

Result<const RegexSet::Entry*> RegexSet::match(std::string_view text) const {
  if (!impl_) return static_cast<const Entry*>(nullptr);
  const Impl& impl = *impl_;
  std::size_t best = entries_.size();
  thread_local MatchScratch s;

  // Prefiltered patterns: the literals found touch the patterns keyed by them; those whose prefilter
  // passes are verified by their own RE2, lowest line first.
  s.found.clear();
  impl.literals.scan(text, s.found);
  if (!s.found.empty()) {
    if (s.seen.size() < impl.literal_count) s.seen.resize(impl.literal_count, 0);
    if (s.touched.size() < impl.re.size()) s.touched.resize(impl.re.size(), 0);
    s.seen_list.clear();
    s.touched_list.clear();
    for (int found : s.found) {
      auto a = static_cast<std::uint32_t>(found);
      if (s.seen[a] != 0) continue;
      s.seen[a] = 1;
      s.seen_list.push_back(a);
      for (auto k = impl.posting_begin[a]; k < impl.posting_begin[a + 1]; ++k) {
        auto p = impl.postings[k];
        if (s.touched[p] == 0) {
          s.touched[p] = 1;
          s.touched_list.push_back(p);
        }
      }
    }
    s.candidates.clear();
    for (auto p : s.touched_list) {
      s.touched[p] = 0;
      if (impl.any[p] != 0) {
        s.candidates.push_back(p);
        continue;
      }
      std::uint32_t mask = 0;
      for (auto k = impl.atom_begin[p]; k < impl.atom_begin[p + 1]; ++k) {
        if (s.seen[impl.atom_ids[k]] != 0) mask |= 1u << (k - impl.atom_begin[p]);
      }
      if ((impl.table[p] >> mask) & 1) s.candidates.push_back(p);
    }
    for (auto a : s.seen_list) s.seen[a] = 0;
    std::sort(s.candidates.begin(), s.candidates.end());
    for (auto p : s.candidates) {
      if (impl.exact[p] != 0 || RE2::PartialMatch(piece(text), *impl.re[p])) {
        best = impl.strong_entry[p];
        break;
      }
    }
  }

  // The other patterns: Set::Match(text, nullptr) allocates nothing and may stop at the first match;
  // only a text that matches pays a second pass to learn which patterns did.
  for (const auto& shard : impl.shards) {
    if (shard->entry.front() >= best) break;
    RE2::Set::ErrorInfo info{RE2::Set::kNoError};
    if (!shard->set.Match(piece(text), nullptr, &info)) {
      if (info.kind == RE2::Set::kNoError) continue;
      return list_error("regex list " + name_ + ": RE2 ran out of memory matching (max_mem " +
                        format_bytes(impl.max_mem) + "); raise lists." + name_ + ".max_mem_mb or split the list");
    }
    if (!shard->set.Match(piece(text), &s.hits, &info) || s.hits.empty()) {
      return list_error("regex list " + name_ + ": RE2 set match failed on the second pass");
    }
    for (int h : s.hits) best = std::min<std::size_t>(best, shard->entry[static_cast<std::size_t>(h)]);
  }
  if (best == entries_.size()) return static_cast<const Entry*>(nullptr);
  return &entries_[best];
}

// ---- named lists ----------------------------------------------------------------------------------

const char* list_kind_name(ListKind k) noexcept { return k == ListKind::domain ? "domain" : "regex"; }

std::string ListMatch::describe() const { return std::string(file) + ":" + std::to_string(line); }

const std::string& NamedList::file() const noexcept {
  return std::visit([](const auto& s) -> const std::string& { return s.file(); }, impl_);
}

std::size_t NamedList::size() const noexcept {
  return std::visit([](const auto& s) { return s.size(); }, impl_);
}

Result<std::optional<ListMatch>> NamedList::match(std::string_view subject) const {
  if (const auto* d = domains()) {
    const auto* e = d->match(subject);
    if (e == nullptr) return std::optional<ListMatch>{};
    return std::optional<ListMatch>{ListMatch{name_, d->domain(*e), d->file(), e->line}};
  }
  const auto& r = std::get<RegexSet>(impl_);
  auto hit = r.match(subject);
  if (!hit) return std::move(hit).error();
  if (*hit == nullptr) return std::optional<ListMatch>{};
  return std::optional<ListMatch>{ListMatch{name_, r.pattern(**hit), r.file(), (*hit)->line}};
}

Result<std::string> read_list_file(const std::string& path, std::size_t max_bytes) {
  auto fail = [&](int err) {
    return Error(std::error_code(err, std::system_category()), Side::internal,
                 "cannot read: " + std::string(std::strerror(err)));
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(errno);
  if (S_ISDIR(st.st_mode)) return fail(EISDIR);
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    return Error(errc::internal, Side::internal, "file is larger than " + format_bytes(max_bytes));
  }
  std::string text;
  if (S_ISREG(st.st_mode)) text.reserve(static_cast<std::size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(errno);
    }
    if (n == 0) break;
    if (text.size() + static_cast<std::size_t>(n) > max_bytes) {
      return Error(errc::internal, Side::internal, "file is larger than " + format_bytes(max_bytes));
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

ListLoad compile_list(const ListSpec& spec, std::string_view text) {
  ListLoad out;
  if (spec.kind == ListKind::domain) {
    auto parsed = parse_domain_list(text, spec.path);
    if (!parsed.errors.empty()) {
      out.errors = std::move(parsed.errors);
      return out;
    }
    out.list = std::make_shared<const NamedList>(spec.name, DomainSet::build(parsed.entries, spec.path));
    return out;
  }
  auto parsed = parse_regex_list(text, spec.path, spec.case_insensitive);
  if (!parsed.errors.empty()) {
    out.errors = std::move(parsed.errors);
    return out;
  }
  RegexOptions options;
  options.case_insensitive = spec.case_insensitive;
  options.max_mem = spec.max_mem;
  options.shard_size = spec.shard_size;
  auto set = RegexSet::build(spec.name, spec.path, parsed.entries, options);
  if (!set) {
    out.errors.push_back({spec.path, 0, set.error().context});
    return out;
  }
  out.list = std::make_shared<const NamedList>(spec.name, std::move(set).value());
  return out;
}

ListLoad load_list(const ListSpec& spec) {
  auto text = read_list_file(spec.path, spec.max_file_bytes);
  if (!text) {
    ListLoad out;
    out.errors.push_back({spec.path, 0, text.error().context});
    return out;
  }
  return compile_list(spec, *text);
}

void ListSet::add(std::shared_ptr<const NamedList> list) {
  for (auto& l : lists_) {
    if (l->name() == list->name()) {
      l = std::move(list);
      return;
    }
  }
  lists_.push_back(std::move(list));
}

const NamedList* ListSet::find(std::string_view name) const noexcept {
  for (const auto& l : lists_) {
    if (l->name() == name) return l.get();
  }
  return nullptr;
}

}  // namespace portier::policy

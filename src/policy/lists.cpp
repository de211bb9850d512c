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
  // `postings[i]`: a range the caller keeps for literal i, returned by postings(i) from the same
  // record that the scan has just compared, so looking it up costs no further cache miss.
  void build(const std::vector<std::string>& atoms, const std::vector<std::pair<std::uint32_t, std::uint32_t>>& postings) {
    arena_.clear();
    atoms_.clear();
    for (std::size_t i = 0; i < atoms.size(); ++i) {
      const auto& a = atoms[i];
      atoms_.push_back({static_cast<std::uint32_t>(arena_.size()), static_cast<std::uint32_t>(a.size()),
                        postings[i].first, postings[i].second});
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

  std::pair<std::uint32_t, std::uint32_t> postings(std::uint32_t atom) const noexcept {
    return {atoms_[atom].post_begin, atoms_[atom].post_end};
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
    std::uint32_t post_begin;
    std::uint32_t post_end;
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
  // The scan folds ASCII case only, and FilteredRE2 lower-cases its literals in both modes (a
  // case-sensitive "CAFÉ" gives "café", which a folded "CAFÉ" never contains): a pattern with a
  // non-ASCII literal can't be prefiltered.
  for (const auto& a : out.atoms) {
    if (std::any_of(a.begin(), a.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
      out.unfiltered = true;
      return RE2::NoError;
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
  // ("track(er|ing)\.example\.(com|net)"). Only for case-insensitive patterns, as the scan folds case;
  // and not with inline flags: in a case-insensitive list "(?-i)trackme" is case-sensitive, while its
  // literal "trackme" is found in "TRACKME" (a "(?" that is not "(?:" is enough to decline).
  auto inline_flags = [&] {
    for (auto k = pattern.find("(?"); k != std::string_view::npos; k = pattern.find("(?", k + 2)) {
      if (k + 2 >= pattern.size() || pattern[k + 2] != ':') return true;
    }
    return false;
  };
  if (o.case_sensitive() || !without_assertions(pattern) || inline_flags()) return RE2::NoError;
  for (std::size_t b = 0; b < out.atoms.size(); ++b) {
    present.assign(1, static_cast<int>(b));
    f.AllPotentials(present, &passed);
    if (passed.empty() || !RE2::FullMatch(piece(out.atoms[b]), f.GetRE2(0))) return RE2::NoError;
  }
  out.exact = true;
  return RE2::NoError;
}

// ---- compact verification ---------------------------------------------------------------------------
//
// Verifying a candidate with its own RE2 costs 4-10 us when the list is large, although the text is
// short: each of 10,000 patterns matches rarely, so its RE2 object, program, DFA and DFA states are
// cold, and they are reached one pointer after another. (Measured on 10,000 patterns whose RE2s had
// each run once, with other memory traffic in between: 5-7 us at p50 for a PartialMatch on a 50-byte
// URL with the DFA, and still 3.7 us with RE2's BitState engine, which touches no DFA state; so it is
// the cold pointer chase, not the engine. perf puts the time in libre2 and RegexSet::match's loads.)
// So patterns in a simple subset of the syntax also get a TinyProgram: their position (Glushkov)
// automaton, at most 64 positions, in a few hundred contiguous bytes that match() prefetches for all
// candidates at once and then runs as a bit-parallel NFA (0.1-0.3 us once in cache). What each single
// character, class or escape accepts is not decided here but asked of RE2 (with the list's options)
// for every ASCII byte, and a TinyProgram only runs on ASCII texts, so case folding and class
// semantics are RE2's own; a text with a byte >= 0x80 (where RE2's Unicode folding lets 's' match
// U+017F, 'k' U+212A) goes to RE2. Anything outside the subset (inline flags, \b, \A, \z, \Q,
// octal escapes, an anchor not at the very start or end of a pattern without top-level '|',
// non-ASCII bytes in the pattern) keeps RE2 as its only verifier. Equivalence with RE2 is checked by
// a differential unit test over generated patterns and texts.
namespace tiny {

constexpr std::size_t kMaxPositions = 64;
constexpr int kMaxDepth = 64;

using ByteSet = std::array<std::uint64_t, 2>;  // ASCII bytes accepted by one position

struct Node {
  enum Kind : std::uint8_t { atom, concat, alt, repeat, empty } kind = empty;
  int set = -1;  // atom: index into Builder::sets
  int min = 0, max = 0;  // repeat: max -1 = unbounded
  std::vector<Node> kids;
};

// Per build: the byte set of every distinct atom text, asked of RE2 once.
class Builder {
 public:
  explicit Builder(const RE2::Options& o) : options_(o) { options_.set_max_mem(std::size_t{1} << 20); }

  // The atom's byte set index, or -1 when RE2 rejects the atom on its own (never for valid input).
  int atom(std::string_view text) {
    auto it = cache_.find(std::string(text));
    if (it != cache_.end()) return it->second;
    RE2 re(piece(text), options_);
    int index = -1;
    if (re.ok()) {
      ByteSet s{0, 0};
      for (int c = 0; c < 128; ++c) {
        char ch = static_cast<char>(c);
        if (RE2::FullMatch(re2::StringPiece(&ch, 1), re)) s[c >> 6] |= std::uint64_t{1} << (c & 63);
      }
      index = static_cast<int>(sets.size());
      sets.push_back(s);
    }
    cache_.emplace(std::string(text), index);
    return index;
  }

  std::vector<ByteSet> sets;

 private:
  RE2::Options options_;
  std::unordered_map<std::string, int> cache_;
};

// Recursive descent over the RE2 syntax subset; any doubt returns false (the pattern keeps RE2 only).
// The pattern is known to be valid RE2, so only the shapes RE2 accepts need telling apart.
class Parser {
 public:
  Parser(std::string_view p, Builder& b) : p_(p), b_(b) {}

  bool parse(Node& root, bool& anchored_start, bool& anchored_end) {
    for (char c : p_) {
      if (static_cast<unsigned char>(c) >= 0x80 || c == '\0') return false;
    }
    std::string_view body = p_;
    anchored_start = body.starts_with('^');
    if (anchored_start) body.remove_prefix(1);
    // A final unescaped '$': count the backslashes before it.
    anchored_end = false;
    if (body.ends_with('$')) {
      std::size_t k = body.size() - 1, slashes = 0;
      while (k > 0 && body[k - 1] == '\\') --k, ++slashes;
      if (slashes % 2 == 0) {
        anchored_end = true;
        body.remove_suffix(1);
      }
    }
    p_ = body;
    i_ = 0;
    if (!alternation(root, 0)) return false;
    if (i_ != p_.size()) return false;
    // ^a|b anchors only the first branch: not handled.
    if ((anchored_start || anchored_end) && root.kind == Node::alt) return false;
    return true;
  }

 private:
  bool alternation(Node& out, int depth) {
    if (depth > kMaxDepth) return false;
    Node branch;
    if (!concatenation(branch, depth)) return false;
    if (i_ >= p_.size() || p_[i_] != '|') {
      out = std::move(branch);
      return true;
    }
    out = Node{};
    out.kind = Node::alt;
    out.kids.push_back(std::move(branch));
    while (i_ < p_.size() && p_[i_] == '|') {
      ++i_;
      Node next;
      if (!concatenation(next, depth)) return false;
      out.kids.push_back(std::move(next));
    }
    return true;
  }

  bool concatenation(Node& out, int depth) {
    out = Node{};
    out.kind = Node::concat;
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      Node a;
      if (!atom(a, depth)) return false;
      // At most one repetition operator (RE2 rejects "a**"), with an optional non-greedy '?',
      // which makes no difference to whether there is a match.
      int min = 0, max = 0;
      if (repetition(min, max)) {
        if (i_ < p_.size() && p_[i_] == '?') ++i_;
        if (i_ < p_.size() && (p_[i_] == '*' || p_[i_] == '+' || p_[i_] == '?' || repetition_ahead())) return false;
        Node r;
        r.kind = Node::repeat;
        r.min = min;
        r.max = max;
        r.kids.push_back(std::move(a));
        out.kids.push_back(std::move(r));
      } else {
        out.kids.push_back(std::move(a));
      }
    }
    if (out.kids.empty()) out.kind = Node::empty;
    return true;
  }

  // {n}, {n,}, {n,m}; any other '{' is a literal in RE2.
  bool repetition_ahead() const {
    std::size_t j = i_;
    int min = 0, max = 0;
    return brace(j, min, max);
  }
  bool brace(std::size_t& j, int& min, int& max) const {
    if (j >= p_.size() || p_[j] != '{') return false;
    std::size_t k = j + 1;
    auto number = [&](int& v) {
      std::size_t start = k;
      v = 0;
      while (k < p_.size() && p_[k] >= '0' && p_[k] <= '9' && k - start < 5) v = v * 10 + (p_[k++] - '0');
      return k > start && !(k < p_.size() && p_[k] >= '0' && p_[k] <= '9');
    };
    if (!number(min)) return false;
    max = min;
    if (k < p_.size() && p_[k] == ',') {
      ++k;
      if (k < p_.size() && p_[k] == '}') {
        max = -1;
      } else if (!number(max)) {
        return false;
      }
    }
    if (k >= p_.size() || p_[k] != '}') return false;
    j = k + 1;
    return true;
  }
  bool repetition(int& min, int& max) {
    if (i_ >= p_.size()) return false;
    switch (p_[i_]) {
      case '*': min = 0, max = -1, ++i_; return true;
      case '+': min = 1, max = -1, ++i_; return true;
      case '?': min = 0, max = 1, ++i_; return true;
      default: return brace(i_, min, max);
    }
  }

  bool leaf(Node& out, std::size_t from) {
    out = Node{};
    out.kind = Node::atom;
    out.set = b_.atom(p_.substr(from, i_ - from));
    return out.set >= 0;
  }

  bool atom(Node& out, int depth) {
    std::size_t from = i_;
    char c = p_[i_];
    switch (c) {
      case '(': {
        ++i_;
        if (i_ < p_.size() && p_[i_] == '?') {  // only (?: ... ); flags and names are not handled
          if (i_ + 1 >= p_.size() || p_[i_ + 1] != ':') return false;
          i_ += 2;
        }
        if (!alternation(out, depth + 1)) return false;
        if (i_ >= p_.size() || p_[i_] != ')') return false;
        ++i_;
        return true;
      }
      case '[': return char_class() && leaf(out, from);
      case '\\': return escape() && leaf(out, from);
      case '^': case '$': case '*': case '+': case '?': case ')': case '|': return false;
      case '{': if (repetition_ahead()) return false; [[fallthrough]];
      default: ++i_; return leaf(out, from);  // a literal byte, or '.'
    }
  }

  static bool hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

  // One escape as a single character or class: \. \/ \d \w \s \D \W \S \n \t \r \f \v \a \xHH \x{H..}
  // \pL \p{Name} (\P too). Everything else (\b \B \A \z \Q \E \C, digits) is not handled.
  bool escape() {
    if (i_ + 1 >= p_.size()) return false;
    char e = p_[i_ + 1];
    auto alnum = [](char x) { return (x >= '0' && x <= '9') || (x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z'); };
    if (!alnum(e) && e != '_') {
      i_ += 2;
      return true;
    }
    switch (e) {
      case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
      case 'n': case 't': case 'r': case 'f': case 'v': case 'a':
        i_ += 2;
        return true;
      case 'x':
        if (i_ + 3 < p_.size() && hex(p_[i_ + 2]) && hex(p_[i_ + 3])) {
          i_ += 4;
          return true;
        }
        [[fallthrough]];
      case 'p': case 'P': {
        if (i_ + 2 >= p_.size()) return false;
        if (p_[i_ + 2] != '{') {
          if (e == 'x') return false;
          i_ += 3;  // \pL
          return true;
        }
        auto close = p_.find('}', i_ + 3);
        if (close == std::string_view::npos) return false;
        i_ = close + 1;
        return true;
      }
      default: return false;
    }
  }

  // Finds the end of [...]. A ']' first (after an optional '^') is a literal; a backslash escapes the
  // next byte; "[:name:]" is a POSIX class. Any other '[' inside, or \Q \E, is not handled.
  bool char_class() {
    std::size_t j = i_ + 1;
    if (j < p_.size() && p_[j] == '^') ++j;
    if (j < p_.size() && p_[j] == ']') ++j;
    while (j < p_.size() && p_[j] != ']') {
      if (p_[j] == '\\') {
        if (j + 1 >= p_.size() || p_[j + 1] == 'Q' || p_[j + 1] == 'E') return false;
        j += 2;
      } else if (p_[j] == '[') {
        if (j + 1 >= p_.size() || p_[j + 1] != ':') return false;
        auto close = p_.find(":]", j + 2);
        if (close == std::string_view::npos) return false;
        for (std::size_t k = j + 2; k < close; ++k) {
          if (!(p_[k] >= 'a' && p_[k] <= 'z') && !(k == j + 2 && p_[k] == '^')) return false;
        }
        j = close + 2;
      } else {
        ++j;
      }
    }
    if (j >= p_.size()) return false;
    i_ = j + 1;
    return true;
  }

  std::string_view p_;
  std::size_t i_ = 0;
  Builder& b_;
};

// The position automaton: for each position its byte set and the positions that may follow it.
struct Automaton {
  std::vector<int> set;  // position -> byte set index
  std::vector<std::uint64_t> follow;

  struct Info {
    bool nullable = true;
    std::uint64_t first = 0, last = 0;
  };

  int steps = 0;  // bounds the work on nested repeats of empty groups, which add no positions

  // Each visit of a node makes fresh positions, so a repeat is built from copies of its operand.
  bool build(const Node& n, Info& out) {
    if (++steps > 10000) return false;
    switch (n.kind) {
      case Node::empty: out = {}; return true;
      case Node::atom: {
        if (set.size() >= kMaxPositions) return false;
        std::uint64_t bit = std::uint64_t{1} << set.size();
        set.push_back(n.set);
        follow.push_back(0);
        out = {false, bit, bit};
        return true;
      }
      case Node::concat: {
        out = {};
        for (const auto& k : n.kids) {
          Info i;
          if (!build(k, i)) return false;
          append(out, i);
        }
        return true;
      }
      case Node::alt: {
        out = {false, 0, 0};
        for (const auto& k : n.kids) {
          Info i;
          if (!build(k, i)) return false;
          out.nullable = out.nullable || i.nullable;
          out.first |= i.first;
          out.last |= i.last;
        }
        return true;
      }
      case Node::repeat: {
        // x{n,m} = x..x (n times) then x? (m-n times); x{n,} = x..x (n-1 times) then x+ (x* if n is 0).
        out = {};
        const Node& x = n.kids.front();
        int copies = n.max < 0 ? std::max(n.min, 1) : n.max;
        if (copies > static_cast<int>(kMaxPositions)) return false;
        for (int c = 0; c < copies; ++c) {
          Info i;
          if (!build(x, i)) return false;
          if (n.max < 0 && c == copies - 1) {  // the last copy loops
            loop(i);
            if (n.min == 0) i.nullable = true;
          } else if (c >= n.min) {
            i.nullable = true;
          }
          append(out, i);
        }
        return true;
      }
    }
    return false;
  }

  void loop(const Info& i) {
    for (std::uint64_t l = i.last; l != 0; l &= l - 1) follow[std::countr_zero(l)] |= i.first;
  }
  void append(Info& acc, const Info& next) {
    for (std::uint64_t l = acc.last; l != 0; l &= l - 1) follow[std::countr_zero(l)] |= next.first;
    acc.first |= acc.nullable ? next.first : 0;
    acc.last = next.last | (next.nullable ? acc.last : 0);
    acc.nullable = acc.nullable && next.nullable;
  }
};

// Layout in 64-bit words, contiguous so one prefetch pass brings it in:
//   [0] positions | sets << 8 | flags << 16   [1] first   [2] last
//   [3 .. 3+n)  follow, by position
//   then n 32-bit position descriptors, two a word: bytes a and b (accepts c == a || c == b), or
//       kSetFlag | index << 8 for a byte set, stored after the descriptors as two words each.
constexpr std::uint64_t kAnchoredStart = 1, kAnchoredEnd = 2, kNullable = 4;
constexpr std::uint32_t kSetFlag = 1u << 31;

// Appends the program for `pattern` to `code`; false when the pattern is outside the subset.
bool compile(std::string_view pattern, Builder& b, std::vector<std::uint64_t>& code) {
  Node root;
  bool anchored_start = false, anchored_end = false;
  if (!Parser(pattern, b).parse(root, anchored_start, anchored_end)) return false;
  Automaton a;
  Automaton::Info info;
  if (!a.build(root, info) || a.set.empty()) return false;
  std::size_t n = a.set.size();
  std::vector<std::uint32_t> desc(n);
  std::vector<int> own_sets;  // byte sets of more than two bytes, stored with the program
  for (std::size_t p = 0; p < n; ++p) {
    const ByteSet& s = b.sets[static_cast<std::size_t>(a.set[p])];
    int count = std::popcount(s[0]) + std::popcount(s[1]);
    if (count == 0) return false;  // accepts no ASCII byte (e.g. \pN's non-ASCII part only): leave it to RE2
    if (count <= 2) {
      unsigned lo = s[0] != 0 ? static_cast<unsigned>(std::countr_zero(s[0])) : 64u + static_cast<unsigned>(std::countr_zero(s[1]));
      unsigned hi = s[1] != 0 ? 127u - static_cast<unsigned>(std::countl_zero(s[1])) : 63u - static_cast<unsigned>(std::countl_zero(s[0]));
      desc[p] = lo | hi << 8;
    } else {
      auto it = std::find(own_sets.begin(), own_sets.end(), a.set[p]);
      if (it == own_sets.end()) it = own_sets.insert(own_sets.end(), a.set[p]);
      desc[p] = kSetFlag | static_cast<std::uint32_t>(it - own_sets.begin()) << 8;
    }
  }
  std::uint64_t flags = (anchored_start ? kAnchoredStart : 0) | (anchored_end ? kAnchoredEnd : 0) |
                        (info.nullable ? kNullable : 0);
  code.push_back(n | own_sets.size() << 8 | flags << 16);
  code.push_back(info.first);
  code.push_back(info.last);
  code.insert(code.end(), a.follow.begin(), a.follow.end());
  for (std::size_t p = 0; p < n; p += 2) code.push_back(desc[p] | (p + 1 < n ? std::uint64_t{desc[p + 1]} << 32 : 0));
  for (int s : own_sets) {
    code.push_back(b.sets[static_cast<std::size_t>(s)][0]);
    code.push_back(b.sets[static_cast<std::size_t>(s)][1]);
  }
  return true;
}

// Asks for all of a program's cache lines at once (they are independent), so the misses overlap.
void prefetch(const std::uint64_t* code, std::size_t words) noexcept {
  const char* p = reinterpret_cast<const char*>(code);
  for (std::size_t off = 0; off < words * 8; off += 64) __builtin_prefetch(p + off);
  __builtin_prefetch(p + words * 8 - 1);  // (the program need not start on a line boundary)
}

// Whether the pattern matches somewhere in `text` (ASCII only): the set of positions that the text
// so far can end in, advanced a byte at a time; unanchored patterns may start at every byte.
bool run(const std::uint64_t* code, std::string_view text) noexcept {
  std::size_t n = code[0] & 0xFF;
  std::uint64_t flags = code[0] >> 16;
  bool anchored_start = (flags & kAnchoredStart) != 0, anchored_end = (flags & kAnchoredEnd) != 0;
  if ((flags & kNullable) != 0 && (!anchored_start || !anchored_end || text.empty())) return true;
  std::uint64_t first = code[1], last = code[2];
  const std::uint64_t* follow = code + 3;
  const std::uint64_t* desc = code + 3 + n;  // two 32-bit descriptors a word
  const std::uint64_t* sets = code + 3 + n + (n + 1) / 2;
  std::uint64_t now = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    std::uint64_t next = anchored_start && i > 0 ? 0 : first;
    for (std::uint64_t d = now; d != 0; d &= d - 1) next |= follow[std::countr_zero(d)];
    if (next == 0) return false;
    now = 0;
    for (std::uint64_t d = next; d != 0; d &= d - 1) {
      int p = std::countr_zero(d);
      auto x = static_cast<std::uint32_t>(desc[p >> 1] >> (32 * (p & 1)));
      bool ok = (x & kSetFlag) != 0 ? (sets[2 * ((x >> 8) & 0xFF) + (c >> 6)] >> (c & 63) & 1) != 0
                                   : (c == (x & 0xFF) || c == ((x >> 8) & 0xFF));
      if (ok) now |= std::uint64_t{1} << p;
    }
    if ((now & last) != 0 && (!anchored_end || i + 1 == text.size())) return true;
  }
  return false;
}

}  // namespace tiny

std::string budget_message(std::string_view name, std::size_t max_mem) {
  return "regex list " + std::string(name) + ": compiled automaton exceeds max_mem " + format_bytes(max_mem) +
         "; raise lists." + std::string(name) + ".max_mem_mb or split the list";
}

// Per-thread scratch for matching, reused so that a match allocates nothing once warm. The marks are
// cleared after every use, so lists of any size can share them.
struct MatchScratch {
  std::vector<int> found;  // literal occurrences
  std::vector<std::uint32_t> touched_list;  // records
  std::vector<std::uint32_t> candidates;
  std::vector<int> hits;  // RE2::Set matches
  std::string folded;     // see fold_to_ascii
};

bool is_ascii(std::string_view text) noexcept {
  std::uint64_t high = 0;
  std::size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    high |= w;
  }
  for (; i < text.size(); ++i) high |= static_cast<unsigned char>(text[i]);
  return (high & 0x8080808080808080ull) == 0;
}

// RE2's case folding is Unicode's: a case-insensitive 's' also matches U+017F (long s, C5 BF) and
// 'k' U+212A (Kelvin sign, E2 84 AA); no other non-ASCII character folds to an ASCII one (checked
// over every code point). The literal scan folds ASCII only, so for a case-insensitive list these
// two are replaced by 's' and 'k' in a copy of the text that only the scan reads; otherwise
// "track[0-9]+/seo" would not be a candidate for "track1/\u017Feo", which RE2 matches.
std::string_view fold_to_ascii(std::string_view text, std::string& out) {
  if (text.find("\xC5\xBF") == std::string_view::npos && text.find("\xE2\x84\xAA") == std::string_view::npos) {
    return text;
  }
  out.clear();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "\xC5\xBF") == 0) {
      out += 's';
      i += 1;
    } else if (text.compare(i, 3, "\xE2\x84\xAA") == 0) {
      out += 'k';
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

}  // namespace

struct RegexSet::Impl {
  struct Shard {
    explicit Shard(const RE2::Options& o) : set(o, RE2::UNANCHORED) {}
    RE2::Set set;
    std::vector<std::uint32_t> entry;  // Set index -> entry index (ascending)
  };

  // Prefiltered patterns, in entry order ("strong" index s). What match() reads about one is a
  // record in `records`, contiguous with its TinyProgram, so that a candidate costs one round of
  // (prefetched, overlapping) cache misses rather than one per array:
  //   [0] the truth table over its literals
  //   [1] entry index | s << 32
  //   [2] literal count | any << 8 | exact << 9 | TinyProgram words << 16
  //   then, unless any, its literals' ids two a word; then its TinyProgram if it has one.
  static constexpr std::uint64_t kAny = 1 << 8, kExact = 1 << 9;
  std::vector<std::uint64_t> records;
  std::vector<std::unique_ptr<RE2>> re;  // s -> its RE2 (null for exact patterns)
  std::size_t tiny_count = 0;
  std::vector<std::uint32_t> postings;   // records keyed by each literal (ranges kept by the scanner)
  LiteralScanner literals;

  std::vector<std::unique_ptr<Shard>> shards;  // the other patterns, in entry order
  std::size_t compiled_bytes = 0;
  std::size_t max_mem = 0;
  bool case_insensitive = true;
};

RegexSet::RegexSet() = default;
RegexSet::RegexSet(RegexSet&&) noexcept = default;
RegexSet& RegexSet::operator=(RegexSet&&) noexcept = default;
RegexSet::~RegexSet() = default;

std::size_t RegexSet::prefiltered() const noexcept { return impl_ ? impl_->re.size() : 0; }  // (one per record)
std::size_t RegexSet::compact_verified() const noexcept { return impl_ ? impl_->tiny_count : 0; }
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
  impl.case_insensitive = options.case_insensitive;
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
  tiny::Builder tiny_builder(pattern_options);
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
    auto record = static_cast<std::uint32_t>(impl.records.size());
    if (impl.records.size() > UINT32_MAX - 1024) return list_error(budget_message(rs.name_, options.max_mem));
    impl.records.push_back(f.table);
    impl.records.push_back(i | std::uint64_t{s} << 32);
    impl.records.push_back(0);  // below
    std::uint64_t flags = (f.any ? Impl::kAny : 0) | (f.exact ? Impl::kExact : 0);
    std::size_t ids_at = impl.records.size();
    if (!f.any) {
      flags |= f.atoms.size();
      impl.records.resize(ids_at + (f.atoms.size() + 1) / 2, 0);
    }
    for (std::size_t b = 0; b < f.atoms.size(); ++b) {
      auto [it, added] = literal_id.try_emplace(f.atoms[b], static_cast<std::uint32_t>(literals.size()));
      if (added) {
        literals.push_back(f.atoms[b]);
        keyed.emplace_back();
      }
      if (!f.any) impl.records[ids_at + b / 2] |= std::uint64_t{it->second} << (32 * (b % 2));
      if (f.any || ((left_out >> b) & 1) == 0) keyed[it->second].push_back(record);
    }
    if (f.exact) {  // never run: finding a literal is the match
      impl.records[record + 2] = flags;
      impl.re.push_back(nullptr);
      continue;
    }
    auto re = std::make_unique<RE2>(piece(lines[i].pattern), pattern_options);
    if (!re->ok()) return rejected(i, re->error_code());
    impl.re.push_back(std::move(re));
    // The RE2 stays for texts that are not ASCII.
    std::size_t at = impl.records.size();
    if (tiny::compile(lines[i].pattern, tiny_builder, impl.records)) {
      flags |= (impl.records.size() - at) << 16;  // (at most 3 + 64 + 32 + 128 words)
      ++impl.tiny_count;
    } else {
      impl.records.resize(at);
    }
    impl.records[record + 2] = flags;
  }
  std::vector<std::pair<std::uint32_t, std::uint32_t>> ranges;
  for (const auto& k : keyed) {
    ranges.emplace_back(static_cast<std::uint32_t>(impl.postings.size()),
                        static_cast<std::uint32_t>(impl.postings.size() + k.size()));
    impl.postings.insert(impl.postings.end(), k.begin(), k.end());
  }
  impl.literals.build(literals, ranges);
  literal_id.clear();  // views into `literals` and `filters`
  frequency.clear();

  impl.records.shrink_to_fit();
  impl.postings.shrink_to_fit();
  std::size_t used = impl.literals.bytes() + impl.postings.capacity() * sizeof(std::uint32_t) +
                     impl.records.capacity() * sizeof(std::uint64_t) + impl.re.capacity() * sizeof(void*);
  for (const auto& re : impl.re) {
    if (re) used += sizeof(RE2);
  }
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
  // passes are verified, lowest line first: not at all when exact, else by their TinyProgram (ASCII
  // texts) or their own RE2.
  bool ascii = is_ascii(text);
  s.found.clear();
  impl.literals.scan(ascii || !impl.case_insensitive ? text : fold_to_ascii(text, s.folded), s.found);
  if (!s.found.empty()) {
    // The literals found, each once, sorted; the records keyed by them, each once, in entry order
    // (records are laid out in entry order). Sorting these short lists replaces marks in arrays
    // indexed by literal or pattern, which would be cache misses of their own.
    std::sort(s.found.begin(), s.found.end());
    s.found.erase(std::unique(s.found.begin(), s.found.end()), s.found.end());
    s.touched_list.clear();
    for (int found : s.found) {
      auto [begin, end] = impl.literals.postings(static_cast<std::uint32_t>(found));
      for (auto k = begin; k < end; ++k) {
        auto r = impl.postings[k];
        __builtin_prefetch(impl.records.data() + r);
        s.touched_list.push_back(r);
      }
    }
    std::sort(s.touched_list.begin(), s.touched_list.end());
    s.touched_list.erase(std::unique(s.touched_list.begin(), s.touched_list.end()), s.touched_list.end());
    s.candidates.clear();
    for (auto r : s.touched_list) {
      const std::uint64_t* rec = impl.records.data() + r;
      if ((rec[2] & Impl::kAny) != 0) {
        s.candidates.push_back(r);
        continue;
      }
      std::uint32_t mask = 0;
      std::size_t count = rec[2] & 0xFF;
      for (std::size_t b = 0; b < count; ++b) {
        auto id = static_cast<int>(static_cast<std::uint32_t>(rec[3 + b / 2] >> (32 * (b % 2))));
        if (std::binary_search(s.found.begin(), s.found.end(), id)) mask |= 1u << b;
      }
      if ((rec[0] >> mask) & 1) s.candidates.push_back(r);
    }
    // TinyPrograms run on ASCII texts only (see tiny); their lines are all requested up front.
    auto tiny_of = [&](const std::uint64_t* rec) {
      std::size_t count = rec[2] & 0xFF;
      return rec + 3 + (count + 1) / 2;
    };
    if (ascii) {
      std::size_t ahead = 0;
      for (auto r : s.candidates) {
        const std::uint64_t* rec = impl.records.data() + r;
        if ((rec[2] & Impl::kExact) != 0) break;  // verification stops there
        auto words = static_cast<std::size_t>(rec[2] >> 16);
        if (words == 0) continue;
        tiny::prefetch(tiny_of(rec), words);
        if (++ahead == 8) break;
      }
    }
    for (auto r : s.candidates) {
      const std::uint64_t* rec = impl.records.data() + r;
      bool hit = (rec[2] & Impl::kExact) != 0 ? true
                 : ascii && (rec[2] >> 16) != 0 ? tiny::run(tiny_of(rec), text)
                                                : RE2::PartialMatch(piece(text), *impl.re[rec[1] >> 32]);
      if (hit) {
        best = static_cast<std::uint32_t>(rec[1]);
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

#include "portier/policy/lists.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
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

// Aho-Corasick over the literals as a dense automaton over byte classes: one table lookup per text
// byte. Nodes are numbered breadth first, so the shallow nodes most texts stay in share cache lines.
// Upper-case ASCII letters share their lower-case class, so the scan is case-insensitive without
// copying the text (the literals are lower case). A transition's high bit says that literals end at
// the target node, so a byte that ends none touches nothing but the table.
class LiteralScanner {
 public:
  void build(const std::vector<std::string>& atoms) {
    class_.fill(0);
    classes_ = 1;  // class 0: bytes in no literal
    for (const auto& a : atoms) {
      for (unsigned char b : a) {
        if (class_[b] != 0) continue;
        class_[b] = static_cast<std::uint16_t>(classes_++);
        if (b >= 'a' && b <= 'z') class_[b - 32] = class_[b];
      }
    }
    std::size_t bound = 1, longest = 0;
    for (const auto& a : atoms) {
      bound += a.size();
      longest = std::max(longest, a.size());
    }
    next_.assign(bound * classes_, 0);
    atom_.assign(bound, -1);
    // Trie, one depth at a time so that node ids come out breadth first.
    std::uint32_t nodes = 1;
    std::vector<std::uint32_t> at(atoms.size(), 0);  // node of each literal's prefix so far
    for (std::size_t depth = 0; depth < longest; ++depth) {
      for (std::size_t i = 0; i < atoms.size(); ++i) {
        if (depth >= atoms[i].size()) continue;
        auto& v = next_[at[i] * classes_ + class_[static_cast<unsigned char>(atoms[i][depth])]];
        if (v == 0) v = nodes++;
        at[i] = v;
        if (depth + 1 == atoms[i].size()) atom_[v] = static_cast<int>(i);
      }
    }
    next_.resize(std::size_t{nodes} * classes_);
    next_.shrink_to_fit();
    atom_.resize(nodes);
    atom_.shrink_to_fit();
    // Failure links, breadth first (ids are already in that order): a node's failure node is
    // shallower, so its row is complete when the node's is filled.
    std::vector<std::uint32_t> fail(nodes, 0);
    dict_.assign(nodes, 0);
    for (std::uint32_t u = 0; u < nodes; ++u) {
      for (std::size_t c = 0; c < classes_; ++c) {
        auto& v = next_[u * classes_ + c];
        std::uint32_t via_fail = u == 0 ? 0 : next_[fail[u] * classes_ + c];
        if (v == 0 || v <= u) {  // no child: follow the failure node's transition
          v = via_fail;
          continue;
        }
        fail[v] = via_fail;
        dict_[v] = atom_[via_fail] >= 0 ? via_fail : dict_[via_fail];
      }
    }
    for (auto& v : next_) {
      if (atom_[v] >= 0 || dict_[v] != 0) v |= kOutput;
    }
  }

  // Appends the index of every literal occurrence (repeats included) to `found`.
  void scan(std::string_view text, std::vector<int>& found) const {
    if (next_.empty()) return;
    std::uint32_t u = 0;
    for (unsigned char b : text) {
      u = next_[(u & ~kOutput) * classes_ + class_[b]];
      if ((u & kOutput) == 0) continue;
      std::uint32_t node = u & ~kOutput;
      for (std::uint32_t n = atom_[node] >= 0 ? node : dict_[node]; n != 0; n = dict_[n]) found.push_back(atom_[n]);
    }
  }

  std::size_t bytes() const noexcept {
    return next_.capacity() * sizeof(std::uint32_t) + atom_.capacity() * sizeof(int) +
           dict_.capacity() * sizeof(std::uint32_t);
  }

 private:
  static constexpr std::uint32_t kOutput = 0x80000000u;

  std::array<std::uint16_t, 256> class_{};
  std::size_t classes_ = 1;
  std::vector<std::uint32_t> next_;  // [node * classes_ + class] -> node | kOutput
  std::vector<int> atom_;            // literal ending at node, or -1
  std::vector<std::uint32_t> dict_;  // nearest node on the failure chain where a literal ends (0 = none)
};

// What RE2's prefilter says about one pattern, as a boolean function of its required literals.
struct PatternFilter {
  std::vector<std::string> atoms;  // lower case, distinct
  std::uint64_t table = 0;         // bit m set: passes when the atoms in mask m are present
  bool unfiltered = false;         // passes with no literal: no prefilter possible
  bool any = false;                // more than kMaxTableAtoms literals: treated as "any present"

  bool passes(std::uint32_t mask) const noexcept { return any ? mask != 0 : ((table >> mask) & 1) != 0; }
};

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
    return RE2::NoError;
  }
  for (std::uint32_t m = 1; m < (1u << out.atoms.size()); ++m) {
    present.clear();
    for (std::size_t b = 0; b < out.atoms.size(); ++b) {
      if ((m >> b) & 1) present.push_back(static_cast<int>(b));
    }
    f.AllPotentials(present, &passed);
    if (!passed.empty()) out.table |= std::uint64_t{1} << m;
  }
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
  std::vector<std::unique_ptr<RE2>> re;
  std::vector<std::uint32_t> strong_entry;  // s -> entry index
  std::vector<std::uint64_t> table;         // s -> truth table over its literals
  std::vector<std::uint8_t> any;            // s -> passes on any literal
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
    if (code == RE2::ErrorPatternTooLarge) return list_error(budget_message(rs.name_, options.max_mem));
    return list_error("regex list " + rs.name_ + ", line " + std::to_string(lines[i].line) + ": RE2 rejected \"" +
                      std::string(lines[i].pattern) + "\"");
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
    impl.strong_entry.push_back(i);
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
                     impl.table.size() * sizeof(std::uint64_t);
  for (const auto& re : impl.re) used += static_cast<std::size_t>(re->ProgramSize()) * kInstBytes;
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
      if (RE2::PartialMatch(piece(text), *impl.re[p])) {
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

#include "portier/policy/lists.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

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

// Aho-Corasick over the prefilter's literals as a dense automaton over byte classes: one table lookup
// per text byte. Upper-case ASCII letters share their lower-case class, so the scan is
// case-insensitive without copying the text (the literals are lower case).
class LiteralScanner {
 public:
  void build(const std::vector<std::string>& atoms) {
    classes_ = 1;  // class 0: bytes in no literal
    for (const auto& a : atoms) {
      for (unsigned char b : a) {
        if (class_[b] != 0) continue;
        class_[b] = static_cast<std::uint16_t>(classes_++);
        if (b >= 'a' && b <= 'z') class_[b - 32] = class_[b];
      }
    }
    std::size_t bound = 1;
    for (const auto& a : atoms) bound += a.size();
    next_.assign(bound * classes_, 0);
    atom_.assign(bound, -1);
    std::uint32_t nodes = 1;
    for (std::size_t i = 0; i < atoms.size(); ++i) {
      std::uint32_t u = 0;
      for (unsigned char b : atoms[i]) {
        auto& v = next_[u * classes_ + class_[b]];
        if (v == 0) v = nodes++;
        u = v;
      }
      atom_[u] = static_cast<int>(i);
    }
    next_.resize(std::size_t{nodes} * classes_);
    next_.shrink_to_fit();
    atom_.resize(nodes);
    atom_.shrink_to_fit();
    // Breadth first: a node's failure node is shallower, so its row is complete when the node's is filled.
    std::vector<std::uint32_t> fail(nodes, 0), queue;
    dict_.assign(nodes, 0);
    queue.reserve(nodes);
    for (std::size_t c = 0; c < classes_; ++c) {
      if (next_[c] != 0) queue.push_back(next_[c]);
    }
    for (std::size_t head = 0; head < queue.size(); ++head) {
      std::uint32_t u = queue[head];
      for (std::size_t c = 0; c < classes_; ++c) {
        auto& v = next_[u * classes_ + c];
        std::uint32_t via_fail = next_[fail[u] * classes_ + c];
        if (v == 0) {
          v = via_fail;
          continue;
        }
        fail[v] = via_fail;
        dict_[v] = atom_[via_fail] >= 0 ? via_fail : dict_[via_fail];
        queue.push_back(v);
      }
    }
  }

  // Appends the index of every literal occurrence (repeats included) to `found`.
  void scan(std::string_view text, std::vector<int>& found) const {
    if (next_.empty()) return;
    std::uint32_t u = 0;
    for (unsigned char b : text) {
      u = next_[u * classes_ + class_[b]];
      for (std::uint32_t n = atom_[u] >= 0 ? u : dict_[u]; n != 0; n = dict_[n]) found.push_back(atom_[n]);
    }
  }

  std::size_t bytes() const noexcept {
    return next_.capacity() * sizeof(std::uint32_t) + atom_.capacity() * sizeof(int) +
           dict_.capacity() * sizeof(std::uint32_t);
  }

 private:
  std::array<std::uint16_t, 256> class_{};
  std::size_t classes_ = 1;
  std::vector<std::uint32_t> next_;  // [node * classes_ + class] -> node
  std::vector<int> atom_;            // literal ending at node, or -1
  std::vector<std::uint32_t> dict_;  // nearest node on the failure chain where a literal ends (0 = none)
};

std::string budget_message(std::string_view name, std::size_t max_mem) {
  return "regex list " + std::string(name) + ": compiled automaton exceeds max_mem " + format_bytes(max_mem) +
         "; raise lists." + std::string(name) + ".max_mem_mb or split the list";
}

}  // namespace

struct RegexSet::Impl {
  struct Shard {
    Shard(const RE2::Options& o) : set(o, RE2::UNANCHORED) {}
    RE2::Set set;
    std::vector<std::uint32_t> entry;  // Set index -> entry index (ascending)
  };

  re2::FilteredRE2 filter{kMinAtomLen};
  std::vector<std::uint32_t> filtered_entry;  // FilteredRE2 id -> entry index (ascending)
  LiteralScanner literals;
  std::vector<std::unique_ptr<Shard>> shards;  // in entry order
  std::size_t compiled_bytes = 0;
  std::size_t max_mem = 0;
};

RegexSet::RegexSet() = default;
RegexSet::RegexSet(RegexSet&&) noexcept = default;
RegexSet& RegexSet::operator=(RegexSet&&) noexcept = default;
RegexSet::~RegexSet() = default;

std::size_t RegexSet::prefiltered() const noexcept { return impl_ ? impl_->filtered_entry.size() : 0; }
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
  // Adds entries[i] for the given indices to `filter`; an error names the line.
  auto add_all = [&](re2::FilteredRE2& filter, const std::vector<std::uint32_t>& which) -> Result<void> {
    for (auto i : which) {
      int id = 0;
      auto code = filter.Add(piece(rs.pattern(rs.entries_[i])), pattern_options, &id);
      if (code == RE2::ErrorPatternTooLarge) return list_error(budget_message(rs.name_, options.max_mem));
      if (code != RE2::NoError) {
        return list_error("regex list " + rs.name_ + ", line " + std::to_string(lines[i].line) + ": RE2 rejected \"" +
                          std::string(lines[i].pattern) + "\"");
      }
    }
    return {};
  };

  // Which patterns have required literals? FilteredRE2 knows once compiled: with no literal found,
  // exactly the patterns it cannot filter pass.
  std::vector<std::uint32_t> all(lines.size());
  for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  std::vector<std::string> atoms;
  std::vector<int> unfiltered;
  {
    re2::FilteredRE2 probe(kMinAtomLen);
    if (auto r = add_all(probe, all); !r) return std::move(r).error();
    probe.Compile(&atoms);
    probe.AllPotentials({}, &unfiltered);
    if (unfiltered.empty()) {
      impl.filter = std::move(probe);
      impl.filtered_entry = std::move(all);
    }
  }
  std::vector<std::uint32_t> rest;  // entries for the RE2::Sets
  if (!unfiltered.empty()) {
    std::vector<bool> is_unfiltered(lines.size(), false);
    for (int id : unfiltered) is_unfiltered[static_cast<std::size_t>(id)] = true;
    for (std::uint32_t i = 0; i < lines.size(); ++i) {
      (is_unfiltered[i] ? rest : impl.filtered_entry).push_back(i);
    }
    atoms.clear();
    if (!impl.filtered_entry.empty()) {
      if (auto r = add_all(impl.filter, impl.filtered_entry); !r) return std::move(r).error();
      impl.filter.Compile(&atoms);
    }
  }
  impl.literals.build(atoms);

  std::size_t used = impl.literals.bytes();
  for (std::size_t id = 0; id < impl.filtered_entry.size(); ++id) {
    used += static_cast<std::size_t>(impl.filter.GetRE2(static_cast<int>(id)).ProgramSize()) * kInstBytes;
  }
  if (used > options.max_mem) return list_error(budget_message(rs.name_, options.max_mem));
  impl.compiled_bytes = used;

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

  // Prefiltered patterns: candidates come sorted by id, which is line order, so the first that
  // matches is the lowest line among them.
  thread_local std::vector<int> found;
  thread_local std::vector<int> candidates;
  found.clear();
  impl.literals.scan(text, found);
  if (!found.empty()) {
    impl.filter.AllPotentials(found, &candidates);
    for (int id : candidates) {
      if (RE2::PartialMatch(piece(text), impl.filter.GetRE2(id))) {
        best = impl.filtered_entry[static_cast<std::size_t>(id)];
        break;
      }
    }
  }

  // The other patterns: Set::Match(text, nullptr) allocates nothing and may stop at the first match;
  // only a text that matches pays a second pass to learn which patterns did.
  thread_local std::vector<int> hits;
  for (const auto& shard : impl.shards) {
    if (shard->entry.front() >= best) break;
    RE2::Set::ErrorInfo info{RE2::Set::kNoError};
    if (!shard->set.Match(piece(text), nullptr, &info)) {
      if (info.kind == RE2::Set::kNoError) continue;
      return list_error("regex list " + name_ + ": RE2 ran out of memory matching (max_mem " +
                        format_bytes(impl.max_mem) + "); raise lists." + name_ + ".max_mem_mb or split the list");
    }
    if (!shard->set.Match(piece(text), &hits, &info) || hits.empty()) {
      return list_error("regex list " + name_ + ": RE2 set match failed on the second pass");
    }
    for (int h : hits) best = std::min<std::size_t>(best, shard->entry[static_cast<std::size_t>(h)]);
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

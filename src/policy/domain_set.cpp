#include "portier/policy/domain_set.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>

#include "portier/core/ip.hpp"

namespace portier::policy {
namespace {

constexpr std::size_t kMaxDomain = 253;
constexpr std::size_t kMaxLabel = 63;
// A suffix of at most 253 characters starting at a non-empty label has at most 127 labels.
constexpr std::size_t kMaxSuffixes = 128;

constexpr std::array<unsigned char, 256> make_lower() {
  std::array<unsigned char, 256> t{};
  for (unsigned i = 0; i < 256; ++i) t[i] = static_cast<unsigned char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
  return t;
}
constexpr std::array<unsigned char, 256> kLower = make_lower();

inline unsigned char lower(char c) noexcept { return kLower[static_cast<unsigned char>(c)]; }

// FNV-1a over the lower-case bytes taken from the end of the name towards its start, so that the
// hash of every suffix falls out of one pass over the host; a final avalanche spreads it over the
// table index (low bits) and the tag (high bits).
constexpr std::uint64_t kFnvOffset = 14695981039346656037ull;
constexpr std::uint64_t kFnvPrime = 1099511628211ull;

inline std::uint64_t hash_step(std::uint64_t h, char c) noexcept { return (h ^ lower(c)) * kFnvPrime; }

inline std::uint64_t hash_finish(std::uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

std::uint64_t hash_name(std::string_view s) noexcept {
  std::uint64_t h = kFnvOffset;
  for (std::size_t i = s.size(); i-- > 0;) h = hash_step(h, s[i]);
  return hash_finish(h);
}

// `stored` is lower case; `name` may not be.
bool equal_lower(std::string_view name, const char* stored) noexcept {
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (lower(name[i]) != static_cast<unsigned char>(stored[i])) return false;
  }
  return true;
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool all_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Quoted and cut at 80 characters, so messages about absurd lines stay readable.
std::string quoted(std::string_view s) {
  constexpr std::size_t kMax = 80;
  std::string out = "\"";
  out.append(s.substr(0, kMax));
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

std::string char_name(char c) {
  auto u = static_cast<unsigned char>(c);
  char buf[8];
  if (u < 0x20 || u == 0x7f) {
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
  } else {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  }
  return buf;
}

// Names hosts files carry for the machine itself; they are not blocklist entries.
bool is_hosts_boilerplate(std::string_view name) noexcept {
  static constexpr std::string_view kNames[] = {
      "localhost",     "localhost.localdomain", "local",        "broadcasthost", "ip6-localhost",
      "ip6-loopback",  "ip6-localnet",          "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters",
      "ip6-allhosts",  "0.0.0.0"};
  return std::any_of(std::begin(kNames), std::end(kNames), [&](std::string_view n) { return iequals(n, name); });
}

bool is_address(std::string_view token) {
  auto zone = token.find('%');  // "fe80::1%lo0" in some hosts files
  return IpAddress::parse(token.substr(0, zone)).has_value();
}

class DomainParser {
 public:
  DomainParser(std::string_view file, ParsedDomainList& out) : file_(file), out_(out) {}

  void line(std::string_view text, std::uint32_t number) {
    line_ = number;
    text = trim(text);
    if (text.empty() || text.front() == '#' || text.front() == '!') return;
    if (text.front() == '[' && text.back() == ']') return;  // "[Adblock Plus 2.0]"
    // A '#' after a space or tab starts a trailing comment; "example.com##.ad" is a cosmetic rule.
    for (std::size_t i = 1; i < text.size(); ++i) {
      if (text[i] == '#' && is_space(text[i - 1])) {
        text = trim(text.substr(0, i));
        break;
      }
    }
    if (text.starts_with("@@")) return error("exception rules (@@) are not supported");
    if (text.starts_with("||")) return adblock(text.substr(2));
    if (text.find("##") != std::string_view::npos || text.find("#@#") != std::string_view::npos ||
        text.find("#?#") != std::string_view::npos || text.find("#$#") != std::string_view::npos) {
      return error("cosmetic (element hiding) rules are not supported");
    }

    std::array<std::string_view, 2> first{};
    std::size_t fields = 0;
    for (std::string_view rest = text; !rest.empty();) {
      auto end = std::find_if(rest.begin(), rest.end(), is_space) - rest.begin();
      if (fields < first.size()) first[fields] = rest.substr(0, end);
      ++fields;
      rest = trim(rest.substr(end));
    }
    if (fields == 1) return single(text);
    if (!is_address(first[0])) {
      return error("expected one domain per line, or \"ADDRESS NAME...\" (hosts file); " + quoted(first[0]) +
                   " is not an IP address");
    }
    // hosts-file line: every name after the address.
    std::string_view rest = trim(text.substr(first[0].size()));
    while (!rest.empty()) {
      auto end = std::find_if(rest.begin(), rest.end(), is_space) - rest.begin();
      auto name = rest.substr(0, end);
      rest = trim(rest.substr(end));
      if (is_hosts_boilerplate(name)) continue;
      add(name, false);
    }
  }

 private:
  void error(std::string reason) { out_.errors.push_back({std::string(file_), line_, std::move(reason)}); }

  void add(std::string_view domain, bool subdomains_only) {
    if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
    if (auto problem = domain_problem(domain); !problem.empty()) return error(std::move(problem));
    out_.entries.push_back({domain, line_, subdomains_only});
  }

  void single(std::string_view token) {
    if (is_address(token)) {
      return error(quoted(token) + " is an IP address; domain lists hold host names");
    }
    if (token.starts_with("*.")) return add(token.substr(2), true);
    if (token.starts_with('.') && token.size() > 1) return add(token.substr(1), false);
    add(token, false);
  }

  // After "||": "ads.example^", "ads.example^|", "ads.example^$important".
  void adblock(std::string_view rule) {
    auto caret = rule.find('^');
    auto stop = rule.find_first_of("/*|$^");
    if (caret == std::string_view::npos || stop != caret) {
      if (stop != std::string_view::npos && (rule[stop] == '/' || rule[stop] == '*')) {
        return error("adblock rules with a path or pattern are not supported; only ||domain^");
      }
      return error("adblock rule without '^' after the domain; only ||domain^ is supported");
    }
    auto domain = rule.substr(0, caret);
    auto tail = rule.substr(caret + 1);
    if (tail == "|") tail = {};
    if (!tail.empty() && tail.front() == '$') {
      auto options = tail.substr(1);
      while (!options.empty()) {
        auto comma = options.find(',');
        auto opt = options.substr(0, comma);
        if (!iequals(opt, "important") && !iequals(opt, "all")) {
          return error("adblock option \"$" + std::string(opt) +
                       "\" is not supported: portier blocks whole domains (only $important and $all are accepted)");
        }
        options = comma == std::string_view::npos ? std::string_view{} : options.substr(comma + 1);
      }
      tail = {};
    }
    if (!tail.empty()) return error("adblock rules with a path or pattern are not supported; only ||domain^");
    add(domain, false);
  }

  std::string_view file_;
  ParsedDomainList& out_;
  std::uint32_t line_ = 0;
};

}  // namespace

std::string LineError::describe() const {
  if (line == 0) return file + ": " + reason;
  return file + ":" + std::to_string(line) + ": " + reason;
}

std::string domain_problem(std::string_view domain) {
  if (domain.empty()) return "empty domain";
  if (std::any_of(domain.begin(), domain.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return "non-ASCII domain: write it in punycode (xn--...)";
  }
  if (domain.size() > kMaxDomain) {
    return "domain is " + std::to_string(domain.size()) + " characters long; the limit is 253";
  }
  std::string_view last;
  for (std::string_view rest = domain;;) {
    auto dot = rest.find('.');
    auto label = rest.substr(0, dot);
    if (label.empty()) return "empty label in " + quoted(domain);
    if (label.size() > kMaxLabel) return "label " + quoted(label) + " is longer than 63 characters";
    for (char c : label) {
      char l = static_cast<char>(lower(c));
      if ((l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '-' || l == '_') continue;
      if (c == '*') return "'*' is accepted only as a leading \"*.\" (as in *.example.com), not in " + quoted(domain);
      return "invalid character " + char_name(c) + " in " + quoted(domain);
    }
    if (label.front() == '-' || label.back() == '-') return "label " + quoted(label) + " starts or ends with '-'";
    last = label;
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  if (all_digits(last)) {
    if (IpAddress::parse(domain)) return quoted(domain) + " is an IP address; domain lists hold host names";
    return "last label " + quoted(last) + " is all digits: not a domain name";
  }
  return {};
}

bool is_ip_literal_host(std::string_view host) noexcept {
  if (host.find(':') != std::string_view::npos || host.find('[') != std::string_view::npos) return true;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  auto dot = host.rfind('.');
  return all_digits(dot == std::string_view::npos ? host : host.substr(dot + 1));
}

ParsedDomainList parse_domain_list(std::string_view text, std::string_view file_name) {
  ParsedDomainList out;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  out.entries.reserve(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  DomainParser parser(file_name, out);
  std::uint32_t number = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    parser.line(text.substr(0, nl), ++number);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  out.entries.shrink_to_fit();
  return out;
}

DomainSet DomainSet::build(std::span<const DomainLine> lines, std::string file) {
  DomainSet set;
  set.file_ = std::move(file);
  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, lines.size() * 2));  // load factor <= 1/2
  set.slots_.assign(capacity, Slot{});
  set.mask_ = capacity - 1;
  std::size_t bytes = 0;
  for (const auto& l : lines) bytes += l.domain.size();
  set.arena_.reserve(bytes);
  set.entries_.reserve(lines.size());

  for (const auto& l : lines) {
    std::string_view d = l.domain;
    if (!d.empty() && d.back() == '.') d.remove_suffix(1);
    if (d.empty() || d.size() > kMaxDomain) continue;
    std::uint64_t h = hash_name(d);
    auto tag = static_cast<std::uint32_t>(h >> 32);
    for (std::size_t i = h & set.mask_;; i = (i + 1) & set.mask_) {
      Slot& slot = set.slots_[i];
      if (slot.entry == 0) {
        Entry e;
        e.offset = static_cast<std::uint32_t>(set.arena_.size());
        e.length = static_cast<std::uint8_t>(d.size());
        e.line = l.line;
        e.subdomains_only = l.subdomains_only;
        for (char c : d) set.arena_.push_back(static_cast<char>(lower(c)));
        set.entries_.push_back(e);
        slot = {tag, static_cast<std::uint32_t>(set.entries_.size())};
        break;
      }
      Entry& e = set.entries_[slot.entry - 1];
      if (slot.tag != tag || e.length != d.size() || !equal_lower(d, set.arena_.data() + e.offset)) continue;
      // The same domain again: a plain line matches more than a "*." line; else keep the lowest line.
      if (e.subdomains_only && !l.subdomains_only) {
        e.subdomains_only = false;
        e.line = l.line;
      } else if (e.subdomains_only == l.subdomains_only && l.line < e.line) {
        e.line = l.line;
      }
      break;
    }
  }
  set.arena_.shrink_to_fit();
  set.entries_.shrink_to_fit();
  return set;
}

const DomainSet::Entry* DomainSet::find(std::string_view name, std::uint64_t hash) const noexcept {
  auto tag = static_cast<std::uint32_t>(hash >> 32);
  for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
    const Slot& slot = slots_[i];
    if (slot.entry == 0) return nullptr;
    if (slot.tag != tag) continue;
    const Entry& e = entries_[slot.entry - 1];
    if (e.length == name.size() && equal_lower(name, arena_.data() + e.offset)) return &e;
  }
}

const DomainSet::Entry* DomainSet::match(std::string_view host) const noexcept {
  if (entries_.empty()) return nullptr;
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || is_ip_literal_host(host)) return nullptr;

  // One pass from the right: the hash of each suffix that starts a non-empty label, up to 253 characters.
  struct Suffix {
    std::size_t pos;
    std::uint64_t hash;
  };
  std::array<Suffix, kMaxSuffixes> suffixes;
  std::size_t count = 0;
  std::uint64_t h = kFnvOffset;
  std::size_t n = host.size();
  std::size_t stop = n > kMaxDomain ? n - kMaxDomain : 0;
  for (std::size_t i = n; i-- > stop;) {
    h = hash_step(h, host[i]);
    if ((i == 0 || host[i - 1] == '.') && host[i] != '.' && count < suffixes.size()) {
      suffixes[count++] = {i, hash_finish(h)};
    }
  }
  // Longest suffix first: the first hit is the most specific entry.
  while (count-- > 0) {
    const auto& s = suffixes[count];
    const Entry* e = find(host.substr(s.pos), s.hash);
    if (e != nullptr && (!e->subdomains_only || s.pos > 0)) return e;
  }
  return nullptr;
}

std::size_t DomainSet::memory_bytes() const noexcept {
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) + slots_.capacity() * sizeof(Slot) + sizeof(*this);
}

}  // namespace portier::policy

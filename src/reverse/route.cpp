#include "portier/reverse/route.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <array>

#include "portier/core/hash.hpp"

namespace portier::reverse {
namespace {

// ---- hosts ----------------------------------------------------------------------------------------

constexpr std::size_t kMaxHostBytes = 253;   // a DNS name without its trailing dot
constexpr std::size_t kMaxLabelBytes = 63;

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool digit(char c) noexcept { return c >= '0' && c <= '9'; }

// A port after the host: decimal digits up to 65535; empty is allowed (RFC 3986: port = *DIGIT).
bool valid_port(std::string_view p) noexcept {
  if (p.size() > 5) return false;
  unsigned n = 0;
  for (char c : p) {
    if (!digit(c)) return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  return n <= 65535;
}

using HostBuffer = std::array<char, kMaxHostBytes + 1>;

// The normalized host in `buf`, or empty when the value is empty or malformed.
std::string_view normalize_into(std::string_view v, HostBuffer& buf) noexcept {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.empty()) return {};

  if (v.front() == '[') {  // IPv6 literal: "[::1]" or "[::1]:8080"; no zone ids, no IPvFuture
    const auto close = v.find(']');
    if (close == std::string_view::npos) return {};
    const std::string_view addr = v.substr(1, close - 1);
    const std::string_view rest = v.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !valid_port(rest.substr(1)))) return {};
    if (addr.empty() || addr.size() > buf.size() || addr.find(':') == std::string_view::npos) return {};
    for (std::size_t i = 0; i < addr.size(); ++i) {
      const char c = lower(addr[i]);
      if (!(digit(c) || (c >= 'a' && c <= 'f') || c == ':' || c == '.')) return {};
      buf[i] = c;
    }
    return {buf.data(), addr.size()};
  }

  // A name or an IPv4 address, with an optional port. A second ':' means an unbracketed IPv6
  // literal, which a Host header may not carry: malformed.
  std::string_view name = v;
  if (const auto colon = v.find(':'); colon != std::string_view::npos) {
    if (!valid_port(v.substr(colon + 1))) return {};
    name = v.substr(0, colon);
  }
  if (name.ends_with('.')) name.remove_suffix(1);  // "example.com." is "example.com"
  if (name.empty() || name.size() > kMaxHostBytes) return {};
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = lower(name[i]);
    if (c == '.') {
      if (label == 0) return {};  // "a..b", ".a"
      label = 0;
    } else if (digit(c) || (c >= 'a' && c <= 'z') || c == '-' || c == '_') {
      if (++label > kMaxLabelBytes) return {};
    } else {
      return {};  // '*', '%', '/', '@', spaces, bytes over 0x7f, ...
    }
    buf[i] = c;
  }
  if (label == 0) return {};  // "a.." left a trailing empty label
  return {buf.data(), name.size()};
}

bool is_wildcard(std::string_view route_host) noexcept { return route_host.starts_with("*."); }

bool host_matches(std::string_view route_host, std::string_view host) noexcept {
  if (route_host.empty()) return true;  // any host, also a missing or malformed one
  if (is_wildcard(route_host)) {
    const std::string_view suffix = route_host.substr(1);  // ".example.com"
    return host.size() > suffix.size() && host.ends_with(suffix);
  }
  return host == route_host;
}

// Host specificity as a number: exact names above every wildcard, longer wildcards above shorter
// ones, any host last.
std::size_t host_rank(std::string_view route_host) noexcept {
  if (route_host.empty()) return 0;
  if (is_wildcard(route_host)) return route_host.size();  // <= kMaxHostBytes + a little
  return std::size_t{1} << 20;
}

bool more_specific(const Route& a, const Route& b) noexcept {
  const auto ha = host_rank(a.host), hb = host_rank(b.host);
  if (ha != hb) return ha > hb;
  if (a.path_prefix.size() != b.path_prefix.size()) return a.path_prefix.size() > b.path_prefix.size();
  const bool ra = a.path_regex != nullptr, rb = b.path_regex != nullptr;
  if (ra != rb) return ra;
  return a.order < b.order;
}

bool serves(const Route& r, std::string_view listener) noexcept {
  return r.listeners.empty() || std::find(r.listeners.begin(), r.listeners.end(), listener) != r.listeners.end();
}

// ---- balancing ------------------------------------------------------------------------------------

bool eligible(const BackendState& b) noexcept { return b.healthy && !b.tried && b.weight > 0; }

// The n-th (0-based) backend for which `pred` holds; the caller knows it exists.
template <class Pred>
std::size_t nth_where(std::span<const BackendState> backends, std::size_t n, Pred pred) noexcept {
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (pred(backends[i]) && n-- == 0) return i;
  }
  return backends.size();  // not reached
}

// Weighted: a deadline schedule over a window of T = sum(eligible weights) positions. Backend i
// owns the slots k = 0..w_i-1 with the integer deadlines d(i,k) = floor((2k+1)·T / (2·w_i)), the
// middles of its w_i equal shares of the window; slots are ordered by deadline, ties by index, and
// position p of the window is the p-th slot. So every backend gets exactly its weight per window,
// and each of its picks lies within about n positions of its ideal place (90/10: nine A's, one B).
// Because w_i <= T the deadlines of one backend are strictly increasing, so at most one slot of a
// backend has a given deadline.
//
// slots_upto(i, y) = #{k : d(i,k) <= y} = #{k : (2k+1)·T < 2·w_i·(y+1)} = min(w_i, (2·w_i·(y+1) + T-1) / (2T)).
// U is wide enough for 2·w·T + T (the caller picks __int128 for large weights).
template <class U>
std::size_t weighted_pick(std::span<const BackendState> backends, U total, U pos) noexcept {
  auto slots_upto = [&](U y) {  // slots with deadline <= y, over all eligible backends
    U sum = 0;
    for (const auto& b : backends) {
      if (!eligible(b)) continue;
      const U w = b.weight;
      sum += std::min(w, (2 * w * (y + 1) + total - 1) / (2 * total));
    }
    return sum;
  };
  // The smallest deadline y with more than `pos` slots up to it: position `pos` is one of y's slots.
  U lo = 0, hi = total - 1;  // slots_upto(total - 1) == total > pos
  while (lo < hi) {
    const U mid = lo + (hi - lo) / 2;
    if (slots_upto(mid) > pos) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  const U y = lo;
  U rank = pos - (y == 0 ? U{0} : slots_upto(y - 1));  // which of y's slots, in index order
  for (std::size_t i = 0; i < backends.size(); ++i) {
    const auto& b = backends[i];
    if (!eligible(b)) continue;
    const U w = b.weight;
    const U upto = std::min(w, (2 * w * (y + 1) + total - 1) / (2 * total));
    const U before = y == 0 ? U{0} : std::min(w, (2 * w * y + total - 1) / (2 * total));
    if (upto != before && rank-- == 0) return i;
  }
  return backends.size();  // not reached
}

// Weighted rendezvous over the untried healthy backends, without allocating: candidates go to
// rendezvous_pick in chunks, each chunk led by the winner so far. A candidate's score does
// not depend on the others, so the winner of winners is the overall winner; the leader sits first
// and has the lower index, so ties still go to the lower index as in one call.
std::optional<std::size_t> hash_pick(std::span<const BackendState> backends, std::string_view key) noexcept {
  constexpr std::size_t kChunk = 32;
  std::array<HashCandidate, kChunk + 1> cand{};
  std::array<std::size_t, kChunk + 1> index{};
  std::optional<std::size_t> best;
  for (std::size_t from = 0; from < backends.size(); from += kChunk) {
    std::size_t n = 0;
    if (best) {
      const auto& b = backends[*best];
      cand[n] = HashCandidate{b.key, b.weight, true};
      index[n++] = *best;
    }
    for (std::size_t i = from; i < std::min(backends.size(), from + kChunk); ++i) {
      const auto& b = backends[i];
      cand[n] = HashCandidate{b.key, b.weight, eligible(b)};
      index[n++] = i;
    }
    if (const auto won = rendezvous_pick(key, std::span(cand.data(), n))) best = index[*won];
  }
  return best;
}

}  // namespace

// ---- routes ---------------------------------------------------------------------------------------

RouteTable::RouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
  for (auto& r : routes_) {  // the config stores hosts normalized; this keeps match() right if not
    std::transform(r.host.begin(), r.host.end(), r.host.begin(), lower);
    if (r.host.size() > 1 && r.host.ends_with('.')) r.host.pop_back();
  }
  std::stable_sort(routes_.begin(), routes_.end(), more_specific);
}

const Route* RouteTable::match(std::string_view listener, std::string_view host,
                               std::string_view path) const noexcept {
  for (const auto& r : routes_) {
    if (!serves(r, listener) || !host_matches(r.host, host) || !path_under(path, r.path_prefix)) continue;
    // Partial match: a regex matches anywhere in the path unless it anchors itself with ^ and $.
    if (r.path_regex && !RE2::PartialMatch(path, *r.path_regex)) continue;
    return &r;
  }
  return nullptr;
}

std::string normalize_host(std::string_view host_header) {
  HostBuffer buf;
  return std::string(normalize_into(host_header, buf));
}

bool path_under(std::string_view path, std::string_view prefix) noexcept {
  if (prefix.empty()) prefix = "/";
  if (!path.starts_with(prefix)) return false;
  if (prefix.ends_with('/') || path.size() == prefix.size()) return true;
  // "/api" covers "/api/x" but not "/apix"; '?' is a boundary too, so a path with its query works.
  const char next = path[prefix.size()];
  return next == '/' || next == '?';
}

std::string strip_prefix(std::string_view path_and_query, std::string_view prefix) {
  if (prefix.empty()) prefix = "/";
  std::string_view rest = path_and_query;
  if (path_under(path_and_query, prefix)) {
    // A prefix that ends in '/' keeps that '/' as the backend's root: "/api/users" -> "/users".
    rest = path_and_query.substr(prefix.ends_with('/') ? prefix.size() - 1 : prefix.size());
  }
  std::string out;
  out.reserve(rest.size() + 1);
  if (!rest.starts_with('/')) out.push_back('/');  // "" -> "/", "?x=1" -> "/?x=1"
  out.append(rest);
  return out;
}

// ---- balancing ------------------------------------------------------------------------------------

std::optional<std::size_t> pick_backend(Balance method, std::span<const BackendState> backends, std::uint64_t counter,
                                        std::string_view hash_key) noexcept {
  std::size_t count = 0;
  std::uint64_t total = 0;
  bool wide = false;  // some weight too large for 64-bit deadline arithmetic
  for (const auto& b : backends) {
    if (!eligible(b)) continue;
    ++count;
    total += b.weight;
    wide = wide || b.weight > (1u << 24);
  }
  if (count == 0) return std::nullopt;

  switch (method) {
    case Balance::round_robin:
      return nth_where(backends, counter % count, eligible);

    case Balance::least_conn: {
      int fewest = 0;
      bool first = true;
      for (const auto& b : backends) {
        if (eligible(b) && (first || b.active < fewest)) {
          fewest = b.active;
          first = false;
        }
      }
      auto tied = [fewest](const BackendState& b) { return eligible(b) && b.active == fewest; };
      const auto n = static_cast<std::size_t>(std::count_if(backends.begin(), backends.end(), tied));
      return nth_where(backends, counter % n, tied);
    }

    case Balance::weighted: {
      // 64 bits hold 2·w·T + T while every weight is below 2^24 and the pool has fewer than 2^14
      // backends (T < 2^38); otherwise 128 bits.
      if (!wide && count < (1u << 14)) return weighted_pick<std::uint64_t>(backends, total, counter % total);
      using U128 = unsigned __int128;
      return weighted_pick<U128>(backends, total, counter % total);
    }

    case Balance::hash_client:
    case Balance::hash_header:
      return hash_pick(backends, hash_key);
  }
  return std::nullopt;
}

}  // namespace portier::reverse

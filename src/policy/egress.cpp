#include "portier/policy/egress.hpp"

#include <algorithm>

namespace portier::policy {
namespace {

// Messages go into a 400 answer and the access log: they name the key (configured, harmless) but
// never echo a value, which is the client's text.
Error bad_name(std::string what) {
  return Error{errc::bad_request, Side::downstream, "proxy user name: " + std::move(what)};
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

bool value_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

// 1..65535 in plain decimal digits; anything else (sign, suffix, zero, overflow) is refused.
std::optional<unsigned> minutes_of(std::string_view v) noexcept {
  if (v.empty() || v.size() > 5) return std::nullopt;
  unsigned n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n < 1 || n > 65535) return std::nullopt;
  return n;
}

// True when splitting `s` at `sep` gives an empty piece: a separator at either end or two in a row.
bool has_empty_piece(std::string_view s, std::string_view sep) noexcept {
  if (s.empty()) return false;
  if (s.starts_with(sep) || s.ends_with(sep)) return true;
  for (auto at = s.find(sep); at != std::string_view::npos; at = s.find(sep, at + sep.size())) {
    if (s.substr(at + sep.size()).starts_with(sep)) return true;
  }
  return false;
}

// One trailing "key SEP value" of `rest`, and what stands before it.
struct Pair {
  std::string_view key;
  std::string_view value;
  std::string_view head;  // everything before the key (without its separator); empty when none
};

std::optional<Pair> last_pair(std::string_view rest, std::string_view sep) noexcept {
  const auto v = rest.rfind(sep);
  if (v == std::string_view::npos) return std::nullopt;
  Pair p;
  p.value = rest.substr(v + sep.size());
  const std::string_view before = rest.substr(0, v);
  const auto k = before.rfind(sep);
  if (k == std::string_view::npos) {
    p.key = before;
  } else {
    p.key = before.substr(k + sep.size());
    p.head = before.substr(0, k);
  }
  return p;
}

// Stores one parameter; the error when the key came before or the value is not acceptable.
Result<void> take(const Pair& p, const UsernameGrammar& g, UsernameParams& out, bool& seen_sesstime) {
  const bool is_sesstime = p.key == g.sesstime_key;
  const bool seen = is_sesstime ? seen_sesstime : !(p.key == g.region_key ? out.region : out.session).empty();
  if (seen) return bad_name("key " + quoted(p.key) + " given twice");
  if (p.value.empty()) return bad_name("key " + quoted(p.key) + " has an empty value");
  if (p.value.size() > kMaxParamValueBytes)
    return bad_name("value of " + quoted(p.key) + " is longer than " + std::to_string(kMaxParamValueBytes) + " bytes");
  if (is_sesstime) {
    out.sesstime_minutes = minutes_of(p.value);
    if (!out.sesstime_minutes) return bad_name(quoted(p.key) + " must be a number of minutes from 1 to 65535");
    seen_sesstime = true;
    return {};
  }
  if (!std::all_of(p.value.begin(), p.value.end(), value_char))
    return bad_name("value of " + quoted(p.key) + " may only contain letters, digits, '_' and '.'");
  (p.key == g.region_key ? out.region : out.session) = p.value;
  return {};
}

}  // namespace

Result<UsernameParams> parse_username(std::string_view username, const UsernameGrammar& grammar) {
  if (username.size() > kMaxUsernameBytes)
    return bad_name("longer than " + std::to_string(kMaxUsernameBytes) + " bytes");
  UsernameParams out;
  out.base = username;
  // An empty separator would split everywhere; config validation refuses it, and here it means off.
  if (!grammar.enabled || grammar.separator.empty()) return out;

  const std::string_view sep = grammar.separator;
  auto is_key = [&](std::string_view k) {
    return k == grammar.region_key || k == grammar.session_key || k == grammar.sesstime_key;
  };
  std::string_view rest = username;
  bool any = false;
  bool seen_sesstime = false;
  while (auto p = last_pair(rest, sep)) {
    if (!is_key(p->key)) break;
    if (auto r = take(*p, grammar, out, seen_sesstime); !r) return std::move(r).error();
    any = true;
    rest = p->head;
  }
  if (any && rest.empty()) return bad_name("no user before the parameters");
  if (has_empty_piece(rest, sep)) return bad_name("empty part between separators");
  out.base = rest;
  return out;
}

bool Audience::admits(std::string_view user, const std::vector<std::string>* user_groups) const noexcept {
  if (user.empty()) return false;
  if (users.empty() && groups.empty()) return true;
  if (std::find(users.begin(), users.end(), user) != users.end()) return true;
  if (user_groups == nullptr) return false;
  return std::any_of(user_groups->begin(), user_groups->end(), [&](const std::string& g) {
    return std::find(groups.begin(), groups.end(), g) != groups.end();
  });
}

bool EgressPolicy::knows(std::string_view region) const noexcept {
  if (region == kDirectRegion) return true;
  // The maps are keyed by std::string without a transparent hash; compare in place rather than
  // build a key (region names may be longer than the small-string buffer).
  return std::any_of(regions.begin(), regions.end(), [&](const auto& kv) { return kv.first == region; });
}

}  // namespace portier::policy

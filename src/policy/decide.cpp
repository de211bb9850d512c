#include "portier/policy/decide.hpp"

#include <re2/re2.h>

#include <algorithm>

namespace portier::policy {
namespace {

bool in_ranges(const std::vector<Cidr>& ranges, const IpAddress& a) noexcept {
  return std::any_of(ranges.begin(), ranges.end(), [&](const Cidr& c) { return c.contains(a); });
}

bool contains(const std::vector<std::string>& v, std::string_view s) noexcept {
  return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return x == s; });
}

// A name test over the tunnel's two names. A deny must trigger when either the CONNECT host or the
// SNI matches; an allow (or egress) must hold for both, so a forged SNI can never widen access.
template <class Test>
bool names_match(const RequestFacts& f, bool for_deny, Test&& test) {
  bool host = test(f.host);
  if (f.sni.empty() || f.sni == f.host) return host;
  bool sni = test(f.sni);
  return for_deny ? (host || sni) : (host && sni);
}

struct Match {
  bool ok = false;
  std::string entry;  // list entry that matched
};

Match condition_holds(const Condition& c, const RequestFacts& f, bool for_deny) {
  Match m;
  if (!c.listeners.empty() && !contains(c.listeners, f.listener)) return m;
  if (!c.methods.empty() && !contains(c.methods, f.method)) return m;
  if (!c.ports.empty() &&
      !std::any_of(c.ports.begin(), c.ports.end(), [&](const PortRange& r) { return r.contains(f.port); }))
    return m;
  if (!c.clients.empty() && !in_ranges(c.clients, f.client)) return m;
  if (!c.users.empty() && (f.user.empty() || !contains(c.users, f.user))) return m;
  if (!c.groups.empty()) {
    if (f.groups == nullptr) return m;
    bool any = std::any_of(c.groups.begin(), c.groups.end(), [&](const std::string& g) { return contains(*f.groups, g); });
    if (!any) return m;
  }
  if (!c.times.empty() &&
      !std::any_of(c.times.begin(), c.times.end(), [&](const TimeWindow& w) { return w.contains(f.minute_of_week); }))
    return m;
  if (c.url) {
    if (f.url.empty() || !re2::RE2::PartialMatch(f.url, *c.url)) return m;
  }
  if (c.host) {
    if (!names_match(f, for_deny, [&](std::string_view name) { return re2::RE2::PartialMatch(name, *c.host); })) return m;
  }
  if (!c.lists.empty()) {
    bool any = false;
    for (const auto& list : c.lists) {
      std::string entry;
      auto test = [&](std::string_view text) {
        ListLookup r = list->match(text);
        if (r.kind == ListLookup::Kind::miss) return false;
        // A list that cannot answer fails closed: it counts as a match for a deny, not for an allow.
        const bool holds = r.kind == ListLookup::Kind::hit || for_deny;
        if (holds && entry.empty()) entry = std::move(r.entry);
        return holds;
      };
      bool hit = (list->matches_hosts() || f.url.empty()) ? names_match(f, for_deny, test) : test(f.url);
      if (hit) {
        any = true;
        m.entry = std::move(entry);
        break;
      }
    }
    if (!any) return m;
  }
  m.ok = true;
  return m;
}

// ---- egress: which region an admitted request leaves through ----------------------------------

// The region's audience; "direct" needs no definition and then admits everyone allowed parameters.
// A scan, not a lookup: the map has no transparent hash, and a key built from the name could allocate.
const Audience* region_audience(const EgressPolicy& e, std::string_view region) noexcept {
  for (const auto& [name, audience] : e.regions)
    if (name == region) return &audience;
  return nullptr;
}

bool given_parameters(const RequestFacts& f) noexcept {
  return !f.asked_region.empty() || !f.session_id.empty() || f.sesstime.has_value();
}

// Step 1: a region asked for in the user name, if the user may ask for it.
std::optional<Deny> username_region(const RequestFacts& f, const EgressPolicy& e, Route& route) {
  if (!e.username_audience.admits(f.user, f.groups)) {
    std::string why = f.user.empty() ? "user name parameters need a verified user"
                                     : "user " + std::string(f.user) + " may not use user name parameters";
    return Deny{403, "egress_params", std::move(why), "", "", false};
  }
  if (f.asked_region.empty()) return std::nullopt;
  if (!e.knows(f.asked_region))
    return Deny{400, "egress_region", "unknown region \"" + std::string(f.asked_region) + "\"", "", "", false};
  const Audience* audience = region_audience(e, f.asked_region);
  if (audience != nullptr && !audience->admits(f.user, f.groups)) {
    return Deny{403, "egress_region",
                "user " + std::string(f.user) + " may not use region " + std::string(f.asked_region), "", "", false};
  }
  route.region = f.asked_region;
  route.chosen_by = "username";
  return std::nullopt;
}

// Steps 2-4, when the user name chose nothing: the rule's region, then the user's, then the first
// of the user's groups in config order, then the default.
void configured_region(const RequestFacts& f, const EgressPolicy& e, const Rule* rule, Route& route) {
  if (rule != nullptr && rule->action == Action::egress) {
    route.region = rule->egress;
    route.chosen_by = "rule";
    return;
  }
  if (!f.user.empty() && !e.user_region.empty()) {
    if (auto it = e.user_region.find(std::string(f.user)); it != e.user_region.end()) {
      route.region = it->second;
      route.chosen_by = "user";
      return;
    }
  }
  if (!f.user.empty() && f.groups != nullptr) {
    for (const auto& [group, region] : e.group_region) {
      if (contains(*f.groups, group)) {
        route.region = region;
        route.chosen_by = "group";
        return;
      }
    }
  }
  route.region = e.default_region;
  route.chosen_by = "default";
}

// A sticky session from the user name, bounded by the configured maximum.
std::optional<Deny> session_of(const RequestFacts& f, const EgressPolicy& e, Route& route) {
  if (f.session_id.empty()) {
    if (f.sesstime) return Deny{400, "egress_session", "sesstime needs a session", "", "", false};
    return std::nullopt;
  }
  if (f.sesstime && *f.sesstime > e.session_max_minutes) {
    return Deny{400, "egress_session",
                "sesstime " + std::to_string(*f.sesstime) + " exceeds the maximum " +
                    std::to_string(e.session_max_minutes) + " minutes",
                "", "", false};
  }
  route.session = f.session_id;
  route.session_minutes = f.sesstime.value_or(e.session_default_minutes);
  return std::nullopt;
}

// The request passed the rules (`rule` is the allowing rule, null for the default): choose its
// route, which may still refuse it for what the user name asked.
Decision admit(const RequestFacts& f, const PolicySnapshot& snap, const Rule* rule) {
  const EgressPolicy& e = snap.egress;
  Route route;
  bool chosen = false;
  if (given_parameters(f)) {
    if (auto deny = username_region(f, e, route)) return std::move(*deny);
    if (auto deny = session_of(f, e, route)) return std::move(*deny);
    chosen = !f.asked_region.empty();
  }
  if (!chosen) configured_region(f, e, rule, route);
  std::string id = rule != nullptr ? rule->id : std::string();
  if (f.is_connect) return Tunnel{std::move(route), std::move(id)};
  return Forward{std::move(route), std::move(id)};
}

}  // namespace

bool TimeWindow::contains(MinuteOfWeek m) const noexcept {
  int day = (m / 1440) % 7;
  int minute = m % 1440;
  if (from <= to) return (days >> day & 1) && minute >= from && minute < to;
  // Wraps past midnight: the early part belongs to the window that started the day before.
  if (minute >= from) return days >> day & 1;
  if (minute < to) return days >> ((day + 6) % 7) & 1;
  return false;
}

bool Condition::empty() const noexcept {
  return listeners.empty() && users.empty() && groups.empty() && clients.empty() && methods.empty() && !host &&
         lists.empty() && !url && ports.empty() && times.empty();
}

const ListenerPolicy* PolicySnapshot::listener(std::string_view name) const noexcept {
  for (const auto& l : listeners)
    if (l.name == name) return &l;
  return nullptr;
}

std::optional<Deny> refuse_client(const RequestFacts& f, const PolicySnapshot& snap) noexcept {
  const ListenerPolicy* lp = snap.listener(f.listener);
  if (lp == nullptr || lp->allow_clients.empty() || in_ranges(lp->trusted, f.client) ||
      in_ranges(lp->allow_clients, f.client))
    return std::nullopt;
  return Deny{403, "client_network", "your network may not use this proxy", "", "", lp->refuse == RefuseMode::close};
}

Decision decide(const RequestFacts& f, const PolicySnapshot& snap) noexcept {
  const ListenerPolicy* lp = snap.listener(f.listener);
  const bool trusted = lp != nullptr && in_ranges(lp->trusted, f.client);

  // Who may use this listener at all.
  if (auto refused = refuse_client(f, snap)) return *refused;
  // A user name whose parameters cannot be parsed cannot be authenticated either: say why with a
  // 400 rather than hide it behind a 407 the client would answer with the same name again.
  if (!f.username_error.empty()) {
    return Deny{400, "username", std::string(f.username_error), "", "", false};
  }
  // Who they are. Wrong credentials get a new challenge even where auth is optional: a browser
  // must be able to correct a typo, and nothing passes under a name that was not verified.
  if (lp != nullptr && !trusted) {
    bool need = lp->auth == AuthMode::required || (lp->auth == AuthMode::optional && f.credentials_present);
    if (need && f.user.empty()) return Challenge{snap.realm};
  }
  // Domain fronting: the TLS name must be the name the tunnel was asked for.
  if (f.is_connect && snap.sni_must_match && !f.sni.empty() && !IpAddress::parse(f.host) && f.sni != f.host) {
    return Deny{403, "sni_mismatch",
                "the TLS server name " + std::string(f.sni) + " does not match the CONNECT host " + std::string(f.host),
                "domain fronting", "", false};
  }

  for (const Rule& r : snap.rules) {
    const bool for_deny = r.action == Action::deny;
    Match m = condition_holds(r.when, f, for_deny);
    if (!m.ok) continue;
    if (r.unless && condition_holds(*r.unless, f, !for_deny).ok) continue;
    switch (r.action) {
      case Action::allow:
      case Action::egress: return admit(f, snap, &r);
      case Action::deny: {
        std::string reason = r.reason.empty() ? "denied by rule " + r.id : r.reason;
        return Deny{403, r.id, std::move(reason), r.category, std::move(m.entry), false};
      }
    }
  }
  if (snap.default_action == Action::deny) {
    return Deny{403, "default", "not allowed by any rule of this proxy", "", "", false};
  }
  return admit(f, snap, nullptr);
}

const char* decision_name(const Decision& d) noexcept {
  static constexpr const char* kNames[] = {"tunnel", "forward", "deny", "challenge", "answer"};
  return kNames[d.index()];
}

std::vector<Rule> default_rules() {
  Rule r;
  r.id = "connect_ports";
  r.when.methods = {"CONNECT"};
  Condition unless;
  unless.ports = {PortRange{443, 443}};
  r.unless = std::move(unless);
  r.action = Action::deny;
  r.reason = "CONNECT is only allowed to port 443";
  std::vector<Rule> out;
  out.push_back(std::move(r));
  return out;
}

}  // namespace portier::policy

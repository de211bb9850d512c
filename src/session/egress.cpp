#include "portier/session/egress.hpp"

#include <algorithm>
#include <random>

#include "portier/policy/egress.hpp"

namespace portier::session {

// ---- health ------------------------------------------------------------------------------------

bool Health::healthy(net::Clock::time_point now) const noexcept {
  if (probe_down.load(std::memory_order_relaxed)) return false;
  return down_until.load(std::memory_order_relaxed) <= now.time_since_epoch().count();
}

void Health::succeeded() noexcept {
  failures.store(0, std::memory_order_relaxed);
  down_until.store(0, std::memory_order_relaxed);
}

bool Health::failed(net::Clock::time_point now, unsigned fail_after, net::Clock::duration down_for) noexcept {
  unsigned n = failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n < fail_after) return false;
  // Down for the back-off period; the count restarts so that after it one more failure is enough
  // to be marked again only once fail_after failures have piled up anew.
  failures.store(0, std::memory_order_relaxed);
  down_until.store((now + down_for).time_since_epoch().count(), std::memory_order_relaxed);
  return true;
}

std::shared_ptr<Health> HealthRegistry::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto& slot = health_[key];
  if (!slot) slot = std::make_shared<Health>();
  return slot;
}

void HealthRegistry::keep_only(const std::vector<std::string>& keys) {
  std::lock_guard lock(mutex_);
  std::erase_if(health_, [&](const auto& kv) { return std::find(keys.begin(), keys.end(), kv.first) == keys.end(); });
}

// ---- the table ---------------------------------------------------------------------------------

namespace {

std::string chain_of(const config::ExitConfig& e) {
  if (e.hops.empty()) return "direct";
  std::string out;
  for (const auto& h : e.hops) {
    if (!out.empty()) out += ',';
    out += h.label();
  }
  return out;
}

}  // namespace

EgressTable::EgressTable(std::shared_ptr<const config::Snapshot> snapshot, HealthRegistry& registry)
    : snapshot_(std::move(snapshot)) {
  direct_config_.name = std::string(policy::kDirectRegion);
  config::ExitConfig direct_exit;
  direct_exit.name = std::string(policy::kDirectRegion);
  direct_config_.exits.push_back(direct_exit);

  auto add = [&](const config::RegionConfig& rc) {
    auto r = std::make_unique<RegionState>();
    r->config = &rc;
    for (const auto& ec : rc.exits) {
      ExitState e;
      e.config = &ec;
      e.chain = chain_of(ec);
      // Health follows the exit while its name, path and source address stay the same.
      e.key = ec.name + "|" + e.chain + "|" + (ec.bind ? ec.bind->to_string() : "");
      e.health = registry.get(e.key);
      r->exits.push_back(std::move(e));
    }
    regions_.push_back(std::move(r));
  };
  add(direct_config_);
  for (const auto& rc : snapshot_->config.egress.regions) add(rc);
  for (auto& r : regions_) {
    for (const auto& name : r->config->fallback) {
      if (const RegionState* f = region(name)) r->fallback.push_back(f);
    }
  }
}

const RegionState* EgressTable::region(std::string_view name) const noexcept {
  for (const auto& r : regions_)
    if (r->config->name == name) return r.get();
  return nullptr;
}

std::vector<std::string> EgressTable::keys() const {
  std::vector<std::string> out;
  for (const auto& r : regions_)
    for (const auto& e : r->exits) out.push_back(e.key);
  return out;
}

// ---- sticky sessions ---------------------------------------------------------------------------

StickyTable::Entry* StickyTable::find(const std::string& key, net::Clock::time_point now) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (it->second.expiry <= now) {
    map_.erase(it);
    return nullptr;
  }
  return &it->second;
}

void StickyTable::put(const std::string& key, std::string exit, net::Clock::time_point expiry,
                      std::size_t max_entries, net::Clock::time_point now) {
  if (map_.size() >= max_entries && !map_.contains(key)) {
    std::erase_if(map_, [&](const auto& kv) { return kv.second.expiry <= now; });
    // Still full: the table is a cache of pins, not the source of truth (rendezvous hashing is), so
    // dropping one costs at most a move back to the session's hashed exit.
    if (map_.size() >= max_entries) map_.erase(map_.begin());
  }
  map_[key] = Entry{std::move(exit), expiry};
}

// ---- choosing ----------------------------------------------------------------------------------

namespace {

bool was_tried(std::span<const ExitState* const> tried, const ExitState* e) {
  return std::find(tried.begin(), tried.end(), e) != tried.end();
}

thread_local std::minstd_rand t_rng{std::random_device{}()};

// Balancing among the eligible exits of a region (no session).
const ExitState* balance(const RegionState& r, const std::vector<const ExitState*>& eligible) {
  switch (r.config->balance) {
    case config::Balance::round_robin:
      return eligible[r.next.fetch_add(1, std::memory_order_relaxed) % eligible.size()];
    case config::Balance::least_conn: {
      // Ties go round robin, so idle exits share the load instead of the first one taking it all.
      std::size_t start = r.next.fetch_add(1, std::memory_order_relaxed) % eligible.size();
      const ExitState* best = nullptr;
      int best_active = 0;
      for (std::size_t i = 0; i < eligible.size(); ++i) {
        const ExitState* e = eligible[(start + i) % eligible.size()];
        int a = e->health->active.load(std::memory_order_relaxed);
        if (best == nullptr || a < best_active) {
          best = e;
          best_active = a;
        }
      }
      return best;
    }
    case config::Balance::weighted_random: {
      std::uint64_t total = 0;
      for (const ExitState* e : eligible) total += e->config->weight;
      std::uint64_t x = std::uniform_int_distribution<std::uint64_t>(0, total - 1)(t_rng);
      for (const ExitState* e : eligible) {
        if (x < e->config->weight) return e;
        x -= e->config->weight;
      }
      return eligible.back();
    }
  }
  return eligible.front();
}

const ExitState* rendezvous(const std::string& key, const RegionState& r,
                            const std::function<bool(const ExitState&)>& eligible) {
  std::vector<policy::ExitCandidate> candidates;
  candidates.reserve(r.exits.size());
  for (const auto& e : r.exits) candidates.push_back({e.config->name, e.config->weight, eligible(e)});
  auto i = policy::rendezvous_pick(key, candidates);
  return i ? &r.exits[*i] : nullptr;
}

}  // namespace

Result<ExitChoice> choose_exit(const EgressTable& table, const policy::Route& route, std::string_view user,
                               StickyTable& sticky, std::span<const ExitState* const> tried,
                               net::Clock::time_point now) {
  const RegionState* first = table.region(route.region);
  if (first == nullptr) return Error{errc::no_exit, Side::internal, "region " + route.region + " is not configured"};
  auto usable = [&](const ExitState& e) {
    return e.config->weight > 0 && e.health->healthy(now) && !was_tried(tried, &e);
  };

  // A sticky session: its exit is the rendezvous winner for (user, session) among the usable exits.
  std::string session_key;
  if (!route.session.empty()) {
    session_key.reserve(user.size() + route.session.size() + 1);
    session_key.append(user).append(1, '\n').append(route.session);
    if (first->config->on_exit_down == config::OnExitDown::strict) {
      const ExitState* own = rendezvous(session_key, *first, [](const ExitState& e) { return e.config->weight > 0; });
      if (own != nullptr && usable(*own)) return ExitChoice{first, own};
      return Error{errc::no_exit, Side::upstream,
                   "region " + first->config->name + " is strict: exit " +
                       (own != nullptr ? own->config->name : std::string("?")) + " of session " + route.session +
                       " is down"};
    }
  }

  std::string why;
  std::vector<const RegionState*> visited;
  std::vector<const RegionState*> queue{first};
  std::vector<const ExitState*> eligible;
  while (!queue.empty()) {
    const RegionState* r = queue.front();
    queue.erase(queue.begin());
    if (std::find(visited.begin(), visited.end(), r) != visited.end()) continue;
    visited.push_back(r);
    eligible.clear();
    for (const auto& e : r->exits)
      if (usable(e)) eligible.push_back(&e);
    if (!eligible.empty()) {
      const ExitState* pick = nullptr;
      if (!session_key.empty()) {
        const std::string pin_key = r->config->name + '\n' + session_key;
        StickyTable::Entry* pin = sticky.find(pin_key, now);
        if (pin != nullptr) {
          for (const ExitState* e : eligible)
            if (e->config->name == pin->exit) pick = e;
        }
        if (pick == nullptr) {
          pick = rendezvous(session_key, *r, usable);
          // A new session starts its lifetime; a moved one keeps the lifetime it had.
          const auto expiry = pin != nullptr ? pin->expiry : now + std::chrono::minutes(route.session_minutes);
          sticky.put(pin_key, pick->config->name, expiry, table.config().max_sessions, now);
        }
      } else {
        pick = balance(*r, eligible);
      }
      pick->health->selections.fetch_add(1, std::memory_order_relaxed);
      return ExitChoice{r, pick};
    }
    if (!why.empty()) why += "; fallback ";
    why += "region " + r->config->name + ": no healthy exit";
    for (const RegionState* f : r->fallback) queue.push_back(f);
  }
  return Error{errc::no_exit, Side::upstream, why};
}

}  // namespace portier::session

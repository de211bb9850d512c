#include "portier/session/limits.hpp"

#include <functional>

#include "portier/core/hash.hpp"
#include "portier/observe/log.hpp"

namespace portier::session {

std::size_t LimitTable::IpHash::operator()(const IpAddress& a) const noexcept {
  return stable_hash(std::string_view(reinterpret_cast<const char*>(a.bytes.data()), a.bytes.size()), a.v4);
}

LimitTable::Slot::~Slot() {
  if (table_ != nullptr) table_->release(*this);
}

std::optional<LimitKind> LimitTable::admit(const IpAddress& client, const config::TrafficLimits& limits, Slot& slot) {
  // Counted first, then checked: two workers racing for the last place cannot both get it.
  const std::size_t open = open_.fetch_add(1, std::memory_order_relaxed) + 1;
  slot.table_ = this;
  slot.client_ = client;
  if (limits.max_connections > 0 && open > limits.max_connections) return LimitKind::connections;  // slot gives it back
  if (limits.max_connections_per_client == 0) return std::nullopt;
  Shard& s = shard_of(IpHash{}(client));
  std::lock_guard lock(s.mutex);
  auto it = s.connections.find(client);
  if (it == s.connections.end()) {
    if (s.connections.size() >= kMaxPerShard) return std::nullopt;  // see kMaxPerShard (counts never go stale)
    it = s.connections.emplace(client, 0).first;
  }
  if (it->second >= limits.max_connections_per_client) return LimitKind::connections_per_client;
  ++it->second;
  slot.per_client_ = true;
  return std::nullopt;
}

void LimitTable::release(const Slot& slot) noexcept {
  open_.fetch_sub(1, std::memory_order_relaxed);
  if (!slot.per_client_) return;
  Shard& s = shard_of(IpHash{}(slot.client_));
  std::lock_guard lock(s.mutex);
  auto it = s.connections.find(slot.client_);
  if (it == s.connections.end()) return;
  if (--it->second == 0) s.connections.erase(it);
}

std::optional<LimitTable::Clock::duration> LimitTable::take_request(const std::string& key,
                                                                     const config::TrafficLimits& limits,
                                                                     Clock::time_point now) {
  if (limits.requests_per_second <= 0) return std::nullopt;
  Shard& s = shard_of(std::hash<std::string>{}(key));
  std::lock_guard lock(s.mutex);
  auto it = s.requests.find(key);
  if (it == s.requests.end()) {
    if (s.requests.size() >= kMaxPerShard) std::erase_if(s.requests, [&](auto& e) { return e.second.full(now); });
    if (s.requests.size() >= kMaxPerShard) return std::nullopt;
    it = s.requests.emplace(key, TokenBucket(limits.requests_per_second, limits.request_burst, now)).first;
  } else if (it->second.rate() != limits.requests_per_second || it->second.burst() != limits.request_burst) {
    it->second = TokenBucket(limits.requests_per_second, limits.request_burst, now);  // reloaded with new settings
  }
  auto wait = it->second.try_take(now);
  if (wait == Clock::duration::zero()) return std::nullopt;
  return wait;
}

std::shared_ptr<Shaper> LimitTable::shaper(const std::string& key, const config::TrafficLimits& limits,
                                           Clock::time_point now) {
  if (limits.bytes_per_second == 0) return nullptr;
  Shard& s = shard_of(std::hash<std::string>{}(key));
  std::lock_guard lock(s.mutex);
  auto it = s.shapers.find(key);
  if (it != s.shapers.end() && it->second->same_settings(limits.bytes_per_second, limits.burst_bytes)) return it->second;
  if (it == s.shapers.end() && s.shapers.size() >= kMaxPerShard) {
    // Forget shapers nobody uses and whose buckets are full: a fresh one would be the same.
    std::erase_if(s.shapers, [&](auto& e) { return e.second.use_count() == 1 && e.second->idle(now); });
  }
  auto fresh = std::make_shared<Shaper>(limits.bytes_per_second, limits.burst_bytes, now);
  if (it != s.shapers.end()) {
    it->second = fresh;  // new settings: connections holding the old one keep it until they end
  } else if (s.shapers.size() < kMaxPerShard) {
    s.shapers.emplace(key, fresh);
  }
  return fresh;
}

void LimitTable::report(LimitKind kind, std::string_view who, std::string_view what, Clock::duration interval) {
  Report& r = reports_[static_cast<std::size_t>(kind)];
  r.refused.fetch_add(1, std::memory_order_relaxed);
  const std::int64_t now = Clock::now().time_since_epoch().count();
  std::int64_t next = r.next.load(std::memory_order_relaxed);
  if (now < next) return;
  if (!r.next.compare_exchange_strong(next, now + interval.count())) return;  // another thread reports
  const std::uint64_t n = r.refused.exchange(0);
  std::string line = "limit reached: ";
  line += what;
  line += " (";
  line += who;
  line += "); ";
  line += std::to_string(n);
  line += " refused since the last report of this limit";
  observe::log(observe::Level::warning, line);
}

}  // namespace portier::session

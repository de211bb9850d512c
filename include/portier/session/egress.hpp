#pragma once
// Egress at run time: the regions of a snapshot with their exits' health, and the choice of an exit
// for a route (sticky sessions by rendezvous hashing, otherwise the region's balancing), with
// failover to healthy exits and fallback regions. Health is shared by all workers (atomics) and
// survives reloads for exits that keep their name, hops and source address.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "portier/config/config.hpp"
#include "portier/net/asio.hpp"
#include "portier/policy/decide.hpp"
#include "portier/session/probe.hpp"

namespace portier::session {

struct Health {
  std::atomic<unsigned> failures{0};                 // consecutive connect failures (passive)
  std::atomic<net::Clock::rep> down_until{0};        // passive mark: down until this steady-clock tick
  std::atomic<bool> probe_down{false};               // active checks said down (mirrors probe.down)
  ProbeCounts probe;                                 // active checks' run of results: the prober's thread only
  std::atomic<int> active{0};                        // connections open through the exit now
  std::atomic<std::uint64_t> selections{0};

  bool healthy(net::Clock::time_point now) const noexcept;
  void succeeded() noexcept;
  // Counts a connect failure; returns true when it marked the exit down.
  bool failed(net::Clock::time_point now, unsigned fail_after, net::Clock::duration down_for) noexcept;
};

class HealthRegistry {
 public:
  std::shared_ptr<Health> get(const std::string& key);
  // Forgets exits no snapshot uses any more.
  void keep_only(const std::vector<std::string>& keys);

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Health>> health_;
};

struct ExitState {
  const config::ExitConfig* config = nullptr;
  std::shared_ptr<Health> health;
  std::string chain;  // "http://a:3128,socks5://b:1080", or "direct"
  std::string key;    // identity in the HealthRegistry
};

struct RegionState {
  const config::RegionConfig* config = nullptr;
  std::vector<ExitState> exits;
  std::vector<const RegionState*> fallback;
  mutable std::atomic<std::uint64_t> next{0};  // round robin
};

class EgressTable {
 public:
  EgressTable(std::shared_ptr<const config::Snapshot> snapshot, HealthRegistry& registry);
  EgressTable(const EgressTable&) = delete;
  EgressTable& operator=(const EgressTable&) = delete;

  const RegionState* region(std::string_view name) const noexcept;
  const config::Egress& config() const noexcept { return snapshot_->config.egress; }
  const config::Snapshot& snapshot() const noexcept { return *snapshot_; }
  // Every region: the built-in "direct" first, then the configured ones.
  const std::vector<std::unique_ptr<RegionState>>& regions() const noexcept { return regions_; }
  std::vector<std::string> keys() const;

 private:
  std::shared_ptr<const config::Snapshot> snapshot_;  // owns the configs the states point to
  config::RegionConfig direct_config_;
  std::vector<std::unique_ptr<RegionState>> regions_;
};

// Per worker: which exit each sticky session is on, until its lifetime ends. Without it a session
// that failed over would move back the moment its first exit returned.
class StickyTable {
 public:
  struct Entry {
    std::string exit;
    net::Clock::time_point expiry;
  };
  Entry* find(const std::string& key, net::Clock::time_point now);
  void put(const std::string& key, std::string exit, net::Clock::time_point expiry, std::size_t max_entries,
           net::Clock::time_point now);
  std::size_t size() const noexcept { return map_.size(); }

 private:
  std::unordered_map<std::string, Entry> map_;
};

struct ExitChoice {
  const RegionState* region = nullptr;  // the region the exit belongs to (a fallback, maybe)
  const ExitState* exit = nullptr;
};

// The exit for a route, skipping `tried` (exits that already failed for this request). Errors are
// 502 with a reason: "region fi: no healthy exit (fallback de: no healthy exit)", or for a strict
// region "region fi: exit fi-2 of session s1 is down".
Result<ExitChoice> choose_exit(const EgressTable& table, const policy::Route& route, std::string_view user,
                               StickyTable& sticky, std::span<const ExitState* const> tried,
                               net::Clock::time_point now);

}  // namespace portier::session

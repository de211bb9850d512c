#pragma once
// Reverse mode at run time: the snapshot's routes and pools with their backends' health, and the
// choice of a backend for a request. Health is shared by all workers (atomics, the same Health as
// egress exits) and survives reloads for backends that keep their pool, address and TLS.
#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "portier/config/config.hpp"
#include "portier/reverse/route.hpp"
#include "portier/session/egress.hpp"

namespace portier::session {

struct BackendRuntime {
  const config::BackendConfig* config = nullptr;
  std::shared_ptr<Health> health;
  std::string key;       // identity in the HealthRegistry
  std::string pool_key;  // idle connections to it in the worker's origin pool
};

struct PoolState {
  const config::PoolConfig* config = nullptr;
  reverse::Balance balance = reverse::Balance::round_robin;
  std::vector<BackendRuntime> backends;
  mutable std::atomic<std::uint64_t> next{0};  // round robin and weighted: shared by all workers
};

class BackendTable {
 public:
  BackendTable(std::shared_ptr<const config::Snapshot> snapshot, HealthRegistry& registry);
  BackendTable(const BackendTable&) = delete;
  BackendTable& operator=(const BackendTable&) = delete;

  // The most specific route for the request (see reverse::RouteTable), or null.
  const reverse::Route* match(std::string_view listener, std::string_view host, std::string_view path) const noexcept {
    return routes_.match(listener, host, path);
  }
  const config::RouteConfig& route_config(const reverse::Route& r) const noexcept {
    return snapshot_->config.reverse.routes[r.order];
  }
  const PoolState& pool_of(const reverse::Route& r) const noexcept { return *route_pools_[r.order]; }

  const std::vector<std::unique_ptr<PoolState>>& pools() const noexcept { return pools_; }
  const config::Snapshot& snapshot() const noexcept { return *snapshot_; }
  std::vector<std::string> keys() const;

 private:
  std::shared_ptr<const config::Snapshot> snapshot_;  // owns the configs the states point to
  reverse::RouteTable routes_;
  std::vector<std::unique_ptr<PoolState>> pools_;
  std::vector<const PoolState*> route_pools_;  // by route order (position in the config)
};

// The backend for a request, skipping `tried` and unhealthy ones; null when none is left.
// `hash_key` is the client address or the header value for the hash methods.
const BackendRuntime* choose_backend(const PoolState& pool, std::string_view hash_key,
                                     std::span<const BackendRuntime* const> tried, net::Clock::time_point now);

}  // namespace portier::session

#include "portier/session/backends.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <vector>

namespace portier::session {

namespace {

reverse::Balance balance_of(config::PoolBalance b) {
  switch (b) {
    case config::PoolBalance::round_robin: return reverse::Balance::round_robin;
    case config::PoolBalance::least_conn: return reverse::Balance::least_conn;
    case config::PoolBalance::weighted: return reverse::Balance::weighted;
    case config::PoolBalance::hash_client: return reverse::Balance::hash_client;
    case config::PoolBalance::hash_header: return reverse::Balance::hash_header;
  }
  return reverse::Balance::round_robin;
}

reverse::Route compile_route(const config::RouteConfig& rc, std::size_t order) {
  reverse::Route r;
  r.id = rc.name;
  r.listeners = rc.listeners;
  r.host = rc.host;
  r.path_prefix = rc.path;
  if (!rc.path_regex.empty()) {
    RE2::Options o;
    o.set_log_errors(false);
    r.path_regex = std::make_shared<const re2::RE2>(rc.path_regex, o);  // validated at load
  }
  r.pool = rc.pool;
  r.order = order;
  return r;
}

}  // namespace

BackendTable::BackendTable(std::shared_ptr<const config::Snapshot> snapshot, HealthRegistry& registry)
    : snapshot_(std::move(snapshot)) {
  const auto& rev = snapshot_->config.reverse;
  for (const auto& pc : rev.pools) {
    auto pool = std::make_unique<PoolState>();
    pool->config = &pc;
    pool->balance = balance_of(pc.balance);
    for (const auto& bc : pc.backends) {
      BackendRuntime b;
      b.config = &bc;
      const char* scheme = bc.url.scheme == http::ProxyScheme::https ? "https" : "http";
      b.key = "backend|" + pc.name + "|" + scheme + "://" + bc.address;
      // Idle connections are shared only between backends checked the same way: a connection
      // opened without verification must never serve a pool that requires it.
      b.pool_key = std::string("backend ") + scheme + "://" + bc.address;
      if (bc.url.scheme == http::ProxyScheme::https) {
        b.pool_key += " name=" + bc.url.tls.server_name + (bc.url.tls.verify ? " verify ca=" : " noverify ca=") +
                      bc.url.tls.ca_file;
      }
      b.health = registry.get(b.key);
      pool->backends.push_back(std::move(b));
    }
    pools_.push_back(std::move(pool));
  }
  std::vector<reverse::Route> routes;
  route_pools_.resize(rev.routes.size(), nullptr);
  for (std::size_t i = 0; i < rev.routes.size(); ++i) {
    routes.push_back(compile_route(rev.routes[i], i));
    for (const auto& p : pools_) {
      if (p->config->name == rev.routes[i].pool) route_pools_[i] = p.get();
    }
  }
  routes_ = reverse::RouteTable(std::move(routes));
}

std::vector<std::string> BackendTable::keys() const {
  std::vector<std::string> out;
  for (const auto& p : pools_)
    for (const auto& b : p->backends) out.push_back(b.key);
  return out;
}

const BackendRuntime* choose_backend(const PoolState& pool, std::string_view hash_key,
                                     std::span<const BackendRuntime* const> tried, net::Clock::time_point now) {
  // The facts for pick_backend() go to a per-thread scratch vector: no allocation once it has
  // grown to the largest pool, and only as many entries to fill as the pool has backends.
  thread_local std::vector<reverse::BackendState> states;
  states.resize(pool.backends.size());
  for (std::size_t i = 0; i < pool.backends.size(); ++i) {
    const BackendRuntime& b = pool.backends[i];
    auto& s = states[i];
    s.weight = b.config->weight;
    s.healthy = b.health->healthy(now);
    s.tried = std::find(tried.begin(), tried.end(), &b) != tried.end();
    s.active = b.health->active.load(std::memory_order_relaxed);
    s.key = b.config->address;
  }
  const bool counted = pool.balance == reverse::Balance::round_robin || pool.balance == reverse::Balance::weighted ||
                       pool.balance == reverse::Balance::least_conn;
  const std::uint64_t counter = counted ? pool.next.fetch_add(1, std::memory_order_relaxed) : 0;
  auto pick = reverse::pick_backend(pool.balance, states, counter, hash_key);
  if (!pick) return nullptr;
  const BackendRuntime* chosen = &pool.backends[*pick];
  chosen->health->selections.fetch_add(1, std::memory_order_relaxed);
  return chosen;
}

}  // namespace portier::session

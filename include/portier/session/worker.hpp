#pragma once
// What every session on one worker thread shares. Only that thread touches it, so nothing here
// is locked; the snapshot is immutable and shared across threads by shared_ptr.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "portier/config/config.hpp"
#include "portier/net/asio.hpp"
#include "portier/observe/access_log.hpp"
#include "portier/observe/metrics.hpp"
#include "portier/policy/users.hpp"
#include "portier/session/backends.hpp"
#include "portier/session/egress.hpp"
#include "portier/session/limits.hpp"
#include "portier/upstream/pool.hpp"

namespace portier::session {

class Session;

// Failed logins counted per client address across all workers (a client's connections land on
// different workers). Consulted only when a password must be checked, so the lock is off the hot path.
class SharedThrottle {
 public:
  explicit SharedThrottle(policy::ThrottleOptions o) : throttle_(o) {}
  bool allow(const IpAddress& client, policy::FailureThrottle::TimePoint now) {
    std::lock_guard lock(mutex_);
    return throttle_.allow(client, now);
  }
  void record_failure(const IpAddress& client, policy::FailureThrottle::TimePoint now) {
    std::lock_guard lock(mutex_);
    throttle_.record_failure(client, now);
  }
  void reconfigure(policy::ThrottleOptions o) {
    std::lock_guard lock(mutex_);
    if (o.max_failures != throttle_.options().max_failures || o.window != throttle_.options().window ||
        o.backoff != throttle_.options().backoff)
      throttle_ = policy::FailureThrottle(o);
  }

 private:
  std::mutex mutex_;
  policy::FailureThrottle throttle_;
};

// Sessions on this worker, so a drain can close idle ones and a deadline can cut the rest.
class SessionList {
 public:
  struct Hook {
    Hook* prev = nullptr;
    Hook* next = nullptr;
    Session* session = nullptr;
  };
  void insert(Hook& h) noexcept;
  void erase(Hook& h) noexcept;
  std::size_t size() const noexcept { return size_; }
  template <class F>
  void for_each(F&& f) {
    for (Hook* h = head_; h != nullptr;) {
      Hook* next = h->next;  // f may unlink h
      f(*h->session);
      h = next;
    }
  }

 private:
  Hook* head_ = nullptr;
  std::size_t size_ = 0;
};

// Verified credentials shared by all workers, consulted only when a worker's own cache misses: a
// password is hashed once per process and TTL, not once per worker.
class SharedCredentials {
 public:
  bool lookup(const policy::Credentials& c, policy::CredentialCache::TimePoint now, std::uint64_t epoch,
              policy::CredentialCache::TimePoint* expiry) {
    std::lock_guard lock(mutex_);
    return cache_.lookup(c, now, epoch, expiry);
  }
  void insert(const policy::Credentials& c, policy::CredentialCache::TimePoint now,
              policy::CredentialCache::Duration ttl, std::uint64_t epoch) {
    std::lock_guard lock(mutex_);
    cache_.insert(c, now, ttl, epoch);
  }
  void clear() {
    std::lock_guard lock(mutex_);
    cache_.clear();
  }

 private:
  std::mutex mutex_;
  policy::CredentialCache cache_;
};

struct WorkerContext {
  unsigned index = 0;
  unsigned worker_count = 1;
  std::shared_ptr<const config::Snapshot> snapshot;  // replaced on reload; sessions keep the one they started with
  std::shared_ptr<const EgressTable> egress;         // the snapshot's regions with their exits' health, replaced with it
  std::shared_ptr<const BackendTable> backends;      // the snapshot's routes and pools with their backends' health, likewise
  StickyTable sticky;                                // sticky sessions pinned to an exit after a failover
  // Password hashing runs here, off the I/O threads: a bcrypt check must not stall connections.
  asio::thread_pool* verifier = nullptr;
  policy::CredentialCache credentials;  // per worker: looked up on every request, so never locked
  SharedCredentials* shared_credentials = nullptr;
  class SharedThrottle* throttle = nullptr;
  LimitTable* limits = nullptr;  // shared by all workers
  const observe::AccessLog* access_log = nullptr;
  upstream::OriginPool pool;
  observe::WorkerMetrics metrics;  // this thread's counters; a scrape copies them on this thread
  SessionList sessions;
  bool draining = false;
  std::uint64_t connections = 0;
  std::uint64_t request_seed = 0;
  std::uint64_t requests = 0;

  std::uint64_t next_connection_id() noexcept { return ++connections * worker_count + index; }
  std::uint64_t next_request_id() noexcept;

  // SIGTERM: idle keep-alive connections close now, busy ones after their current request.
  void begin_drain();
  // Grace period over: cut every remaining connection.
  void abort_all();
};

// Runs one client connection to its end. Spawned by the listener, one per accepted socket.
net::awaitable<void> run_session(net::tcp::socket client, net::tcp::endpoint peer, std::string listener,
                                WorkerContext& ctx);

}  // namespace portier::session

#pragma once
// Idle origin connections kept for reuse. One pool per worker thread (a connection never leaves
// its thread), so there is no lock: bounded per origin and in total, oldest evicted first.
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "portier/net/resolve.hpp"

namespace portier::upstream {

struct PoolLimits {
  std::size_t max_idle_per_host = 128;
  std::size_t max_idle_total = 2048;
  net::Clock::duration idle = std::chrono::seconds(30);
};

class OriginPool {
 public:
  explicit OriginPool(PoolLimits limits = {}) : limits_(limits) {}

  void set_limits(const PoolLimits& l) noexcept { limits_ = l; }
  // An idle connection to `key` that is still open (the origin has not closed or written), or nothing.
  // Connections are boxed so that taking and giving one back moves a pointer, not a socket.
  std::unique_ptr<net::Connected> acquire(const std::string& key);
  // Keeps a connection whose last response completed cleanly, within the limits.
  void release(const std::string& key, std::unique_ptr<net::Connected> conn);
  // Drops connections idle for longer than the limit.
  void sweep();
  // Closes everything (shutdown).
  void clear();
  std::size_t idle_count() const noexcept { return total_; }

 private:
  struct Entry {
    std::unique_ptr<net::Connected> conn;
    net::Clock::time_point since;
  };
  static bool still_open(net::tcp::socket& s) noexcept;
  void evict_oldest();

  PoolLimits limits_;
  std::unordered_map<std::string, std::deque<Entry>> idle_;
  std::size_t total_ = 0;
};

}  // namespace portier::upstream

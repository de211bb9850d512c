#include "portier/upstream/pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace portier::upstream {

namespace {
constexpr auto kTrustedIdle = std::chrono::seconds(1);
}  // namespace

bool OriginPool::still_open(net::tcp::socket& s) noexcept {
  char byte;
  ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // EOF (0), an error, or bytes the origin sent unasked (n > 0) all make the connection unusable.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::unique_ptr<net::Connected> OriginPool::acquire(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto& q = it->second;
  auto now = net::Clock::now();
  std::unique_ptr<net::Connected> out;
  while (!q.empty()) {
    Entry e = std::move(q.back());  // most recently used first: warmest, least likely closed
    q.pop_back();
    --total_;
    // A connection released within the last second is taken without the peek (a syscall per
    // request): origins do not close that fast, and a request without a body that finds it closed
    // anyway is retried once on a fresh connection.
    const auto idle_for = now - e.since;
    if (idle_for < limits_.idle && (idle_for < kTrustedIdle || still_open(e.conn->stream.socket()))) {
      out = std::move(e.conn);
      break;
    }
  }
  // An emptied queue stays (sweep() removes it): under load a host's queue empties and refills
  // all the time, and erasing it would free and rebuild the map node, key and deque each time.
  return out;
}

void OriginPool::release(const std::string& key, std::unique_ptr<net::Connected> conn) {
  if (limits_.max_idle_per_host == 0 || limits_.max_idle_total == 0) return;
  auto& q = idle_[key];
  if (q.size() >= limits_.max_idle_per_host) {
    q.pop_front();
    --total_;
  }
  if (total_ >= limits_.max_idle_total) evict_oldest();
  q.push_back(Entry{std::move(conn), net::Clock::now()});
  ++total_;
}

void OriginPool::evict_oldest() {
  auto oldest = idle_.end();
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->second.empty()) continue;
    if (oldest == idle_.end() || it->second.front().since < oldest->second.front().since) oldest = it;
  }
  if (oldest == idle_.end()) return;
  oldest->second.pop_front();
  --total_;
  if (oldest->second.empty()) idle_.erase(oldest);
}

void OriginPool::sweep() {
  auto now = net::Clock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& q = it->second;
    while (!q.empty() && now - q.front().since >= limits_.idle) {
      q.pop_front();
      --total_;
    }
    it = q.empty() ? idle_.erase(it) : std::next(it);
  }
}

void OriginPool::clear() {
  idle_.clear();
  total_ = 0;
}

}  // namespace portier::upstream

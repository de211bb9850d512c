#include "portier/net/deadline.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "portier/net/resolve.hpp"

namespace portier::net {

const char* phase_name(Phase p) noexcept {
  switch (p) {
    case Phase::none: return "none";
    case Phase::request_head: return "request_head";
    case Phase::keepalive_idle: return "keepalive_idle";
    case Phase::upstream_response: return "upstream_response";
    case Phase::client_write: return "client_write";
    case Phase::tunnel_idle: return "tunnel_idle";
    case Phase::upstream_write: return "upstream_write";
    case Phase::drain: return "drain";
    case Phase::client_hello: return "client_hello";
  }
  return "none";
}

void Deadline::arm_at(Phase phase, Clock::time_point at) {
  phase_ = phase;
  expired_ = Phase::none;
  at_ = at;
  if (stopped_ || !on_expire_) return;
  // A later deadline needs no timer call: the pending wait wakes early and re-arms itself.
  if (waiting_ && at_ >= timer_.expiry()) return;
  wait();
}

void Deadline::start(std::function<void()> on_expire) {
  on_expire_ = std::move(on_expire);
  if (at_ != Clock::time_point::max()) wait();
}

void Deadline::stop() {
  stopped_ = true;
  waiting_ = false;
  timer_.cancel();
}

// (Re)starts the wait for at_. Setting the expiry cancels a pending wait; its handler sees
// operation_aborted and returns without touching this object, which may be gone by then.
void Deadline::wait() {
  timer_.expires_at(at_);
  waiting_ = true;
  timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    on_timer();
  });
}

void Deadline::on_timer() {
  waiting_ = false;
  if (stopped_) return;
  if (at_ <= Clock::now()) {
    expired_ = phase_;
    at_ = Clock::time_point::max();
    on_expire_();
  }
  if (!stopped_ && !waiting_ && at_ != Clock::time_point::max()) wait();
}

void tune_socket(int fd) noexcept {
  const int one = 1;
  // Failures change only speed: Nagle's delay is what TCP_NODELAY avoids, and without TCP_INQ
  // (Linux < 4.18) draining reads are ordinary reads.
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &one, sizeof one);
}

}  // namespace portier::net

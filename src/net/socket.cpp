#include "portier/net/deadline.hpp"
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
  }
  return "none";
}

void Deadline::arm_at(Phase phase, Clock::time_point at) {
  phase_ = phase;
  expired_ = Phase::none;
  at_ = at;
  if (at_ < timer_.expiry()) timer_.cancel();  // wake the watchdog to re-arm earlier
}

void Deadline::stop() {
  stopped_ = true;
  timer_.cancel();
}

awaitable<void> Deadline::watch(std::function<void()> on_expire) {
  while (!stopped_) {
    auto now = Clock::now();
    if (at_ <= now) {
      expired_ = phase_;
      at_ = Clock::time_point::max();
      on_expire();
      continue;
    }
    timer_.expires_at(at_);
    co_await timer_.async_wait(nothrow);
  }
}

void tune_socket(tcp::socket& s) noexcept {
  std::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
}

}  // namespace portier::net

#pragma once
// One watchdog timer per connection instead of one timer per read: the session moves `at` forward
// as it works (cheap: no timer call unless the deadline gets earlier), and the timer calls
// `on_expire` when `at` passes. on_expire cancels the sockets, so the pending read or write returns
// operation_aborted and the session reads `expired()` to learn which deadline it was (head,
// response, idle tunnel...). The timer handler is a plain callback, not a coroutine: it costs no
// frame and no parallel group per connection.
#include <functional>

#include "portier/net/asio.hpp"

namespace portier::net {

enum class Phase { none, request_head, keepalive_idle, upstream_response, client_write, tunnel_idle, upstream_write, drain,
                   client_hello };
const char* phase_name(Phase p) noexcept;

class Deadline {
 public:
  explicit Deadline(const asio::any_io_executor& ex) : timer_(ex, Clock::time_point::max()) {}

  // Arm (or move) the deadline. Only an earlier deadline touches the timer.
  void arm(Phase phase, Clock::duration d) { arm_at(phase, Clock::now() + d); }
  void arm_at(Phase phase, Clock::time_point at);
  // Push the deadline forward by `d` from now, keeping the phase (tunnel activity). No timer call.
  void touch(Clock::duration d) {
    at_ = Clock::now() + d;
    if (!waiting_ && !stopped_ && on_expire_) wait();
  }
  void disarm() noexcept { at_ = Clock::time_point::max(); phase_ = Phase::none; }

  // The phase whose deadline passed, or Phase::none. Cleared by the next arm().
  Phase expired() const noexcept { return expired_; }

  // Calls on_expire each time the armed deadline passes, until stop() or destruction. on_expire
  // must outlive the Deadline (the session owns both).
  void start(std::function<void()> on_expire);
  void stop();

 private:
  void wait();
  void on_timer();

  asio::steady_timer timer_;
  std::function<void()> on_expire_;
  bool waiting_ = false;
  Clock::time_point at_ = Clock::time_point::max();
  Phase phase_ = Phase::none;
  Phase expired_ = Phase::none;
  bool stopped_ = false;
};

}  // namespace portier::net

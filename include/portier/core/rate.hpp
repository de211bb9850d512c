#pragma once
// Token buckets for the per-user limits: a request rate (take one token or be told how long to
// wait) and a bandwidth (take what was moved, possibly into debt, and wait the debt off). Pure:
// the caller passes the time, so every case is a unit test without a clock.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace portier {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // `rate` tokens per second, at most `burst` saved up; it starts full.
  TokenBucket(double rate, double burst, Clock::time_point now) noexcept
      : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

  double rate() const noexcept { return rate_; }
  double burst() const noexcept { return burst_; }

  // Takes `n` tokens when there are that many: zero. Otherwise takes nothing and returns how long
  // until there will be.
  Clock::duration try_take(Clock::time_point now, double n = 1) noexcept;

  // Takes `n` tokens even when that leaves the bucket in debt, and returns how long until the debt
  // is repaid (zero when there is none): the caller that moved the bytes waits that long, and
  // everyone else sharing the bucket queues behind it.
  Clock::duration take_with_debt(Clock::time_point now, double n) noexcept;

  // Full again: it holds nothing a fresh bucket would not, so a table may forget it.
  bool full(Clock::time_point now) const noexcept;

 private:
  void refill(Clock::time_point now) noexcept;
  Clock::duration time_for(double tokens) const noexcept;

  double rate_;
  double burst_;
  double tokens_;  // negative while in debt
  Clock::time_point last_;
};

// One user's bandwidth, shared by all of that user's connections on every worker thread (so it
// locks; it is consulted once per chunk moved, and only when a bandwidth limit is set). Each
// direction has its own bucket.
class Shaper {
 public:
  enum Direction { up = 0, down = 1 };  // client -> upstream, upstream -> client

  Shaper(std::uint64_t bytes_per_second, std::uint64_t burst, TokenBucket::Clock::time_point now) noexcept
      : buckets_{TokenBucket(static_cast<double>(bytes_per_second), static_cast<double>(burst), now),
                 TokenBucket(static_cast<double>(bytes_per_second), static_cast<double>(burst), now)} {}

  // After moving `n` bytes one way: how long to pause before moving more.
  TokenBucket::Clock::duration moved(Direction d, std::size_t n, TokenBucket::Clock::time_point now) {
    std::lock_guard lock(mutex_);
    return buckets_[d].take_with_debt(now, static_cast<double>(n));
  }
  // How much to move at a time: about a tenth of a second's worth, so pauses stay short and
  // smooth, within 1 KiB .. 64 KiB.
  std::size_t chunk() const noexcept;
  bool same_settings(std::uint64_t bytes_per_second, std::uint64_t burst) const noexcept {
    return buckets_[0].rate() == static_cast<double>(bytes_per_second) &&
           buckets_[0].burst() == static_cast<double>(burst);
  }
  bool idle(TokenBucket::Clock::time_point now) {
    std::lock_guard lock(mutex_);
    return buckets_[0].full(now) && buckets_[1].full(now);
  }

 private:
  std::mutex mutex_;
  TokenBucket buckets_[2];
};

}  // namespace portier

#include "portier/core/rate.hpp"

#include <algorithm>
#include <cmath>

namespace portier {

void TokenBucket::refill(Clock::time_point now) noexcept {
  if (now <= last_) return;  // never backwards: callers on several threads pass their own "now"
  const double secs = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + secs * rate_);
  last_ = now;
}

TokenBucket::Clock::duration TokenBucket::time_for(double tokens) const noexcept {
  if (tokens <= 0 || rate_ <= 0) return Clock::duration::zero();
  // Rounded up, so a caller that waits this long finds the tokens there.
  return std::chrono::ceil<Clock::duration>(std::chrono::duration<double>(tokens / rate_));
}

TokenBucket::Clock::duration TokenBucket::try_take(Clock::time_point now, double n) noexcept {
  refill(now);
  if (tokens_ >= n) {
    tokens_ -= n;
    return Clock::duration::zero();
  }
  return time_for(n - tokens_);
}

TokenBucket::Clock::duration TokenBucket::take_with_debt(Clock::time_point now, double n) noexcept {
  refill(now);
  tokens_ -= n;
  return time_for(-tokens_);
}

bool TokenBucket::full(Clock::time_point now) const noexcept {
  const double secs = now > last_ ? std::chrono::duration<double>(now - last_).count() : 0.0;
  return tokens_ + secs * rate_ >= burst_;
}

std::size_t Shaper::chunk() const noexcept {
  const double tenth = buckets_[0].rate() / 10;
  return static_cast<std::size_t>(std::clamp(tenth, 1024.0, 65536.0));
}

}  // namespace portier

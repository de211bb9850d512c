#include <doctest/doctest.h>

#include "portier/core/rate.hpp"

using namespace portier;
using namespace std::chrono_literals;

TEST_CASE("rate: a bucket starts full and refuses once the burst is spent") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1000s;
  TokenBucket b(2, 3, t0);  // 2 per second, burst 3
  CHECK(b.try_take(t0) == 0s);
  CHECK(b.try_take(t0) == 0s);
  CHECK(b.try_take(t0) == 0s);
  // Empty: one token takes half a second at 2/s.
  CHECK(b.try_take(t0) == 500ms);
  CHECK(b.try_take(t0 + 499ms) > 0s);
  CHECK(b.try_take(t0 + 500ms) == 0s);
  CHECK_FALSE(b.full(t0 + 500ms));
  CHECK(b.full(t0 + 2s));
}

TEST_CASE("rate: refill stops at the burst, and time never runs backwards") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1000s;
  TokenBucket b(10, 5, t0);
  for (int i = 0; i < 5; ++i) CHECK(b.try_take(t0 + 1h) == 0s);  // an hour idle saves only 5
  CHECK(b.try_take(t0 + 1h) > 0s);
  CHECK(b.try_take(t0) > 0s);  // an earlier "now" from another thread refills nothing
}

TEST_CASE("rate: a refused take costs nothing") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1000s;
  TokenBucket b(1, 1, t0);
  CHECK(b.try_take(t0) == 0s);
  for (int i = 0; i < 10; ++i) CHECK(b.try_take(t0 + 100ms) == 900ms);
  CHECK(b.try_take(t0 + 1s) == 0s);
}

TEST_CASE("rate: bandwidth debt is waited off in order") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1000s;
  TokenBucket b(1000, 1000, t0);  // 1000 bytes/s, 1 s of burst
  CHECK(b.take_with_debt(t0, 1000) == 0s);   // the burst
  CHECK(b.take_with_debt(t0, 500) == 500ms);  // half a second of debt
  CHECK(b.take_with_debt(t0, 500) == 1s);     // a second sharer queues behind it
  CHECK(b.take_with_debt(t0 + 1s, 0) == 0s);  // repaid after a second
  CHECK_FALSE(b.full(t0 + 1s));
  CHECK(b.full(t0 + 2s));
}

TEST_CASE("rate: shaping a stream converges on the rate") {
  // Move 64 KiB chunks at 100 KiB/s, waiting what the shaper says: 1 MiB takes ~10 s less the burst.
  auto now = TokenBucket::Clock::time_point{} + 1000s;
  const auto start = now;
  Shaper s(100 * 1024, 100 * 1024, now);
  CHECK(s.chunk() == 10240);
  std::size_t moved = 0;
  while (moved < 1024 * 1024) {
    moved += 65536;
    now += s.moved(Shaper::down, 65536, now);
  }
  const double secs = std::chrono::duration<double>(now - start).count();
  CHECK(secs == doctest::Approx(9.24).epsilon(0.01));  // (1 MiB - 100 KiB burst) / 100 KiB/s
  // The other direction has its own bucket.
  CHECK(s.moved(Shaper::up, 1024, now) == 0s);
}

TEST_CASE("rate: shaper chunk size stays within 1 KiB .. 64 KiB") {
  const auto t0 = TokenBucket::Clock::time_point{} + 1000s;
  CHECK(Shaper(1000, 1000, t0).chunk() == 1024);
  CHECK(Shaper(100'000'000, 100'000'000, t0).chunk() == 65536);
}

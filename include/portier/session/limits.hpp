#pragma once
// The limits that span connections and worker threads (config "limits"): open connections in
// total and per client address, each user's request rate and each user's bandwidth. A user's
// connections land on different workers, so this state is shared: it is split into shards, each
// with its own lock, and touched once per accepted connection, once per request and once per
// chunk moved, and only when the limit is configured. Settings come with each call (from the
// caller's snapshot), so a reload changes limits without rebuilding anything here.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "portier/config/config.hpp"
#include "portier/core/ip.hpp"
#include "portier/core/rate.hpp"
#include "portier/observe/metrics.hpp"

namespace portier::session {

using observe::LimitKind;
using observe::kLimitKinds;

class LimitTable {
 public:
  using Clock = TokenBucket::Clock;

  // A connection admitted at accept: releases its count when destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept : table_(o.table_), client_(o.client_), per_client_(o.per_client_) { o.table_ = nullptr; }
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class LimitTable;
    LimitTable* table_ = nullptr;
    IpAddress client_;
    bool per_client_ = false;  // counted per address (the limit was on when it came)
  };

  // Counts a new connection from `client`, or names the limit it would exceed.
  std::optional<LimitKind> admit(const IpAddress& client, const config::TrafficLimits& limits, Slot& slot);
  std::size_t open_connections() const noexcept { return open_.load(std::memory_order_relaxed); }

  // One request of `key` ("u:alice", "a:192.0.2.1"): nothing when it may go on, else how long
  // until it may (for Retry-After).
  std::optional<Clock::duration> take_request(const std::string& key, const config::TrafficLimits& limits,
                                              Clock::time_point now);

  // The bandwidth shaper of `key`, shared by all its connections (made on first use).
  std::shared_ptr<Shaper> shaper(const std::string& key, const config::TrafficLimits& limits, Clock::time_point now);

  // A limit refused something: one stderr line per limit and interval, with the number refused
  // since the last line, not a line per refusal.
  void report(LimitKind kind, std::string_view who, std::string_view what, Clock::duration interval);

  // Entries kept per shard before idle ones are swept (full buckets, unused shapers); a table
  // that is still full after a sweep admits without tracking rather than grow without bound.
  static constexpr std::size_t kMaxPerShard = 8192;

 private:
  static constexpr std::size_t kShards = 16;
  struct IpHash {
    std::size_t operator()(const IpAddress& a) const noexcept;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<IpAddress, std::size_t, IpHash> connections;
    std::unordered_map<std::string, TokenBucket> requests;
    std::unordered_map<std::string, std::shared_ptr<Shaper>> shapers;
  };
  struct Report {
    std::atomic<std::int64_t> next{0};  // steady clock ticks
    std::atomic<std::uint64_t> refused{0};
  };

  Shard& shard_of(std::size_t hash) noexcept { return shards_[hash % kShards]; }
  void release(const Slot& slot) noexcept;

  std::atomic<std::size_t> open_{0};
  std::array<Shard, kShards> shards_;
  std::array<Report, kLimitKinds> reports_;
};

}  // namespace portier::session

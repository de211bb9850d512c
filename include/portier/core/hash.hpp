#pragma once
// Hashing that must agree across builds and machines: egress sticky sessions and reverse-mode
// consistent hashing both pick by weighted rendezvous hashing over stable_hash, so several portier
// instances behind one load balancer choose the same exit or backend without sharing state.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace portier {

// A stable 64-bit hash (FNV-1a with a splitmix64 finaliser): the same on every build and machine.
std::uint64_t stable_hash(std::string_view text, std::uint64_t seed = 0) noexcept;

struct HashCandidate {
  std::string_view name;  // the candidate's stable identity: what the hash sees
  unsigned weight = 1;    // 0 = never chosen
  bool eligible = true;
};

// Weighted rendezvous (highest random weight) hashing of `key` over the eligible candidates: the
// index of the winner, or nullopt when none is eligible. Removing or adding a candidate moves only
// the keys that candidate wins.
std::optional<std::size_t> rendezvous_pick(std::string_view key, std::span<const HashCandidate> candidates) noexcept;

}  // namespace portier

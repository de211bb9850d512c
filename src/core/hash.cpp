#include "portier/core/hash.hpp"

#include <cmath>

namespace portier {
namespace {

// The offset basis and prime of 64-bit FNV-1a.
constexpr std::uint64_t kFnvBasis = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

// splitmix64's output mix: FNV-1a alone spreads short, similar keys poorly in the high bits, which
// the rendezvous score reads.
constexpr std::uint64_t mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The top 53 bits as a double strictly inside (0, 1): the half step keeps ln(u) finite and negative.
double unit_interval(std::uint64_t h) noexcept {
  return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}

}  // namespace

std::uint64_t stable_hash(std::string_view text, std::uint64_t seed) noexcept {
  std::uint64_t h = kFnvBasis ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= kFnvPrime;
  }
  return mix(h);
}

std::optional<std::size_t> rendezvous_pick(std::string_view key, std::span<const HashCandidate> candidates) noexcept {
  const std::uint64_t key_hash = stable_hash(key);
  std::optional<std::size_t> best;
  double best_score = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const HashCandidate& c = candidates[i];
    if (!c.eligible || c.weight == 0) continue;
    // -w / ln(u) is the weighted form of highest-random-weight: each candidate wins a share of the
    // keys proportional to its weight, and a key's score for one candidate ignores the others.
    const double score = -static_cast<double>(c.weight) / std::log(unit_interval(stable_hash(c.name, key_hash)));
    if (!best || score > best_score) {  // strict: ties keep the lower index
      best = i;
      best_score = score;
    }
  }
  return best;
}

}  // namespace portier

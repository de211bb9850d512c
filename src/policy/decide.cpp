#include "portier/policy/decide.hpp"

#include <algorithm>

namespace portier::policy {

Decision decide(const RequestFacts& facts, const PolicySnapshot& snap) noexcept {
  if (facts.is_connect) {
    bool allowed = std::any_of(snap.connect_ports.begin(), snap.connect_ports.end(),
                               [&](const PortRange& r) { return r.contains(facts.port); });
    if (!allowed) {
      return Deny{403, "connect_ports", "CONNECT to port " + std::to_string(facts.port) + " is not allowed"};
    }
    return Tunnel{Route{}};
  }
  return Forward{Route{}};
}

const char* decision_name(const Decision& d) noexcept {
  static constexpr const char* kNames[] = {"tunnel", "forward", "deny", "challenge", "answer"};
  return kNames[d.index()];
}

}  // namespace portier::policy

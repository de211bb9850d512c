#include "portier/session/pac.hpp"

#include <algorithm>
#include <optional>

#include "portier/http/target.hpp"

namespace portier::session {
namespace {

// The Host header as host and port, the port defaulting to the scheme's.
std::optional<http::Authority> host_authority(const std::string* host_header, std::uint16_t default_port) {
  if (host_header == nullptr || host_header->empty()) return std::nullopt;
  if (auto a = http::parse_authority(*host_header)) return *a;
  if (auto a = http::parse_authority(*host_header + ":" + std::to_string(default_port))) return *a;
  return std::nullopt;
}

}  // namespace

std::string pac_for_listener(const config::Snapshot& snap, const config::Listener& listener,
                             const std::string* host_header, const SocketAddress& local) {
  if (!snap.pac_text.empty()) return snap.pac_text;
  const bool https = listener.tls.has_value();
  policy::PacProxy proxy;
  proxy.https = https;
  if (auto a = host_authority(host_header, https ? 443 : 80)) {
    proxy.address = a->to_string();
  } else {
    proxy.address = local.to_string();
  }
  return snap.pac.text(std::span<const policy::PacProxy>(&proxy, 1));
}

std::string pac_for_admin(const config::Snapshot& snap, std::span<const BoundListener> bound,
                          const std::string* host_header, const IpAddress& local) {
  if (!snap.pac_text.empty()) return snap.pac_text;
  const config::Pac& pac = snap.config.pac;
  std::vector<policy::PacListener> listeners;
  for (const config::Listener& l : snap.config.listeners) {
    if (l.mode != config::ListenerMode::forward) continue;
    if (!pac.listeners.empty() && std::find(pac.listeners.begin(), pac.listeners.end(), l.name) == pac.listeners.end())
      continue;
    policy::PacListener pl;
    pl.https = l.tls.has_value();
    if (bound.empty()) {  // not told what is bound: as configured, where the port is known
      for (const SocketAddress& a : l.listen)
        if (a.port != 0) pl.addresses.push_back(a);
    } else {
      // What is bound is what listens: listener addresses change only with a restart, and a
      // listener a reload added is not listening yet.
      auto b = std::find_if(bound.begin(), bound.end(), [&](const BoundListener& x) { return x.name == l.name; });
      if (b == bound.end()) continue;
      pl.addresses = b->addresses;
    }
    listeners.push_back(std::move(pl));
  }
  auto a = host_authority(host_header, 80);
  const std::string reached = a ? a->host : local.to_string();
  return snap.pac.text(policy::derived_proxies(listeners, reached));
}

}  // namespace portier::session

#pragma once
// Which proxies the PAC script names when the config does not ("pac.proxy" absent): the address the
// browser used to fetch it. The script itself comes from the snapshot (generated once per reload);
// this only fills in its proxy list.
#include <span>
#include <string>
#include <vector>

#include "portier/config/config.hpp"
#include "portier/core/ip.hpp"

namespace portier::session {

// The addresses a listener is bound to (port 0 resolved at start), for the admin endpoint's PAC.
struct BoundListener {
  std::string name;
  std::vector<SocketAddress> addresses;
};

// The PAC a forward listener serves: its proxy is that listener as the browser reached it, the Host
// it sent ("proxy.corp.example:3128"; no port: 80, or 443 on a TLS listener), else `local`, the
// address the connection came in on. A TLS listener is an "HTTPS" proxy.
std::string pac_for_listener(const config::Snapshot& snap, const config::Listener& listener,
                             const std::string* host_header, const SocketAddress& local);

// The PAC the admin endpoint serves: every address of the forward listeners in "pac.listeners"
// (all forward listeners when it names none), as bound (as configured when `bound` is empty, port 0
// left out); a wildcard address (0.0.0.0, [::]) becomes the host of the admin request's Host header,
// else `local` (the admin connection's local address).
std::string pac_for_admin(const config::Snapshot& snap, std::span<const BoundListener> bound,
                          const std::string* host_header, const IpAddress& local);

}  // namespace portier::session

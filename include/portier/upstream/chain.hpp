#pragma once
// Opening a path through an exit: direct (resolve, SSRF guard, dial, optionally from a source
// address) or a chain of parent proxies, each asked in turn to open a tunnel to the next hop and the
// last to the target. Each hop's handshake is in handshake.hpp; this file only strings them.
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "portier/core/error.hpp"
#include "portier/core/ip.hpp"
#include "portier/http/proxy_url.hpp"
#include "portier/net/resolve.hpp"

namespace portier::upstream {

struct PathOptions {
  net::DestinationGuard guard;  // direct exits only: parents resolve and guard their own targets
  net::Clock::duration connect_timeout = std::chrono::seconds(5);  // per address attempt and per hop handshake
  std::optional<IpAddress> bind;  // source address of our own connection
};

struct OpenedPath {
  net::Connected conn;   // our socket; peer = the origin (direct) or the first hop
  std::string leftover;  // tunnel bytes that arrived behind the last parent's 200: send them on first
};

enum class PathEnd {
  target,    // the socket carries bytes to host:port (tunnels, and plain HTTP via CONNECT)
  last_hop,  // the socket reaches the last hop, an http parent that takes absolute-form requests
};

// A TCP connection to a parent proxy (the first hop of a chain), from `bind` when set. Parents are
// configured by the admin, so no SSRF guard applies. Errors name the hop ("http://p:3128: ...").
net::awaitable<Result<net::Connected>> connect_to_parent(const http::ProxyUrl& hop, net::Clock::duration timeout,
                                                         const std::optional<IpAddress>& bind);

// Errors carry the hop that failed ("parent_refused: http://127.0.0.1:3129: CONNECT a:443: 403 ...").
// `exit_fault` tells whether the exit itself failed (a hop unreachable, silent or refusing to reach
// the next hop) rather than the target (the origin, or the last parent refusing the target): only
// the former counts against the exit's health and is worth a retry on another exit.
net::awaitable<Result<OpenedPath>> open_path(std::span<const http::ProxyUrl> hops, std::string_view host,
                                             std::uint16_t port, PathEnd end, const PathOptions& options,
                                             bool& exit_fault);

}  // namespace portier::upstream

#pragma once
// Reverse mode, the pure part of rewriting a request for a backend: the path the route table and
// the backend both see, the forwarding headers, and whether a WebSocket upgrade passes through.
#include <optional>
#include <string>
#include <string_view>

#include "portier/http/headers.hpp"

namespace portier::reverse {

// The path a reverse listener routes on and sends on, so that a route, a rule and the backend can
// never disagree about which resource is asked for:
//  - percent-encoded unreserved characters are decoded ("%41" -> "A", "%2e" -> "."); every other
//    escape is kept, in uppercase hex ("%2f" -> "%2F": an encoded slash is not a separator);
//  - runs of "/" become one ("//admin" -> "/admin", as nginx's merge_slashes);
//  - "." and ".." segments are resolved ("/api/../admin" -> "/admin", RFC 3986 §5.2.4).
// Nothing when the path does not start with "/", has a malformed escape or an encoded NUL, or climbs
// above the root ("/../etc"): the request gets a 400.
std::optional<std::string> normalize_path(std::string_view path);

// What the proxy knows about the hop it is adding to the forwarding headers.
struct ForwardedFacts {
  std::string_view client_ip;  // "127.0.0.1", "::1" (no brackets)
  std::string_view proto;      // "http" | "https"
  std::string_view host;       // the Host the client asked for, as it sent it; empty = unknown
  bool trusted = false;        // the client is a configured proxy: what it says about earlier hops is kept
};

// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239). From a trusted
// client the incoming For chains are appended to and incoming Proto/Host kept; from anyone else every
// incoming value is replaced, so a client cannot pose as another address.
void apply_forwarded(http::Headers& h, const ForwardedFacts& f);

// The Upgrade value to pass on when the request asks for a WebSocket ("Connection: upgrade" and
// "Upgrade: websocket"); nothing otherwise (other upgrades are stripped like any hop-by-hop field).
std::optional<std::string> websocket_upgrade(const http::Headers& h);

}  // namespace portier::reverse

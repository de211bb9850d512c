#pragma once
// Reaching a destination: resolve once, drop every address in a guarded range (SSRF), and dial
// exactly the addresses that were checked, one after another with a per-attempt timeout.
#include <string>
#include <string_view>
#include <optional>
#include <vector>

#include "portier/core/error.hpp"
#include "portier/core/ip.hpp"
#include "portier/net/asio.hpp"
#include "portier/net/stream.hpp"

namespace portier::net {

IpAddress to_ip(const asio::ip::address& a) noexcept;
asio::ip::address to_asio(const IpAddress& a) noexcept;
std::string endpoint_string(const tcp::endpoint& ep);

// What the SSRF guard allows: everything outside internal_ranges(), plus the ranges the admin opened.
struct DestinationGuard {
  const CidrSet* allow = nullptr;
  bool open = false;  // parent proxies an admin configured: every address is reachable
  bool permits(const IpAddress& a) const noexcept;
};

// Resolves `host` (an IP literal skips the resolver) and keeps the addresses the guard permits.
// Errors: name_not_resolved (502), destination_forbidden (403) when every address is guarded.
awaitable<Result<std::vector<tcp::endpoint>>> resolve(std::string_view host, std::uint16_t port,
                                                        const DestinationGuard& guard);

struct Connected {
  Stream stream;
  tcp::endpoint peer;
};

// Tries each endpoint in turn, each attempt bounded by `attempt_timeout`. Errors: connect_refused,
// host_unreachable (502), connect_timeout (504) — the last attempt's, with every attempt in the context.
// With `bind`, each socket is bound to that source address first (port chosen by the kernel);
// endpoints of the other address family are skipped.
awaitable<Result<Connected>> connect_any(const std::vector<tcp::endpoint>& endpoints,
                                         Clock::duration attempt_timeout,
                                         const std::optional<IpAddress>& bind = std::nullopt);

// Socket options every proxied connection gets: TCP_NODELAY, and TCP_INQ for draining reads
// (drain_read.hpp). Set on a listening socket, Linux copies both to the sockets it accepts.
void tune_socket(int fd) noexcept;

}  // namespace portier::net

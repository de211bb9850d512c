#include "portier/upstream/chain.hpp"

#include "portier/upstream/handshake.hpp"

namespace portier::upstream {
namespace {

ProxyCredentials credentials_of(const http::ProxyUrl& hop) { return ProxyCredentials{hop.user, hop.password}; }

// Asks `hop` (reached through `sock`) to open a tunnel to host:port.
net::awaitable<Result<std::string>> through(net::Stream& sock, const http::ProxyUrl& hop, std::string_view host,
                                            std::uint16_t port, net::Clock::duration timeout) {
  const std::string label = hop.label();
  switch (hop.scheme) {
    case http::ProxyScheme::http:
    case http::ProxyScheme::https:
      co_return co_await http_connect(sock, host, port, credentials_of(hop), timeout, label);
    case http::ProxyScheme::socks5: {
      auto r = co_await socks5_connect(sock, host, port, credentials_of(hop), timeout, label);
      if (!r) co_return std::move(r).error();
      co_return std::string{};
    }
  }
  co_return Error{errc::internal, Side::internal, label + ": unknown proxy scheme"};
}

// An https:// hop was just reached (directly, or through a tunnel of the previous hops): speak TLS
// to it over what the stream carries now.
net::awaitable<Result<void>> start_tls(net::Stream& stream, const http::ProxyUrl& hop, net::Clock::duration timeout) {
  if (hop.scheme != http::ProxyScheme::https) co_return Result<void>{};
  if (!hop.tls.context)
    co_return Error{errc::bad_parent_config, Side::internal, hop.label() + ": no TLS context (config not compiled)"};
  net::TlsClientOptions options;
  options.name = hop.tls.server_name.empty() ? hop.authority.host : hop.tls.server_name;
  options.verify = hop.tls.verify;
  co_return co_await stream.start_tls_client(hop.tls.context.get(), options, timeout, hop.label());
}

}  // namespace

net::awaitable<Result<net::Connected>> connect_to_parent(const http::ProxyUrl& hop, net::Clock::duration timeout,
                                                         const std::optional<IpAddress>& bind) {
  // A parent the admin configured: no SSRF guard on it.
  auto endpoints = co_await net::resolve(hop.authority.host, hop.authority.port, net::DestinationGuard{nullptr, true});
  if (!endpoints) {
    Error e = std::move(endpoints).error();
    e.side = Side::upstream;
    e.context = hop.label() + ": " + e.context;
    co_return e;
  }
  auto conn = co_await net::connect_any(*endpoints, timeout, bind);
  if (!conn) {
    Error e = std::move(conn).error();
    e.context = hop.label() + ": " + e.context;
    co_return e;
  }
  co_return std::move(*conn);
}

net::awaitable<Result<OpenedPath>> open_path(std::span<const http::ProxyUrl> hops, std::string_view host,
                                             std::uint16_t port, PathEnd end, const PathOptions& options,
                                             bool& exit_fault) {
  exit_fault = false;
  if (hops.empty()) {
    auto endpoints = co_await net::resolve(host, port, options.guard);
    if (!endpoints) co_return std::move(endpoints).error();
    auto conn = co_await net::connect_any(*endpoints, options.connect_timeout, options.bind);
    if (!conn) co_return std::move(conn).error();
    co_return OpenedPath{std::move(*conn), {}};
  }

  exit_fault = true;
  const http::ProxyUrl& first = hops.front();
  auto conn = co_await connect_to_parent(first, options.connect_timeout, options.bind);
  if (!conn) co_return std::move(conn).error();
  OpenedPath path{std::move(*conn), {}};
  if (auto tls = co_await start_tls(path.conn.stream, first, options.connect_timeout); !tls) co_return std::move(tls).error();

  // Hop i opens a tunnel to hop i+1; the last hop to the target, unless the path ends at it.
  const std::size_t asks = end == PathEnd::last_hop ? hops.size() - 1 : hops.size();
  for (std::size_t i = 0; i < asks; ++i) {
    const bool last = i + 1 == hops.size();
    std::string_view next_host = last ? host : std::string_view(hops[i + 1].authority.host);
    std::uint16_t next_port = last ? port : hops[i + 1].authority.port;
    auto opened = co_await through(path.conn.stream, hops[i], next_host, next_port, options.connect_timeout);
    if (!opened) {
      // The last parent answered about the target: the exit works, the target is the problem. A
      // refusal of our credentials (Side::internal) is the exit's own failure.
      if (last && opened.error().is(errc::parent_refused) && opened.error().side == Side::upstream)
        exit_fault = false;
      co_return std::move(opened).error();
    }
    if (!opened->empty() && !last) {
      // The next hop has not been spoken to yet: it cannot have sent anything.
      co_return Error{errc::parent_bad_response, Side::upstream,
                      hops[i].label() + ": sent bytes behind its 200 before the next hop was asked"};
    }
    path.leftover = std::move(*opened);
    if (!last) {
      if (auto tls = co_await start_tls(path.conn.stream, hops[i + 1], options.connect_timeout); !tls)
        co_return std::move(tls).error();
    }
  }
  co_return path;
}

}  // namespace portier::upstream

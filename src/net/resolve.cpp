#include "portier/net/resolve.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace portier::net {

using namespace asio::experimental::awaitable_operators;

IpAddress to_ip(const asio::ip::address& a) noexcept {
  if (a.is_v4()) return IpAddress::from_v4(a.to_v4().to_uint());
  auto b = a.to_v6().to_bytes();
  std::array<std::uint8_t, 16> arr;
  std::memcpy(arr.data(), b.data(), 16);
  return IpAddress::from_v6(arr);
}

asio::ip::address to_asio(const IpAddress& a) noexcept {
  if (a.v4) {
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), a.bytes.data() + 12, 4);
    return asio::ip::address_v4(b);
  }
  asio::ip::address_v6::bytes_type b;
  std::memcpy(b.data(), a.bytes.data(), 16);
  return asio::ip::address_v6(b);
}

std::string endpoint_string(const tcp::endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v6()) return "[" + a.to_string() + "]:" + std::to_string(ep.port());
  // IPv4 by hand: it is written into every access-log record, and inet_ntop formats with sprintf.
  char buf[32];  // "255.255.255.255:65535"
  char* p = buf;
  const std::uint32_t v = a.to_v4().to_uint();
  for (int shift = 24; shift >= 0; shift -= 8) {
    const unsigned octet = (v >> shift) & 0xffu;
    if (octet >= 100) *p++ = static_cast<char>('0' + octet / 100);
    if (octet >= 10) *p++ = static_cast<char>('0' + octet / 10 % 10);
    *p++ = static_cast<char>('0' + octet % 10);
    *p++ = shift != 0 ? '.' : ':';
  }
  p = std::to_chars(p, buf + sizeof buf, ep.port()).ptr;
  return std::string(buf, p);
}

bool DestinationGuard::permits(const IpAddress& a) const noexcept {
  if (open || !internal_ranges().contains(a)) return true;
  return allow != nullptr && allow->contains(a);
}

awaitable<Result<std::vector<tcp::endpoint>>> resolve(std::string_view host, std::uint16_t port,
                                                        const DestinationGuard& guard) {
  std::vector<tcp::endpoint> out;
  if (auto literal = IpAddress::parse(host)) {
    if (!guard.permits(*literal))
      co_return Error{errc::destination_forbidden, Side::downstream,
                      literal->to_string() + " is in a range this proxy does not reach"};
    out.emplace_back(to_asio(*literal), port);
    co_return out;
  }
  tcp::resolver resolver(co_await asio::this_coro::executor);
  auto [ec, results] = co_await resolver.async_resolve(std::string(host), std::to_string(port),
                                                       tcp::resolver::numeric_service, nothrow);
  if (ec || results.empty()) {
    co_return Error{errc::name_not_resolved, Side::upstream,
                    std::string(host) + (ec ? " (" + ec.message() + ")" : " (no addresses)")};
  }
  std::string refused;
  for (const auto& r : results) {
    auto ep = r.endpoint();
    auto ip = to_ip(ep.address());
    if (guard.permits(ip)) {
      out.push_back(ep);
    } else if (refused.empty()) {
      refused = ip.to_string();
    }
  }
  if (out.empty())
    co_return Error{errc::destination_forbidden, Side::downstream,
                    std::string(host) + " resolves to " + refused + ", a range this proxy does not reach"};
  co_return out;
}

awaitable<Result<Connected>> connect_any(const std::vector<tcp::endpoint>& endpoints,
                                         Clock::duration attempt_timeout, const std::optional<IpAddress>& bind) {
  auto ex = co_await asio::this_coro::executor;
  Error last{errc::host_unreachable, Side::upstream, "no address to try"};
  std::string attempts;
  for (const auto& ep : endpoints) {
    tcp::socket sock(ex);
    if (bind) {
      if (bind->v4 != ep.address().is_v4()) {
        last = Error{errc::host_unreachable, Side::upstream,
                     endpoint_string(ep) + " (not reachable from bind address " + bind->to_string() + ")"};
        if (!attempts.empty()) attempts += ", ";
        attempts += last.describe();
        continue;
      }
      std::error_code ec;
      sock.open(ep.protocol(), ec);
      if (!ec) sock.bind(tcp::endpoint(to_asio(*bind), 0), ec);
      if (ec) {
        last = Error{errc::host_unreachable, Side::internal, "cannot bind to " + bind->to_string() + " (" + ec.message() + ")"};
        if (!attempts.empty()) attempts += ", ";
        attempts += last.describe();
        continue;
      }
    }
    asio::steady_timer timer(ex, attempt_timeout);
    auto result = co_await (sock.async_connect(ep, nothrow) || timer.async_wait(nothrow));
    std::string where = endpoint_string(ep);
    if (result.index() == 1) {
      last = Error{errc::connect_timeout, Side::upstream, where};
    } else {
      auto [ec] = std::get<0>(result);
      if (!ec) {
        tune_socket(sock.native_handle());
        co_return Connected{Stream(std::move(sock)), ep};
      }
      errc kind = ec == asio::error::connection_refused ? errc::connect_refused : errc::host_unreachable;
      last = Error{kind, Side::upstream, where + " (" + ec.message() + ")"};
    }
    if (!attempts.empty()) attempts += ", ";
    attempts += last.describe();
  }
  if (endpoints.size() > 1) last.context = attempts;
  co_return last;
}

}  // namespace portier::net

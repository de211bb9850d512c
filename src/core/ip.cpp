#include "portier/core/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace portier {

IpAddress IpAddress::from_v4(std::uint32_t host_order) noexcept {
  IpAddress a;
  a.bytes[10] = 0xff;
  a.bytes[11] = 0xff;
  a.bytes[12] = static_cast<std::uint8_t>(host_order >> 24);
  a.bytes[13] = static_cast<std::uint8_t>(host_order >> 16);
  a.bytes[14] = static_cast<std::uint8_t>(host_order >> 8);
  a.bytes[15] = static_cast<std::uint8_t>(host_order);
  a.v4 = true;
  return a;
}

IpAddress IpAddress::from_v6(const std::array<std::uint8_t, 16>& b) noexcept {
  IpAddress a;
  a.bytes = b;
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  a.v4 = std::memcmp(b.data(), kMapped, 12) == 0;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) return std::nullopt;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr v4{};
  if (::inet_pton(AF_INET, buf, &v4) == 1) return from_v4(ntohl(v4.s_addr));
  std::array<std::uint8_t, 16> v6{};
  if (::inet_pton(AF_INET6, buf, v6.data()) == 1) return from_v6(v6);
  return std::nullopt;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) {
    ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  }
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  unsigned bits = ip->v4 ? 32 : 128;
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v > bits) return std::nullopt;
    bits = v;
  }
  Cidr c{*ip, ip->v4 ? bits + 96 : bits};
  for (unsigned i = 0; i < 16; ++i) {
    int keep = static_cast<int>(c.prefix) - static_cast<int>(i * 8);
    if (keep >= 8) continue;
    c.base.bytes[i] &= keep <= 0 ? 0 : static_cast<std::uint8_t>(0xff << (8 - keep));
  }
  return c;
}

bool Cidr::contains(const IpAddress& a) const noexcept {
  unsigned full = prefix / 8;
  if (std::memcmp(a.bytes.data(), base.bytes.data(), full) != 0) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == base.bytes[full];
}

std::string Cidr::to_string() const {
  return base.to_string() + "/" + std::to_string(base.v4 ? prefix - 96 : prefix);
}

bool CidrSet::contains(const IpAddress& a) const noexcept {
  for (const auto& r : ranges_)
    if (r.contains(a)) return true;
  return false;
}

const CidrSet& internal_ranges() {
  static const CidrSet set = [] {
    CidrSet s;
    for (const char* r : {
             "0.0.0.0/8",        // "this network", unspecified
             "10.0.0.0/8",       // RFC 1918
             "100.64.0.0/10",    // CGNAT
             "127.0.0.0/8",      // loopback
             "169.254.0.0/16",   // link-local, cloud metadata 169.254.169.254
             "172.16.0.0/12",    // RFC 1918
             "192.0.0.0/24",     // IETF protocol assignments
             "192.0.2.0/24",     // TEST-NET-1
             "192.168.0.0/16",   // RFC 1918
             "198.18.0.0/15",    // benchmarking
             "198.51.100.0/24",  // TEST-NET-2
             "203.0.113.0/24",   // TEST-NET-3
             "224.0.0.0/4",      // multicast
             "240.0.0.0/4",      // reserved, broadcast
             "::/128",           // unspecified
             "::1/128",          // loopback
             "64:ff9b::/96",     // NAT64 (embeds v4 addresses)
             "64:ff9b:1::/48",   // local-use NAT64
             "100::/64",         // discard
             "2001:db8::/32",    // documentation
             "2002::/16",        // 6to4 (embeds v4 addresses)
             "fc00::/7",         // ULA
             "fe80::/10",        // link-local
             "fec0::/10",        // site-local (deprecated)
             "ff00::/8",         // multicast
         }) {
      s.add(*Cidr::parse(r));
    }
    return s;
  }();
  return set;
}

std::string SocketAddress::to_string() const {
  if (ip.v4) return ip.to_string() + ":" + std::to_string(port);
  return "[" + ip.to_string() + "]:" + std::to_string(port);
}

std::optional<SocketAddress> parse_socket_address(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return std::nullopt;
  unsigned v = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || v > 65535) return std::nullopt;
  return SocketAddress{*ip, static_cast<std::uint16_t>(v)};
}

}  // namespace portier

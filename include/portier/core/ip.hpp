#pragma once
// IP addresses and CIDR ranges as plain values, with no socket library: config validates them,
// policy matches client addresses against them and net checks resolved destinations (SSRF guard).
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portier {

// An IPv4 address is stored as its IPv4-mapped IPv6 form (::ffff:a.b.c.d), so one comparison covers both.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;

  static IpAddress from_v4(std::uint32_t host_order) noexcept;
  static IpAddress from_v6(const std::array<std::uint8_t, 16>& b) noexcept;  // keeps mapped v4 as v4
  static std::optional<IpAddress> parse(std::string_view text);  // "10.0.0.1", "::1" (no brackets, no zone)
  std::string to_string() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress base;   // masked
  unsigned prefix;  // bits of the 128-bit (mapped) form

  // "10.0.0.0/8", "::1/128", or a bare address (a single host).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const IpAddress& a) const noexcept;
  std::string to_string() const;
};

class CidrSet {
 public:
  CidrSet() = default;
  explicit CidrSet(std::vector<Cidr> ranges) : ranges_(std::move(ranges)) {}
  void add(const Cidr& c) { ranges_.push_back(c); }
  bool contains(const IpAddress& a) const noexcept;
  bool empty() const noexcept { return ranges_.empty(); }
  const std::vector<Cidr>& ranges() const noexcept { return ranges_; }

 private:
  std::vector<Cidr> ranges_;
};

// The ranges a proxy must not reach unless an admin opens them: loopback, RFC 1918, link-local
// (incl. 169.254.169.254 cloud metadata), CGNAT, ULA, multicast, unspecified, "this network",
// benchmarking, documentation and reserved ranges, and the v6 translation prefixes.
const CidrSet& internal_ranges();

// "host:port" with an IP literal host; "[v6]:port" for IPv6. Used for listen addresses.
struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;
  std::string to_string() const;  // "127.0.0.1:3128", "[::1]:3128"
};
std::optional<SocketAddress> parse_socket_address(std::string_view text);

}  // namespace portier

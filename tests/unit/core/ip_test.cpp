#include "portier/core/ip.hpp"

#include <string>

#include <doctest/doctest.h>

using portier::Cidr;
using portier::CidrSet;
using portier::IpAddress;
using portier::parse_socket_address;

namespace {

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  REQUIRE_MESSAGE(a.has_value(), text);
  return *a;
}

Cidr cidr(const char* text) {
  auto c = Cidr::parse(text);
  REQUIRE_MESSAGE(c.has_value(), text);
  return *c;
}

}  // namespace

TEST_SUITE("core.ip") {

TEST_CASE("IPv4 addresses parse, print back and are stored in mapped form") {
  auto a = ip("192.168.1.20");
  CHECK(a.v4);
  CHECK(a.to_string() == "192.168.1.20");
  CHECK(a.bytes[10] == 0xff);
  CHECK(a.bytes[11] == 0xff);
  CHECK(a.bytes[12] == 192);
  CHECK(a.bytes[15] == 20);
  CHECK(a == IpAddress::from_v4(0xC0A80114));
}

TEST_CASE("IPv6 addresses parse and print in canonical form") {
  auto a = ip("2001:0db8:0000:0000:0000:0000:0000:0001");
  CHECK_FALSE(a.v4);
  CHECK(a.to_string() == "2001:db8::1");
  CHECK(ip("::1").to_string() == "::1");
  CHECK(ip("::").to_string() == "::");
  CHECK(ip("FE80::1").to_string() == "fe80::1");
}

TEST_CASE("an IPv4-mapped IPv6 address is the same value as the IPv4 address") {
  auto mapped = ip("::ffff:10.1.2.3");
  CHECK(mapped.v4);
  CHECK(mapped.to_string() == "10.1.2.3");
  CHECK(mapped == ip("10.1.2.3"));

  std::array<std::uint8_t, 16> b{};
  b[10] = 0xff;
  b[11] = 0xff;
  b[12] = 127;
  b[15] = 1;
  CHECK(IpAddress::from_v6(b).v4);
  CHECK(IpAddress::from_v6(b) == ip("127.0.0.1"));
}

TEST_CASE("malformed addresses are rejected") {
  for (const char* bad : {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "example.com", "[::1]", "::1%eth0", "1::2::3",
                          "1.2.3.4 ", " 1.2.3.4", "::g", "1.2.3.4/8"}) {
    CAPTURE(bad);
    CHECK_FALSE(IpAddress::parse(bad).has_value());
  }
  CHECK_FALSE(IpAddress::parse(std::string(60, '1')).has_value());
}

TEST_CASE("CIDR parse masks host bits") {
  auto c = cidr("10.1.2.3/8");
  CHECK(c.to_string() == "10.0.0.0/8");
  CHECK(c.prefix == 96 + 8);
  CHECK(cidr("172.31.255.255/12").to_string() == "172.16.0.0/12");
  CHECK(cidr("192.168.1.77/32").to_string() == "192.168.1.77/32");
  CHECK(cidr("1.2.3.4/0").to_string() == "0.0.0.0/0");
  CHECK(cidr("2001:db8:ffff::1/32").to_string() == "2001:db8::/32");
  CHECK(cidr("fe80::1/10").to_string() == "fe80::/10");
  CHECK(cidr("::1/0").to_string() == "::/0");
}

TEST_CASE("a bare address is a single-host CIDR") {
  CHECK(cidr("10.0.0.1").to_string() == "10.0.0.1/32");
  CHECK(cidr("::1").to_string() == "::1/128");
  CHECK(cidr("10.0.0.1").contains(ip("10.0.0.1")));
  CHECK_FALSE(cidr("10.0.0.1").contains(ip("10.0.0.2")));
}

TEST_CASE("bad CIDR prefixes are rejected") {
  for (const char* bad : {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/ 8",
                          "10.0.0.0/8/8", "/8", "foo/8", "10.0.0/8", "10.0.0.0/99999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(Cidr::parse(bad).has_value());
  }
}

TEST_CASE("CIDR contains for IPv4") {
  auto c = cidr("192.168.0.0/16");
  CHECK(c.contains(ip("192.168.0.0")));
  CHECK(c.contains(ip("192.168.255.255")));
  CHECK_FALSE(c.contains(ip("192.169.0.0")));
  CHECK_FALSE(c.contains(ip("192.167.255.255")));

  auto odd = cidr("100.64.0.0/10");  // prefix not on a byte boundary
  CHECK(odd.contains(ip("100.64.0.1")));
  CHECK(odd.contains(ip("100.127.255.255")));
  CHECK_FALSE(odd.contains(ip("100.128.0.0")));
  CHECK_FALSE(odd.contains(ip("100.63.255.255")));

  auto all = cidr("0.0.0.0/0");
  CHECK(all.contains(ip("8.8.8.8")));
  CHECK_FALSE(all.contains(ip("2001:db8::1")));  // v4 /0 covers only the mapped space
}

TEST_CASE("CIDR contains for IPv6") {
  auto c = cidr("2001:db8::/32");
  CHECK(c.contains(ip("2001:db8::1")));
  CHECK(c.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(c.contains(ip("2001:db9::")));

  auto ll = cidr("fe80::/10");
  CHECK(ll.contains(ip("febf::1")));
  CHECK_FALSE(ll.contains(ip("fec0::1")));

  auto host = cidr("::1/128");
  CHECK(host.contains(ip("::1")));
  CHECK_FALSE(host.contains(ip("::2")));

  CHECK(cidr("::/0").contains(ip("10.0.0.1")));  // every address, mapped v4 included
}

TEST_CASE("a v4-mapped IPv6 address matches IPv4 ranges") {
  CHECK(cidr("10.0.0.0/8").contains(ip("::ffff:10.9.8.7")));
  CHECK_FALSE(cidr("10.0.0.0/8").contains(ip("::ffff:11.0.0.1")));
  // A mapped base is an IPv4 range: its prefix counts IPv4 bits.
  CHECK(cidr("::ffff:10.0.0.0/8").to_string() == "10.0.0.0/8");
}

TEST_CASE("CidrSet matches any of its ranges") {
  CidrSet s;
  CHECK(s.empty());
  CHECK_FALSE(s.contains(ip("10.0.0.1")));
  s.add(cidr("10.0.0.0/8"));
  s.add(cidr("::1/128"));
  CHECK_FALSE(s.empty());
  CHECK(s.ranges().size() == 2);
  CHECK(s.contains(ip("10.0.0.1")));
  CHECK(s.contains(ip("::1")));
  CHECK_FALSE(s.contains(ip("11.0.0.1")));
}

TEST_CASE("internal ranges cover loopback, private, link-local, CGNAT, ULA, multicast and unspecified") {
  const CidrSet& internal = portier::internal_ranges();
  for (const char* a : {"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                        "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250",
                        "255.255.255.255", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
                        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1"}) {
    CAPTURE(a);
    CHECK(internal.contains(ip(a)));
  }
}

TEST_CASE("internal ranges leave public addresses alone") {
  const CidrSet& internal = portier::internal_ranges();
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2606:4700::1111",
                        "2a00:1450:4001::200e", "::ffff:8.8.8.8"}) {
    CAPTURE(a);
    CHECK_FALSE(internal.contains(ip(a)));
  }
}

TEST_CASE("socket addresses parse as ip:port or [v6]:port") {
  auto a = parse_socket_address("127.0.0.1:3128");
  REQUIRE(a.has_value());
  CHECK(a->ip == ip("127.0.0.1"));
  CHECK(a->port == 3128);
  CHECK(a->to_string() == "127.0.0.1:3128");

  auto b = parse_socket_address("[::1]:0");
  REQUIRE(b.has_value());
  CHECK(b->ip == ip("::1"));
  CHECK(b->port == 0);
  CHECK(b->to_string() == "[::1]:0");

  auto c = parse_socket_address("[::]:65535");
  REQUIRE(c.has_value());
  CHECK(c->port == 65535);
  CHECK(c->to_string() == "[::]:65535");

  CHECK(parse_socket_address("0.0.0.0:80")->to_string() == "0.0.0.0:80");
}

TEST_CASE("socket addresses without an IP literal, brackets or a valid port are rejected") {
  for (const char* bad : {"::1:80", "host:80", "localhost:3128", "127.0.0.1:65536", "127.0.0.1:", "127.0.0.1",
                          "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1: 80", ":80", "[::1]", "[::1]80", "[::1:80",
                          "[127.0.0.1]:80", "[]:80", "", "[::1]:99999"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_socket_address(bad).has_value());
  }
}

}  // TEST_SUITE

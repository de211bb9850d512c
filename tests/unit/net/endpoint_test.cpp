#include <doctest/doctest.h>

#include "portier/net/resolve.hpp"

using portier::net::endpoint_string;
using portier::net::tcp;

namespace {

std::string text(const char* address, unsigned short port) {
  return endpoint_string(tcp::endpoint(asio::ip::make_address(address), port));
}

}  // namespace

TEST_CASE("endpoint_string writes IPv4 as a.b.c.d:port, IPv6 in brackets, v4-mapped as IPv4") {
  CHECK(text("127.0.0.1", 8080) == "127.0.0.1:8080");
  CHECK(text("0.0.0.0", 0) == "0.0.0.0:0");
  CHECK(text("255.255.255.255", 65535) == "255.255.255.255:65535");
  CHECK(text("10.200.3.40", 443) == "10.200.3.40:443");
  CHECK(text("::1", 3128) == "[::1]:3128");
  CHECK(text("2001:db8::5", 80) == "[2001:db8::5]:80");
  CHECK(text("::ffff:192.0.2.7", 81) == "192.0.2.7:81");
}

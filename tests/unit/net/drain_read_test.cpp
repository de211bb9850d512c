// Draining reads (net/drain_read.hpp) on real loopback TCP sockets: the kernel's TCP_INQ count
// decides "drained", a FIN counts as left to read, a socket without TCP_INQ is never called
// drained, and a read through Asio after a drained mark still completes when bytes or a FIN come.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include "portier/net/drain_read.hpp"
#include "portier/net/resolve.hpp"

using portier::net::DrainingBuffer;
using portier::net::tcp;
using portier::net::detail::recv_reporting_drain;
using portier::net::detail::RecvOutcome;

namespace {

// A connected loopback pair; `server` was accepted from a listener with tune_socket() applied
// (so it has TCP_INQ by inheritance) unless `tuned` is false.
struct Pair {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};

  explicit Pair(bool tuned = true) {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    if (tuned) portier::net::tune_socket(acc.native_handle());
    client.connect(acc.local_endpoint());
    acc.accept(server);
  }

  void send(const std::string& s) { asio::write(client, asio::buffer(s)); }
  // Waits until the server side has seen the client's FIN (POLLRDHUP), so that the test does not
  // depend on how fast loopback delivers it.
  void close_client_send() {
    client.shutdown(tcp::socket::shutdown_send);
    pollfd p{server.native_handle(), POLLRDHUP, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
  }
  void wait_readable() {
    pollfd p{server.native_handle(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
  }

  RecvOutcome recv(char* buf, std::size_t cap, std::size_t& n, std::error_code& ec) {
    return recv_reporting_drain(server.native_handle(), asio::buffer(buf, cap), MSG_DONTWAIT, ec, n);
  }
};

}  // namespace

TEST_CASE("a draining read is drained exactly when the kernel has nothing left, a FIN counting as left") {
  Pair p;
  char buf[64];
  std::size_t n = 0;
  std::error_code ec;

  CHECK(p.recv(buf, sizeof buf, n, ec) == RecvOutcome::would_block);
  CHECK(ec == asio::error::would_block);

  p.send("hello world");
  p.wait_readable();
  CHECK(p.recv(buf, 5, n, ec) == RecvOutcome::more);  // 6 bytes left
  CHECK(n == 5);
  CHECK(!ec);
  CHECK(p.recv(buf, sizeof buf, n, ec) == RecvOutcome::drained);
  CHECK(std::string(buf, n) == " world");

  p.send("last");
  p.close_client_send();
  CHECK(p.recv(buf, sizeof buf, n, ec) == RecvOutcome::more);  // all bytes, but the FIN is left
  CHECK(std::string(buf, n) == "last");
  CHECK(p.recv(buf, sizeof buf, n, ec) == RecvOutcome::drained);
  CHECK(n == 0);
  CHECK(ec == asio::error::eof);
}

TEST_CASE("without TCP_INQ a draining read never calls the socket drained") {
  Pair p(false);
  char buf[64];
  std::size_t n = 0;
  std::error_code ec;
  p.send("abc");
  p.wait_readable();
  CHECK(p.recv(buf, sizeof buf, n, ec) == RecvOutcome::unknown);
  CHECK(n == 3);
}

#if PORTIER_DRAINING_READS
TEST_CASE("after a drained mark, Asio reads still complete when bytes or the FIN arrive") {
  Pair p;
  char buf[64];
  std::optional<std::size_t> first, second, third;
  std::error_code third_ec;

  p.send("request");
  p.wait_readable();
  p.server.async_read_some(DrainingBuffer(asio::buffer(buf)), [&](std::error_code ec, std::size_t n) {
    CHECK(!ec);
    first = n;
  });
  p.io.run_for(std::chrono::seconds(2));
  p.io.restart();
  REQUIRE(first);
  CHECK(*first == 7);

  // The socket is marked drained: this read waits for epoll, and the next bytes wake it.
  p.server.async_read_some(DrainingBuffer(asio::buffer(buf)), [&](std::error_code ec, std::size_t n) {
    CHECK(!ec);
    second = n;
  });
  p.io.poll();
  CHECK(!second);
  p.send("next request");
  p.close_client_send();  // bytes and FIN arrive before the read runs: the FIN must not be lost
  p.io.run_for(std::chrono::seconds(2));
  p.io.restart();
  REQUIRE(second);
  CHECK(*second == 12);

  p.server.async_read_some(DrainingBuffer(asio::buffer(buf)), [&](std::error_code ec, std::size_t n) {
    third_ec = ec;
    third = n;
  });
  p.io.run_for(std::chrono::seconds(2));
  REQUIRE(third);
  CHECK(third_ec == asio::error::eof);
}
#endif

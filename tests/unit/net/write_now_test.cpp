// Stream::write_now on real loopback TCP sockets: everything at once when the socket takes it,
// the views advanced past what went out when it does not, and a failure reported.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>

#include <string>
#include <string_view>
#include <thread>

#include "portier/net/stream.hpp"

using portier::net::Stream;
using portier::net::tcp;

namespace {

struct Pair {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};
  Pair() {
    tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acc.local_endpoint());
    acc.accept(server);
  }
};

std::string read_all(tcp::socket& s, std::size_t n) {
  std::string out(n, '\0');
  asio::read(s, asio::buffer(out));
  return out;
}

}  // namespace

TEST_CASE("write_now sends both parts at once when the socket takes them") {
  Pair p;
  Stream stream(std::move(p.server));
  std::string_view a = "HTTP/1.1 200 OK\r\n\r\n", b = "body";
  std::error_code ec;
  CHECK(stream.write_now(a, b, ec));
  CHECK(!ec);
  CHECK(a.empty());
  CHECK(b.empty());
  CHECK(read_all(p.client, 23) == "HTTP/1.1 200 OK\r\n\r\nbody");
}

TEST_CASE("write_now leaves in the views what the socket did not take, and the rest goes later") {
  Pair p;
  const int small = 16 * 1024;
  ::setsockopt(p.server.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  Stream stream(std::move(p.server));
  const std::string head(100, 'h');
  std::string body(8 << 20, 'x');
  for (std::size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
  std::string_view a = head, b = body;
  std::error_code ec;
  CHECK_FALSE(stream.write_now(a, b, ec));  // the peer reads nothing yet: the socket fills up
  CHECK(!ec);
  CHECK(a.empty());
  REQUIRE(!b.empty());
  CHECK(b.size() < body.size());
  CHECK(b.data() + b.size() == body.data() + body.size());  // what is left is the end of the body

  std::string got;
  std::thread reader([&] { got = read_all(p.client, head.size() + body.size()); });
  asio::write(stream.socket(), std::array{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())});
  reader.join();
  CHECK(got == head + body);
}

TEST_CASE("write_now reports a send that fails") {
  Pair p;
  Stream stream(std::move(p.server));
  const linger abort_close{1, 0};
  ::setsockopt(p.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
  p.client.close();  // a reset
  pollfd pf{stream.socket().native_handle(), POLLIN, 0};
  REQUIRE(::poll(&pf, 1, 2000) == 1);
  std::string_view a = "x", b;
  std::error_code ec;
  CHECK(stream.write_now(a, b, ec));
  CHECK(ec);
}

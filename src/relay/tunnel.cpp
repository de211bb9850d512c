#include "portier/relay/tunnel.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <memory>
#include <system_error>

namespace portier::relay {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr std::size_t kThreadBuffer = 128 * 1024;
// Reads per readiness event before yielding to other connections on this thread.
constexpr int kReadsPerWake = 16;

char* thread_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[kThreadBuffer]);
  return buf.get();
}

const char* cancel_reason(const net::Deadline& d) {
  switch (d.expired()) {
    case net::Phase::tunnel_idle: return "idle_timeout";
    case net::Phase::drain: return "shutdown";
    default: return "cancelled";
  }
}

struct Direction {
  net::tcp::socket& from;
  net::tcp::socket& to;
  std::uint64_t& bytes;
  const char* eof_name;
  const char* from_name;
  const char* to_name;
};

net::awaitable<void> pump(Direction d, net::Deadline& deadline, net::Clock::duration idle, std::string& end) {
  const int from_fd = d.from.native_handle();
  const int to_fd = d.to.native_handle();
  auto fail = [&](const char* who, std::error_code ec) {
    if (end.empty()) end = std::string(who) + "_error: " + ec.message();
    // An error ends both directions: wake the other pump, which waits on our `to` socket.
    std::error_code ignored;
    d.to.cancel(ignored);
    d.from.cancel(ignored);
  };
  for (;;) {
    auto [wait_ec] = co_await d.from.async_wait(net::tcp::socket::wait_read, net::nothrow);
    if (wait_ec) {
      if (wait_ec == asio::error::operation_aborted) {
        if (end.empty()) end = cancel_reason(deadline);
        std::error_code ignored;
        d.to.cancel(ignored);
        co_return;
      }
      fail(d.from_name, wait_ec);
      co_return;
    }
    char* buf = thread_buffer();
    for (int i = 0; i < kReadsPerWake; ++i) {
      ssize_t n = ::recv(from_fd, buf, kThreadBuffer, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        fail(d.from_name, std::error_code(errno, std::system_category()));
        co_return;
      }
      if (n == 0) {  // EOF: forward the half-close and let the other direction run on
        if (end.empty()) end = d.eof_name;
        std::error_code ignored;
        d.to.shutdown(net::tcp::socket::shutdown_send, ignored);
        co_return;
      }
      deadline.touch(idle);
      d.bytes += static_cast<std::uint64_t>(n);
      ssize_t sent = ::send(to_fd, buf, static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          fail(d.to_name, std::error_code(errno, std::system_category()));
          co_return;
        }
        sent = 0;
      }
      if (sent < n) {
        // The receiver is slower: keep only the unsent rest, then wait until it is written.
        std::string rest(buf + sent, static_cast<std::size_t>(n - sent));
        auto [ec, w] = co_await asio::async_write(d.to, asio::buffer(rest), net::nothrow);
        if (ec) {
          if (ec == asio::error::operation_aborted) {
            if (end.empty()) end = cancel_reason(deadline);
            co_return;
          }
          fail(d.to_name, ec);
          co_return;
        }
        deadline.touch(idle);
        break;  // the thread buffer may have been used by others meanwhile; wait for readiness again
      }
    }
  }
}

}  // namespace

net::awaitable<TunnelResult> tunnel(net::tcp::socket& client, net::tcp::socket& upstream, net::Deadline& deadline,
                                    net::Clock::duration idle) {
  TunnelResult r;
  deadline.arm(net::Phase::tunnel_idle, idle);
  co_await (pump(Direction{client, upstream, r.bytes_up, "client_eof", "client", "upstream"}, deadline, idle, r.end) &&
            pump(Direction{upstream, client, r.bytes_down, "upstream_eof", "upstream", "client"}, deadline, idle, r.end));
  deadline.disarm();
  co_return r;
}

}  // namespace portier::relay

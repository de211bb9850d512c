#include "portier/relay/tunnel.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <memory>
#include <optional>
#include <system_error>

namespace portier::relay {
namespace {

constexpr std::size_t kThreadBuffer = 128 * 1024;
constexpr std::uint64_t kSpliceAfter = 1024 * 1024;
constexpr int kPipeSize = 1024 * 1024;
// Reads per readiness event before yielding to the other connections on this thread.
constexpr int kReadsPerWake = 16;

char* thread_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[kThreadBuffer]);
  return buf.get();
}

std::error_code last_error() { return {errno, std::system_category()}; }
bool would_block() { return errno == EAGAIN || errno == EWOULDBLOCK; }

// How a tunnel whose sockets were cancelled ended: which deadline did it.
const char* cancel_reason(const net::Deadline& deadline) noexcept {
  switch (deadline.expired()) {
    case net::Phase::tunnel_idle: return "idle_timeout";
    case net::Phase::drain: return "shutdown";
    default: return "cancelled";
  }
}

// The two directions as callbacks (no coroutine frames): the tunnel() coroutine only waits for
// both to finish, so a tunnel costs one small object and two pending reactor waits.
class Tunnel {
 public:
  struct Direction {
    net::tcp::socket& from;
    net::tcp::socket& to;
    std::uint64_t& bytes;
    const char* from_name;
    const char* to_name;
    std::string pending;  // bytes read but not yet taken by the receiver (copy mode)
    int pipe_r = -1;      // splice mode
    int pipe_w = -1;
    std::size_t in_pipe = 0;
    bool done = false;
  };

  Tunnel(net::tcp::socket& client, net::tcp::socket& upstream, TunnelResult& r, net::Deadline& deadline,
         net::Clock::duration idle)
      : up_{client, upstream, r.bytes_up, "client", "upstream", {}},
        down_{upstream, client, r.bytes_down, "upstream", "client", {}},
        result_(r),
        deadline_(deadline),
        idle_(idle),
        finished_(client.get_executor(), net::Clock::time_point::max()) {}

  ~Tunnel() {
    close_pipe(up_);
    close_pipe(down_);
  }

  // Returns only when both directions are done and no handler of ours is pending any more, so
  // no callback can outlive this object.
  net::awaitable<void> run() {
    wait_readable(up_);
    wait_readable(down_);
    while (!(up_.done && down_.done) || outstanding_ > 0) {
      co_await finished_.async_wait(net::nothrow);
    }
  }

 private:
  void wait_readable(Direction& d) {
    ++outstanding_;
    d.from.async_wait(net::tcp::socket::wait_read, [this, &d](std::error_code ec) { on_ready(d, ec); });
  }
  void wait_writable(Direction& d) {
    ++outstanding_;
    d.to.async_wait(net::tcp::socket::wait_write, [this, &d](std::error_code ec) { on_ready(d, ec); });
  }
  void yield_then_pump(Direction& d) {
    ++outstanding_;
    asio::post(d.from.get_executor(), [this, &d] { on_ready(d, {}); });
  }

  void on_ready(Direction& d, std::error_code ec) {
    --outstanding_;
    if (d.done) {
      signal_if_finished();
      return;
    }
    if (!ec && deadline_.expired() != net::Phase::none) ec = asio::error::operation_aborted;
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        set_end(cancel_reason(deadline_));
        finish(d);
        cancel_other(d);
      } else {
        fail(d, d.from_name, ec);
      }
      return;
    }
    pump(d);
  }

  // Moves what it can; leaves exactly one wait pending, or finishes the direction.
  void pump(Direction& d) {
    for (int i = 0; i < kReadsPerWake; ++i) {
      if (!flush(d)) {
        if (d.done) return;
        wait_writable(d);
        return;
      }
      if (d.pipe_r < 0 && d.bytes >= kSpliceAfter) open_pipe(d);
      ssize_t n;
      if (d.pipe_r >= 0) {
        n = ::splice(d.from.native_handle(), nullptr, d.pipe_w, nullptr, kPipeSize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      } else {
        n = ::recv(d.from.native_handle(), thread_buffer(), kThreadBuffer, MSG_DONTWAIT);
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (would_block()) {
          wait_readable(d);
          return;
        }
        fail(d, d.from_name, last_error());
        return;
      }
      if (n == 0) {  // EOF: forward the half-close and let the other direction run on
        set_end(d.from_name == std::string_view("client") ? "client_eof" : "upstream_eof");
        std::error_code ignored;
        d.to.shutdown(net::tcp::socket::shutdown_send, ignored);
        finish(d);
        return;
      }
      deadline_.touch(idle_);
      d.bytes += static_cast<std::uint64_t>(n);
      if (d.pipe_r >= 0) {
        d.in_pipe += static_cast<std::size_t>(n);
      } else {
        ssize_t sent = ::send(d.to.native_handle(), thread_buffer(), static_cast<std::size_t>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
          if (!would_block() && errno != EINTR) {
            fail(d, d.to_name, last_error());
            return;
          }
          sent = 0;
        }
        if (sent < n) d.pending.assign(thread_buffer() + sent, static_cast<std::size_t>(n - sent));
      }
    }
    // Fair share used: let other connections on this thread run, then continue.
    yield_then_pump(d);
  }

  // Writes what is held for the receiver. False when something is still held (or on failure).
  bool flush(Direction& d) {
    while (d.in_pipe > 0) {
      ssize_t n = ::splice(d.pipe_r, nullptr, d.to.native_handle(), nullptr, d.in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (would_block()) return false;
        fail(d, d.to_name, last_error());
        return false;
      }
      d.in_pipe -= static_cast<std::size_t>(n);
    }
    while (!d.pending.empty()) {
      ssize_t n = ::send(d.to.native_handle(), d.pending.data(), d.pending.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (would_block()) return false;
        fail(d, d.to_name, last_error());
        return false;
      }
      d.pending.erase(0, static_cast<std::size_t>(n));
      deadline_.touch(idle_);
    }
    if (d.pending.capacity() > 0) std::string().swap(d.pending);  // idle again: hold no memory
    return true;
  }

  void open_pipe(Direction& d) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return;  // stay in copy mode
    ::fcntl(fds[1], F_SETPIPE_SZ, kPipeSize);               // best effort; the default size works too
    d.pipe_r = fds[0];
    d.pipe_w = fds[1];
  }

  static void close_pipe(Direction& d) {
    if (d.pipe_r >= 0) ::close(d.pipe_r);
    if (d.pipe_w >= 0) ::close(d.pipe_w);
    d.pipe_r = d.pipe_w = -1;
  }

  void set_end(const std::string& why) {
    if (result_.end.empty()) result_.end = why;
  }

  // An error ends both directions.
  void fail(Direction& d, const char* who, std::error_code ec) {
    set_end(std::string(who) + "_error: " + ec.message());
    finish(d);
    cancel_other(d);
  }

  void cancel_other(Direction& d) {
    Direction& other = &d == &up_ ? down_ : up_;
    if (other.done) return;
    std::error_code ignored;
    other.from.cancel(ignored);
    other.to.cancel(ignored);
  }

  void finish(Direction& d) {
    if (d.done) return;
    d.done = true;
    close_pipe(d);
    signal_if_finished();
  }

  void signal_if_finished() {
    if (up_.done && down_.done && outstanding_ == 0) finished_.cancel();
  }

  Direction up_;
  Direction down_;
  TunnelResult& result_;
  net::Deadline& deadline_;
  net::Clock::duration idle_;
  int outstanding_ = 0;  // our waits and posts not yet run
  asio::steady_timer finished_;
};

// The relay for tunnels with TLS on either side (an HTTPS proxy listener's client, an https://
// parent): bytes must go through OpenSSL, so no readiness tricks and no splice. One coroutine per
// direction, each with a buffer of one TLS record's size.
class StreamTunnel {
 public:
  StreamTunnel(net::Stream& client, net::Stream& upstream, TunnelResult& r, net::Deadline& deadline,
               net::Clock::duration idle, Shaper* shaper)
      : client_(client), upstream_(upstream), result_(r), deadline_(deadline), idle_(idle), shaper_(shaper) {}

  net::awaitable<void> run() {
    using namespace asio::experimental::awaitable_operators;
    co_await (copy(client_, upstream_, result_.bytes_up, Shaper::up) &&
              copy(upstream_, client_, result_.bytes_down, Shaper::down));
  }

 private:
  static constexpr std::size_t kRecord = 16 * 1024;

  net::awaitable<void> copy(net::Stream& from, net::Stream& to, std::uint64_t& bytes, Shaper::Direction dir) {
    const char* from_name = dir == Shaper::up ? "client" : "upstream";
    const char* to_name = dir == Shaper::up ? "upstream" : "client";
    const std::size_t chunk = shaper_ != nullptr ? std::min(kRecord, shaper_->chunk()) : kRecord;
    std::unique_ptr<char[]> buf(new char[kRecord]);
    while (!stopped_) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buf.get(), chunk), net::nothrow);
      if (stopped_) break;
      if (ec) {
        if (net::is_eof(ec)) {
          set_end(std::string(from_name) + "_eof");
          co_await forward_eof(to);
        } else {
          fail(from_name, ec);
        }
        break;
      }
      deadline_.touch(idle_);
      auto [wec, written] = co_await asio::async_write(to, asio::buffer(buf.get(), n), net::nothrow);
      if (stopped_) break;
      if (wec) {
        fail(to_name, wec);
        break;
      }
      bytes += written;
      deadline_.touch(idle_);
      if (shaper_ != nullptr) co_await pause(dir, written);
    }
  }

  // The shaper's pause after moving n bytes. A pause is not idleness: the deadline moves past it.
  net::awaitable<void> pause(Shaper::Direction dir, std::size_t n) {
    const auto wait = shaper_->moved(dir, n, net::Clock::now());
    if (wait <= net::Clock::duration::zero()) co_return;
    result_.shaped[dir] += wait;
    auto& timer = pauses_[dir].emplace(client_.get_executor(), wait);
    co_await timer.async_wait(net::nothrow);
    deadline_.touch(idle_);
  }

  // A plain receiver gets a half-close and the other direction runs on. TLS has no half-close we
  // can send while the other direction reads the same stream (close_notify is a shutdown of both),
  // so a TLS receiver ends the tunnel: its reads are cancelled, then it gets close_notify.
  net::awaitable<void> forward_eof(net::Stream& to) {
    std::error_code ignored;
    if (to.plain()) {
      to.socket().shutdown(net::tcp::socket::shutdown_send, ignored);
      co_return;
    }
    stopped_ = true;
    to.socket().cancel(ignored);
    co_await to.shutdown_tls(std::chrono::seconds(1));
  }

  void fail(const char* who, std::error_code ec) {
    if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none) {
      set_end(cancel_reason(deadline_));
    } else {
      set_end(std::string(who) + "_error: " + ec.message());
    }
    // An error ends both directions.
    stopped_ = true;
    std::error_code ignored;
    client_.socket().cancel(ignored);
    upstream_.socket().cancel(ignored);
    for (auto& p : pauses_)
      if (p) p->cancel();
  }

  void set_end(const std::string& why) {
    if (result_.end.empty()) result_.end = why;
  }

  net::Stream& client_;
  net::Stream& upstream_;
  TunnelResult& result_;
  net::Deadline& deadline_;
  net::Clock::duration idle_;
  Shaper* shaper_;
  std::optional<asio::steady_timer> pauses_[2];  // by direction, while shaping
  bool stopped_ = false;
};

}  // namespace

net::awaitable<TunnelResult> tunnel(net::Stream& client, net::Stream& upstream, net::Deadline& deadline,
                                    net::Clock::duration idle, Shaper* shaper) {
  TunnelResult r;
  deadline.arm(net::Phase::tunnel_idle, idle);
  if (client.plain() && upstream.plain() && shaper == nullptr) {
    Tunnel t(client.socket(), upstream.socket(), r, deadline, idle);
    co_await t.run();
  } else {
    StreamTunnel t(client, upstream, r, deadline, idle, shaper);
    co_await t.run();
  }
  deadline.disarm();
  co_return r;
}

}  // namespace portier::relay

#pragma once
// A byte stream to a peer: a plain TCP socket, TLS over the socket (an HTTPS proxy listener's
// client, an https:// parent), or TLS inside a tunnel that is itself TLS (an https:// parent behind
// an https:// parent). Sessions, handshakes, the origin pool and the tunnel relay use this one type
// and never care which it is; only the relay asks plain() to take its splice(2) fast path.
//
// The async operations are Asio's AsyncReadStream / AsyncWriteStream: asio::async_write(stream, ...)
// and co_await stream.async_read_some(buf, net::nothrow) work as on a socket. Plain and TLS-over-TCP
// pass the caller's handler straight through (no allocation per operation); only TLS nested in TLS
// type-erases its inner handlers, which breaks the otherwise endless template recursion.
//
// TLS over TCP is our TlsSocket (OpenSSL on the socket's descriptor, tls_socket.hpp); TLS inside
// TLS has no descriptor of its own and runs asio::ssl::stream over the outer Stream.
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <asio/experimental/append.hpp>
#include <asio/ssl.hpp>

#include "portier/core/error.hpp"
#include "portier/net/asio.hpp"
#include "portier/net/drain_read.hpp"
#include "portier/net/tls_socket.hpp"

namespace portier::net {

class Stream;

namespace detail {

// A move-only void(error_code, size_t) callable, for the one place handlers are type-erased.
class ErasedHandler {
 public:
  template <class H>
  explicit ErasedHandler(H h) : impl_(std::make_unique<Impl<H>>(std::move(h))) {}
  void operator()(std::error_code ec, std::size_t n) {
    auto impl = std::move(impl_);  // the handler may start the next operation with a new one
    impl->call(ec, n);
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call(std::error_code ec, std::size_t n) = 0;
  };
  template <class H>
  struct Impl final : Base {
    explicit Impl(H h) : handler(std::move(h)) {}
    void call(std::error_code ec, std::size_t n) override { std::move(handler)(ec, n); }
    H handler;
  };
  std::unique_ptr<Base> impl_;
};

// An AsyncStream view of a Stream for a TLS layer inside it; handlers are erased (see above).
class ErasedStreamRef {
 public:
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;

  explicit ErasedStreamRef(Stream& s) noexcept : stream_(&s) {}
  executor_type get_executor() noexcept;
  lowest_layer_type& lowest_layer() noexcept;

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token);
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token);

 private:
  Stream* stream_;
};

}  // namespace detail

// How a TLS client checks the server it reached.
struct TlsClientOptions {
  std::string name;    // expected in the certificate (DNS name or IP literal); also sent as SNI when a name
  bool verify = true;  // false only when the admin turned it off for this upstream
};

class Stream {
 public:
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;

  explicit Stream(tcp::socket socket);
  Stream(Stream&&) noexcept;
  Stream& operator=(Stream&&) noexcept;
  ~Stream();

  // The TCP socket under every layer: options, cancel, close, shutdown(send) and readiness waits.
  tcp::socket& socket() noexcept;
  lowest_layer_type& lowest_layer() noexcept { return socket(); }
  executor_type get_executor() noexcept { return socket().get_executor(); }
  // The bytes on the socket are the stream's bytes (no TLS): raw recv/send/splice are allowed.
  bool plain() const noexcept { return std::holds_alternative<tcp::socket>(layer_); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token);
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token);

  // Sends a then b now, without waiting, as far as the socket takes them: true when all went out
  // or the send failed (ec), false when the rest (left in a and b) must go by asio::async_write.
  // A write that finishes here costs no trip through the io_context's queue before the coroutine
  // goes on (Asio 1.22 completes even an immediate write through it): the next read starts before
  // the peer's answer can arrive. Plain and TLS over TCP; TLS inside TLS returns false at once.
  bool write_now(std::string_view& a, std::string_view& b, std::error_code& ec);

  // A read after which this side writes to the peer: the first read of an origin's answer to
  // the request just written, a client's request head. On a plain socket it is a draining read
  // (drain_read.hpp): when it leaves the socket empty, the next read waits for readiness without
  // trying recv(2) first. Over TLS over TCP a socket known empty is waited for without
  // epoll_ctl(2) (tls_socket.hpp); TLS inside TLS reads as usual.
  template <class MutableBuffers, class Token>
  auto async_read_draining(const MutableBuffers& buffers, Token&& token);

  // Puts a TLS client over what this stream carries now and runs the handshake, bounded by
  // `timeout`. Errors: tls_failed (502, Side::upstream) naming `where` and OpenSSL's reason
  // ("certificate verify failed: self-signed certificate"), connect_timeout (504).
  awaitable<Result<void>> start_tls_client(SSL_CTX* ctx, const TlsClientOptions& options, Clock::duration timeout,
                                           std::string_view where);
  // Server side (an HTTPS listener). No deadline of its own: the session's watchdog bounds it by
  // cancelling the socket. Errors: tls_failed (Side::downstream).
  awaitable<Result<void>> start_tls_server(SSL_CTX* ctx);

  // Ends TLS politely (close_notify, waiting at most `timeout` for the peer's); nothing for plain.
  awaitable<void> shutdown_tls(Clock::duration timeout);

 private:
  using TlsOverTcp = TlsSocket;
  struct TlsInTls;  // TLS through a tunnel inside an outer TLS Stream, which it owns

  // Calls f with the TLS layer, whichever of the two it is. Only when !plain().
  template <class F>
  decltype(auto) on_tls(F&& f);

  std::variant<tcp::socket, std::unique_ptr<TlsOverTcp>, std::unique_ptr<TlsInTls>> layer_;
  // A draining read ran: ordinary reads call recv(2) themselves before waiting (drain_read.hpp).
  bool recv_first_ = false;
};

namespace detail {

// An ordinary read after a draining read: what recv(2) returns now, or else a wait for
// readiness (whose edge nothing can have consumed: the socket was just found empty).
template <class Token>
auto async_recv_first(tcp::socket& socket, asio::mutable_buffer b, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
      [&socket, b](auto handler) {
        std::error_code ec;
        std::size_t n = 0;
        if (recv_reporting_drain(socket.native_handle(), b, MSG_DONTWAIT, ec, n) == RecvOutcome::would_block) {
          socket.async_read_some(DrainingBuffer(b), std::move(handler));
          return;
        }
        // Completes through the io_context, never inside the initiating call.
        asio::post(socket.get_executor(), asio::experimental::append(std::move(handler), ec, n));
      },
      token);
}

}  // namespace detail

struct Stream::TlsInTls {
  TlsInTls(Stream&& inner_stream, SSL* ssl) : inner(std::move(inner_stream)), tls(detail::ErasedStreamRef(inner), ssl) {}
  Stream inner;
  asio::ssl::stream<detail::ErasedStreamRef> tls;
};

template <class F>
decltype(auto) Stream::on_tls(F&& f) {
  if (auto* t = std::get_if<std::unique_ptr<TlsOverTcp>>(&layer_)) return f(**t);
  return f(std::get<std::unique_ptr<TlsInTls>>(layer_)->tls);
}

template <class MutableBuffers, class Token>
auto Stream::async_read_some(const MutableBuffers& buffers, Token&& token) {
  if (auto* s = std::get_if<tcp::socket>(&layer_)) {
    if (recv_first_) {
      return detail::async_recv_first(*s, asio::mutable_buffer(*asio::buffer_sequence_begin(buffers)),
                                      std::forward<Token>(token));
    }
    return s->async_read_some(buffers, std::forward<Token>(token));
  }
  return on_tls([&](auto& tls) { return tls.async_read_some(buffers, std::forward<Token>(token)); });
}

template <class MutableBuffers, class Token>
auto Stream::async_read_draining(const MutableBuffers& buffers, Token&& token) {
  if (auto* s = std::get_if<tcp::socket>(&layer_)) {
    recv_first_ = kDrainingReads;
    return s->async_read_some(DrainingBuffer(asio::mutable_buffer(*asio::buffer_sequence_begin(buffers))),
                              std::forward<Token>(token));
  }
  if (auto* t = std::get_if<std::unique_ptr<TlsOverTcp>>(&layer_)) {
    return (*t)->async_read_draining(buffers, std::forward<Token>(token));
  }
  return std::get<std::unique_ptr<TlsInTls>>(layer_)->tls.async_read_some(buffers, std::forward<Token>(token));
}

template <class ConstBuffers, class Token>
auto Stream::async_write_some(const ConstBuffers& buffers, Token&& token) {
  if (auto* s = std::get_if<tcp::socket>(&layer_)) return s->async_write_some(buffers, std::forward<Token>(token));
  return on_tls([&](auto& tls) { return tls.async_write_some(buffers, std::forward<Token>(token)); });
}

// Runs `op` (operations on `socket` or a Stream over it) with a time limit: when `timeout` passes
// first, every pending operation on the socket is cancelled, so `op` ends with operation_aborted,
// and `timed_out` tells why. Cancelling the socket reaches operations of every TLS layer over it,
// which per-operation cancellation (awaitable_operators' ||) does not for TLS inside TLS.
template <class T>
awaitable<T> with_timeout(tcp::socket& socket, Clock::duration timeout, awaitable<T> op, bool& timed_out) {
  struct State {
    bool done = false;
    bool fired = false;
  };
  auto state = std::make_shared<State>();
  asio::steady_timer timer(socket.get_executor(), timeout);
  timer.async_wait([&socket, state](std::error_code ec) {
    if (ec || state->done) return;  // the socket may be gone once done is set
    state->fired = true;
    std::error_code ignored;
    socket.cancel(ignored);
  });
  T r = co_await std::move(op);
  state->done = true;
  timer.cancel();
  timed_out = state->fired;
  co_return r;
}

// True for a read error that means the peer finished: EOF, or a TLS peer that closed the TCP
// connection without close_notify (common, and harmless for HTTP with framing).
inline bool is_eof(const std::error_code& ec) noexcept {
  return ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
}

// ---- detail -------------------------------------------------------------------------------------

inline detail::ErasedStreamRef::executor_type detail::ErasedStreamRef::get_executor() noexcept {
  return stream_->get_executor();
}
inline detail::ErasedStreamRef::lowest_layer_type& detail::ErasedStreamRef::lowest_layer() noexcept {
  return stream_->socket();
}

template <class MutableBuffers, class Token>
auto detail::ErasedStreamRef::async_read_some(const MutableBuffers& buffers, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
      [s = stream_](auto handler, asio::mutable_buffer b) { s->async_read_some(b, ErasedHandler(std::move(handler))); },
      token, asio::mutable_buffer(*asio::buffer_sequence_begin(buffers)));
}

template <class ConstBuffers, class Token>
auto detail::ErasedStreamRef::async_write_some(const ConstBuffers& buffers, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
      [s = stream_](auto handler, asio::const_buffer b) { s->async_write_some(b, ErasedHandler(std::move(handler))); },
      token, asio::const_buffer(*asio::buffer_sequence_begin(buffers)));
}

}  // namespace portier::net

#pragma once
// TLS directly over a TCP socket: OpenSSL reads and writes the socket's descriptor itself
// (SSL_set_fd on a non-blocking socket), and Asio only tells us when the socket is ready.
// asio::ssl::stream runs OpenSSL through a memory BIO pair instead, which costs a copy each way
// and a state machine of socket operations per TLS operation; this is the hot path of an HTTPS
// listener and of TLS backends and parents, so it gets the direct way. (TLS inside a TLS tunnel
// has no descriptor of its own and keeps asio::ssl::stream, see stream.hpp.)
//
// Each operation is: call OpenSSL; on SSL_ERROR_WANT_READ / WANT_WRITE wait for that readiness of
// the socket, then call again. A read whose bytes are not inside OpenSSL yet (SSL_has_pending:
// neither decrypted nor read ahead) waits first instead, unless the kernel said bytes are left:
// between keep-alive requests the call would only meet EAGAIN, a wasted read(2) per request.
// OpenSSL reads the socket through our BIO, which is a draining read (drain_read.hpp): it knows
// from TCP_INQ whether the socket is empty. A draining read whose socket is known empty waits
// with a readiness read, which costs no epoll_ctl(2); other reads wait with async_wait, which
// re-arms the descriptor and so also reports a reset hidden behind the last bytes (see
// drain_read.hpp for why only some reads may drain). An operation that finishes at once
// completes later through the io_context (see TlsOp::start), never inside the initiating call:
// Asio 1.22 has no immediate executors, and a handler run inline could recurse without bound.
//
// Concurrency: at most one read and one write may be in flight (Asio's AsyncReadStream /
// AsyncWriteStream rule), as the tunnel relay does, one coroutine per direction. Everything runs
// on the socket's one io_context thread, so OpenSSL calls never overlap; they only alternate
// between the two operations, which OpenSSL allows on one SSL:
//  - Each call's SSL_get_error() is taken right after it, before any other call on the SSL can
//    change its state, and the thread's error queue is cleared before each call.
//  - Waits cannot miss bytes: socket.async_wait() reports readiness that is already there (Asio's
//    epoll reactor re-arms the descriptor for each wait), and a WANT_* means OpenSSL met EAGAIN
//    with all it held, so nothing it needs sits in its buffers. Both operations may wait for the
//    same readiness (Asio queues both waits and wakes both); the one that runs second finds its
//    bytes taken and waits again.
//  - A read may have to write, and a write to read: OpenSSL 3 defers what a read must send
//    (a KeyUpdate answer, a no_renegotiation or close alert) while a write is held in its buffer,
//    and sends it before the next record of a write; the retry of a write passes the same bytes
//    (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets them move, see write_hold_). Renegotiation is off
//    in every context (SSL_OP_NO_RENEGOTIATION); a write that gets WANT_READ (only possible
//    inside a handshake) waits for readability like a read. One case stays OpenSSL's: an alert
//    that a read could send only partly (full socket buffer) makes the next write fail; nginx,
//    which drives OpenSSL the same way, shares it.
//  - Cancelling the socket (deadlines, the tunnel's end) ends a pending wait with
//    operation_aborted, and the operation completes with it without calling OpenSSL again. A
//    wait that had already finished still runs its retry: after a close_notify was sent that is
//    a harmless read of the peer's last records.
//
// Errors as asio::ssl::stream reported them, so callers and net::is_eof() need not care:
// close_notify -> asio::error::eof; the peer closing TCP without it -> ssl::error::stream_truncated;
// socket errors -> the system error (connection_reset, broken_pipe); TLS errors -> OpenSSL's
// first queued error in asio's ssl category, the rest left queued for the caller's reason text.
//
// OpenSSL writes the socket with write(2): SIGPIPE must be blocked or ignored (the server blocks
// it in every thread before the workers start).
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/ssl/stream_base.hpp>

#include "portier/net/asio.hpp"
#include "portier/net/drain_read.hpp"

namespace portier::net {

class TlsSocket {
 public:
  using executor_type = tcp::socket::executor_type;
  using lowest_layer_type = tcp::socket::lowest_layer_type;

  // Takes ownership of `ssl` and attaches it to the socket's descriptor; check ok().
  TlsSocket(tcp::socket socket, SSL* ssl);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;  // pending operations point at it
  TlsSocket& operator=(const TlsSocket&) = delete;

  // False when OpenSSL could not take the descriptor (out of memory): the stream is unusable.
  bool ok() const noexcept { return ok_; }
  tcp::socket& socket() noexcept { return socket_; }
  lowest_layer_type& lowest_layer() noexcept { return socket_; }
  executor_type get_executor() noexcept { return socket_.get_executor(); }
  SSL* native_handle() const noexcept { return ssl_; }

  // void(error_code, size_t); reads into the first non-empty buffer (as asio::ssl::stream does).
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token);
  // The same, as a draining read (Stream::async_read_draining).
  template <class MutableBuffers, class Token>
  auto async_read_draining(const MutableBuffers& buffers, Token&& token);
  // void(error_code, size_t); small buffers are gathered into one TLS record (see kGather).
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token);
  // Stream::write_now over TLS: SSL_write now, as the write operation's first attempt would; false
  // when OpenSSL must wait (the write operation then passes the same bytes again, as OpenSSL wants).
  bool write_now(std::string_view& a, std::string_view& b, std::error_code& ec);
  // void(error_code)
  template <class Token>
  auto async_handshake(asio::ssl::stream_base::handshake_type type, Token&& token);
  // void(error_code): sends close_notify and waits for the peer's (asio::ssl::stream's semantics);
  // nothing after a fatal error, when OpenSSL forbids it.
  template <class Token>
  auto async_shutdown(Token&& token);

  // What one OpenSSL call left: finished (with ec and a byte count), or the readiness to await.
  enum class Want { nothing, read, write };
  struct Step {
    Want want = Want::nothing;
    std::error_code ec;
    std::size_t n = 0;
  };

  // OpenSSL holds received bytes not yet returned (decrypted, or read ahead and still encrypted).
  bool holds_input() const noexcept { return SSL_has_pending(ssl_) == 1; }
  // What OpenSSL's last read of the socket (through our BIO) learnt of what is left in it.
  enum class Left { unknown, nothing, something };
  Left socket_input() const noexcept { return socket_input_; }

  // One attempt of each operation (public for the operation objects below, not for callers).
  Step read_step(void* data, std::size_t size);
  Step write_step(const void* data, std::size_t size);
  Step handshake_step();
  Step shutdown_step();
  // A write that must wait keeps its gathered bytes here (the thread's gather buffer is shared).
  const void* hold_write(const void* data, std::size_t size);
  void release_write() noexcept { write_hold_.reset(); }

  // Small buffers of one write are copied into one record of at most this size: a response head
  // and its body go out as one record and one send(2), not two (nginx buffers 16 KiB likewise).
  static constexpr std::size_t kGather = 16 * 1024;
  static char* gather_buffer();

 private:
  Step failed(int ret, int sys_errno);
  static int bio_read(BIO* bio, char* data, int size);
  static BIO_METHOD* read_bio_method();

  tcp::socket socket_;
  SSL* ssl_;
  Left socket_input_ = Left::unknown;
  bool ok_ = false;
  bool fatal_ = false;  // SSL_ERROR_SSL / SSL_ERROR_SYSCALL: no more I/O, no close_notify
  std::unique_ptr<char[]> write_hold_;
};

namespace detail {

// The attempts, as small copyable values kept in the operation.
struct TlsRead {
  static constexpr bool sized = true;
  void* data;
  std::size_t size;
  bool draining;
  TlsSocket::Step operator()(TlsSocket& s) const { return s.read_step(data, size); }
};
struct TlsWrite {
  static constexpr bool sized = true;
  const void* data;
  std::size_t size;
  bool gathered;  // data is the thread's gather buffer until the first wait
  TlsSocket::Step operator()(TlsSocket& s) const {
    TlsSocket::Step r = s.write_step(data, size);
    if (r.want == TlsSocket::Want::nothing) s.release_write();
    return r;
  }
};
struct TlsHandshake {
  static constexpr bool sized = false;
  TlsSocket::Step operator()(TlsSocket& s) const { return s.handshake_step(); }
};
struct TlsShutdown {
  static constexpr bool sized = false;
  TlsSocket::Step operator()(TlsSocket& s) const { return s.shutdown_step(); }
};

// One operation: moved into each readiness wait (so no allocation of its own: Asio's recycled
// operation memory holds it), and into a zero-byte read when it finishes at once. Asio finds the
// caller's executor, allocator and cancellation slot through it (the associator below).
template <class Handler, class Action>
class TlsOp {
 public:
  TlsOp(TlsSocket& s, Action action, Handler handler) : s_(&s), action_(action), handler_(std::move(handler)) {}

  void start() {
    if constexpr (std::is_same_v<Action, TlsRead>) {
      // Nothing inside OpenSSL, and the socket not known to hold more: wait first. Trying
      // SSL_read now would mostly cost a read(2) that meets EAGAIN (a keep-alive connection
      // between requests).
      if (action_.size != 0 && !s_->holds_input() && s_->socket_input() != TlsSocket::Left::something) {
        wait(TlsSocket::Want::read);
        return;
      }
    }
    TlsSocket::Step r = action_(*s_);
    if (r.want != TlsSocket::Want::nothing) {
      if constexpr (std::is_same_v<Action, TlsWrite>) {
        if (action_.gathered) action_.data = s_->hold_write(action_.data, action_.size);
      }
      wait(r.want);
      return;
    }
    // Finished at once: complete later, not inside the initiating call. A zero-byte read of the
    // socket completes at once without I/O (an AsyncReadStream rule), through one queued reactor
    // operation with the caller's executor and allocator; asio::ssl::stream does the same. It
    // costs about half of asio::post on an any_io_executor (measured: 700 vs 1,350 instructions).
    result_ = r;
    finished_ = true;
    s_->socket().async_read_some(asio::mutable_buffer(), std::move(*this));
  }

  // A readiness wait ended.
  void operator()(std::error_code ec) {
    if (ec) {  // cancelled or closed: the socket (and even s_) may be gone, touch neither
      complete(ec, 0);
      return;
    }
    TlsSocket::Step r = action_(*s_);
    if (r.want != TlsSocket::Want::nothing) {
      wait(r.want);
      return;
    }
    complete(r.ec, r.n);
  }

  // The zero-byte read that completes an operation that finished at once, or a readiness read.
  void operator()(std::error_code ec, std::size_t) {
    if (finished_) {
      complete(result_.ec, result_.n);
    } else {
      (*this)(ec);
    }
  }

  const Handler& handler() const noexcept { return handler_; }

 private:
  void wait(TlsSocket::Want want) {
    if constexpr (std::is_same_v<Action, TlsRead>) {
      if (kDrainingReads && want == TlsSocket::Want::read && action_.draining &&
          s_->socket_input() == TlsSocket::Left::nothing) {
        s_->socket().async_read_some(ReadinessBuffer(), std::move(*this));
        return;
      }
    }
    auto w = want == TlsSocket::Want::read ? tcp::socket::wait_read : tcp::socket::wait_write;
    s_->socket().async_wait(w, std::move(*this));
  }
  void complete(std::error_code ec, std::size_t n) {
    if constexpr (Action::sized) {
      std::move(handler_)(ec, n);
    } else {
      (void)n;
      std::move(handler_)(ec);
    }
  }

  TlsSocket* s_;
  Action action_;
  Handler handler_;
  TlsSocket::Step result_;
  bool finished_ = false;
};

// The non-empty buffers of a write, as far as they may be gathered into one record.
struct TlsWriteSource {
  std::array<asio::const_buffer, 4> parts;
  std::size_t count = 0;
};

// Copies the parts into the thread's gather buffer, up to kGather bytes in all.
inline asio::const_buffer gather(const TlsWriteSource& src) {
  char* out = TlsSocket::gather_buffer();
  std::size_t n = 0;
  for (std::size_t i = 0; i < src.count && n < TlsSocket::kGather; ++i) {
    const std::size_t take = std::min(src.parts[i].size(), TlsSocket::kGather - n);
    std::memcpy(out + n, src.parts[i].data(), take);
    n += take;
  }
  return asio::const_buffer(out, n);
}

// What a write's first SSL_write gets: the parts gathered into one record when the first is small,
// else the first part alone. TlsSocket::write_now() must pass the same bytes as the operation.
inline asio::const_buffer first_write(const TlsWriteSource& src, bool& gathered) {
  gathered = src.count > 1 && src.parts[0].size() < TlsSocket::kGather;
  if (gathered) return gather(src);
  return src.count == 0 ? asio::const_buffer() : src.parts[0];
}

// Drops the first n bytes of a then b (a write sent them).
inline void drop_front(std::string_view& a, std::string_view& b, std::size_t n) noexcept {
  const std::size_t from_a = std::min(n, a.size());
  a.remove_prefix(from_a);
  b.remove_prefix(std::min(n - from_a, b.size()));
}

template <class MutableBuffers, class Token>
auto tls_read(TlsSocket& s, const MutableBuffers& buffers, bool draining, Token&& token) {
  asio::mutable_buffer b;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
    b = asio::mutable_buffer(*it);
    if (b.size() != 0) break;
  }
  return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
      [&s](auto handler, asio::mutable_buffer b, bool draining) {
        TlsOp<std::decay_t<decltype(handler)>, TlsRead>(s, TlsRead{b.data(), b.size(), draining}, std::move(handler))
            .start();
      },
      token, b, draining);
}

}  // namespace detail

template <class MutableBuffers, class Token>
auto TlsSocket::async_read_some(const MutableBuffers& buffers, Token&& token) {
  return detail::tls_read(*this, buffers, false, std::forward<Token>(token));
}

template <class MutableBuffers, class Token>
auto TlsSocket::async_read_draining(const MutableBuffers& buffers, Token&& token) {
  return detail::tls_read(*this, buffers, true, std::forward<Token>(token));
}

template <class ConstBuffers, class Token>
auto TlsSocket::async_write_some(const ConstBuffers& buffers, Token&& token) {
  // Only the first few buffers are kept: enough for a head and a body, small to carry along.
  // The gathering itself waits for the initiation, right before SSL_write: a deferred initiation
  // (deferred tokens, parallel groups) must not find another connection's bytes in the buffer.
  detail::TlsWriteSource src;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
    asio::const_buffer b(*it);
    if (b.size() == 0) continue;
    if (src.count == src.parts.size()) break;
    src.parts[src.count++] = b;
  }
  return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
      [this](auto handler, const detail::TlsWriteSource& src) {
        bool gathered = false;
        const asio::const_buffer b = detail::first_write(src, gathered);
        detail::TlsOp<std::decay_t<decltype(handler)>, detail::TlsWrite>(
            *this, detail::TlsWrite{b.data(), b.size(), gathered}, std::move(handler))
            .start();
      },
      token, src);
}

template <class Token>
auto TlsSocket::async_handshake(asio::ssl::stream_base::handshake_type type, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code)>(
      [this](auto handler, asio::ssl::stream_base::handshake_type type) {
        if (type == asio::ssl::stream_base::client) {
          SSL_set_connect_state(ssl_);
        } else {
          SSL_set_accept_state(ssl_);
        }
        detail::TlsOp<std::decay_t<decltype(handler)>, detail::TlsHandshake>(*this, detail::TlsHandshake{},
                                                                              std::move(handler))
            .start();
      },
      token, type);
}

template <class Token>
auto TlsSocket::async_shutdown(Token&& token) {
  return asio::async_initiate<Token, void(std::error_code)>(
      [this](auto handler) {
        detail::TlsOp<std::decay_t<decltype(handler)>, detail::TlsShutdown>(*this, detail::TlsShutdown{},
                                                                             std::move(handler))
            .start();
      },
      token);
}

}  // namespace portier::net

// The operation passes the caller's associated executor, allocator and cancellation slot on to
// the waits it starts, as Asio's own composed operations do.
template <template <class, class> class Associator, class Handler, class Action, class DefaultCandidate>
struct asio::associator<Associator, portier::net::detail::TlsOp<Handler, Action>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const portier::net::detail::TlsOp<Handler, Action>& op, const DefaultCandidate& c = DefaultCandidate()) noexcept {
    return Associator<Handler, DefaultCandidate>::get(op.handler(), c);
  }
};

#pragma once
// Draining reads: a read of a plain socket that also tells Asio's reactor whether the socket is
// now empty, so that the next read waits for epoll at once instead of first calling recv(2) to
// meet EAGAIN.
//
// Asio's epoll reactor tries every read at once (a "speculative" recv) unless the socket is marked
// drained, and it marks a socket drained only at EOF. A proxy reads an origin's response right
// after writing the request, and a client's next request right after answering the last one: in
// both cases the peer has not had time to send, and that first recv meets EAGAIN nearly every
// time, one wasted system call per read.
//
// Whether a socket is empty has to be exact: a drained mark that is wrong waits for a readiness
// edge that will not come. The one thing a short read cannot tell is a FIN that arrived with the
// last bytes, so the size of the read is not enough. The kernel tells it: with TCP_INQ set on the
// socket (Linux 4.18; tune_socket() sets it, and accepted sockets inherit it from the listener),
// recvmsg(2) returns how much is left to read as a control message, and counts an arrived FIN as
// one byte left. A draining read is recvmsg(2) with that control message, and reports the socket
// drained when nothing is left. Without the control message (TCP_INQ not set, an older kernel) it
// never does: an ordinary read.
//
// What TCP_INQ does not count is a reset that arrived with the last bytes (the kernel gives the
// bytes first, the error on the next call). After a draining read, the next ordinary read of the
// stream therefore calls recv(2) itself first (Stream::async_read_some, see stream.hpp), and
// draining reads are used only where a read is followed by a write to the same peer, which meets
// the reset: the first read of an origin's response (after which the connection is written again
// or dropped), and a client's request heads (which are answered). The cost left is one case: a
// client that sends part of a head and then resets is noticed at the header timeout, not at once.
//
// TLS over TCP reads the socket in OpenSSL, through a BIO that calls recv_reporting_drain() below
// and remembers the answer; its draining reads wait with a ReadinessBuffer read (tls_socket.hpp).
//
// The behaviour is Asio's receive operation with its perform step specialised for this buffer
// type; it depends on Asio internals, so it is compiled only for the Asio versions it was written
// against (1.22, Debian 12). With any other version a DrainingBuffer read is an ordinary read.
#include "portier/net/asio.hpp"

#if ASIO_VERSION >= 102200 && ASIO_VERSION < 102300 && defined(ASIO_HAS_EPOLL) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT)
#define PORTIER_DRAINING_READS 1
#else
#define PORTIER_DRAINING_READS 0
#endif

namespace portier::net {

// One buffer, marking a read as a draining read.
class DrainingBuffer : public asio::mutable_buffer {
 public:
  explicit DrainingBuffer(asio::mutable_buffer b) noexcept : asio::mutable_buffer(b) {}
  const asio::mutable_buffer* begin() const noexcept { return this; }
  const asio::mutable_buffer* end() const noexcept { return static_cast<const asio::mutable_buffer*>(this) + 1; }
};

// A readiness read: a read operation that reads nothing and completes as soon as the reactor
// lets it run, marking the socket drained. TLS over TCP waits with it when its own reads (OpenSSL's,
// through the socket BIO in tls_socket.cpp) found the socket empty: it is queued without the
// epoll_ctl(2) that a readiness wait (async_wait) costs, and completes on the next readiness edge,
// or at once when an edge came since the last one (tls_socket.hpp). The byte it points at is never
// touched. Only with kDrainingReads: otherwise it would be an ordinary read. Completing ends the
// reactor's pass over the socket's read queue (as any drained mark does), so it must be the only
// operation waiting to read: TlsSocket uses it for draining reads only, which run when nothing
// else reads, and no write waits to read (OpenSSL's writes want to read only in a handshake).
class ReadinessBuffer : public asio::mutable_buffer {
 public:
  ReadinessBuffer() noexcept : asio::mutable_buffer(&unused_, 1) {}
  ReadinessBuffer(const ReadinessBuffer&) noexcept : ReadinessBuffer() {}
  ReadinessBuffer& operator=(const ReadinessBuffer&) noexcept { return *this; }
  const asio::mutable_buffer* begin() const noexcept { return this; }
  const asio::mutable_buffer* end() const noexcept { return static_cast<const asio::mutable_buffer*>(this) + 1; }

 private:
  char unused_ = 0;
};

inline constexpr bool kDrainingReads = PORTIER_DRAINING_READS == 1;

namespace detail {

// What a read did and learnt of what is left: nothing was there (would_block); it read and the
// kernel said nothing is left, not even a FIN (drained; also end of stream); it read and the kernel
// said something is left (more); it read or failed and nothing is known of the rest (unknown).
enum class RecvOutcome { would_block, drained, more, unknown };

// One recvmsg(2) into `b` asking for TCP_INQ's count: bytes (n), end of stream (eof), an error, or
// would_block.
RecvOutcome recv_reporting_drain(int fd, asio::mutable_buffer b, int flags, std::error_code& ec,
                                 std::size_t& n) noexcept;

}  // namespace detail
}  // namespace portier::net

#if PORTIER_DRAINING_READS
namespace asio::detail {

// Asio's own perform step for one buffer of a stream socket, except that the socket is reported
// drained exactly when the kernel said so.
template <>
inline reactor_op::status reactive_socket_recv_op_base<portier::net::DrainingBuffer>::do_perform(reactor_op* base) {
  using portier::net::detail::RecvOutcome;
  auto* o = static_cast<reactive_socket_recv_op_base*>(base);
  const RecvOutcome r =
      portier::net::detail::recv_reporting_drain(o->socket_, o->buffers_, o->flags_, o->ec_, o->bytes_transferred_);
  if (r == RecvOutcome::would_block) return not_done;
  return r == RecvOutcome::drained ? done_and_exhausted : done;
}

// Reads nothing: whoever waits reads the socket itself (OpenSSL). Completing marks the socket
// drained, so that the next readiness read waits for the next edge.
template <>
inline reactor_op::status reactive_socket_recv_op_base<portier::net::ReadinessBuffer>::do_perform(reactor_op* base) {
  auto* o = static_cast<reactive_socket_recv_op_base*>(base);
  o->ec_ = asio::error_code();
  o->bytes_transferred_ = 0;
  return done_and_exhausted;
}

}  // namespace asio::detail
#endif

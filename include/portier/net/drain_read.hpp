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

inline constexpr bool kDrainingReads = PORTIER_DRAINING_READS == 1;

namespace detail {

enum class RecvOutcome { would_block, done, drained };

// One recvmsg(2) into `b` asking for TCP_INQ's count: bytes (n), end of stream (eof), an error,
// or would_block. `drained` when the kernel said nothing, not even a FIN, is left to read.
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

}  // namespace asio::detail
#endif

#pragma once
// Reply reads: reading a peer's answer to what we have just sent it, on a plain socket, without
// the recv(2) that would meet EAGAIN first.
//
// Asio's epoll reactor tries every read at once (a "speculative" recv) unless the socket is marked
// drained, and it marks a socket drained only at EOF. A proxy reads an origin's response right
// after writing the request, when the origin has not had time to answer: that first recv meets
// EAGAIN nearly every time, one wasted system call per proxied request. nginx avoids it by
// marking a socket not ready after a read that returned less than it asked for.
//
// A ReplyBuffer read does the same: when it returns fewer bytes than the buffer holds, the socket
// had nothing more, and the reactor marks it drained. The next read then waits for epoll at once;
// the reactor clears the mark on the next readiness edge, which every later byte produces.
//
// The one thing a drained mark can hide is a FIN that had already arrived with the last bytes
// read: it produces no later edge. So after a reply read, the next ordinary read of the stream
// calls recv(2) itself first (Stream::async_read_some does, see stream.hpp), and reply reads are
// only used where a hidden FIN costs nothing: the first read of a response on an origin
// connection. A FIN hidden there means the origin closed the idle connection; the request we
// wrote draws its RST, which wakes the read (connection_reset), and the request is retried on a
// new connection when it may be, as for any stale pooled connection.
//
// The behaviour is Asio's receive operation with its perform step specialised for this buffer
// type; it depends on Asio internals, so it is compiled only for the Asio versions it was written
// against (1.22, Debian 12). With any other version a ReplyBuffer read is an ordinary read.
#include "portier/net/asio.hpp"

#if ASIO_VERSION >= 102200 && ASIO_VERSION < 102300 && defined(ASIO_HAS_EPOLL) && !defined(ASIO_HAS_IO_URING_AS_DEFAULT)
#define PORTIER_REPLY_READS 1
#else
#define PORTIER_REPLY_READS 0
#endif

namespace portier::net {

// One buffer, marking a read as a reply read.
class ReplyBuffer : public asio::mutable_buffer {
 public:
  explicit ReplyBuffer(asio::mutable_buffer b) noexcept : asio::mutable_buffer(b) {}
  const asio::mutable_buffer* begin() const noexcept { return this; }
  const asio::mutable_buffer* end() const noexcept { return static_cast<const asio::mutable_buffer*>(this) + 1; }
};

inline constexpr bool kReplyReadsMarkDrained = PORTIER_REPLY_READS == 1;

}  // namespace portier::net

#if PORTIER_REPLY_READS
namespace asio::detail {

// Asio's own perform step for one buffer, except that a short read reports the socket drained.
template <>
inline reactor_op::status reactive_socket_recv_op_base<portier::net::ReplyBuffer>::do_perform(reactor_op* base) {
  auto* o = static_cast<reactive_socket_recv_op_base*>(base);
  const bool finished = socket_ops::non_blocking_recv1(o->socket_, o->buffers_.data(), o->buffers_.size(), o->flags_,
                                                       (o->state_ & socket_ops::stream_oriented) != 0, o->ec_,
                                                       o->bytes_transferred_);
  if (!finished) return not_done;
  return o->bytes_transferred_ < o->buffers_.size() ? done_and_exhausted : done;
}

}  // namespace asio::detail
#endif

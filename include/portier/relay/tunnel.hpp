#pragma once
// A bidirectional byte relay. Both directions are joined: the first EOF is forwarded as a
// half-close and does not cut the other direction. An error on either side ends both. Idle time is
// watched by the session's Deadline, which each direction pushes forward on traffic.
#include <cstdint>
#include <string>

#include "portier/core/rate.hpp"
#include "portier/net/asio.hpp"
#include "portier/net/deadline.hpp"
#include "portier/net/stream.hpp"

namespace portier::relay {

struct TunnelResult {
  std::uint64_t bytes_up = 0;    // client -> upstream
  std::uint64_t bytes_down = 0;  // upstream -> client
  net::Clock::duration shaped[2]{};  // paused for the bandwidth limit, by Shaper::Direction
  std::string end;               // how it ended: "client_eof", "upstream_eof", "idle_timeout", "client_error: ...", ...
};

// Relays until both directions reached EOF, an error, or the deadline cancelled the sockets.
//
// Memory: an idle tunnel holds no buffer. Each direction waits for readability, reads into a buffer
// owned by the thread and writes it on at once; only bytes the receiver cannot take yet are copied.
// Speed: once a direction has carried kSpliceAfter bytes it moves to splice(2) through a pipe, so
// bulk data goes socket to socket inside the kernel without being copied to user space.
// Both of the above need plain streams on both sides; with TLS on either side, each direction
// reads and writes through the streams with a 16 KiB buffer, and an EOF towards a TLS side ends
// the tunnel with close_notify (see tunnel.cpp).
//
// With a `shaper` (a user's bandwidth limit) each direction moves a chunk at a time and pauses as
// long as the shaper asks; that path is the stream relay's, also for plain sockets (a capped
// tunnel gains nothing from splice).
net::awaitable<TunnelResult> tunnel(net::Stream& client, net::Stream& upstream, net::Deadline& deadline,
                                    net::Clock::duration idle, Shaper* shaper = nullptr);

}  // namespace portier::relay

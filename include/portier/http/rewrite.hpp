#pragma once
// Pure header rewriting for a forward proxy hop, and head serialization. No I/O.
#include <cstddef>
#include <string>
#include <string_view>

#include "portier/http/headers.hpp"
#include "portier/http/message.hpp"
#include "portier/http/target.hpp"

namespace portier::http {

// Removes the hop-by-hop fields: Connection and every field it names, Proxy-Connection,
// Proxy-Authorization, Proxy-Authenticate (requests only, see below), Keep-Alive, TE, Trailer, Upgrade.
// Transfer-Encoding and Content-Length are framing, handled by the caller, and are kept.
void strip_hop_by_hop(Headers& h);

struct ForwardOptions {
  std::string via = "1.1 portier";  // empty: add no Via
  bool x_forwarded_for = false;
  std::string client_ip;             // for X-Forwarded-For
};

// Turns a proxy request head into what goes to the origin: origin-form target, Host from the URL
// (replacing any Host the client sent; port omitted when it is the scheme default), hop-by-hop
// fields stripped, Via appended (to an existing Via with ", "), X-Forwarded-For appended when on,
// and "Connection: keep-alive" never added (HTTP/1.1 default).
void prepare_origin_request(RequestHead& head, const AbsoluteUrl& url, const ForwardOptions& opt);

// Turns an origin's response head into what goes to the client: hop-by-hop fields stripped, Via
// appended, and Connection: close added when `client_keep_alive` is false.
void prepare_client_response(ResponseHead& head, const ForwardOptions& opt, bool client_keep_alive);

// "METHOD target HTTP/1.1\r\n" + fields + "\r\n", appended to `out`.
void write_request_head(std::string& out, std::string_view method, std::string_view target, const Headers& h);
// "HTTP/1.1 status reason\r\n" + fields + "\r\n", appended to `out` (reason defaults from status when empty).
void write_response_head(std::string& out, int status, std::string_view reason, const Headers& h);
// Chunked framing: "1a2b\r\n" before a chunk of n bytes (n > 0).
void write_chunk_size(std::string& out, std::size_t n);
// Last chunk and trailers: "0\r\n" + trailer fields + "\r\n".
void write_last_chunk(std::string& out, const Headers& trailers);

std::string_view reason_phrase(int status) noexcept;

}  // namespace portier::http

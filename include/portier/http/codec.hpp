#pragma once
// HTTP/1.x parsing over llhttp with no I/O: the session feeds bytes it read and acts on what the
// parser reports. Bodies are streamed: body bytes are reported as views into the fed buffer and
// never accumulated. Limits are enforced inside the llhttp callbacks, so an oversized head fails
// as soon as it crosses the limit, not after it was buffered.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "portier/core/error.hpp"
#include "portier/http/message.hpp"

namespace portier::http {

struct Limits {
  std::size_t max_header_bytes = 65536;  // whole head incl. request line -> 431
  std::size_t max_url_bytes = 8192;      // request target -> 414
  std::size_t max_headers = 100;         // number of fields -> 431
};

enum class Stop {
  need_more,         // every byte was consumed; the message is not complete yet
  head,              // the head is complete: request()/response() is valid; body bytes follow
  message_complete,  // the message is complete; bytes after `consumed` belong to the next message
  upgrade,           // CONNECT (request) or 101/2xx-to-CONNECT (response): bytes after `consumed` are tunnel bytes
};

// The sequence of stops, one per feed() call that reaches them:
//   ordinary message:  [need_more...] head [need_more...] message_complete
//     A message without a body still stops at head first; the next feed() (with the following
//     bytes, or with an empty view if there are none yet) returns message_complete, consumed 0.
//   CONNECT request, 101 response, 2xx answering expect_connect_response: `upgrade` alone,
//     reported at the end of the head (no separate `head` or `message_complete`): the head is
//     valid, the message is over, and bytes after `consumed` are tunnel bytes. Any body framing
//     headers on such a message are ignored. A request with `Upgrade:` (not CONNECT) is an
//     ordinary request (head.upgrade is set); only a 101 answer turns a connection over.
//   1xx responses (100 Continue, 103...): each is a complete message on its own (head, then
//     message_complete, no body); the final response follows on the same parser.
// After `upgrade` the parser is done: feed() and finish() return upgrade with consumed 0.

struct Progress {
  std::size_t consumed = 0;
  Stop stop = Stop::need_more;
};

class Parser {
 public:
  enum class Kind { request, response };

  Parser(Kind kind, Limits limits = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;
  Parser(Parser&&) noexcept;
  Parser& operator=(Parser&&) noexcept;

  // Back to the state of a new parser of the same kind (whatever happened: failed, upgraded,
  // finished), keeping the memory it grew: a response parser serves one exchange after another.
  void reset(Limits limits);

  // Parses as much of `data` as it can. It stops early (consumed < size) after a complete head and
  // after a complete message, so the caller can act before parsing on; call feed() again with the
  // rest (see the stop sequence above). Body bytes seen by this call are in body_chunks() (views
  // into `data`, valid while `data` is; cleared by the next feed()/finish()).
  // Request parsers: errors are bad_request (400), header_too_large / too_many_headers (431),
  // uri_too_long (414), Side::downstream, with llhttp's reason (or ours) in the context.
  // Response parsers: every parse error is upstream_bad_response (502), Side::upstream, and the
  // context names the cause ("header_too_large: ...") -- a broken origin is never the client's 400.
  // The head limit also applies to a chunked message's trailer section. Beyond llhttp's own checks
  // the parser rejects obs-fold, bare LF/CR line endings, whitespace in or before field names,
  // empty field names, a request line with other than two single spaces, control/space/non-ASCII
  // bytes in the request target, HTTP versions other than 1.0/1.1, more than one Host, and
  // Transfer-Encoding in an HTTP/1.0 request. After a message that does not keep the connection
  // alive (Connection: close, HTTP/1.0), more bytes are an error. After an error the parser stays failed.
  Result<Progress> feed(std::string_view data);

  // The peer closed the connection: completes a read-until-close body (returns message_complete),
  // or reports an error (upstream_closed / client_closed) if a message was in progress. need_more
  // when no message had started. A message without a body whose head was the last stop is
  // completed too (message_complete). After finish() the parser takes no more bytes.
  Result<Progress> finish();

  const std::vector<std::string_view>& body_chunks() const noexcept { return body_chunks_; }

  const RequestHead& request() const noexcept { return request_; }
  RequestHead& request() noexcept { return request_; }
  const ResponseHead& response() const noexcept { return response_; }
  ResponseHead& response() noexcept { return response_; }
  // Trailer fields of a chunked message, valid after message_complete.
  const Headers& trailers() const noexcept { return trailers_; }

  // Response parsers: the next response answers a HEAD request, so it has no body whatever its headers say.
  // Both expectations apply to the next final (non-1xx) response and are cleared by the parser
  // once that response's head is parsed; 1xx responses leave them in place. Set them before
  // feeding the response to each request.
  void expect_head_response(bool v) noexcept { head_response_ = v; }
  // Response parsers: the next response answers a CONNECT: a 2xx ends the message at its head (upgrade).
  void expect_connect_response(bool v) noexcept { connect_response_ = v; }

  // True between the first byte of a message and its completion.
  bool in_message() const noexcept { return in_message_; }

  // Implementation state for the llhttp trampolines; not part of the interface.
  struct State;

 private:
  void start(State& s);  // llhttp and the raw scan at the first message

  Kind kind_;
  Limits limits_;
  std::unique_ptr<State> state_;
  RequestHead request_;
  ResponseHead response_;
  Headers trailers_;
  std::vector<std::string_view> body_chunks_;
  bool head_response_ = false;
  bool connect_response_ = false;
  bool in_message_ = false;
};

}  // namespace portier::http

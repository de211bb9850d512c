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

  // Parses as much of `data` as it can. It stops early (consumed < size) after a complete head and
  // after a complete message, so the caller can act before parsing on; call feed() again with the
  // rest. Body bytes seen by this call are in body_chunks() (views into `data`, valid while `data`
  // is). Errors: bad_request (400), header_too_large / too_many_headers (431), uri_too_long (414),
  // with Side::downstream for a request parser and Side::upstream for a response parser, and
  // llhttp's reason in the context. After an error the parser stays failed.
  Result<Progress> feed(std::string_view data);

  // The peer closed the connection: completes a read-until-close body (returns message_complete),
  // or reports an error (upstream_closed / client_closed) if a message was in progress. need_more
  // when no message had started.
  Result<Progress> finish();

  const std::vector<std::string_view>& body_chunks() const noexcept { return body_chunks_; }

  const RequestHead& request() const noexcept { return request_; }
  RequestHead& request() noexcept { return request_; }
  const ResponseHead& response() const noexcept { return response_; }
  ResponseHead& response() noexcept { return response_; }
  // Trailer fields of a chunked message, valid after message_complete.
  const Headers& trailers() const noexcept { return trailers_; }

  // Response parsers: the next response answers a HEAD request, so it has no body whatever its headers say.
  void expect_head_response(bool v) noexcept { head_response_ = v; }
  // Response parsers: the next response answers a CONNECT: a 2xx ends the message at its head (upgrade).
  void expect_connect_response(bool v) noexcept { connect_response_ = v; }

  // True between the first byte of a message and its completion.
  bool in_message() const noexcept { return in_message_; }

  // Implementation state for the llhttp trampolines; not part of the interface.
  struct State;

 private:
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

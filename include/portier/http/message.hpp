#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "portier/http/headers.hpp"

namespace portier::http {

// What the parser learnt about a request head. Framing fields are the parser's reading of the
// headers (llhttp's), so the session never re-derives them from raw header text.
struct RequestHead {
  std::string method;   // "GET", "CONNECT", ...
  std::string target;   // as sent: "http://h/p?q", "h:443", "/p"
  int version_major = 1;
  int version_minor = 1;
  Headers headers;
  bool keep_alive = true;        // HTTP/1.1 default, Connection: close/keep-alive, HTTP/1.0 rules
  bool chunked = false;          // Transfer-Encoding ends in chunked
  std::optional<std::uint64_t> content_length;
  bool has_body = false;         // chunked or content_length > 0
  bool expect_continue = false;  // Expect: 100-continue
  bool upgrade = false;          // Upgrade requested (or CONNECT)
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  Headers headers;
  bool keep_alive = true;
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool body_until_close = false;  // no length and not chunked: the body ends when the origin closes
  bool has_body = false;          // false for 1xx, 204, 304, responses to HEAD, and Content-Length: 0
};

}  // namespace portier::http

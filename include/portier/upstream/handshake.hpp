#pragma once
// Per-hop handshakes with parent proxies: ask an already-connected parent to open a tunnel to the
// next hop or the target. Two layers:
//   * pure codecs (no I/O, unit-tested): the HTTP CONNECT request, a parser for the parent's
//     response head, and the SOCKS5 (RFC 1928) / user-password (RFC 1929) messages;
//   * async handshakes over a connected socket, each bounded as a whole by one timeout.
// The chain logic (which hop asks which) lives elsewhere; this module knows one hop at a time.
//
// Errors are portier::Error values with Side::upstream:
//   parent_refused       (502) the parent answered non-2xx / SOCKS REP != 0 / no acceptable auth
//                              method; the context names the hop, the target and the parent's answer
//   parent_bad_response  (502) the parent's answer is not the protocol (garbage, head > 16 KiB, ...)
//   connect_timeout      (504) the whole handshake did not finish within the timeout
//   upstream_closed      (502) the parent closed (or reset) the connection mid-handshake
//   bad_parent_config    (500, Side::internal) credentials or a host name SOCKS5 cannot carry
//                              (lengths outside 1..255); config validation should catch these first
// `hop` is a label for messages ("http://127.0.0.1:3129", "socks5://[::1]:1080"); it must never
// hold the password. Contexts never include credentials.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "portier/core/error.hpp"
#include "portier/http/codec.hpp"
#include "portier/net/stream.hpp"

namespace portier::upstream {

struct ProxyCredentials {
  std::string user;
  std::string password;
  // No credentials at all (an empty user with a password still counts as credentials).
  bool empty() const noexcept { return user.empty() && password.empty(); }
};

// ---- HTTP CONNECT -------------------------------------------------------------------------------

// The largest response head accepted from a parent answering CONNECT (status line + fields).
inline constexpr std::size_t kMaxParentHeadBytes = 16 * 1024;

// "host:port", with an IPv6 literal in brackets ("[::1]:443"); an already bracketed host is kept.
std::string authority(std::string_view host, std::uint16_t port);

// "Basic base64(user:password)" (RFC 7617; the bytes are sent as given, UTF-8 or not).
std::string basic_proxy_authorization(const ProxyCredentials& creds);

// "CONNECT host:port HTTP/1.1\r\nHost: host:port\r\n[Proxy-Authorization: Basic ...\r\n]\r\n"
std::string http_connect_request(std::string_view host, std::uint16_t port, const ProxyCredentials& creds);

// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view bytes);

// Incremental parser for the parent's answer to CONNECT, over the project's llhttp codec (strict:
// CRLF line ends only -- a bare LF is parent_bad_response, as it is for origins; HTTP/1.0 and 1.1).
// Feed the bytes as they arrive; once complete() the head is parsed and `consumed` of the last
// feed() says how many of its bytes belong to the head: the rest are tunnel bytes (a server that
// speaks first, e.g. SSH, may send its banner in the same segment as the parent's 200).
// 1xx interim responses are skipped. For a 2xx, Content-Length / Transfer-Encoding are ignored
// (RFC 9110 9.3.6). Errors (parent_bad_response, no hop in the context): not HTTP, a head over
// kMaxParentHeadBytes, EOF is not this parser's business (the caller reports upstream_closed).
class ConnectResponseParser {
 public:
  struct Progress {
    std::size_t consumed = 0;  // bytes of this feed() that belong to the head
    bool complete = false;     // the final response head is in: status()/reason()/headers() valid
  };

  explicit ConnectResponseParser(std::size_t max_head_bytes = kMaxParentHeadBytes);

  Result<Progress> feed(std::string_view data);

  bool complete() const noexcept { return complete_; }
  bool tunnel_open() const noexcept { return complete_ && status() / 100 == 2; }
  int status() const noexcept { return parser_.response().status; }
  const std::string& reason() const noexcept { return parser_.response().reason; }
  const http::Headers& headers() const noexcept { return parser_.response().headers; }

 private:
  http::Parser parser_;
  bool complete_ = false;
};

// The error for a complete response that is not 2xx: parent_refused, e.g.
//   "http://10.0.0.1:3128, CONNECT example.com:443: the parent answered 403 Forbidden"
//   407 without credentials: "... the parent proxy at http://10.0.0.1:3128 wants credentials (407 ...)"
//   407 with credentials:    "... the parent proxy at http://10.0.0.1:3128 rejected our credentials (407 ...)"
// The reason phrase is shortened and stripped of control bytes.
Error connect_refusal(const ConnectResponseParser& response, bool sent_credentials, std::string_view hop,
                      std::string_view target);

// ---- SOCKS5 -------------------------------------------------------------------------------------

namespace socks5 {

inline constexpr std::uint8_t kVersion = 0x05;
inline constexpr std::uint8_t kMethodNoAuth = 0x00;
inline constexpr std::uint8_t kMethodUserPass = 0x02;
inline constexpr std::uint8_t kMethodNoneAcceptable = 0xFF;
inline constexpr std::uint8_t kCmdConnect = 0x01;
inline constexpr std::uint8_t kAtypIPv4 = 0x01;
inline constexpr std::uint8_t kAtypDomain = 0x03;
inline constexpr std::uint8_t kAtypIPv6 = 0x04;

// VER NMETHODS METHODS: no-auth, plus user/password when credentials are given.
std::string greeting(const ProxyCredentials& creds);

// The server's method choice (exactly 2 bytes: VER METHOD). Returns the method, or
// parent_refused for 0xFF ("no acceptable authentication method", naming whether we offered
// credentials), parent_bad_response for VER != 5 or a method we did not offer.
Result<std::uint8_t> parse_method_choice(std::string_view reply, bool offered_user_pass);

// RFC 1929 request: VER=1 ULEN UNAME PLEN PASSWD. bad_parent_config if user or password is not
// 1..255 bytes (checked before anything is sent).
Result<std::string> user_pass_request(const ProxyCredentials& creds);

// RFC 1929 reply (exactly 2 bytes: VER STATUS). STATUS 0 = success; anything else is
// parent_refused ("rejected our credentials"). VER 1 is the RFC; 5 is accepted from sloppy servers.
Result<void> parse_user_pass_reply(std::string_view reply);

// CONNECT request: ATYP 1/4 for IPv4/IPv6 literals (an IPv6 host may come in brackets), ATYP 3
// with the name otherwise (never resolved locally). bad_parent_config for an empty name or one
// over 255 bytes.
Result<std::string> connect_request(std::string_view host, std::uint16_t port);

// The reply to CONNECT: VER REP RSV ATYP BND.ADDR BND.PORT, read incrementally.
struct Reply {
  // Bytes the whole reply takes. Until 5 bytes are in this is 5 (every reply has at least 7,
  // so reading up to `needed` never consumes a tunnel byte); then the exact total.
  std::size_t needed = 5;
  bool has_rep = false;   // at least 2 bytes are in: rep is valid (fail fast on REP != 0)
  std::uint8_t rep = 0;
  bool complete = false;  // all `needed` bytes are in: bound is valid
  std::string bound;      // "10.0.0.1:4000", "[::1]:80", "name:80"
};

// Parses what has arrived so far (`have` must not extend past `needed`). parent_bad_response for
// VER != 5, RSV != 0 or an unknown ATYP (only checked while REP == 0: a failure reply may carry
// junk in its address fields).
Result<Reply> parse_reply(std::string_view have);

// "general failure", "connection not allowed by ruleset", ... "address type not supported";
// "unassigned reply code" for others.
const char* reply_message(std::uint8_t rep) noexcept;

// parent_refused for a REP != 0: "socks5://h:1080, SOCKS5 CONNECT example.com:443: the parent
// answered host unreachable (REP 4)".
Error refusal(std::uint8_t rep, std::string_view hop, std::string_view target);

}  // namespace socks5

// ---- async handshakes ---------------------------------------------------------------------------

// Sends CONNECT host:port (with Proxy-Authorization when creds are not empty) and reads the
// parent's response head. On success returns the tunnel bytes that came after the head (usually
// empty); the caller must send them on before reading the socket again. A host holding control
// bytes, spaces or '/?#@' is refused before sending (bad_authority, 400): no request-line injection.
net::awaitable<Result<std::string>> http_connect(net::Stream& sock, std::string_view host, std::uint16_t port,
                                                 const ProxyCredentials& creds, net::Clock::duration timeout,
                                                 std::string_view hop);

// SOCKS5 greeting, optional RFC 1929 authentication, CONNECT. Reads exactly the parent's replies,
// never a tunnel byte.
net::awaitable<Result<void>> socks5_connect(net::Stream& sock, std::string_view host, std::uint16_t port,
                                            const ProxyCredentials& creds, net::Clock::duration timeout,
                                            std::string_view hop);

}  // namespace portier::upstream

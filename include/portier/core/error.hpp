#pragma once
// Errors are values on the data path: every failure carries the side that caused it (which decides
// between a 4xx and a 5xx answer and how it is logged) and a short human context.
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace portier {

enum class errc {
  ok = 0,
  // downstream (client) faults
  bad_request,
  header_too_large,
  uri_too_long,
  too_many_headers,
  request_timeout,
  not_a_proxy_request,
  bad_authority,
  client_closed,
  no_route,            // reverse: no route for the request's host and path (404)
  method_not_allowed,  // reverse: CONNECT to a reverse listener (405)
  // policy
  port_not_allowed,
  destination_forbidden,
  // upstream faults
  name_not_resolved,
  connect_refused,
  host_unreachable,
  connect_timeout,
  upstream_timeout,
  upstream_bad_response,
  upstream_closed,
  // parent proxies (hops of a chain)
  parent_refused,       // non-2xx to CONNECT, SOCKS5 REP != 0, no acceptable auth method
  parent_bad_response,  // the parent does not speak the protocol (garbage, oversized head)
  bad_parent_config,    // credentials / host a parent protocol cannot carry (SOCKS5 lengths)
  tls_failed,           // a TLS handshake failed (certificate not verified, no common protocol, ...)
  no_exit,              // egress: no healthy exit in the region and its fallbacks (or a strict session's exit is down)
  no_backend,           // reverse: no healthy backend in the route's pool (503)
  // process
  shutting_down,
  internal,
};

const std::error_category& portier_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

// Who is to blame: chooses 4xx (downstream) or 5xx (upstream/internal) and the log wording.
enum class Side { downstream, upstream, internal };
const char* side_name(Side s) noexcept;

struct Error {
  std::error_code code;
  Side side = Side::internal;
  std::string context;

  Error() = default;
  Error(errc e, Side s, std::string ctx = {}) : code(make_error_code(e)), side(s), context(std::move(ctx)) {}
  Error(std::error_code c, Side s, std::string ctx = {}) : code(c), side(s), context(std::move(ctx)) {}

  bool is(errc e) const noexcept { return code == make_error_code(e); }
  // "connect_refused: 127.0.0.1:9 (Connection refused)"
  std::string describe() const;
};

// The HTTP status a proxy answers for an error (400, 408, 414, 431, 403, 502, 504, 500...).
int status_for(const Error& e) noexcept;
// Stable snake_case name of an error for logs ("connect_refused"); system errors give their message.
std::string error_name(const Error& e);

// A small std::expected stand-in (g++ 12 has no <expected>).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const& { return std::get<1>(v_); }
  Error&& error() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}
  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return !failed_; }
  const Error& error() const& { return error_; }
  Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace portier

template <>
struct std::is_error_code_enum<portier::errc> : std::true_type {};

#pragma once
// Request targets (RFC 9112 §3.2): which form a request uses, and the parts of absolute-form URLs
// and CONNECT authorities. Hosts come out lowercased, IPv6 literals without brackets.
#include <cstdint>
#include <string>
#include <string_view>

#include "portier/core/error.hpp"

namespace portier::http {

enum class TargetForm { origin, absolute, authority, asterisk, invalid };

// CONNECT -> authority (if it parses as one); "*" -> asterisk; "/..." -> origin; "scheme://" -> absolute.
TargetForm classify_target(std::string_view method, std::string_view target) noexcept;

struct Authority {
  std::string host;  // lowercased; IPv6 without brackets
  std::uint16_t port = 0;
  bool host_is_ipv6 = false;
  std::string to_string() const;  // "example.com:443", "[::1]:443"
};

// A CONNECT authority: "host:port" or "[v6]:port"; port 1..65535 required; host must be a valid
// DNS name (letters, digits, '-', '.', '_') or an IP literal. No userinfo. Errors: bad_authority.
Result<Authority> parse_authority(std::string_view text);

struct AbsoluteUrl {
  std::string scheme;    // lowercased: "http" (https is accepted by the parser; the session decides)
  Authority authority;   // port defaults from the scheme (80/443) when absent
  std::string path;      // "/" when empty; never includes the query
  std::string query;     // without '?'; empty when absent
  bool has_query = false;
  // "/path?query" as sent to an origin.
  std::string origin_form() const;
};

// "http://host[:port]/path?query#frag" (fragment dropped). Userinfo is rejected (bad_request).
Result<AbsoluteUrl> parse_absolute_url(std::string_view text);

}  // namespace portier::http

#include "portier/http/target.hpp"

#include <optional>

#include "portier/core/ip.hpp"
#include "portier/http/headers.hpp"

namespace portier::http {
namespace {

constexpr std::size_t kMaxHostBytes = 253;
constexpr std::size_t kMaxLabelBytes = 63;

constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), followed by "://". Returns the scheme length or 0.
std::size_t scheme_length(std::string_view target) noexcept {
  if (target.empty() || !is_alpha(target[0])) return 0;
  std::size_t i = 1;
  while (i < target.size() && (is_alpha(target[i]) || is_digit(target[i]) || target[i] == '+' || target[i] == '-' ||
                               target[i] == '.')) {
    ++i;
  }
  if (target.substr(i, 3) != "://") return 0;
  return i;
}

// 1..65535, digits only.
std::optional<std::uint16_t> parse_port(std::string_view s) noexcept {
  if (s.empty() || s.size() > 5) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// A DNS name (letters, digits, '-', '_', '.'; no empty label except one trailing dot) or a dotted-quad
// IPv4 literal. A name whose last label is numeric must be a valid IPv4 literal: resolvers read
// "127.1" or "0x7f.1" as addresses, so they are refused rather than guessed at.
bool valid_reg_name(std::string_view host) noexcept {
  if (host.empty() || host.size() > kMaxHostBytes) return false;
  std::string_view name = host;
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::size_t label_len = 0;
  std::size_t last_label_start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label_len == 0) return false;
      label_len = 0;
      last_label_start = i + 1;
      continue;
    }
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return false;
    if (++label_len > kMaxLabelBytes) return false;
  }
  if (label_len == 0) return false;
  const std::string_view last = name.substr(last_label_start);
  bool numeric = true;
  for (char c : last) numeric = numeric && is_digit(c);
  const bool hexish = last.size() > 1 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X');
  if (numeric || hexish) {
    auto ip = IpAddress::parse(name);
    return ip.has_value() && ip->v4 && name.find(':') == std::string_view::npos;
  }
  return true;
}

// "host[:port]" or "[v6][:port]". When the port is absent or empty, `default_port` is used; a
// default of 0 means the port is required.
Result<Authority> parse_host_port(std::string_view text, std::uint16_t default_port) {
  auto fail = [&](const char* why) {
    return Error(errc::bad_authority, Side::downstream, std::string(why) + ": \"" + std::string(text) + "\"");
  };
  if (text.empty()) return fail("empty authority");
  if (text.find('@') != std::string_view::npos) return fail("userinfo not allowed");

  Authority a;
  std::string_view host;
  std::string_view rest;  // ":port" or empty
  if (text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return fail("unterminated IPv6 literal");
    host = text.substr(1, close - 1);
    rest = text.substr(close + 1);
    if (host.find(':') == std::string_view::npos || host.find('%') != std::string_view::npos ||
        !IpAddress::parse(host)) {
      return fail("invalid IPv6 literal");
    }
    a.host_is_ipv6 = true;
  } else {
    const std::size_t colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
      return fail("IPv6 literal must be in brackets");
    }
    host = text.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view{} : text.substr(colon);
    if (host.empty()) return fail("empty host");
    if (!valid_reg_name(host)) return fail("invalid host");
  }

  if (rest.empty() || rest == ":") {
    if (default_port == 0) return fail("missing port");
    a.port = default_port;
  } else {
    if (rest.front() != ':') return fail("invalid authority");
    auto port = parse_port(rest.substr(1));
    if (!port) return fail("invalid port");
    a.port = *port;
  }
  a.host = to_lower(host);
  return a;
}

// Request-target bytes: visible ASCII only (no controls, spaces, DEL or non-ASCII).
bool visible_ascii(std::string_view s) noexcept {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

TargetForm classify_target(std::string_view method, std::string_view target) noexcept {
  if (target.empty()) return TargetForm::invalid;
  if (method == "CONNECT") {
    auto a = parse_authority(target);
    return a ? TargetForm::authority : TargetForm::invalid;
  }
  if (target == "*") return TargetForm::asterisk;
  if (target.front() == '/') return TargetForm::origin;
  if (scheme_length(target) > 0) return TargetForm::absolute;
  return TargetForm::invalid;
}

std::string Authority::to_string() const {
  std::string out;
  out.reserve(host.size() + 8);
  if (host_is_ipv6) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

Result<Authority> parse_authority(std::string_view text) { return parse_host_port(text, 0); }

std::string AbsoluteUrl::origin_form() const {
  std::string out;
  out.reserve(path.size() + query.size() + 1);
  out += path;
  if (has_query) {
    out += '?';
    out += query;
  }
  return out;
}

Result<AbsoluteUrl> parse_absolute_url(std::string_view text) {
  auto fail = [&](std::string why) {
    return Error(errc::bad_request, Side::downstream, std::move(why) + ": \"" + std::string(text) + "\"");
  };
  if (!visible_ascii(text)) return fail("invalid character in URL");
  const std::size_t slen = scheme_length(text);
  if (slen == 0) return fail("not an absolute URL");

  AbsoluteUrl url;
  url.scheme = to_lower(text.substr(0, slen));
  std::uint16_t default_port = 0;
  if (url.scheme == "http") {
    default_port = 80;
  } else if (url.scheme == "https") {
    default_port = 443;
  } else {
    return fail("unsupported scheme");
  }

  std::string_view rest = text.substr(slen + 3);
  const std::size_t fragment = rest.find('#');
  if (fragment != std::string_view::npos) rest = rest.substr(0, fragment);
  const std::size_t auth_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, auth_end);
  rest = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);

  if (authority.find('@') != std::string_view::npos) return fail("userinfo not allowed in URL");
  auto a = parse_host_port(authority, default_port);
  if (!a) return Error(errc::bad_request, Side::downstream, "bad URL authority: " + a.error().context);
  url.authority = std::move(a.value());

  const std::size_t q = rest.find('?');
  const std::string_view path = rest.substr(0, q);
  url.path = path.empty() ? std::string("/") : std::string(path);
  if (q != std::string_view::npos) {
    url.has_query = true;
    url.query = std::string(rest.substr(q + 1));
  }
  return url;
}

}  // namespace portier::http

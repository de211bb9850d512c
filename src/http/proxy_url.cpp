#include "portier/http/proxy_url.hpp"

namespace portier::http {
namespace {

Error bad(std::string why) { return Error{errc::bad_request, Side::internal, std::move(why)}; }

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of the userinfo parts; a '%' not followed by two hex digits is an error, and
// so is a decoded control character (it could end a header line).
Result<std::string> decode(std::string_view s, const char* what) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return bad(std::string("bad percent-escape in the ") + what);
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad(std::string("control character in the ") + what);
    out.push_back(c);
  }
  return out;
}

}  // namespace

const char* proxy_scheme_name(ProxyScheme s) noexcept {
  switch (s) {
    case ProxyScheme::http: return "http";
    case ProxyScheme::https: return "https";
    case ProxyScheme::socks5: return "socks5";
  }
  return "?";
}

std::string ProxyUrl::label() const { return std::string(proxy_scheme_name(scheme)) + "://" + authority.to_string(); }

Result<ProxyUrl> parse_proxy_url(std::string_view text) {
  ProxyUrl u;
  auto sep = text.find("://");
  if (sep == std::string_view::npos) return bad("expected scheme://host:port, e.g. http://parent.example:3128");
  std::string scheme(text.substr(0, sep));
  for (auto& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (scheme == "http") {
    u.scheme = ProxyScheme::http;
  } else if (scheme == "https") {
    u.scheme = ProxyScheme::https;
  } else if (scheme == "socks5" || scheme == "socks5h") {
    u.scheme = ProxyScheme::socks5;  // names always go to the parent, so socks5h means the same
  } else {
    return bad("unsupported scheme \"" + scheme + "\": use http://, https:// or socks5://");
  }
  std::string_view rest = text.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#") != std::string_view::npos) return bad("a proxy URL has no path, query or fragment");
  // The password may contain '@' only percent-encoded; the last '@' ends the userinfo.
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    auto user = decode(userinfo.substr(0, colon), "user name");
    if (!user) return std::move(user).error();
    if (user->empty()) return bad("empty user name before '@'");
    u.user = std::move(*user);
    if (colon != std::string_view::npos) {
      auto password = decode(userinfo.substr(colon + 1), "password");
      if (!password) return std::move(password).error();
      u.password = std::move(*password);
    }
    if (u.user.size() > 255 || u.password.size() > 255) return bad("user name and password are limited to 255 bytes");
  }
  auto authority = parse_authority(rest);
  if (!authority) return bad("expected host:port after the scheme (the port is required)");
  u.authority = std::move(*authority);
  return u;
}

}  // namespace portier::http

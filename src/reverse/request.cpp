#include "portier/reverse/request.hpp"

#include <algorithm>
#include <vector>

namespace portier::reverse {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// RFC 7230 tchar: a Forwarded value made only of these needs no quotes.
bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (unreserved(c)) continue;
    switch (c) {
      case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '^': case '`': case '|':
        continue;
      default:
        return false;
    }
  }
  return true;
}

void append_value(std::string& out, std::string_view v) {
  if (is_token(v)) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace

namespace {

// Nothing to decode, merge or resolve: the common case, taken without building segments.
bool already_normal(std::string_view path) noexcept {
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%') return false;
    if (c == '/' && i + 1 < path.size() && (path[i + 1] == '/' || path[i + 1] == '.')) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> normalize_path(std::string_view path) {
  if (path.empty() || path.front() != '/') return std::nullopt;
  if (already_normal(path)) return std::string(path);
  // Decode what may be decoded, then resolve segments on the result.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) return std::nullopt;  // "%" or "%4" at the end
    const int hi = hex_value(path[i + 1]);
    const int lo = hex_value(path[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    const auto byte = static_cast<unsigned char>(hi * 16 + lo);
    if (byte == 0) return std::nullopt;
    if (unreserved(byte)) {
      decoded += static_cast<char>(byte);
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      decoded += '%';
      decoded += kHex[byte >> 4];
      decoded += kHex[byte & 0xf];
    }
    i += 2;
  }

  // Segments between slashes; empty ones (from "//") are dropped, "." skipped, ".." pops.
  std::vector<std::string_view> segments;
  std::string_view rest(decoded);
  bool trailing_slash = false;
  while (!rest.empty()) {
    rest.remove_prefix(1);  // the '/'
    const std::size_t end = rest.find('/');
    std::string_view seg = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    const bool last = rest.empty();
    if (seg.empty()) {
      if (last) trailing_slash = true;
      continue;
    }
    if (seg == ".") {
      if (last) trailing_slash = true;
      continue;
    }
    if (seg == "..") {
      if (segments.empty()) return std::nullopt;  // above the root
      segments.pop_back();
      if (last) trailing_slash = true;
      continue;
    }
    segments.push_back(seg);
    trailing_slash = false;
  }
  std::string out;
  out.reserve(decoded.size());
  for (auto seg : segments) {
    out += '/';
    out += seg;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out;
}

namespace {

// The fields apply_forwarded() owns: what an untrusted client sent in them is dropped.
bool is_forwarding_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 9: return http::iequals(name, "Forwarded");
    case 15: return http::iequals(name, "X-Forwarded-For");
    case 16: return http::iequals(name, "X-Forwarded-Host");
    case 17: return http::iequals(name, "X-Forwarded-Proto");
    default: return false;
  }
}

// Appends this hop's Forwarded element: for=...;proto=...[;host=...].
void append_forwarded_element(std::string& out, const ForwardedFacts& f) {
  out += "for=";
  if (f.client_ip.find(':') != std::string_view::npos) {  // IPv6: quoted, in brackets
    out += "\"[";
    out += f.client_ip;
    out += "]\"";
  } else {
    out += f.client_ip;
  }
  out += ";proto=";
  out += f.proto;
  if (!f.host.empty()) {
    out += ";host=";
    append_value(out, f.host);
  }
}

}  // namespace

void apply_forwarded(http::Headers& h, const ForwardedFacts& f) {
  if (f.trusted) {
    h.append_to_list("X-Forwarded-For", f.client_ip);
    if (!h.contains("X-Forwarded-Proto")) h.add("X-Forwarded-Proto", f.proto);
    if (!h.contains("X-Forwarded-Host") && !f.host.empty()) h.add("X-Forwarded-Host", f.host);
    // Like append_to_list("Forwarded", element), with the element written in place.
    http::Header* last = nullptr;
    for (http::Header& x : h) {
      if (http::iequals(x.name, "Forwarded")) last = &x;
    }
    if (last == nullptr) {
      last = &h.add_empty();
      last->name = "Forwarded";
    } else if (last->value.find_first_not_of(" \t") == std::string::npos) {
      last->value.clear();
    } else {
      last->value += ", ";
    }
    append_forwarded_element(last->value, f);
    return;
  }
  // Untrusted: one pass drops whatever the client claimed, then ours are added (a request pays
  // this on every reverse hop, and four set() calls would walk the fields eight times).
  h.remove_if([](const http::Header& x) { return is_forwarding_field(x.name); });
  h.add("X-Forwarded-For", f.client_ip);
  h.add("X-Forwarded-Proto", f.proto);
  if (!f.host.empty()) h.add("X-Forwarded-Host", f.host);
  http::Header& fwd = h.add_empty();
  fwd.name = "Forwarded";
  append_forwarded_element(fwd.value, f);
}

std::optional<std::string> websocket_upgrade(const http::Headers& h) {
  if (!h.has_token("Connection", "upgrade")) return std::nullopt;
  if (!h.has_token("Upgrade", "websocket")) return std::nullopt;
  return *h.find("Upgrade");
}

}  // namespace portier::reverse

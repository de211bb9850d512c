#include "portier/http/rewrite.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

namespace portier::http {
namespace {

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// The fixed hop-by-hop set (RFC 9110 §7.6.1 plus the proxy-auth pair and the legacy Proxy-Connection).
bool is_hop_by_hop(std::string_view name) noexcept {
  switch (name.size()) {
    case 2: return iequals(name, "TE");
    case 7: return iequals(name, "Trailer") || iequals(name, "Upgrade");
    case 10: return iequals(name, "Connection") || iequals(name, "Keep-Alive");
    case 16: return iequals(name, "Proxy-Connection");
    case 18: return iequals(name, "Proxy-Authenticate");
    case 19: return iequals(name, "Proxy-Authorization");
    default: return false;
  }
}

// Fields a Connection token may never remove: the caller owns framing and Host, and a client
// naming them ("Connection: Content-Length") must not make the proxy desynchronise the origin.
bool is_protected(std::string_view name) noexcept {
  return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Host");
}

std::size_t fields_size(const Headers& h) noexcept {
  std::size_t n = 0;
  for (const Header& f : h) n += f.name.size() + f.value.size() + 4;
  return n;
}

// Sized once, then written through a pointer: four appends per field would each check the
// capacity again (a head is written for every request and every response).
void append_fields(std::string& out, const Headers& h) {
  const std::size_t at = out.size();
  out.resize(at + fields_size(h));
  char* p = out.data() + at;
  for (const Header& f : h) {
    std::memcpy(p, f.name.data(), f.name.size());
    p += f.name.size();
    *p++ = ':';
    *p++ = ' ';
    std::memcpy(p, f.value.data(), f.value.size());
    p += f.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

}  // namespace

void strip_hop_by_hop(Headers& h) {
  // Tokens named by Connection, except the usual options that name no other field.
  std::vector<std::string> named;
  for (const Header& f : h) {
    if (!iequals(f.name, "Connection")) continue;
    std::string_view list = f.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      const std::string_view token = trim_ows(list.substr(0, comma));
      if (!token.empty() && !iequals(token, "close") && !iequals(token, "keep-alive") && !is_protected(token)) {
        named.emplace_back(token);
      }
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  h.remove_if([&](const Header& x) {
    if (is_hop_by_hop(x.name)) return true;
    for (const std::string& n : named) {
      if (iequals(x.name, n)) return true;
    }
    return false;
  });
}

void prepare_origin_request(RequestHead& head, const AbsoluteUrl& url, const ForwardOptions& opt) {
  head.target = url.origin_form();
  strip_hop_by_hop(head.headers);

  // Host from the URL, the port only when it is not the scheme's default.
  std::string host;
  const Authority& a = url.authority;
  host.reserve(a.host.size() + 8);
  if (a.host_is_ipv6) {
    host += '[';
    host += a.host;
    host += ']';
  } else {
    host += a.host;
  }
  const std::uint16_t default_port = url.scheme == "https" ? 443 : 80;
  if (a.port != default_port) {
    host += ':';
    host += std::to_string(a.port);
  }
  if (head.headers.contains("Host")) {
    head.headers.set("Host", host);
  } else {
    head.headers.add_first("Host", host);
  }

  if (!opt.via.empty()) head.headers.append_to_list("Via", opt.via);
  if (opt.x_forwarded_for && !opt.client_ip.empty()) head.headers.append_to_list("X-Forwarded-For", opt.client_ip);
}

void prepare_client_response(ResponseHead& head, const ForwardOptions& opt, bool client_keep_alive) {
  strip_hop_by_hop(head.headers);
  if (!opt.via.empty()) head.headers.append_to_list("Via", opt.via);
  if (!client_keep_alive) head.headers.add("Connection", "close");
}

void write_request_head(std::string& out, std::string_view method, std::string_view target, const Headers& h) {
  out.reserve(out.size() + method.size() + target.size() + 13 + fields_size(h) + 2);
  out.append(method);
  out += ' ';
  out.append(target);
  out.append(" HTTP/1.1\r\n");
  append_fields(out, h);
  out.append("\r\n");
}

void write_response_head(std::string& out, int status, std::string_view reason, const Headers& h) {
  if (reason.empty()) reason = reason_phrase(status);
  out.reserve(out.size() + 15 + reason.size() + fields_size(h) + 2);
  out.append("HTTP/1.1 ");
  char digits[8];
  const auto r = std::to_chars(digits, digits + sizeof digits, status);
  out.append(digits, r.ptr);
  out += ' ';
  out.append(reason);
  out.append("\r\n");
  append_fields(out, h);
  out.append("\r\n");
}

void write_chunk_size(std::string& out, std::size_t n) {
  char digits[2 * sizeof(std::size_t) + 2];
  const auto r = std::to_chars(digits, digits + sizeof digits, n, 16);
  out.append(digits, r.ptr);
  out.append("\r\n");
}

void write_last_chunk(std::string& out, const Headers& trailers) {
  out.append("0\r\n");
  append_fields(out, trailers);
  out.append("\r\n");
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 102: return "Processing";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 207: return "Multi-Status";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    default: return "";
  }
}

}  // namespace portier::http

#include "portier/upstream/handshake.hpp"

#include <array>
#include <chrono>

#include "portier/core/ip.hpp"

namespace portier::upstream {

namespace {

// A parent's reason phrase or header value for a log line: printable ASCII only, bounded.
std::string printable(std::string_view s, std::size_t max = 80) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

Error bad_response(std::string ctx) { return Error{errc::parent_bad_response, Side::upstream, std::move(ctx)}; }
Error refused(std::string ctx) { return Error{errc::parent_refused, Side::upstream, std::move(ctx)}; }
// The parent refused us (our credentials, or none where it wants some), not the target: the side is
// internal (the configured exit is to blame), so open_path counts it against the exit.
Error refused_us(std::string ctx) { return Error{errc::parent_refused, Side::internal, std::move(ctx)}; }
Error bad_config(std::string ctx) { return Error{errc::bad_parent_config, Side::internal, std::move(ctx)}; }

// Prefixes a codec error (whose context has no hop) with where it happened.
Error at(Error e, const std::string& where) {
  e.context = e.context.empty() ? where : where + ": " + e.context;
  return e;
}

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

// A host we put into a request line must not be able to add lines or fields of its own.
bool safe_host(std::string_view host) {
  if (host.empty()) return false;
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f || c == '/' || c == '?' || c == '#' || c == '@') return false;
  }
  return true;
}

std::string within(net::Clock::duration d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return "no answer within " + std::to_string(ms) + " ms";
}

std::string io_failure(const std::error_code& ec, std::string_view doing) {
  if (net::is_eof(ec)) return "the parent closed the connection " + std::string(doing);
  return std::string(doing) + " (" + ec.message() + ")";
}

// The whole handshake has one deadline.
template <class T>
net::awaitable<Result<T>> bounded(net::Stream& sock, net::awaitable<Result<T>> op, net::Clock::duration timeout,
                                  std::string where) {
  bool timed_out = false;
  auto r = co_await net::with_timeout(sock.socket(), timeout, std::move(op), timed_out);
  if (timed_out) co_return Error{errc::connect_timeout, Side::upstream, where + ": " + within(timeout)};
  co_return r;
}

net::awaitable<Result<void>> write_all(net::Stream& sock, std::string_view data, const std::string& where) {
  auto [ec, n] = co_await asio::async_write(sock, asio::buffer(data.data(), data.size()), net::nothrow);
  if (ec) co_return Error{errc::upstream_closed, Side::upstream, where + ": " + io_failure(ec, "while we sent our request")};
  co_return Result<void>{};
}

}  // namespace

// ---- HTTP CONNECT -------------------------------------------------------------------------------

std::string authority(std::string_view host, std::uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos && !(host.size() >= 2 && host.front() == '[')) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  out += ':';
  out += std::to_string(port);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                            static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string basic_proxy_authorization(const ProxyCredentials& creds) {
  return "Basic " + base64_encode(creds.user + ":" + creds.password);
}

std::string http_connect_request(std::string_view host, std::uint16_t port, const ProxyCredentials& creds) {
  const std::string target = authority(host, port);
  std::string out;
  out.reserve(64 + 2 * target.size());
  out += "CONNECT ";
  out += target;
  out += " HTTP/1.1\r\nHost: ";
  out += target;
  out += "\r\n";
  if (!creds.empty()) {
    out += "Proxy-Authorization: ";
    out += basic_proxy_authorization(creds);
    out += "\r\n";
  }
  out += "\r\n";
  return out;
}

ConnectResponseParser::ConnectResponseParser(std::size_t max_head_bytes)
    : parser_(http::Parser::Kind::response, http::Limits{max_head_bytes, 8192, 100}) {
  parser_.expect_connect_response(true);
}

Result<ConnectResponseParser::Progress> ConnectResponseParser::feed(std::string_view data) {
  if (complete_) return Progress{0, true};
  std::size_t off = 0;
  for (;;) {
    auto r = parser_.feed(data.substr(off));
    if (!r) {
      // The codec reports upstream_bad_response with the cause; for a parent it is ours.
      auto e = std::move(r).error();
      return bad_response(e.context.empty() ? std::string("not an HTTP response") : std::move(e.context));
    }
    off += r->consumed;
    switch (r->stop) {
      case http::Stop::need_more:
        return Progress{off, false};
      case http::Stop::upgrade:  // 2xx to CONNECT (or 101): the head ends the message
        complete_ = true;
        return Progress{off, true};
      case http::Stop::head:
        if (status() / 100 == 1) continue;  // 100/103...: the final response follows
        complete_ = true;                   // a refusal: its body is not ours to read
        return Progress{off, true};
      case http::Stop::message_complete:  // end of a 1xx
        continue;
    }
  }
}

Error connect_refusal(const ConnectResponseParser& response, bool sent_credentials, std::string_view hop,
                      std::string_view target) {
  std::string answer = std::to_string(response.status());
  if (!response.reason().empty()) answer += " " + printable(response.reason());
  std::string ctx = std::string(hop) + ", CONNECT " + printable(target, 300) + ": ";
  if (response.status() == 407) {
    ctx += "the parent proxy at " + std::string(hop) +
           (sent_credentials ? " rejected our credentials (" : " wants credentials (") + answer;
    if (const auto* challenge = response.headers().find("Proxy-Authenticate"))
      ctx += "; Proxy-Authenticate: " + printable(*challenge);
    ctx += ")";
    return refused_us(std::move(ctx));
  }
  ctx += "the parent answered " + answer;
  return refused(std::move(ctx));
}

// ---- SOCKS5 -------------------------------------------------------------------------------------

namespace socks5 {

std::string greeting(const ProxyCredentials& creds) {
  std::string out;
  out += static_cast<char>(kVersion);
  if (creds.empty()) {
    out += static_cast<char>(1);
    out += static_cast<char>(kMethodNoAuth);
  } else {
    out += static_cast<char>(2);
    out += static_cast<char>(kMethodNoAuth);
    out += static_cast<char>(kMethodUserPass);
  }
  return out;
}

Result<std::uint8_t> parse_method_choice(std::string_view reply, bool offered_user_pass) {
  if (reply.size() != 2) return bad_response("method choice of " + std::to_string(reply.size()) + " bytes");
  const auto ver = static_cast<std::uint8_t>(reply[0]);
  const auto method = static_cast<std::uint8_t>(reply[1]);
  if (ver != kVersion) return bad_response("not a SOCKS5 answer (version " + std::to_string(ver) + ")");
  if (method == kMethodNoneAcceptable) {
    return refused_us(offered_user_pass
                          ? "no acceptable authentication method (we offered none and user/password)"
                          : "no acceptable authentication method (we offered none: the parent wants credentials?)");
  }
  if (method == kMethodNoAuth || (method == kMethodUserPass && offered_user_pass)) return method;
  return bad_response("the parent chose authentication method " + std::to_string(method) + ", which we did not offer");
}

Result<std::string> user_pass_request(const ProxyCredentials& creds) {
  if (creds.user.empty() || creds.user.size() > 255)
    return bad_config("SOCKS5 user name must be 1..255 bytes, it is " + std::to_string(creds.user.size()));
  if (creds.password.empty() || creds.password.size() > 255)
    return bad_config("SOCKS5 password must be 1..255 bytes, it is " + std::to_string(creds.password.size()));
  std::string out;
  out.reserve(3 + creds.user.size() + creds.password.size());
  out += static_cast<char>(0x01);
  out += static_cast<char>(creds.user.size());
  out += creds.user;
  out += static_cast<char>(creds.password.size());
  out += creds.password;
  return out;
}

Result<void> parse_user_pass_reply(std::string_view reply) {
  if (reply.size() != 2) return bad_response("authentication reply of " + std::to_string(reply.size()) + " bytes");
  const auto ver = static_cast<std::uint8_t>(reply[0]);
  const auto status = static_cast<std::uint8_t>(reply[1]);
  if (ver != 0x01 && ver != kVersion)
    return bad_response("not a SOCKS5 user/password answer (version " + std::to_string(ver) + ")");
  if (status != 0) return refused_us("the parent rejected our credentials (status " + std::to_string(status) + ")");
  return Result<void>{};
}

Result<std::string> connect_request(std::string_view host, std::uint16_t port) {
  std::string out;
  out += static_cast<char>(kVersion);
  out += static_cast<char>(kCmdConnect);
  out += static_cast<char>(0x00);
  const std::string_view bare = strip_brackets(host);
  if (auto ip = IpAddress::parse(bare)) {
    if (ip->v4) {
      out += static_cast<char>(kAtypIPv4);
      out.append(reinterpret_cast<const char*>(ip->bytes.data()) + 12, 4);
    } else {
      out += static_cast<char>(kAtypIPv6);
      out.append(reinterpret_cast<const char*>(ip->bytes.data()), 16);
    }
  } else {
    if (host.empty() || host.size() > 255)
      return bad_config("SOCKS5 host names must be 1..255 bytes, this one is " + std::to_string(host.size()));
    out += static_cast<char>(kAtypDomain);
    out += static_cast<char>(host.size());
    out += host;
  }
  out += static_cast<char>(port >> 8);
  out += static_cast<char>(port & 0xff);
  return out;
}

Result<Reply> parse_reply(std::string_view have) {
  Reply r;
  if (have.empty()) return r;
  const auto ver = static_cast<std::uint8_t>(have[0]);
  if (ver != kVersion) return bad_response("not a SOCKS5 reply (version " + std::to_string(ver) + ")");
  if (have.size() < 2) return r;
  r.has_rep = true;
  r.rep = static_cast<std::uint8_t>(have[1]);
  if (have.size() < 5) return r;
  const auto rsv = static_cast<std::uint8_t>(have[2]);
  const auto atyp = static_cast<std::uint8_t>(have[3]);
  switch (atyp) {
    case kAtypIPv4: r.needed = 4 + 4 + 2; break;
    case kAtypIPv6: r.needed = 4 + 16 + 2; break;
    case kAtypDomain: r.needed = 4 + 1 + static_cast<std::uint8_t>(have[4]) + 2; break;
    default:
      if (r.rep != 0) {  // a failure: whatever follows is not worth reading
        r.needed = have.size();
        r.complete = true;
        return r;
      }
      return bad_response("SOCKS5 reply with unknown address type " + std::to_string(atyp));
  }
  if (r.rep == 0 && rsv != 0) return bad_response("SOCKS5 reply with reserved byte " + std::to_string(rsv));
  if (have.size() > r.needed) return bad_response("SOCKS5 reply longer than its address");
  if (have.size() < r.needed) return r;
  r.complete = true;
  const auto* p = reinterpret_cast<const unsigned char*>(have.data());
  const std::uint16_t port = static_cast<std::uint16_t>(p[r.needed - 2] << 8 | p[r.needed - 1]);
  std::string host;
  if (atyp == kAtypIPv4) {
    host = IpAddress::from_v4(static_cast<std::uint32_t>(p[4]) << 24 | static_cast<std::uint32_t>(p[5]) << 16 |
                              static_cast<std::uint32_t>(p[6]) << 8 | p[7])
               .to_string();
  } else if (atyp == kAtypIPv6) {
    std::array<std::uint8_t, 16> b;
    for (std::size_t i = 0; i < 16; ++i) b[i] = p[4 + i];
    host = IpAddress::from_v6(b).to_string();
  } else {
    host = printable(have.substr(5, p[4]), 255);
  }
  r.bound = authority(host, port);
  return r;
}

const char* reply_message(std::uint8_t rep) noexcept {
  switch (rep) {
    case 0x00: return "succeeded";
    case 0x01: return "general failure";
    case 0x02: return "connection not allowed by ruleset";
    case 0x03: return "network unreachable";
    case 0x04: return "host unreachable";
    case 0x05: return "connection refused";
    case 0x06: return "TTL expired";
    case 0x07: return "command not supported";
    case 0x08: return "address type not supported";
  }
  return "unassigned reply code";
}

Error refusal(std::uint8_t rep, std::string_view hop, std::string_view target) {
  return refused(std::string(hop) + ", SOCKS5 CONNECT " + printable(target, 300) + ": the parent answered " +
                 reply_message(rep) + " (REP " + std::to_string(rep) + ")");
}

}  // namespace socks5

// ---- async handshakes ---------------------------------------------------------------------------

namespace {

net::awaitable<Result<std::string>> http_connect_steps(net::Stream& sock, std::string_view host,
                                                       std::uint16_t port, const ProxyCredentials& creds,
                                                       const std::string& target, const std::string& where,
                                                       std::string_view hop) {
  const std::string request = http_connect_request(host, port, creds);
  if (auto w = co_await write_all(sock, request, where); !w) co_return std::move(w).error();

  ConnectResponseParser parser;
  std::array<char, 4096> buf;
  bool started = false;
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), net::nothrow);
    if (ec) {
      co_return Error{errc::upstream_closed, Side::upstream,
                      where + ": " + io_failure(ec, started ? "in the middle of its answer" : "before answering")};
    }
    started = true;
    const std::string_view data(buf.data(), n);
    auto p = parser.feed(data);
    if (!p) co_return at(std::move(p).error(), where);
    if (!p->complete) continue;
    if (!parser.tunnel_open()) co_return connect_refusal(parser, !creds.empty(), hop, target);
    co_return std::string(data.substr(p->consumed));
  }
}

// Reads exactly n bytes into out (appending).
net::awaitable<Result<void>> read_exactly(net::Stream& sock, std::string& out, std::size_t n,
                                          const std::string& where, std::string_view what) {
  const std::size_t old = out.size();
  out.resize(old + n);
  auto [ec, got] = co_await asio::async_read(sock, asio::buffer(out.data() + old, n), net::nothrow);
  out.resize(old + got);
  if (ec) co_return Error{errc::upstream_closed, Side::upstream, where + ": " + io_failure(ec, what)};
  co_return Result<void>{};
}

net::awaitable<Result<void>> socks5_steps(net::Stream& sock, std::string_view host, std::uint16_t port,
                                          const ProxyCredentials& creds, const std::string& target,
                                          const std::string& where, std::string_view hop) {
  // Check everything we will send before the first byte goes out.
  auto connect = socks5::connect_request(host, port);
  if (!connect) co_return at(std::move(connect).error(), where);
  std::string auth;
  if (!creds.empty()) {
    auto a = socks5::user_pass_request(creds);
    if (!a) co_return at(std::move(a).error(), where);
    auth = std::move(*a);
  }

  if (auto w = co_await write_all(sock, socks5::greeting(creds), where); !w) co_return std::move(w).error();
  std::string reply;
  if (auto r = co_await read_exactly(sock, reply, 2, where, "before choosing an authentication method"); !r)
    co_return std::move(r).error();
  auto method = socks5::parse_method_choice(reply, !creds.empty());
  if (!method) co_return at(std::move(method).error(), where);

  if (*method == socks5::kMethodUserPass) {
    if (auto w = co_await write_all(sock, auth, where); !w) co_return std::move(w).error();
    reply.clear();
    if (auto r = co_await read_exactly(sock, reply, 2, where, "before answering our credentials"); !r)
      co_return std::move(r).error();
    if (auto ok = socks5::parse_user_pass_reply(reply); !ok) co_return at(std::move(ok).error(), where);
  }

  if (auto w = co_await write_all(sock, *connect, where); !w) co_return std::move(w).error();
  // Read the reply piece by piece, never more than it still needs: what follows is the tunnel.
  reply.clear();
  std::array<char, 262> buf;  // the longest reply: 4 + 1 + 255 + 2
  for (;;) {
    auto parsed = socks5::parse_reply(reply);
    if (!parsed) co_return at(std::move(parsed).error(), where);
    if (parsed->has_rep && parsed->rep != 0) co_return socks5::refusal(parsed->rep, hop, target);
    if (parsed->complete) co_return Result<void>{};
    const std::size_t want = parsed->needed - reply.size();
    auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf.data(), want), net::nothrow);
    if (ec) {
      co_return Error{errc::upstream_closed, Side::upstream,
                      where + ": " + io_failure(ec, reply.empty() ? "before answering CONNECT"
                                                                  : "in the middle of its CONNECT reply")};
    }
    reply.append(buf.data(), n);
  }
}

}  // namespace

net::awaitable<Result<std::string>> http_connect(net::Stream& sock, std::string_view host, std::uint16_t port,
                                                 const ProxyCredentials& creds, net::Clock::duration timeout,
                                                 std::string_view hop) {
  const std::string target = authority(host, port);
  const std::string where = std::string(hop) + ", CONNECT " + printable(target, 300);
  if (!safe_host(strip_brackets(host)))
    co_return Error{errc::bad_authority, Side::downstream, where + ": host is empty or holds bytes a request line cannot carry"};
  co_return co_await bounded(sock, http_connect_steps(sock, host, port, creds, target, where, hop), timeout, where);
}

net::awaitable<Result<void>> socks5_connect(net::Stream& sock, std::string_view host, std::uint16_t port,
                                            const ProxyCredentials& creds, net::Clock::duration timeout,
                                            std::string_view hop) {
  const std::string target = authority(host, port);
  const std::string where = std::string(hop) + ", SOCKS5 CONNECT " + printable(target, 300);
  co_return co_await bounded(sock, socks5_steps(sock, host, port, creds, target, where, hop), timeout, where);
}

}  // namespace portier::upstream

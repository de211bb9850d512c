#include "portier/net/stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "portier/core/ip.hpp"

namespace portier::net {

Stream::Stream(tcp::socket socket) : layer_(std::move(socket)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

tcp::socket& Stream::socket() noexcept {
  if (auto* s = std::get_if<tcp::socket>(&layer_)) return *s;
  if (auto* t = std::get_if<std::unique_ptr<TlsOverTcp>>(&layer_)) return (*t)->socket();
  return std::get<std::unique_ptr<TlsInTls>>(layer_)->inner.socket();
}

detail::RecvOutcome detail::recv_reporting_drain(int fd, asio::mutable_buffer b, int flags, std::error_code& ec,
                                                 std::size_t& n) noexcept {
  iovec iov{b.data(), b.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  for (;;) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &msg, flags);
    if (got < 0) {
      n = 0;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ec = asio::error::would_block;
        return RecvOutcome::would_block;
      }
      ec = std::error_code(errno, asio::error::get_system_category());
      return RecvOutcome::unknown;
    }
    n = static_cast<std::size_t>(got);
    if (got == 0 && b.size() != 0) {
      ec = asio::error::eof;
      return RecvOutcome::drained;
    }
    ec.clear();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        int left = 0;
        std::memcpy(&left, CMSG_DATA(c), sizeof left);
        return left == 0 ? RecvOutcome::drained : RecvOutcome::more;
      }
    }
    return RecvOutcome::unknown;  // no count: TCP_INQ not set
  }
}

bool Stream::write_now(std::string_view& a, std::string_view& b, std::error_code& ec) {
  if (auto* t = std::get_if<std::unique_ptr<TlsOverTcp>>(&layer_)) return (*t)->write_now(a, b, ec);
  auto* s = std::get_if<tcp::socket>(&layer_);
  if (s == nullptr) return false;
  ec.clear();
  while (!a.empty() || !b.empty()) {
    iovec iov[2];
    int count = 0;
    for (std::string_view* v : {&a, &b}) {
      if (v->empty()) continue;
      iov[count].iov_base = const_cast<char*>(v->data());
      iov[count].iov_len = v->size();
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t sent = ::sendmsg(s->native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      ec = std::error_code(errno, asio::error::get_system_category());
      return true;
    }
    detail::drop_front(a, b, static_cast<std::size_t>(sent));
  }
  return true;
}

namespace {

// OpenSSL's reason for the last failure on `ssl`: the certificate check when that failed, else
// the error queue's first entry, else Asio's message.
std::string tls_reason(SSL* ssl, const std::error_code& ec) {
  if (ssl != nullptr) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) return std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  if (const unsigned long e = ERR_peek_last_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
  }
  return ec.message();
}

std::string ms(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

awaitable<Result<void>> Stream::start_tls_client(SSL_CTX* ctx, const TlsClientOptions& options,
                                                 Clock::duration timeout, std::string_view where) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr)
    co_return Error{errc::tls_failed, Side::internal, std::string(where) + ": " + tls_reason(nullptr, {})};
  // SNI only for names (RFC 6066 forbids literals); the certificate must name what we dialled.
  std::string host = options.name;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const bool literal = IpAddress::parse(host).has_value();
  if (!literal && !host.empty()) SSL_set_tlsext_host_name(ssl, host.c_str());
  if (options.verify) {
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    if (literal) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    } else {
      SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl, host.c_str());
    }
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  }

  // The stream takes ownership of `ssl` from here on.
  if (plain()) {
    layer_ = std::make_unique<TlsOverTcp>(std::move(std::get<tcp::socket>(layer_)), ssl);
    if (!std::get<std::unique_ptr<TlsOverTcp>>(layer_)->ok())
      co_return Error{errc::tls_failed, Side::internal, std::string(where) + ": cannot attach TLS to the socket"};
  } else {
    auto nested = std::make_unique<TlsInTls>(Stream(std::move(*this)), ssl);
    layer_ = std::move(nested);
  }

  auto handshake = [this]() -> awaitable<std::error_code> {
    auto [e] = co_await on_tls([](auto& tls) { return tls.async_handshake(asio::ssl::stream_base::client, nothrow); });
    co_return e;
  };
  bool timed_out = false;
  const std::error_code ec = co_await with_timeout(socket(), timeout, handshake(), timed_out);
  if (timed_out)
    co_return Error{errc::connect_timeout, Side::upstream, std::string(where) + ": TLS handshake: no answer within " + ms(timeout)};
  if (ec) {
    SSL* native = on_tls([](auto& tls) { return tls.native_handle(); });
    co_return Error{errc::tls_failed, Side::upstream, std::string(where) + ": TLS handshake: " + tls_reason(native, ec)};
  }
  co_return Result<void>{};
}

awaitable<Result<void>> Stream::start_tls_server(SSL_CTX* ctx) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) co_return Error{errc::tls_failed, Side::internal, tls_reason(nullptr, {})};
  if (!plain()) {
    SSL_free(ssl);
    co_return Error{errc::internal, Side::internal, "TLS server over TLS"};
  }
  // In place before the handshake: whoever cancels socket() (the session's deadline) reaches it.
  layer_ = std::make_unique<TlsOverTcp>(std::move(std::get<tcp::socket>(layer_)), ssl);
  auto& tls = *std::get<std::unique_ptr<TlsOverTcp>>(layer_);
  if (!tls.ok()) co_return Error{errc::tls_failed, Side::internal, "cannot attach TLS to the socket"};
  auto [ec] = co_await tls.async_handshake(asio::ssl::stream_base::server, nothrow);
  std::string reason = ec ? tls_reason(nullptr, ec) : std::string();
  if (ec) co_return Error{errc::tls_failed, Side::downstream, "TLS handshake: " + reason};
  co_return Result<void>{};
}

awaitable<void> Stream::shutdown_tls(Clock::duration timeout) {
  if (plain()) co_return;
  auto shutdown = [this]() -> awaitable<int> {
    co_await on_tls([](auto& tls) { return tls.async_shutdown(nothrow); });
    co_return 0;
  };
  bool timed_out = false;
  co_await with_timeout(socket(), timeout, shutdown(), timed_out);
}

}  // namespace portier::net

#include "portier/net/tls_socket.hpp"

#include <openssl/err.h>

#include <cerrno>

#include <asio/ssl/error.hpp>

namespace portier::net {

TlsSocket::TlsSocket(tcp::socket socket, SSL* ssl) : socket_(std::move(socket)), ssl_(ssl) {
  std::error_code ec;
  socket_.native_non_blocking(true, ec);  // OpenSSL's recv/send must meet EAGAIN, never block the thread
  // As asio::ssl::stream set them: SSL_write returns after a record, like a socket's write_some;
  // a retried write may pass its bytes from another address (write_hold_); idle connections
  // give their record buffers back.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  // One recv(2) takes what the kernel has, not a record header and then its body in two calls.
  // Bytes read ahead stay inside OpenSSL; every operation calls OpenSSL before it waits, so they
  // are found without a readiness event.
  SSL_set_read_ahead(ssl_, 1);
  if (ec) return;
  // OpenSSL writes through its own socket BIO and reads through ours (bio_read), which learns
  // from each read whether the socket is left empty. Both leave the descriptor to socket_.
  BIO* rbio = BIO_new(read_bio_method());
  BIO* wbio = BIO_new_socket(socket_.native_handle(), BIO_NOCLOSE);
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    return;
  }
  BIO_set_data(rbio, this);
  BIO_set_init(rbio, 1);
  SSL_set0_rbio(ssl_, rbio);
  SSL_set0_wbio(ssl_, wbio);
  ok_ = true;
}

// A draining read of the socket (drain_read.hpp) in the shape of a BIO read.
int TlsSocket::bio_read(BIO* bio, char* data, int size) {
  auto* self = static_cast<TlsSocket*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (size <= 0) return 0;
  std::error_code ec;
  std::size_t n = 0;
  const auto r = detail::recv_reporting_drain(self->socket_.native_handle(),
                                              asio::mutable_buffer(data, static_cast<std::size_t>(size)), 0, ec, n);
  switch (r) {
    case detail::RecvOutcome::would_block:
      self->socket_input_ = Left::nothing;
      BIO_set_retry_read(bio);
      errno = EAGAIN;
      return -1;
    case detail::RecvOutcome::drained:
      self->socket_input_ = ec ? Left::unknown : Left::nothing;
      break;
    case detail::RecvOutcome::more:
      self->socket_input_ = Left::something;
      break;
    case detail::RecvOutcome::unknown:
      self->socket_input_ = Left::unknown;
      break;
  }
  if (ec == asio::error::eof) return 0;
  if (ec) {
    errno = ec.value();
    return -1;
  }
  return static_cast<int>(n);
}

BIO_METHOD* TlsSocket::read_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "portier socket read");
    if (m == nullptr) return m;
    BIO_meth_set_read(m, &TlsSocket::bio_read);
    BIO_meth_set_ctrl(m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    return m;
  }();
  return method;
}

TlsSocket::~TlsSocket() { SSL_free(ssl_); }  // the socket BIO does not own the descriptor: socket_ closes it

char* TlsSocket::gather_buffer() {
  thread_local std::unique_ptr<char[]> buf(new char[kGather]);
  return buf.get();
}

bool TlsSocket::write_now(std::string_view& a, std::string_view& b, std::error_code& ec) {
  if (write_hold_) return false;  // a write operation is waiting: it goes first
  ec.clear();
  while (!a.empty() || !b.empty()) {
    detail::TlsWriteSource src;
    for (std::string_view v : {a, b})
      if (!v.empty()) src.parts[src.count++] = asio::const_buffer(v.data(), v.size());
    bool gathered = false;
    const asio::const_buffer first = detail::first_write(src, gathered);
    const Step r = write_step(first.data(), first.size());
    if (r.want != Want::nothing) return false;  // the operation passes the same bytes again
    if (r.ec) {
      ec = r.ec;
      return true;
    }
    detail::drop_front(a, b, r.n);
  }
  return true;
}

const void* TlsSocket::hold_write(const void* data, std::size_t size) {
  write_hold_.reset(new char[size]);
  std::memcpy(write_hold_.get(), data, size);
  return write_hold_.get();
}

namespace {

// Each call starts with an empty error queue (the thread's, shared by all its connections) and
// errno 0, so that SSL_get_error() and the mapping below see only this call's failure. The queue
// is nearly always empty already, and ERR_clear_error() rewrites all its slots: peek first.
void clear_errors() noexcept {
  if (ERR_peek_error() != 0) ERR_clear_error();
  errno = 0;
}

}  // namespace

TlsSocket::Step TlsSocket::read_step(void* data, std::size_t size) {
  if (size == 0) return {};
  clear_errors();
  std::size_t n = 0;
  const int ret = SSL_read_ex(ssl_, data, size, &n);
  if (ret == 1) return {Want::nothing, {}, n};
  return failed(ret, errno);
}

TlsSocket::Step TlsSocket::write_step(const void* data, std::size_t size) {
  if (size == 0) return {};
  clear_errors();
  std::size_t n = 0;
  const int ret = SSL_write_ex(ssl_, data, size, &n);
  if (ret == 1) return {Want::nothing, {}, n};
  return failed(ret, errno);
}

TlsSocket::Step TlsSocket::handshake_step() {
  clear_errors();
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) return {};
  return failed(ret, errno);
}

TlsSocket::Step TlsSocket::shutdown_step() {
  if (fatal_) return {};  // OpenSSL: no SSL_shutdown after SSL_ERROR_SSL or SSL_ERROR_SYSCALL
  clear_errors();
  int ret = SSL_shutdown(ssl_);
  if (ret == 0) {  // our close_notify is out; the second call waits for the peer's
    clear_errors();
    ret = SSL_shutdown(ssl_);
  }
  if (ret == 1) return {};
  return failed(ret, errno);
}

TlsSocket::Step TlsSocket::failed(int ret, int sys_errno) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      return {Want::read, {}, 0};
    case SSL_ERROR_WANT_WRITE:
      return {Want::write, {}, 0};
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
      return {Want::nothing, asio::error::eof, 0};
    case SSL_ERROR_SYSCALL: {
      fatal_ = true;
      if (const unsigned long e = ERR_get_error(); e != 0)
        return {Want::nothing, std::error_code(static_cast<int>(e), asio::error::get_ssl_category()), 0};
      if (sys_errno != 0) return {Want::nothing, std::error_code(sys_errno, asio::error::get_system_category()), 0};
      return {Want::nothing, asio::ssl::error::stream_truncated, 0};  // OpenSSL 1.1.1's EOF without close_notify
    }
    case SSL_ERROR_SSL: {
      fatal_ = true;
      const unsigned long e = ERR_get_error();
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
      // OpenSSL 3's EOF without close_notify. Not SSL_OP_IGNORE_UNEXPECTED_EOF, which would make
      // it look like a close_notify (eof) and lose the difference callers may want.
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        return {Want::nothing, asio::ssl::error::stream_truncated, 0};
      }
#endif
      // The first error as asio::ssl::stream gave it; the rest stay queued for tls_reason().
      return {Want::nothing, std::error_code(static_cast<int>(e), asio::error::get_ssl_category()), 0};
    }
    default:
      return {Want::nothing, asio::ssl::error::unexpected_result, 0};
  }
}

}  // namespace portier::net

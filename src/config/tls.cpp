#include "portier/config/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

namespace portier::config {
namespace {

// OpenSSL's reason for the last failure ("No such file or directory", "no start line"), then clears
// the queue so it does not leak into the next report.
std::string openssl_reason() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    if (!out.empty()) continue;  // the first error is the cause; later ones repeat the call stack
    const char* reason = ERR_reason_error_string(e);
    out = reason != nullptr ? reason : "error " + std::to_string(e);
    if (ERR_GET_LIB(e) == ERR_LIB_SYS) out = std::strerror(ERR_GET_REASON(e));
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::shared_ptr<ssl_ctx_st> make(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle tunnels and keep-alive connections hold no TLS read/write buffers.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return std::shared_ptr<ssl_ctx_st>(ctx, SSL_CTX_free);
}

// Picks http/1.1 when the client offers it; without a match the handshake goes on without ALPN
// (a client that offers only h2 then speaks HTTP/1.1 or fails on its own terms).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::shared_ptr<ssl_ctx_st> tls_server_context(const std::string& cert_file, const std::string& key_file,
                                               std::string& why) {
  ERR_clear_error();
  auto ctx = make(TLS_server_method());
  if (!ctx) {
    why = openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    why = "cert_file " + cert_file + ": " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    why = "key_file " + key_file + ": " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    why = "key_file " + key_file + " does not match the certificate in " + cert_file;
    ERR_clear_error();
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  return ctx;
}

std::shared_ptr<ssl_ctx_st> tls_client_context(const std::string& ca_file, bool verify, std::string& why) {
  ERR_clear_error();
  auto ctx = make(TLS_client_method());
  if (!ctx) {
    why = openssl_reason();
    return nullptr;
  }
  if (verify) {
    const int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                                   : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
    if (ok != 1) {
      why = ca_file.empty() ? "cannot load the system CA store: " + openssl_reason()
                            : "ca_file " + ca_file + ": " + openssl_reason();
      return nullptr;
    }
  }
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx.get(), kHttp11, sizeof kHttp11);
  return ctx;
}

}  // namespace portier::config

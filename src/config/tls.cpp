#include "portier/config/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <utility>

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

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The names a certificate answers to: SAN dNSName entries, else (only then) its subject CNs.
std::vector<std::string> names_of(X509* cert) {
  std::vector<std::string> out;
  if (cert == nullptr) return out;
  auto add = [&](const unsigned char* data, int length) {
    std::string_view name(reinterpret_cast<const char*>(data), static_cast<std::size_t>(length));
    if (!name.empty() && name.find('\0') == std::string_view::npos) out.push_back(lowercase(name));
  };
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
      if (g->type == GEN_DNS) add(ASN1_STRING_get0_data(g->d.dNSName), ASN1_STRING_length(g->d.dNSName));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!out.empty()) return out;
  X509_NAME* subject = X509_get_subject_name(cert);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
    if (length >= 0) add(utf8, length);
    OPENSSL_free(utf8);
  }
  return out;
}

// What the default context of a listener owns besides itself: the names of every certificate and
// the contexts of the others (index 0, the default context itself, is null). Freed with the
// default context (ex_data), so a handshake that holds the context can always reach it.
struct SniTable {
  CertificateNames names;
  std::vector<std::shared_ptr<ssl_ctx_st>> contexts;
};

void free_sni_table(void*, void* table, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SniTable*>(table);
}

int sni_table_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_sni_table);
  return index;
}

// The servername callback of a listener's default context: switches the handshake to the
// certificate the client's SNI names. Without SNI, or for an unknown name, the default stays.
int select_certificate(SSL* ssl, int*, void* arg) {
  const auto* table = static_cast<const SniTable*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  std::size_t i = pick_certificate(table->names, name);
  if (i != 0 && SSL_set_SSL_CTX(ssl, table->contexts[i].get()) == nullptr) return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

// Applies the listener's cipher lists; with `errors`, reports a list OpenSSL knows no cipher of.
void set_ciphers(SSL_CTX* ctx, const ListenerTls& tls, std::vector<ConfigError>* errors) {
  if (!tls.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, tls.ciphers.c_str()) != 1) {
    ERR_clear_error();
    if (errors != nullptr) {
      errors->push_back({tls.pointer + "/ciphers", "no cipher in " + quoted(tls.ciphers) + " is known to OpenSSL"});
    }
  }
  if (!tls.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, tls.ciphersuites.c_str()) != 1) {
    ERR_clear_error();
    if (errors != nullptr) {
      errors->push_back({tls.pointer + "/ciphersuites",
                         "no TLS 1.3 cipher suite in " + quoted(tls.ciphersuites) + " is known to OpenSSL"});
    }
  }
}

// One certificate's context, fully configured (SSL_set_SSL_CTX takes the certificate and key, the
// ALPN callback and the cipher lists from it). Null with `field` ("cert_file" or "key_file", or
// "" for OpenSSL itself) and `why`.
std::shared_ptr<ssl_ctx_st> server_context(const ListenerTls& tls, const Certificate& c, std::string& field,
                                           std::string& why) {
  ERR_clear_error();
  auto ctx = make(TLS_server_method());
  if (!ctx) {
    why = openssl_reason();
    return nullptr;
  }
  set_ciphers(ctx.get(), tls, nullptr);  // checked and reported once by the caller
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.cert_file.c_str()) != 1) {
    field = "cert_file";
    why = c.cert_file + ": " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    field = "key_file";
    // OpenSSL 3 compares the key with the certificate here already.
    const unsigned long e = ERR_peek_error();
    const int reason = ERR_GET_REASON(e);
    const bool mismatch = ERR_GET_LIB(e) == ERR_LIB_X509 &&
                          (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH);
    why = mismatch ? c.key_file + " does not match the certificate in " + c.cert_file
                   : c.key_file + ": " + openssl_reason();
    ERR_clear_error();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    field = "key_file";
    why = c.key_file + " does not match the certificate in " + c.cert_file;
    ERR_clear_error();
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);
  return ctx;
}

}  // namespace

std::size_t pick_certificate(const CertificateNames& names, std::string_view server_name) {
  if (!server_name.empty() && server_name.back() == '.') server_name.remove_suffix(1);
  // A star is no host name character: such a name must not match a wildcard as if it were one.
  if (server_name.empty() || server_name.find('*') != std::string_view::npos) return 0;
  const std::string host = lowercase(server_name);
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (const auto& n : names[i]) {
      if (n == host) return i;
    }
  }
  // "*.example.com" stands for one label: "a.example.com", not "example.com" nor "a.b.example.com".
  const std::size_t dot = host.find('.');
  if (dot == 0 || dot == std::string::npos) return 0;
  const std::string_view parent = std::string_view(host).substr(dot);  // ".example.com"
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (const auto& n : names[i]) {
      if (n.size() > 2 && n.compare(0, 2, "*.") == 0 && std::string_view(n).substr(1) == parent) return i;
    }
  }
  return 0;
}

std::shared_ptr<ssl_ctx_st> tls_listener_context(const ListenerTls& tls, std::vector<ConfigError>& errors) {
  const std::size_t errors_before = errors.size();
  {
    ERR_clear_error();
    auto probe = make(TLS_server_method());
    if (!probe) {
      errors.push_back({tls.pointer, openssl_reason()});
      return nullptr;
    }
    set_ciphers(probe.get(), tls, &errors);
  }
  std::vector<std::shared_ptr<ssl_ctx_st>> contexts;
  for (const auto& c : tls.certificates) {
    std::string field, why;
    auto ctx = server_context(tls, c, field, why);
    if (!ctx) {
      if (field.empty()) {
        errors.push_back({c.pointer, why});
      } else if (c.pointer == tls.pointer) {  // the single form: {"cert_file", "key_file"}
        errors.push_back({c.pointer, field + " " + why});
      } else {
        errors.push_back({c.pointer + "/" + field, why});
      }
    }
    contexts.push_back(std::move(ctx));
  }
  if (errors.size() != errors_before || contexts.empty()) return nullptr;

  auto table = std::make_unique<SniTable>();
  for (const auto& ctx : contexts) table->names.push_back(names_of(SSL_CTX_get0_certificate(ctx.get())));
  std::shared_ptr<ssl_ctx_st> first = contexts.front();
  table->contexts = std::move(contexts);
  table->contexts.front().reset();  // the table lives inside the first context: no cycle
  SniTable* raw = table.get();
  if (SSL_CTX_set_ex_data(first.get(), sni_table_index(), raw) != 1) {
    errors.push_back({tls.pointer, openssl_reason()});
    return nullptr;
  }
  table.release();  // owned by `first` now
  if (raw->contexts.size() > 1) {
    SSL_CTX_set_tlsext_servername_callback(first.get(), select_certificate);
    SSL_CTX_set_tlsext_servername_arg(first.get(), raw);
  }
  return first;
}

const CertificateNames* certificate_names(ssl_ctx_st* listener_context) {
  if (listener_context == nullptr) return nullptr;
  const auto* table = static_cast<const SniTable*>(SSL_CTX_get_ex_data(listener_context, sni_table_index()));
  return table != nullptr ? &table->names : nullptr;
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

#pragma once
// TLS contexts built from the config, off the I/O threads, with the reason when a file is bad
// (so --check and reload report it at the key that named the file). Settings every context gets:
// TLS 1.2 and 1.3 only, no renegotiation, ALPN http/1.1; OpenSSL's default cipher lists unless a
// listener sets "ciphers" / "ciphersuites".
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "portier/config/config.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace portier::config {

// The names each certificate of a listener answers to, by certificate index: its SAN dNSName
// entries, or its subject CN only when it has no dNSName entry; lowercased. "*.example.com" is a
// wildcard for exactly one leftmost label.
using CertificateNames = std::vector<std::vector<std::string>>;

// The certificate for a client's server name (SNI): the first certificate with that exact name,
// else the first with a matching wildcard, else 0, the default (also for an empty name or one with
// a "*"). Case does not matter; one trailing dot is ignored. Pure.
std::size_t pick_certificate(const CertificateNames& names, std::string_view server_name);

// The server context of an HTTPS proxy listener (paths already resolved). One context per
// certificate, each with the same settings and ciphers; the first one, returned, chooses the
// others by SNI during the handshake and keeps them (and the name table) alive as long as it
// lives. Null when anything is wrong, with every error appended to `errors`: a cipher list
// OpenSSL knows nothing of at <tls>/ciphers or <tls>/ciphersuites; a file that cannot be loaded
// or a key that does not match its certificate at <certificate>/cert_file or /key_file (for the
// single-certificate form, at <tls> with the key named in the message).
std::shared_ptr<ssl_ctx_st> tls_listener_context(const ListenerTls& tls, std::vector<ConfigError>& errors);

// The name table of a context made by tls_listener_context; null for any other context.
const CertificateNames* certificate_names(ssl_ctx_st* listener_context);

// A client context (https:// parents): with `verify`, peers are checked against `ca_file`, or the
// system store when it is empty. Null with `why` when the CA file cannot be loaded.
std::shared_ptr<ssl_ctx_st> tls_client_context(const std::string& ca_file, bool verify, std::string& why);

}  // namespace portier::config

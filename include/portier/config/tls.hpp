#pragma once
// TLS contexts built from the config, off the I/O threads, with the reason when a file is bad
// (so --check and reload report it at the key that named the file). Settings every context gets:
// TLS 1.2 and 1.3 only, no renegotiation, ALPN http/1.1, OpenSSL's default cipher lists.
#include <memory>
#include <string>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace portier::config {

// A server context (an HTTPS proxy listener): certificate chain and key, PEM. Null with `why`
// ("cert_file proxy.crt: No such file or directory", "key_file does not match the certificate").
std::shared_ptr<ssl_ctx_st> tls_server_context(const std::string& cert_file, const std::string& key_file,
                                               std::string& why);

// A client context (https:// parents): with `verify`, peers are checked against `ca_file`, or the
// system store when it is empty. Null with `why` when the CA file cannot be loaded.
std::shared_ptr<ssl_ctx_st> tls_client_context(const std::string& ca_file, bool verify, std::string& why);

}  // namespace portier::config

#include "portier/config/tls.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "portier/config/config.hpp"

using portier::config::CertificateNames;
using portier::config::certificate_names;
using portier::config::ConfigError;
using portier::config::format_error;
using portier::config::pick_certificate;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/portier_tls_test_XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream out(p, std::ios::binary);
    out << text;
    REQUIRE(out.good());
    return p;
  }
};

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed EC P-256 certificate with subject CN `cn` and, unless empty, the subjectAltName
// `sans` ("DNS:a.test,IP:127.0.0.1"), written as <name>.crt and <name>.key.
portier::config::Certificate make_certificate(const TempDir& dir, const std::string& name, const std::string& cn,
                                              const std::string& sans) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  REQUIRE(key != nullptr);
  std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
  REQUIRE(x != nullptr);
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* subject = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), subject);
  if (!sans.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, sans.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  REQUIRE(X509_sign(x.get(), key.get(), EVP_sha256()) > 0);

  std::unique_ptr<BIO, decltype(&BIO_free)> cert_pem(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_pem(BIO_new(BIO_s_mem()), BIO_free);
  REQUIRE(PEM_write_bio_X509(cert_pem.get(), x.get()) == 1);
  REQUIRE(PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  portier::config::Certificate c;
  c.cert_file = dir.write(name + ".crt", bio_text(cert_pem.get()));
  c.key_file = dir.write(name + ".key", bio_text(key_pem.get()));
  return c;
}

portier::config::ListenerTls listener_tls(std::vector<portier::config::Certificate> certificates) {
  portier::config::ListenerTls tls;
  tls.pointer = "/listeners/0/tls";
  for (std::size_t i = 0; i < certificates.size(); ++i) {
    certificates[i].pointer = tls.pointer + "/certificates/" + std::to_string(i);
  }
  tls.certificates = std::move(certificates);
  return tls;
}

std::shared_ptr<ssl_ctx_st> context_of(const portier::config::ListenerTls& tls) {
  std::vector<ConfigError> errors;
  auto ctx = portier::config::tls_listener_context(tls, errors);
  for (const auto& e : errors) FAIL_CHECK(format_error(e));
  REQUIRE(ctx != nullptr);
  return ctx;
}

// A handshake through memory BIOs: which certificate does a client that sends `sni` get?
std::string served_name(SSL_CTX* server_ctx, const char* sni) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> client(SSL_new(client_ctx.get()), SSL_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> server(SSL_new(server_ctx), SSL_free);
  REQUIRE(client != nullptr);
  REQUIRE(server != nullptr);
  BIO* a = nullptr;
  BIO* b = nullptr;
  REQUIRE(BIO_new_bio_pair(&a, 0, &b, 0) == 1);
  SSL_set_bio(client.get(), a, a);
  SSL_set_bio(server.get(), b, b);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  if (sni != nullptr) SSL_set_tlsext_host_name(client.get(), sni);
  bool client_done = false, server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!client_done) client_done = SSL_do_handshake(client.get()) == 1;
    if (!server_done) server_done = SSL_do_handshake(server.get()) == 1;
  }
  REQUIRE(client_done);
  REQUIRE(server_done);
  X509* peer = SSL_get0_peer_certificate(client.get());
  REQUIRE(peer != nullptr);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
  return cn;
}

}  // namespace

TEST_SUITE("config.tls") {
TEST_CASE("pick_certificate: an exact name, then a one-label wildcard, else the default") {
  const CertificateNames names = {
      {"default.test"},
      {"alpha.test", "www.alpha.test"},
      {"*.beta.test"},
      {"exact.beta.test"},
  };
  CHECK(pick_certificate(names, "alpha.test") == 1);
  CHECK(pick_certificate(names, "www.alpha.test") == 1);
  CHECK(pick_certificate(names, "x.beta.test") == 2);
  CHECK(pick_certificate(names, "default.test") == 0);

  SUBCASE("an exact name wins over a wildcard listed before it") {
    CHECK(pick_certificate(names, "exact.beta.test") == 3);
  }
  SUBCASE("a wildcard stands for exactly one label") {
    CHECK(pick_certificate(names, "beta.test") == 0);
    CHECK(pick_certificate(names, "a.b.beta.test") == 0);
    CHECK(pick_certificate(names, ".beta.test") == 0);
  }
  SUBCASE("no name, an unknown name or an address gets the default") {
    CHECK(pick_certificate(names, "") == 0);
    CHECK(pick_certificate(names, "gamma.test") == 0);
    CHECK(pick_certificate(names, "alpha.test.evil") == 0);
    CHECK(pick_certificate(names, "127.0.0.1") == 0);
    CHECK(pick_certificate(names, "test") == 0);
  }
  SUBCASE("case and one trailing dot do not matter") {
    CHECK(pick_certificate(names, "ALPHA.Test") == 1);
    CHECK(pick_certificate(names, "alpha.test.") == 1);
    CHECK(pick_certificate(names, "X.BETA.TEST.") == 2);
    CHECK(pick_certificate(names, ".") == 0);
  }
  SUBCASE("a client that sends a star gets the default") {
    CHECK(pick_certificate(names, "*.beta.test") == 0);
    CHECK(pick_certificate(names, "*") == 0);
  }
}

TEST_CASE("pick_certificate: the first certificate with a name wins, also among wildcards") {
  const CertificateNames names = {{"a.test"}, {"*.w.test", "shared.test"}, {"shared.test", "*.w.test"}};
  CHECK(pick_certificate(names, "shared.test") == 1);
  CHECK(pick_certificate(names, "x.w.test") == 1);
  CHECK(pick_certificate(CertificateNames{}, "a.test") == 0);
  CHECK(pick_certificate(CertificateNames{{}, {}}, "a.test") == 0);
}

TEST_CASE("listener context: names come from SAN DNS entries, the CN only when there are none") {
  TempDir dir;
  auto tls = listener_tls({
      make_certificate(dir, "san", "ignored.test", "DNS:Alpha.Test,DNS:*.beta.test,IP:127.0.0.1"),
      make_certificate(dir, "cn", "Gamma.Test", ""),
      make_certificate(dir, "ip", "delta.test", "IP:127.0.0.1"),
  });
  auto ctx = context_of(tls);
  const CertificateNames* names = certificate_names(ctx.get());
  REQUIRE(names != nullptr);
  REQUIRE(names->size() == 3);
  CHECK((*names)[0] == std::vector<std::string>{"alpha.test", "*.beta.test"});
  CHECK((*names)[1] == std::vector<std::string>{"gamma.test"});
  CHECK((*names)[2] == std::vector<std::string>{"delta.test"});
  CHECK(pick_certificate(*names, "x.beta.test") == 0);
  CHECK(pick_certificate(*names, "gamma.test") == 1);
  CHECK(pick_certificate(*names, "ignored.test") == 0);

  SUBCASE("a single certificate has a table too") {
    auto one = context_of(listener_tls({make_certificate(dir, "one", "one.test", "DNS:one.test")}));
    REQUIRE(certificate_names(one.get()) != nullptr);
    CHECK(certificate_names(one.get())->size() == 1);
  }
  SUBCASE("other contexts have none") {
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> plain(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    CHECK(certificate_names(plain.get()) == nullptr);
    CHECK(certificate_names(nullptr) == nullptr);
  }
}

TEST_CASE("listener context: the handshake serves the certificate the SNI names") {
  TempDir dir;
  auto ctx = context_of(listener_tls({
      make_certificate(dir, "default", "default", "DNS:default.test"),
      make_certificate(dir, "alpha", "alpha", "DNS:alpha.test"),
      make_certificate(dir, "beta", "beta", "DNS:*.beta.test"),
  }));
  CHECK(served_name(ctx.get(), "alpha.test") == "alpha");
  CHECK(served_name(ctx.get(), "x.beta.test") == "beta");
  CHECK(served_name(ctx.get(), "a.b.beta.test") == "default");
  CHECK(served_name(ctx.get(), "unknown.test") == "default");
  CHECK(served_name(ctx.get(), nullptr) == "default");
}

TEST_CASE("listener context: file errors point at the certificate's key, or at tls for the single form") {
  TempDir dir;
  auto a = make_certificate(dir, "a", "a.test", "DNS:a.test");
  auto b = make_certificate(dir, "b", "b.test", "DNS:b.test");
  auto missing = a;
  missing.cert_file = dir.path + "/missing.crt";
  auto mismatched = a;
  mismatched.key_file = b.key_file;
  auto junk_key = b;
  junk_key.key_file = dir.write("junk.key", "junk\n");

  std::vector<ConfigError> errors;
  auto ctx = portier::config::tls_listener_context(listener_tls({a, missing, mismatched, junk_key}), errors);
  CHECK(ctx == nullptr);
  REQUIRE(errors.size() == 3);
  CHECK(errors[0].pointer == "/listeners/0/tls/certificates/1/cert_file");
  CHECK(errors[0].message == dir.path + "/missing.crt: No such file or directory");
  CHECK(errors[1].pointer == "/listeners/0/tls/certificates/2/key_file");
  CHECK(errors[1].message == b.key_file + " does not match the certificate in " + a.cert_file);
  CHECK(errors[2].pointer == "/listeners/0/tls/certificates/3/key_file");
  CHECK(errors[2].message.find(junk_key.key_file + ": ") == 0);

  errors.clear();
  auto single = listener_tls({mismatched});
  single.certificates[0].pointer = single.pointer;  // {"cert_file", "key_file"} directly in "tls"
  CHECK(portier::config::tls_listener_context(single, errors) == nullptr);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].pointer == "/listeners/0/tls");
  CHECK(errors[0].message == "key_file " + b.key_file + " does not match the certificate in " + a.cert_file);
}

TEST_CASE("listener context: cipher lists are checked once, at their keys") {
  TempDir dir;
  auto tls = listener_tls({make_certificate(dir, "a", "a.test", "DNS:a.test"),
                           make_certificate(dir, "b", "b.test", "DNS:b.test")});
  tls.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
  tls.ciphersuites = "TLS_AES_256_GCM_SHA384";
  auto ctx = context_of(tls);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
  REQUIRE(ciphers != nullptr);
  std::vector<std::string> got;
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    got.emplace_back(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers, i)));
  }
  CHECK(got == std::vector<std::string>{"TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"});

  tls.ciphers = "NOPE:ALSO-NOPE";
  tls.ciphersuites = "TLS_NOPE";
  std::vector<ConfigError> errors;
  CHECK(portier::config::tls_listener_context(tls, errors) == nullptr);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].pointer == "/listeners/0/tls/ciphers");
  CHECK(errors[0].message == R"(no cipher in "NOPE:ALSO-NOPE" is known to OpenSSL)");
  CHECK(errors[1].pointer == "/listeners/0/tls/ciphersuites");
  CHECK(errors[1].message == R"(no TLS 1.3 cipher suite in "TLS_NOPE" is known to OpenSSL)");
}
}

#include "portier/http/client_hello.hpp"

#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

using portier::http::ClientHelloInfo;
using portier::http::ClientHelloParser;
using portier::http::HelloStatus;

namespace {

// ---- a small ClientHello builder (RFC 8446 §4.1.2 layout) -----------------------------------------

std::string u8(unsigned v) { return std::string(1, static_cast<char>(v & 0xff)); }
std::string u16(unsigned v) { return u8(v >> 8) + u8(v); }
std::string u24(unsigned v) { return u8(v >> 16) + u16(v & 0xffff); }
std::string vec8(const std::string& s) { return u8(static_cast<unsigned>(s.size())) + s; }
std::string vec16(const std::string& s) { return u16(static_cast<unsigned>(s.size())) + s; }

std::string ext(unsigned type, const std::string& data) { return u16(type) + vec16(data); }

// server_name with one entry per (name_type, name).
std::string sni_entries(std::initializer_list<std::pair<unsigned, std::string>> entries) {
  std::string list;
  for (const auto& [type, name] : entries) list += u8(type) + vec16(name);
  return ext(0, vec16(list));
}
std::string sni_ext(const std::string& name) { return sni_entries({{0, name}}); }

std::string alpn_ext(std::initializer_list<std::string> protos) {
  std::string list;
  for (const auto& p : protos) list += vec8(p);
  return ext(16, vec16(list));
}

std::string supported_versions_ext(std::initializer_list<unsigned> versions) {
  std::string list;
  for (unsigned v : versions) list += u16(v);
  return ext(43, vec8(list));
}

std::string key_share_x25519() { return ext(51, vec16(u16(0x001d) + vec16(std::string(32, '\x42')))); }
std::string supported_groups_ext() { return ext(10, vec16(u16(0x001d) + u16(0x0017))); }
std::string signature_algorithms_ext() { return ext(13, vec16(u16(0x0403) + u16(0x0804))); }
// ECHClientHello, outer: type, cipher suite (KDF, AEAD), config_id, enc, payload.
std::string ech_ext() {
  return ext(0xfe0d, u8(0) + u16(0x0001) + u16(0x0001) + u8(7) + vec16("enc") + vec16("payload"));
}
std::string padding_ext(std::size_t n) { return ext(21, std::string(n, '\0')); }

struct Hello {
  unsigned legacy_version = 0x0303;
  std::string session_id = std::string(32, '\x11');
  std::string cipher_suites = u16(0x1301) + u16(0xc02f);
  std::string compression = u8(0);
  bool with_extensions = true;
  std::string extensions;  // concatenated ext(...) blocks

  std::string body() const {
    std::string b = u16(legacy_version) + std::string(32, '\x5a') + vec8(session_id) + vec16(cipher_suites) +
                    vec8(compression);
    if (with_extensions) b += vec16(extensions);
    return b;
  }
  std::string handshake() const { return u8(1) + u24(static_cast<unsigned>(body().size())) + body(); }
};

// Wraps handshake bytes in handshake records of at most `fragment` bytes each.
std::string records(const std::string& handshake, std::size_t fragment = 16384, unsigned version = 0x0301) {
  std::string out;
  for (std::size_t i = 0; i < handshake.size(); i += fragment) {
    const std::string part = handshake.substr(i, fragment);
    out += u8(0x16) + u16(version) + vec16(part);
  }
  return out;
}

Hello tls12_hello(const std::string& sni) {
  Hello h;
  h.session_id.clear();
  h.cipher_suites = u16(0xc02f) + u16(0xc030) + u16(0x009e);
  h.extensions = sni_ext(sni) + supported_groups_ext() + signature_algorithms_ext();
  return h;
}

Hello tls13_hello(const std::string& sni) {
  Hello h;
  h.extensions = sni_ext(sni) + supported_groups_ext() + signature_algorithms_ext() +
                 supported_versions_ext({0x0304, 0x0303}) + key_share_x25519() + alpn_ext({"h2", "http/1.1"});
  return h;
}

std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  }
  return out;
}

// Captured from `openssl s_client -connect 127.0.0.1:PORT -servername example.com -alpn h2,http/1.1`
// (OpenSSL 3.0) against a socket that only recorded the first bytes: TLS 1.3, one record.
const std::string kOpensslTls13 = from_hex(
    "160301014a0100014603036ef0114fa02f0e60be2fa23b44b6adee93ea1425c6668c37f055c7babde710c2200f9d803a"
    "836a70c71cbf171db1f2ac998b99eeed78a0a9803d5fed0fe7bce3f7003e130213031301c02cc030009fcca9cca8ccaa"
    "c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000bf"
    "00000010000e00000b6578616d706c652e636f6d000b000403000102000a00160014001d0017001e0019001801000101"
    "010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603"
    "080708080809080a080b080408050806040105010601030303010302040205020602002b000908030403030302030100"
    "2d00020101003300260024001d0020f9f9bfc1e59604b99ebac36853d4125e1b18f9b26702b8810822fe90e2611166");

// Same, with `-servername Example.COM -tls1_2 -no_ticket`: TLS 1.2 only, no supported_versions.
const std::string kOpensslTls12 = from_hex(
    "16030100c7010000c30303be4de10f89c5dd1ca7ff12e896a601624bc11d67d3ce7f008245aeea009af64d000038c02c"
    "c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c"
    "0035002f00ff0100006200000010000e00000b4578616d706c652e434f4d000b000403000102000a000c000a001d0017"
    "001e001900180016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601"
    "030303010302040205020602");

HelloStatus parse_all(const std::string& bytes, ClientHelloInfo* info = nullptr, std::size_t max = 16 * 1024) {
  ClientHelloParser p(max);
  const HelloStatus s = p.feed(bytes);
  if (info) *info = p.info();
  return s;
}

HelloStatus parse_hello(const Hello& h, ClientHelloInfo* info = nullptr) {
  return parse_all(records(h.handshake()), info);
}

// Feeds one byte per call and checks that nothing is decided before the last byte.
HelloStatus parse_bytewise(const std::string& bytes, ClientHelloParser& p) {
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const HelloStatus s = p.feed(std::string_view(bytes).substr(i, 1));
    if (i + 1 < bytes.size() && s != HelloStatus::need_more) return s;
  }
  return p.status();
}

bool same_info(const ClientHelloInfo& a, const ClientHelloInfo& b) {
  return a.sni == b.sni && a.has_sni == b.has_sni && a.has_ech == b.has_ech && a.alpn == b.alpn &&
         a.legacy_version == b.legacy_version && a.offers_tls13 == b.offers_tls13 &&
         a.sni_ip_literal == b.sni_ip_literal;
}

}  // namespace

TEST_SUITE("http.client_hello") {

TEST_CASE("a TLS 1.2 ClientHello with SNI is read whole") {
  ClientHelloInfo info;
  REQUIRE(parse_hello(tls12_hello("example.com"), &info) == HelloStatus::done);
  CHECK(info.has_sni);
  CHECK(info.sni == "example.com");
  CHECK(info.legacy_version == 0x0303);
  CHECK_FALSE(info.offers_tls13);
  CHECK_FALSE(info.has_ech);
  CHECK(info.alpn.empty());
}

TEST_CASE("a TLS 1.3 ClientHello yields SNI, ALPN and the TLS 1.3 offer") {
  ClientHelloInfo info;
  REQUIRE(parse_hello(tls13_hello("www.example.org"), &info) == HelloStatus::done);
  CHECK(info.sni == "www.example.org");
  CHECK(info.offers_tls13);
  CHECK(info.legacy_version == 0x0303);
  CHECK(info.alpn == std::vector<std::string>{"h2", "http/1.1"});
}

TEST_CASE("real ClientHellos captured from openssl s_client parse") {
  SUBCASE("TLS 1.3 with ALPN") {
    ClientHelloParser p;
    REQUIRE(p.feed(kOpensslTls13) == HelloStatus::done);
    CHECK(p.info().sni == "example.com");
    CHECK(p.info().offers_tls13);
    CHECK(p.info().alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(p.bytes_seen() == kOpensslTls13.size());
  }
  SUBCASE("TLS 1.2 only, with an uppercase name") {
    ClientHelloParser p;
    REQUIRE(p.feed(kOpensslTls12) == HelloStatus::done);
    CHECK(p.info().sni == "example.com");
    CHECK_FALSE(p.info().offers_tls13);
    CHECK(p.info().legacy_version == 0x0303);
  }
}

TEST_CASE("a ClientHello without server_name is done without SNI") {
  Hello h = tls13_hello("x");
  h.extensions = supported_versions_ext({0x0304}) + key_share_x25519();
  ClientHelloInfo info;
  REQUIRE(parse_hello(h, &info) == HelloStatus::done);
  CHECK_FALSE(info.has_sni);
  CHECK(info.sni.empty());
  CHECK(info.offers_tls13);

  SUBCASE("nor any extensions at all (an old TLS 1.0 client)") {
    Hello old;
    old.legacy_version = 0x0301;
    old.with_extensions = false;
    REQUIRE(parse_hello(old, &info) == HelloStatus::done);
    CHECK_FALSE(info.has_sni);
    CHECK(info.legacy_version == 0x0301);
  }
}

TEST_CASE("the encrypted_client_hello extension is reported with the outer SNI") {
  Hello h = tls13_hello("public.example.net");
  h.extensions += ech_ext();
  ClientHelloInfo info;
  REQUIRE(parse_hello(h, &info) == HelloStatus::done);
  CHECK(info.has_ech);
  CHECK(info.sni == "public.example.net");
}

TEST_CASE("byte-by-byte feeding reaches the same result on the last byte") {
  for (const std::string& bytes : {records(tls13_hello("example.com").handshake()), kOpensslTls13, kOpensslTls12}) {
    ClientHelloParser whole;
    REQUIRE(whole.feed(bytes) == HelloStatus::done);
    ClientHelloParser p;
    REQUIRE(parse_bytewise(bytes, p) == HelloStatus::done);
    CHECK(same_info(p.info(), whole.info()));
    CHECK(p.bytes_seen() == bytes.size());
  }
}

TEST_CASE("a ClientHello fragmented across TLS records is reassembled") {
  const std::string hs = tls13_hello("example.com").handshake();
  SUBCASE("two records") {
    ClientHelloInfo info;
    REQUIRE(parse_all(records(hs, hs.size() / 2 + 1), &info) == HelloStatus::done);
    CHECK(info.sni == "example.com");
  }
  SUBCASE("a record per handshake byte, fed byte by byte") {
    const std::string bytes = records(hs, 1);
    ClientHelloParser p;
    REQUIRE(parse_bytewise(bytes, p) == HelloStatus::done);
    CHECK(p.info().sni == "example.com");
  }
  SUBCASE("the handshake header itself split over records") {
    ClientHelloInfo info;
    REQUIRE(parse_all(records(hs.substr(0, 2)) + records(hs.substr(2)), &info) == HelloStatus::done);
    CHECK(info.sni == "example.com");
  }
  SUBCASE("record version 0x0303 and 0x0300 are accepted too") {
    CHECK(parse_all(records(hs, 100, 0x0303)) == HelloStatus::done);
    CHECK(parse_all(records(hs, 100, 0x0300)) == HelloStatus::done);
  }
}

TEST_CASE("a split at every position of the input gives the same result") {
  const std::string hs = tls13_hello("split.example.com").handshake();
  for (const std::string& bytes : {records(hs), records(hs, 37), kOpensslTls13}) {
    ClientHelloParser whole;
    REQUIRE(whole.feed(bytes) == HelloStatus::done);
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      ClientHelloParser p;
      const HelloStatus first = p.feed(std::string_view(bytes).substr(0, cut));
      CHECK(first == (cut == bytes.size() ? HelloStatus::done : HelloStatus::need_more));
      CHECK(p.feed(std::string_view(bytes).substr(cut)) == HelloStatus::done);
      CHECK(same_info(p.info(), whole.info()));
    }
  }
}

TEST_CASE("every proper prefix of a ClientHello needs more") {
  const std::string bytes = records(tls12_hello("example.com").handshake(), 50);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    CHECK(parse_all(bytes.substr(0, n)) == HelloStatus::need_more);
  }
}

TEST_CASE("bytes after the ClientHello are not consumed and the status is sticky") {
  const std::string hello = records(tls13_hello("example.com").handshake());
  ClientHelloParser p;
  REQUIRE(p.feed(hello + std::string("\x14\x03\x03\x00\x01\x01", 6) + "garbage") == HelloStatus::done);
  CHECK(p.bytes_seen() == hello.size());
  CHECK(p.feed("\xff\xff\xff") == HelloStatus::done);
  CHECK(p.info().sni == "example.com");

  ClientHelloParser q;
  REQUIRE(q.feed("GET") == HelloStatus::not_tls);
  CHECK(q.feed(hello) == HelloStatus::not_tls);
}

TEST_CASE("non-TLS first bytes are refused at once") {
  SUBCASE("an HTTP request, on its first byte") {
    ClientHelloParser p;
    CHECK(p.feed("G") == HelloStatus::not_tls);
    CHECK_FALSE(p.reason().empty());
    CHECK(parse_all("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n") == HelloStatus::not_tls);
  }
  SUBCASE("an SSH banner") { CHECK(parse_all("SSH-2.0-OpenSSH_9.2p1\r\n") == HelloStatus::not_tls); }
  SUBCASE("an SSLv2-compatible ClientHello") {
    CHECK(parse_all(from_hex("802e0103010015000000100000040000050000ff") + std::string(16, '\x01')) ==
          HelloStatus::not_tls);
  }
  SUBCASE("a handshake byte with a wrong version") {
    CHECK(parse_all("\x16\x02") == HelloStatus::not_tls);
    CHECK(parse_all("\x16\x03\x05") == HelloStatus::not_tls);
    CHECK(parse_all(std::string("\x16\x03\x04", 3)) == HelloStatus::need_more);
  }
  SUBCASE("another record type first (alert, application data)") {
    CHECK(parse_all(std::string("\x15\x03\x03\x00\x02\x02\x28", 7)) == HelloStatus::not_tls);
    CHECK(parse_all("\x17\x03\x03") == HelloStatus::not_tls);
  }
  SUBCASE("nothing yet is not a verdict") {
    ClientHelloParser p;
    CHECK(p.feed("") == HelloStatus::need_more);
    CHECK(p.feed("\x16") == HelloStatus::need_more);
  }
}

TEST_CASE("SNI is lowercased") {
  ClientHelloInfo info;
  REQUIRE(parse_hello(tls13_hello("WWW.Example.COM"), &info) == HelloStatus::done);
  CHECK(info.sni == "www.example.com");
}

TEST_CASE("server_name contents that break RFC 6066 are malformed") {
  auto with_sni_ext = [](const std::string& sni_extension) {
    Hello h = tls13_hello("x");
    h.extensions = sni_extension + supported_versions_ext({0x0304});
    return parse_hello(h);
  };
  CHECK(with_sni_ext(sni_entries({{0, "a.example"}, {0, "b.example"}})) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_entries({{0, "a.example"}, {0, "a.example"}})) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_entries({{1, "a.example"}})) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("")) == HelloStatus::malformed);
  CHECK(with_sni_ext(ext(0, vec16(""))) == HelloStatus::malformed);  // empty list
  CHECK(with_sni_ext(ext(0, "")) == HelloStatus::malformed);         // no list at all
  CHECK(with_sni_ext(sni_ext("exa mple.com")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("example.com.")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("a..example")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext(".example")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("b\xc3\xbc" "cher.example")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext(std::string("ex\0ample.com", 12))) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext(std::string(64, 'a') + ".example")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("example.123")) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext("1.2.3.999")) == HelloStatus::malformed);
  // 4 x 63 + 3 dots = 255 > 253
  const std::string label(63, 'a');
  CHECK(with_sni_ext(sni_ext(label + "." + label + "." + label + "." + label)) == HelloStatus::malformed);
  CHECK(with_sni_ext(sni_ext(label + "." + label + "." + label + "." + std::string(61, 'b'))) == HelloStatus::done);
  CHECK(with_sni_ext(sni_ext("_acme.my-host.example")) == HelloStatus::done);
}

TEST_CASE("an IP-literal SNI is ignored, not taken as a name") {
  for (const char* ip : {"192.0.2.7", "2001:db8::1"}) {
    Hello h = tls13_hello(ip);
    ClientHelloInfo info;
    REQUIRE(parse_hello(h, &info) == HelloStatus::done);
    CHECK_FALSE(info.has_sni);
    CHECK(info.sni.empty());
    CHECK(info.sni_ip_literal);
  }
}

TEST_CASE("length fields that disagree with their container are malformed") {
  const Hello good = tls13_hello("example.com");
  auto status_of_body = [](const std::string& body) {
    return parse_all(records(u8(1) + u24(static_cast<unsigned>(body.size())) + body));
  };
  SUBCASE("session id longer than 32 bytes") {
    Hello h = good;
    h.session_id = std::string(33, 'x');
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("odd or empty cipher suites") {
    Hello h = good;
    h.cipher_suites = u16(0x1301) + u8(0x13);
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.cipher_suites.clear();
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("no compression methods") {
    Hello h = good;
    h.compression.clear();
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("legacy_version with a major other than 3") {
    Hello h = good;
    h.legacy_version = 0x0203;
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("extensions block one byte too long, one too short, or followed by junk") {
    const std::string body = good.body();
    const std::size_t ext_len_at = body.size() - good.extensions.size() - 2;
    std::string longer = body;
    longer[ext_len_at + 1] = static_cast<char>(longer[ext_len_at + 1] + 1);
    CHECK(status_of_body(longer) == HelloStatus::malformed);
    std::string shorter = body;
    shorter[ext_len_at + 1] = static_cast<char>(shorter[ext_len_at + 1] - 1);
    CHECK(status_of_body(shorter) == HelloStatus::malformed);
    CHECK(status_of_body(body + u8(0)) == HelloStatus::malformed);
    CHECK(status_of_body(body.substr(0, ext_len_at + 1)) == HelloStatus::malformed);  // half a length
  }
  SUBCASE("an extension longer than the block") {
    Hello h = good;
    h.extensions = sni_ext("example.com") + u16(0x0017) + u16(10) + "abc";
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = sni_ext("example.com") + u8(0);  // half an extension type
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("server_name list and host_name lengths that do not fit") {
    Hello h = good;
    h.extensions = ext(0, u16(20) + u8(0) + vec16("example.com"));  // list claims more than is there
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(0, vec16(u8(0) + vec16("example.com")) + u8(0));  // junk after the list
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(0, vec16(u8(0) + u16(30) + "example.com"));  // name longer than the list
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(0, vec16(u8(0) + vec16("example.com") + u8(0)));  // half a second entry
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("ALPN and supported_versions that do not fit") {
    Hello h = good;
    h.extensions = ext(16, vec16(vec8("h2") + u8(9) + "http"));
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(16, vec16(vec8("h2") + vec8("")));
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(16, vec16(""));
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(43, vec8(u16(0x0304) + u8(3)));
    CHECK(parse_hello(h) == HelloStatus::malformed);
    h.extensions = ext(43, vec8(u16(0x0304)) + u8(0));
    CHECK(parse_hello(h) == HelloStatus::malformed);
  }
  SUBCASE("a body shorter than its fixed fields") {
    CHECK(status_of_body(u16(0x0303) + std::string(10, 'r')) == HelloStatus::malformed);
    CHECK(status_of_body("") == HelloStatus::malformed);
  }
}

TEST_CASE("the same extension twice is malformed") {
  Hello h = tls13_hello("example.com");
  h.extensions += alpn_ext({"h2"});
  CHECK(parse_hello(h) == HelloStatus::malformed);
}

TEST_CASE("record-layer faults after the first bytes are malformed") {
  const std::string hs = tls13_hello("example.com").handshake();
  SUBCASE("a zero-length record") {
    CHECK(parse_all(std::string("\x16\x03\x01\x00\x00", 5) + records(hs)) == HelloStatus::malformed);
  }
  SUBCASE("a record longer than 2^14") { CHECK(parse_all(from_hex("1603014001") + hs) == HelloStatus::malformed); }
  SUBCASE("an alert or a wrong version between fragments") {
    const std::string first = records(hs.substr(0, 10));
    CHECK(parse_all(first + from_hex("15030300020228")) == HelloStatus::malformed);
    CHECK(parse_all(first + from_hex("1604")) == HelloStatus::malformed);
    CHECK(parse_all(first + from_hex("160307")) == HelloStatus::malformed);
  }
  SUBCASE("a first handshake message other than client_hello") {
    ClientHelloParser p;
    CHECK(p.feed(from_hex("160303000102")) == HelloStatus::malformed);  // server_hello, on its type byte
    CHECK_FALSE(p.reason().empty());
  }
}

TEST_CASE("a ClientHello that does not end within max_bytes is too large") {
  SUBCASE("a big padding extension, in many records") {
    Hello h = tls13_hello("example.com");
    h.extensions += padding_ext(20000);
    ClientHelloParser p;
    CHECK(p.feed(records(h.handshake())) == HelloStatus::too_large);
    CHECK(p.bytes_seen() <= 16 * 1024);
  }
  SUBCASE("decided from the handshake header, before the body arrives") {
    ClientHelloParser p(1000);
    CHECK(p.feed(from_hex("1603010200") + u8(1) + u24(1200)) == HelloStatus::too_large);
  }
  SUBCASE("a limit just below a real hello") {
    CHECK(parse_all(kOpensslTls13, nullptr, kOpensslTls13.size() - 1) == HelloStatus::too_large);
    CHECK(parse_all(kOpensslTls13, nullptr, kOpensslTls13.size()) == HelloStatus::done);
  }
  SUBCASE("record headers count against the limit") {
    const std::string hs = tls12_hello("example.com").handshake();
    const std::string bytes = records(hs, 1);  // 6 bytes per handshake byte
    ClientHelloParser p(hs.size() * 3);
    CHECK(parse_bytewise(bytes, p) == HelloStatus::too_large);
    CHECK(p.bytes_seen() == hs.size() * 3);
  }
}

TEST_CASE("ALPN offers are bounded and printable") {
  Hello h = tls13_hello("example.com");
  h.extensions = sni_ext("example.com") +
                 alpn_ext({"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "pa", "pb", "pc", "pd", "pe",
                           "pf", "pg", "ph", "pi", "pj"});
  ClientHelloInfo info;
  REQUIRE(parse_hello(h, &info) == HelloStatus::done);
  CHECK(info.alpn.size() == ClientHelloInfo::kMaxAlpn);
  CHECK(info.alpn.front() == "p0");

  h.extensions = alpn_ext({std::string("h\x01\xff\\", 4)});
  REQUIRE(parse_hello(h, &info) == HelloStatus::done);
  CHECK(info.alpn == std::vector<std::string>{"h\\x01\\xff\\x5c"});
}

TEST_CASE("random garbage after a handshake record header never crashes or reads out of bounds") {
  std::mt19937 rng(20261122);  // fixed seed: reproducible
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> len(0, 600);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes = from_hex("160301");
    const std::size_t n = len(rng);
    for (std::size_t i = 0; i < n; ++i) bytes += static_cast<char>(byte(rng));
    ClientHelloParser p(4096);
    const HelloStatus s = p.feed(bytes);
    CHECK(s != HelloStatus::not_tls);
    if (s == HelloStatus::done) CHECK(p.info().sni.size() <= 253);
  }
}

TEST_CASE("mutated real ClientHellos give a verdict without crashing") {
  std::mt19937 rng(7);
  for (const std::string& base : {kOpensslTls13, kOpensslTls12, records(tls13_hello("m.example").handshake(), 61)}) {
    std::uniform_int_distribution<std::size_t> pos(3, base.size() - 1);
    std::uniform_int_distribution<int> byte(0, 255);
    for (int round = 0; round < 2000; ++round) {
      std::string bytes = base;
      for (int k = 0; k < 1 + round % 3; ++k) bytes[pos(rng)] = static_cast<char>(byte(rng));
      ClientHelloParser p;
      const HelloStatus s = p.feed(bytes);
      CHECK(s != HelloStatus::not_tls);
      if (s == HelloStatus::done && p.info().has_sni) {
        for (char c : p.info().sni) CHECK_FALSE((c >= 'A' && c <= 'Z'));
      }
      if (s == HelloStatus::malformed || s == HelloStatus::too_large) CHECK_FALSE(p.reason().empty());
    }
  }
}

}  // TEST_SUITE

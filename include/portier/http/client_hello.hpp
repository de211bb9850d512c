#pragma once
// A bounded, incremental reader of the TLS ClientHello a client sends first into a CONNECT tunnel,
// to learn its SNI (and, for logs, its ALPN offer) without decrypting anything. Pure code: it sees
// bytes, never a socket, and keeps at most `max_bytes` of them.
//
// Wire format: RFC 8446 §4.1.2 and §5.1 (TLS 1.3), RFC 5246 §7.4.1.2 (TLS 1.2), RFC 6066 §3
// (server_name), RFC 7301 (ALPN), draft-ietf-tls-esni (encrypted_client_hello, 0xfe0d).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace portier::http {

enum class HelloStatus {
  need_more,  // a ClientHello so far; feed more bytes
  done,       // a complete, well-formed ClientHello: info() is filled in
  not_tls,    // the first bytes are not a TLS handshake record (HTTP, SSH, SSLv2 hello...): pass through
  malformed,  // starts like TLS but breaks the ClientHello grammar somewhere
  too_large,  // the ClientHello does not end within max_bytes
};

const char* hello_status_name(HelloStatus s) noexcept;  // "need_more", "done", ... for logs

struct ClientHelloInfo {
  static constexpr std::size_t kMaxAlpn = 16;  // protocols kept for logs; the rest are counted but dropped

  std::string sni;       // lowercased host_name of the server_name extension; empty when none
  bool has_sni = false;
  // The host_name was an IP literal, which RFC 6066 forbids: it is ignored (has_sni stays false, sni
  // empty) rather than rejected, since some non-browser clients send one and it names no other host.
  bool sni_ip_literal = false;
  bool has_ech = false;  // encrypted_client_hello (0xfe0d) present: `sni` is then the outer, public name
  // ALPN protocol names offered, in order, at most kMaxAlpn. Bytes outside printable ASCII (and '\')
  // are written as "\xHH", so the strings are always safe to put in a JSON log.
  std::vector<std::string> alpn;
  std::uint16_t legacy_version = 0;  // ClientHello.legacy_version, e.g. 0x0303
  bool offers_tls13 = false;         // supported_versions lists 0x0304
};

// Feed semantics: feed() takes only the bytes that are new since the previous call (it keeps its
// own copy of what it still needs, never more than max_bytes in total). Any split works, down to one
// byte per call. The status is sticky: once it is not need_more, later calls return it unchanged
// and ignore their bytes. Bytes after the end of the ClientHello are never looked at. The parser
// does not keep the bytes for forwarding: the caller still owns and relays them.
//
// Decisions, so that callers can rely on them:
//  - The first byte is checked as it arrives: anything but 0x16 (handshake record) is not_tls at
//    once; so is a second byte other than 0x03 or a third above 0x04. After those three bytes, any
//    fault is malformed.
//  - Records: every record must be a handshake record with version 0x0300..0x0304, 1..16384 bytes
//    long. The ClientHello may span any number of records (record-layer fragmentation); it must be
//    the first handshake message. Bytes after it in its last record are not examined.
//  - Every length (handshake, session id, cipher suites, compression methods, extensions block, each
//    extension, server_name list, host_name, ALPN list, supported_versions) must fit its container
//    exactly; anything left over inside a length-delimited structure is malformed. No extension type
//    may appear twice.
//  - server_name: entries must be host_name (type 0); another type or a second host_name is
//    malformed. The name must be a DNS name (letters, digits, '-', '_', '.'; labels 1..63 bytes;
//    at most 253 bytes; no trailing dot): otherwise malformed, except a dotted-quad IPv4 literal,
//    which is ignored (see ClientHelloInfo::sni_ip_literal). An empty name is malformed.
//  - No server_name extension (or no extensions at all): done with has_sni = false.
class ClientHelloParser {
 public:
  static constexpr std::size_t kDefaultMaxBytes = 16 * 1024;

  explicit ClientHelloParser(std::size_t max_bytes = kDefaultMaxBytes);

  HelloStatus feed(std::string_view bytes);

  HelloStatus status() const noexcept { return status_; }
  const ClientHelloInfo& info() const noexcept { return info_; }
  // Why not_tls / malformed / too_large (empty otherwise), e.g. "record length 20000 exceeds 16384".
  std::string_view reason() const noexcept { return reason_; }
  // Input bytes consumed so far: through the last byte of the ClientHello once done, through the
  // byte that decided otherwise on a failure. The same however the input was split.
  std::size_t bytes_seen() const noexcept { return seen_; }

 private:
  HelloStatus fail(HelloStatus s, std::string why);
  HelloStatus on_record_header();
  HelloStatus on_handshake_bytes();
  HelloStatus parse_hello(std::string_view body);

  std::size_t max_bytes_;
  std::size_t seen_ = 0;              // input bytes consumed (record headers + fragments)
  std::size_t header_bytes_ = 0;      // of which record headers
  unsigned char header_[5] = {};      // the record header being read
  std::size_t header_len_ = 0;        // bytes of header_ filled
  std::size_t record_left_ = 0;       // fragment bytes of the current record still to come
  std::string handshake_;             // reassembled handshake bytes (header + ClientHello body)
  std::size_t hello_len_ = 0;         // body length from the handshake header, once known
  bool hello_len_known_ = false;
  HelloStatus status_ = HelloStatus::need_more;
  std::string reason_;
  ClientHelloInfo info_;
};

}  // namespace portier::http

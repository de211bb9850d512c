#include "portier/http/client_hello.hpp"

#include <algorithm>
#include <utility>

#include "portier/core/ip.hpp"

namespace portier::http {
namespace {

constexpr std::uint8_t kContentHandshake = 0x16;
constexpr std::uint8_t kHandshakeClientHello = 0x01;
constexpr std::size_t kRecordHeaderBytes = 5;
constexpr std::size_t kHandshakeHeaderBytes = 4;
constexpr std::size_t kMaxRecordFragment = 16384;  // 2^14 (RFC 8446 §5.1)
constexpr std::size_t kRandomBytes = 32;
constexpr std::size_t kMaxSessionIdBytes = 32;
constexpr std::size_t kMaxHostBytes = 253;
constexpr std::size_t kMaxLabelBytes = 63;

constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;
constexpr std::uint16_t kExtEncryptedClientHello = 0xfe0d;
constexpr std::uint8_t kNameTypeHostName = 0;
constexpr std::uint16_t kTls13 = 0x0304;

// "0x16", "0xfe0d": bytes and 16-bit code points as they appear in the RFCs.
std::string hex(std::uint32_t v, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  for (int shift = 4 * (digits - 1); shift >= 0; shift -= 4) out += kDigits[(v >> shift) & 0xf];
  return out;
}

// Bounds-checked big-endian reads over a byte view: a read that does not fit fails (and the caller
// gives up on the message), so nothing is ever read past the end of its container.
class Reader {
 public:
  Reader() = default;
  explicit Reader(std::string_view s) noexcept : s_(s) {}

  bool empty() const noexcept { return s_.empty(); }
  std::size_t size() const noexcept { return s_.size(); }
  std::string_view rest() const noexcept { return s_; }

  bool u8(std::uint8_t& v) noexcept {
    if (s_.empty()) return false;
    v = byte(0);
    s_.remove_prefix(1);
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (s_.size() < 2) return false;
    v = static_cast<std::uint16_t>((byte(0) << 8) | byte(1));
    s_.remove_prefix(2);
    return true;
  }
  bool bytes(std::size_t n, std::string_view& out) noexcept {
    if (s_.size() < n) return false;
    out = s_.substr(0, n);
    s_.remove_prefix(n);
    return true;
  }
  // opaque x<0..2^8-1> / x<0..2^16-1>: a length prefix, then that many bytes.
  bool vec8(Reader& out) noexcept {
    std::uint8_t n = 0;
    std::string_view v;
    if (!u8(n) || !bytes(n, v)) return false;
    out = Reader(v);
    return true;
  }
  bool vec16(Reader& out) noexcept {
    std::uint16_t n = 0;
    std::string_view v;
    if (!u16(n) || !bytes(n, v)) return false;
    out = Reader(v);
    return true;
  }

 private:
  std::uint8_t byte(std::size_t i) const noexcept { return static_cast<std::uint8_t>(s_[i]); }
  std::string_view s_;
};

enum class NameCheck { ok, ip_literal, invalid };

constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

// RFC 6066 §3: "HostName" is an ASCII DNS name without a trailing dot; IP literals are not permitted.
// The same character set as CONNECT authorities (target.cpp); a numeric or "0x" last label is only
// accepted as a (then ignored) IPv4 literal, never guessed at as a name.
NameCheck check_host_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxHostBytes) return NameCheck::invalid;
  if (name.find(':') != std::string_view::npos) {
    auto ip = IpAddress::parse(name);
    return ip && !ip->v4 ? NameCheck::ip_literal : NameCheck::invalid;
  }
  std::size_t label_len = 0;
  std::size_t last_label_start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label_len == 0) return NameCheck::invalid;
      label_len = 0;
      last_label_start = i + 1;
      continue;
    }
    if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_')) return NameCheck::invalid;
    if (++label_len > kMaxLabelBytes) return NameCheck::invalid;
  }
  if (label_len == 0) return NameCheck::invalid;  // empty last label: trailing dot
  const std::string_view last = name.substr(last_label_start);
  const bool numeric = std::all_of(last.begin(), last.end(), is_digit);
  const bool hexish = last.size() > 1 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X');
  if (numeric || hexish) {
    auto ip = IpAddress::parse(name);
    return ip && ip->v4 ? NameCheck::ip_literal : NameCheck::invalid;
  }
  return NameCheck::ok;
}

// ALPN names are opaque bytes; keep printable ASCII and write the rest as \xHH, so logs stay UTF-8.
std::string printable(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += ch;
    } else {
      out += "\\x";
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    }
  }
  return out;
}

// Each extension parser returns an empty string on success, else why it is malformed.
std::string parse_server_name(std::string_view data, ClientHelloInfo& info) {
  Reader ext(data);
  Reader list;
  if (!ext.vec16(list) || !ext.empty()) return "server_name list length does not match the extension";
  if (list.empty()) return "empty server_name list";
  bool seen_host = false;
  while (!list.empty()) {
    std::uint8_t type = 0;
    Reader name;
    if (!list.u8(type)) return "truncated server_name entry";
    if (type != kNameTypeHostName) return "server_name entry of type " + std::to_string(type) + ", not host_name";
    if (!list.vec16(name)) return "host_name length exceeds the server_name list";
    if (seen_host) return "more than one host_name in server_name";
    seen_host = true;
    if (name.empty()) return "empty host_name";
    switch (check_host_name(name.rest())) {
      case NameCheck::invalid:
        return "host_name is not a valid DNS name";
      case NameCheck::ip_literal:
        info.sni_ip_literal = true;
        break;
      case NameCheck::ok:
        info.has_sni = true;
        info.sni.reserve(name.size());
        for (char c : name.rest()) info.sni += lower(c);
        break;
    }
  }
  return {};
}

std::string parse_alpn(std::string_view data, ClientHelloInfo& info) {
  Reader ext(data);
  Reader list;
  if (!ext.vec16(list) || !ext.empty()) return "ALPN list length does not match the extension";
  if (list.empty()) return "empty ALPN list";
  while (!list.empty()) {
    Reader name;
    if (!list.vec8(name)) return "ALPN protocol name exceeds the list";
    if (name.empty()) return "empty ALPN protocol name";
    if (info.alpn.size() < ClientHelloInfo::kMaxAlpn) info.alpn.push_back(printable(name.rest()));
  }
  return {};
}

std::string parse_supported_versions(std::string_view data, ClientHelloInfo& info) {
  Reader ext(data);
  Reader list;
  if (!ext.vec8(list) || !ext.empty()) return "supported_versions length does not match the extension";
  if (list.empty() || list.size() % 2 != 0) return "supported_versions list length is not a positive even number";
  while (!list.empty()) {
    std::uint16_t v = 0;
    (void)list.u16(v);  // cannot fail: the size is even
    if (v == kTls13) info.offers_tls13 = true;
  }
  return {};
}

}  // namespace

const char* hello_status_name(HelloStatus s) noexcept {
  switch (s) {
    case HelloStatus::need_more: return "need_more";
    case HelloStatus::done: return "done";
    case HelloStatus::not_tls: return "not_tls";
    case HelloStatus::malformed: return "malformed";
    case HelloStatus::too_large: return "too_large";
  }
  return "unknown";
}

ClientHelloParser::ClientHelloParser(std::size_t max_bytes) : max_bytes_(max_bytes) {}

HelloStatus ClientHelloParser::fail(HelloStatus s, std::string why) {
  status_ = s;
  reason_ = std::move(why);
  info_ = ClientHelloInfo{};
  handshake_.clear();
  handshake_.shrink_to_fit();
  return s;
}

HelloStatus ClientHelloParser::feed(std::string_view in) {
  while (status_ == HelloStatus::need_more && !in.empty() && seen_ < max_bytes_) {
    if (record_left_ == 0) {
      // A record header, one byte at a time so that a non-TLS stream is refused on its first byte.
      const auto b = static_cast<std::uint8_t>(in.front());
      in.remove_prefix(1);
      ++seen_;
      ++header_bytes_;
      const bool first_record = header_bytes_ <= kRecordHeaderBytes;
      const HelloStatus bad = first_record ? HelloStatus::not_tls : HelloStatus::malformed;
      if (header_len_ == 0 && b != kContentHandshake) {
        return fail(bad, first_record ? "first byte " + hex(b, 2) + " is not a TLS handshake record"
                                      : "record of type " + std::to_string(b) + " inside the ClientHello");
      }
      if (header_len_ == 1 && b != 0x03) return fail(bad, "record version major " + std::to_string(b) + " is not 3");
      if (header_len_ == 2 && b > 0x04) return fail(bad, "record version minor " + std::to_string(b) + " is above 4");
      header_[header_len_++] = b;
      if (header_len_ == kRecordHeaderBytes) {
        header_len_ = 0;
        if (on_record_header() != HelloStatus::need_more) return status_;
      }
      continue;
    }
    // Fragment bytes: take no more than the record holds, the handshake still needs, or the budget allows
    // (the type byte alone first, so a verdict always lands on the same byte however the input is split).
    const std::size_t want = hello_len_known_   ? kHandshakeHeaderBytes + hello_len_ - handshake_.size()
                             : handshake_.empty() ? 1
                                                  : kHandshakeHeaderBytes - handshake_.size();
    const std::size_t n = std::min({record_left_, in.size(), want, max_bytes_ - seen_});
    handshake_.append(in.data(), n);
    in.remove_prefix(n);
    record_left_ -= n;
    seen_ += n;
    if (on_handshake_bytes() != HelloStatus::need_more) return status_;
  }
  if (status_ == HelloStatus::need_more && seen_ >= max_bytes_) {
    return fail(HelloStatus::too_large, "ClientHello does not end within " + std::to_string(max_bytes_) + " bytes");
  }
  return status_;
}

HelloStatus ClientHelloParser::on_record_header() {
  const std::size_t len = (static_cast<std::size_t>(header_[3]) << 8) | header_[4];
  // RFC 8446 §5.1 / RFC 5246 §6.2.1: no zero-length handshake fragments, none above 2^14.
  if (len == 0) return fail(HelloStatus::malformed, "zero-length handshake record");
  if (len > kMaxRecordFragment) {
    return fail(HelloStatus::malformed,
                "record length " + std::to_string(len) + " exceeds " + std::to_string(kMaxRecordFragment));
  }
  record_left_ = len;
  return status_;
}

HelloStatus ClientHelloParser::on_handshake_bytes() {
  if (!hello_len_known_) {
    if (!handshake_.empty() && static_cast<std::uint8_t>(handshake_[0]) != kHandshakeClientHello) {
      return fail(HelloStatus::malformed, "first handshake message is of type " +
                                              std::to_string(static_cast<std::uint8_t>(handshake_[0])) +
                                              ", not client_hello");
    }
    if (handshake_.size() < kHandshakeHeaderBytes) return status_;
    hello_len_ = (static_cast<std::size_t>(static_cast<std::uint8_t>(handshake_[1])) << 16) |
                 (static_cast<std::size_t>(static_cast<std::uint8_t>(handshake_[2])) << 8) |
                 static_cast<std::uint8_t>(handshake_[3]);
    hello_len_known_ = true;
    // The record headers read so far plus the whole message are a lower bound on what is needed.
    if (header_bytes_ + kHandshakeHeaderBytes + hello_len_ > max_bytes_) {
      return fail(HelloStatus::too_large, "ClientHello of " + std::to_string(hello_len_) + " bytes exceeds the " +
                                              std::to_string(max_bytes_) + "-byte limit");
    }
    handshake_.reserve(kHandshakeHeaderBytes + hello_len_);
  }
  if (handshake_.size() < kHandshakeHeaderBytes + hello_len_) return status_;
  return parse_hello(std::string_view(handshake_).substr(kHandshakeHeaderBytes, hello_len_));
}

HelloStatus ClientHelloParser::parse_hello(std::string_view body) {
  auto bad = [this](std::string why) { return fail(HelloStatus::malformed, std::move(why)); };
  ClientHelloInfo info;
  Reader r(body);
  std::string_view skipped;
  Reader vec;

  if (!r.u16(info.legacy_version)) return bad("truncated legacy_version");
  if ((info.legacy_version >> 8) != 0x03) return bad("legacy_version " + hex(info.legacy_version, 4));
  if (!r.bytes(kRandomBytes, skipped)) return bad("truncated random");
  if (!r.vec8(vec)) return bad("session id length exceeds the ClientHello");
  if (vec.size() > kMaxSessionIdBytes) return bad("session id longer than 32 bytes");
  if (!r.vec16(vec)) return bad("cipher suites length exceeds the ClientHello");
  if (vec.empty() || vec.size() % 2 != 0) return bad("cipher suites length is not a positive even number");
  if (!r.vec8(vec)) return bad("compression methods length exceeds the ClientHello");
  if (vec.empty()) return bad("no compression methods");

  if (!r.empty()) {  // extensions are optional before TLS 1.3: a hello may end here
    Reader exts;
    if (!r.vec16(exts)) return bad("extensions length exceeds the ClientHello");
    if (!r.empty()) return bad(std::to_string(r.size()) + " trailing bytes after the extensions");
    std::vector<std::uint16_t> types;
    while (!exts.empty()) {
      std::uint16_t type = 0;
      Reader data;
      if (!exts.u16(type)) return bad("truncated extension type");
      if (!exts.vec16(data)) return bad("extension " + hex(type, 4) + " length exceeds the extensions block");
      types.push_back(type);
      std::string why;
      switch (type) {
        case kExtServerName: why = parse_server_name(data.rest(), info); break;
        case kExtAlpn: why = parse_alpn(data.rest(), info); break;
        case kExtSupportedVersions: why = parse_supported_versions(data.rest(), info); break;
        case kExtEncryptedClientHello: info.has_ech = true; break;
        default: break;
      }
      if (!why.empty()) return bad(std::move(why));
    }
    std::sort(types.begin(), types.end());
    if (auto dup = std::adjacent_find(types.begin(), types.end()); dup != types.end()) {
      return bad("extension " + hex(*dup, 4) + " appears twice");
    }
  }

  info_ = std::move(info);
  status_ = HelloStatus::done;
  reason_.clear();
  handshake_.clear();
  handshake_.shrink_to_fit();
  return status_;
}

}  // namespace portier::http

#pragma once
// The URL of a parent proxy, as an admin writes it in an egress exit:
//   http://[user:password@]host:port     HTTP proxy: CONNECT for tunnels, absolute-form for plain HTTP
//   https://[user:password@]host:port    the same over TLS to the parent
//   socks5://[user:password@]host:port   SOCKS5 (RFC 1928), user/password auth (RFC 1929);
//                                        target names are sent to the parent, not resolved here
// The port is required (proxies have no single default port). User and password are
// percent-decoded; an optional trailing "/" is accepted, any other path, query or fragment is not.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "portier/core/error.hpp"
#include "portier/http/target.hpp"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace portier::http {

enum class ProxyScheme { http, https, socks5 };
const char* proxy_scheme_name(ProxyScheme s) noexcept;  // "http", "https", "socks5"

// How we check an https:// parent (set from the hop's object in the config, not from the URL).
struct ParentTls {
  std::string ca_file;      // verify against these CAs instead of the system store
  bool verify = true;       // false: any certificate is accepted (explicit, per upstream)
  std::string server_name;  // the name to verify and send as SNI; empty = the URL's host
  std::string pointer;      // where the hop was configured, for error messages
  std::shared_ptr<ssl_ctx_st> context;  // built by config::compile for https:// hops
};

struct ProxyUrl {
  ProxyScheme scheme = ProxyScheme::http;
  Authority authority;   // host lowercased, IPv6 without brackets
  std::string user;      // decoded; empty = no credentials
  std::string password;  // decoded
  ParentTls tls;         // https:// only

  bool has_credentials() const noexcept { return !user.empty(); }
  // "http://127.0.0.1:3128": what logs and messages show. Never the credentials.
  std::string label() const;
};

// Errors (errc::bad_request) say what is wrong without echoing the password:
//   "unsupported scheme \"ftp\": use http://, https:// or socks5://"
Result<ProxyUrl> parse_proxy_url(std::string_view text);

}  // namespace portier::http

#pragma once
// The proxy auto-config (PAC) script browsers fetch to learn which destinations go DIRECT and which
// through portier. Pure text work, like the block page: the config says what goes DIRECT, the
// script is generated once per config snapshot, and only the proxy list (which may depend on the
// address the browser fetched the script from) is filled in per request.
//
// It lives in policy because it is the browser's half of "where does this request go", and because
// policy is pure by construction (no Asio), so the generator is a plain function under unit tests.
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "portier/core/ip.hpp"

namespace portier::policy {

// One proxy the script names: "PROXY host:port", or "HTTPS host:port" for a proxy that speaks TLS
// to its clients (a listener with "tls").
struct PacProxy {
  std::string address;  // "proxy.corp.example:3128", "10.0.0.5:3128", "[fd00::5]:3128"
  bool https = false;
  bool operator==(const PacProxy&) const = default;
};

// What goes DIRECT. Checked in this order; whatever is left goes to the proxies.
struct PacRules {
  // Always first: localhost, *.localhost, 127.0.0.0/8 and ::1 (the browser's own machine, never
  // the proxy's).
  bool plain_hosts = true;               // names without a dot ("intranet", "printer")
  std::vector<std::string> domains;      // "corp.example": the domain and every subdomain (lowercase)
  std::vector<std::string> subdomains;   // "corp.example" written as "*.corp.example": subdomains only
  std::vector<Cidr> networks;            // IPv4 ranges: hosts that are IPv4 literals in them (no DNS)
  // IPv4 literals in the private ranges (kPrivateRanges) portier's SSRF guard refuses go DIRECT ...
  bool private_networks = true;
  std::vector<Cidr> proxied_networks;    // ... except these (ssrf.allow: the proxy may reach them)
  bool fallback_direct = false;          // "PROXY a:1; DIRECT": browsers go direct when no proxy answers
};

// The private IPv4 ranges PacRules::private_networks sends DIRECT: RFC 1918, link-local, CGNAT.
inline constexpr std::string_view kPrivateRanges[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                      "169.254.0.0/16", "100.64.0.0/10"};

// The generated script with the proxy list left open.
class PacScript {
 public:
  PacScript() = default;
  PacScript(std::string head, std::string tail, bool fallback_direct)
      : head_(std::move(head)), tail_(std::move(tail)), fallback_direct_(fallback_direct) {}
  // The whole script for these proxies (in order: browsers try the next when one does not answer).
  std::string text(std::span<const PacProxy> proxies) const;

 private:
  std::string head_;  // ends with "var PROXY = "
  std::string tail_;  // starts with ";"
  bool fallback_direct_ = false;
};

// The MIME type browsers expect, and how long they may keep the script: a reload reaches them
// within five minutes (browsers also fetch it again when their network changes).
inline constexpr std::string_view kPacContentType = "application/x-ns-proxy-autoconfig";
inline constexpr std::string_view kPacCacheControl = "max-age=300";

// Generates the script. Domains must be valid DNS names and networks IPv4 (config checks both);
// every value is written as an escaped JavaScript string anyway.
PacScript render_pac(const PacRules& rules);

// The value FindProxyForURL returns for the proxies: "PROXY a:3128; HTTPS b:3129", then "; DIRECT"
// with fallback_direct. No proxies: "DIRECT".
std::string pac_proxy_list(std::span<const PacProxy> proxies, bool fallback_direct);

// A listener's addresses as the script names them when the config names no proxy.
struct PacListener {
  std::vector<SocketAddress> addresses;  // as bound (port 0 resolved)
  bool https = false;
};

// Every address of every listener, in order, duplicates left out; a wildcard address (0.0.0.0,
// [::]) becomes reached_host (the host the browser fetched the script from: a name, an IPv4
// literal or an IPv6 literal without brackets) with the listener's port.
std::vector<PacProxy> derived_proxies(std::span<const PacListener> listeners, std::string_view reached_host);

// s as a double-quoted JavaScript string literal: quotes, backslashes, and every byte that is not
// printable ASCII escaped (\xHH), so nothing can end the string or the script.
std::string js_string(std::string_view s);

}  // namespace portier::policy

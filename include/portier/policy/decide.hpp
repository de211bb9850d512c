#pragma once
// The policy decision is a pure function of facts: no I/O, no clock, no randomness. Everything it
// needs (time, client address, credentials, the request head) comes in RequestFacts, and every
// rule is compiled into PolicySnapshot at config load.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "portier/core/ip.hpp"

namespace portier::policy {

struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  bool contains(std::uint16_t p) const noexcept { return p >= first && p <= last; }
};

struct PolicySnapshot {
  std::vector<PortRange> connect_ports{{443, 443}};  // CONNECT is allowed to these ports only
};

struct RequestFacts {
  std::string_view listener;
  IpAddress client;
  std::string_view method;
  bool is_connect = false;
  std::string_view host;  // lowercased target host (no brackets)
  std::uint16_t port = 0;
  std::string_view path;  // empty for CONNECT
  std::int64_t now_unix_ms = 0;
};

// How to reach the target. Only direct exists today; upstream chains come with egress regions.
struct Route {
  std::string egress = "direct";
};

struct Tunnel { Route route; };
struct Forward { Route route; };
struct Deny {
  int status = 403;
  std::string rule;    // id of the rule that denied ("connect_ports" for the built-in port check)
  std::string reason;  // shown to the client and logged
};
struct Challenge { std::string realm; };
struct Answer {
  int status = 200;
  std::string content_type;
  std::string body;
};

using Decision = std::variant<Tunnel, Forward, Deny, Challenge, Answer>;

Decision decide(const RequestFacts& facts, const PolicySnapshot& snap) noexcept;

// "tunnel", "forward", "deny", "challenge", "answer" for logs.
const char* decision_name(const Decision& d) noexcept;

}  // namespace portier::policy

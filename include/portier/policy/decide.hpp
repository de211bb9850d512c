#pragma once
// The policy decision is a pure function of facts: no I/O, no clock, no randomness. Everything it
// needs (time, client address, verified user, the request head, the tunnel's SNI) comes in
// RequestFacts, and every rule is compiled into PolicySnapshot at config load.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "portier/core/ip.hpp"
#include "portier/policy/egress.hpp"

namespace re2 {
class RE2;
}

namespace portier::policy {

struct PortRange {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  bool contains(std::uint16_t p) const noexcept { return p >= first && p <= last; }
};

// What a list lookup found. `failed` means the list could not answer (a regex list whose RE2 DFA ran
// out of its memory budget on this text); decide then fails closed: a deny rule using the list
// holds, an allow or egress rule does not.
struct ListLookup {
  enum class Kind { miss, hit, failed };
  Kind kind = Kind::miss;
  std::string entry;  // hit: the entry as "file:line"; failed: why, for the log

  static ListLookup miss() { return {}; }
  static ListLookup hit(std::string entry) { return {Kind::hit, std::move(entry)}; }
  static ListLookup failed(std::string why) { return {Kind::failed, std::move(why)}; }
};

// A named list compiled at load (domain suffix set or RE2 set). Matching returns the entry that
// matched, as "file:line", for the access log.
class MatchList {
 public:
  virtual ~MatchList() = default;
  // Domain lists match a host and its parent domains; regex lists match the text as given.
  virtual ListLookup match(std::string_view text) const = 0;
  // True for domain lists (matched against hosts); false for regex lists (matched against the URL
  // for plain HTTP, and against the host for CONNECT, which has no URL).
  virtual bool matches_hosts() const noexcept = 0;
};

// Local time of the request as minutes since Monday 00:00 (0 .. 7*1440-1). The session computes it
// from its clock and the configured time zone; tests pass any value.
using MinuteOfWeek = int;

struct TimeWindow {
  std::uint8_t days = 0x7f;  // bit 0 = Monday ... bit 6 = Sunday
  int from = 0;              // minutes of the day, inclusive
  int to = 1440;             // exclusive; to < from wraps past midnight (22:00-06:00)
  bool contains(MinuteOfWeek m) const noexcept;
};

// Every field that is set must hold. Empty vectors / null pointers are "any".
struct Condition {
  std::vector<std::string> listeners;
  std::vector<std::string> users;
  std::vector<std::string> groups;
  std::vector<Cidr> clients;
  std::vector<std::string> methods;  // uppercase
  std::shared_ptr<const re2::RE2> host;  // against the target host and, for tunnels, the SNI
  std::vector<std::shared_ptr<const MatchList>> lists;  // any of them
  std::shared_ptr<const re2::RE2> url;   // full URL of plain HTTP requests; never matches CONNECT
  std::vector<PortRange> ports;
  std::vector<TimeWindow> times;  // any of them
  bool empty() const noexcept;
};

enum class Action { allow, deny, egress };

struct Rule {
  std::string id;
  Condition when;
  std::optional<Condition> unless;  // the rule applies when `when` holds and `unless` does not
  Action action = Action::allow;
  std::string reason;    // deny: shown on the block page and logged
  std::string category;  // deny: shown on the block page
  std::string egress;    // egress: region name (used by egress selection)
};

enum class AuthMode { off, optional, required };
enum class RefuseMode { forbid, close };  // what unknown client networks get: 403 or a closed connection

struct ListenerPolicy {
  std::string name;
  AuthMode auth = AuthMode::off;
  std::vector<Cidr> trusted;        // these clients need no credentials
  std::vector<Cidr> allow_clients;  // when not empty, other clients are refused
  RefuseMode refuse = RefuseMode::forbid;
};

struct PolicySnapshot {
  std::vector<Rule> rules;  // first match wins
  Action default_action = Action::allow;
  std::vector<ListenerPolicy> listeners;
  std::string realm = "portier";
  bool sni_must_match = true;  // deny tunnels whose SNI names another host than the CONNECT authority
  bool uses_time = false;      // some rule has a time window: only then does the session read the clock's local time
  EgressPolicy egress;         // regions, who may pick them, user and group defaults

  const ListenerPolicy* listener(std::string_view name) const noexcept;
};

struct RequestFacts {
  std::string_view listener;
  IpAddress client;
  std::string_view method;
  bool is_connect = false;
  std::string_view host;  // lowercased target host (no brackets)
  std::uint16_t port = 0;
  std::string_view path;  // empty for CONNECT
  std::string_view url;   // full absolute URL of plain HTTP requests; empty for CONNECT
  std::string_view sni;   // tunnels: SNI of the client's ClientHello, when one was read
  // Authentication as verified by the session: credentials_present says a Proxy-Authorization
  // header came; user is set only when the credentials were verified.
  bool credentials_present = false;
  std::string_view user;
  const std::vector<std::string>* groups = nullptr;  // groups of `user`
  MinuteOfWeek minute_of_week = 0;
  // Parameters the session parsed from the proxy user name (parse_username); empty / nullopt when
  // not given. username_error is the parse error's message: decide answers it with a 400.
  std::string_view asked_region;
  std::string_view session_id;
  std::optional<unsigned> sesstime;
  std::string_view username_error;
};

// How to reach the target: the region to leave through and the sticky session inside it. Which
// exit of the region serves the request is the session's choice (it knows their health); with a
// session it uses rendezvous_pick on user + session so the same exit serves it every time.
struct Route {
  std::string region{kDirectRegion};
  // What chose the region, for the access log: "username", "rule", "user", "group" or "default".
  std::string_view chosen_by = "default";
  std::string session;              // sticky session id from the user name; empty: none
  unsigned session_minutes = 0;     // how long the session sticks; 0 without a session
};

struct Tunnel {
  Route route;
  std::string rule;  // id of the rule that allowed, empty for the default
};
struct Forward {
  Route route;
  std::string rule;
};
struct Deny {
  int status = 403;
  std::string rule;      // id of the rule that denied ("client_network", "sni_mismatch", ...)
  std::string reason;    // shown to the client and logged
  std::string category;  // shown on the block page
  std::string entry;     // list entry that matched, "file:line", when a list decided
  bool close = false;    // close the connection without an answer (refused networks, on request)
};
struct Challenge { std::string realm; };
struct Answer {
  int status = 200;
  std::string content_type;
  std::string body;
};

using Decision = std::variant<Tunnel, Forward, Deny, Challenge, Answer>;

Decision decide(const RequestFacts& facts, const PolicySnapshot& snap) noexcept;

// decide()'s first check alone: a client the listener's allow_clients refuses (and trusted does not
// admit). For answers that are not proxying, such as the PAC script.
std::optional<Deny> refuse_client(const RequestFacts& facts, const PolicySnapshot& snap) noexcept;

// "tunnel", "forward", "deny", "challenge", "answer" for logs.
const char* decision_name(const Decision& d) noexcept;

// The rules a config without a "rules" key gets: CONNECT only to port 443.
std::vector<Rule> default_rules();

}  // namespace portier::policy

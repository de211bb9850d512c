#pragma once
// JSON config -> validated Config (every error reported with its JSON pointer) -> compiled,
// immutable Snapshot shared by all sessions. A bad file never replaces a good snapshot.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "portier/core/ip.hpp"
#include "portier/http/codec.hpp"
#include "portier/http/proxy_url.hpp"
#include "portier/policy/decide.hpp"
#include "portier/policy/egress.hpp"
#include "portier/policy/pac.hpp"
#include "portier/policy/users.hpp"

namespace portier::config {

// forward: a proxy for clients configured with its address; reverse: stands in front of the
// organisation's servers (/reverse routes and pools); redirect: answers every request with a
// redirect to the same URL over https.
enum class ListenerMode { forward, reverse, redirect };

// "redirect" of a redirect listener.
struct Redirect {
  std::uint16_t https_port = 443;  // left out of the Location when 443
  int status = 308;                // 301, 302, 307 or 308
};

// One certificate of a TLS listener.
struct Certificate {
  std::string cert_file;  // PEM, the certificate chain (relative paths: to the config file)
  std::string key_file;   // PEM, its private key
  std::string pointer;    // of its object: ".../tls/certificates/1", or ".../tls" for the single form
};

// "tls" of a listener: clients speak TLS to it (an HTTPS proxy). The first certificate is the
// default; the others are chosen by the server name (SNI) the client sends.
struct ListenerTls {
  std::vector<Certificate> certificates;  // at least one
  std::string ciphers;       // TLS 1.2 cipher list, OpenSSL syntax; "" = OpenSSL's default
  std::string ciphersuites;  // TLS 1.3 cipher suites, OpenSSL syntax; "" = OpenSSL's default
  std::string pointer;
};

struct Listener {
  std::string name;
  std::vector<SocketAddress> listen;
  ListenerMode mode = ListenerMode::forward;
  policy::AuthMode auth = policy::AuthMode::off;  // "auth": "off" | "optional" | "required"
  std::vector<Cidr> trusted;                      // "trusted": clients that need no credentials
  std::vector<Cidr> allow_clients;                // "allow_clients": when set, other clients are refused
  policy::RefuseMode refuse = policy::RefuseMode::forbid;  // "refuse": "403" | "close"
  std::optional<ListenerTls> tls;
  Redirect redirect;
};

// "auth": users and groups.
struct Auth {
  std::string realm = "portier";
  std::string users_file;  // htpasswd; relative paths are relative to the config file
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;  // group -> users, in file order
  std::chrono::milliseconds cache_ttl{300000};  // verified credentials are remembered this long
  unsigned max_failures = 10;                    // failed attempts per client address within the window ...
  std::chrono::milliseconds failure_window{60000};
  std::chrono::milliseconds block{60000};        // ... before it is refused for this long
};

enum class ListKind { domain, regex };

// "lists": {"name": {"file": ..., "match": "domain" | "regex", "max_mem_mb": 64}}
struct ListConfig {
  std::string name;
  std::string file;  // relative paths are relative to the config file
  ListKind kind = ListKind::domain;
  std::size_t max_mem_mb = 64;  // regex lists: RE2 memory budget
  std::string pointer;          // where it was declared, for error messages
};

// One condition block of a rule, as written (compiled into policy::Condition).
struct ConditionConfig {
  std::vector<std::string> listeners, users, groups, methods, lists;
  std::vector<Cidr> clients;
  std::string host;  // RE2, empty = any
  std::string url;   // RE2, empty = any
  std::vector<policy::PortRange> ports;
  std::vector<policy::TimeWindow> times;
};

struct RuleConfig {
  std::string id;
  ConditionConfig when;
  std::optional<ConditionConfig> unless;
  policy::Action action = policy::Action::allow;
  std::string reason, category, egress;
  std::string pointer;  // "/rules/3"
};

struct Policy {
  std::optional<std::vector<RuleConfig>> rules;  // absent: the built-in default (CONNECT to connect_ports only)
  policy::Action default_action = policy::Action::allow;  // "default_action": "allow" | "deny"
  std::string block_page;  // HTML template file; empty = built-in
  bool sni_must_match = true;  // "sni": {"require_match": true}
  // "sni": {"wait_ms": 1000}: how long a tunnel waits for the client's first bytes (its ClientHello)
  // before it goes on without an SNI; only server-speaks-first protocols (SMTP, SSH) wait that long.
  std::chrono::milliseconds sni_wait{1000};
  bool time_utc = false;       // "time": {"zone": "local" | "UTC"}
  std::optional<policy::MinuteOfWeek> time_override;  // "time": {"override": "mon 09:30"} (tests)
};

struct AccessLog {
  std::string path = "-";  // "-" = stdout, "" or "off" = no access log
  bool log_query = false;  // query strings are left out of logged paths unless on
};

// "error_log": what portier writes to stderr. Lines below `level` are left out.
struct ErrorLog {
  std::string level = "info";  // "debug" | "info" | "warning" | "error"
};

struct Forward {
  std::string via = "1.1 portier";  // "" = no Via header
  bool x_forwarded_for = false;
  std::vector<policy::PortRange> connect_ports{{443, 443}};
};

struct Timeouts {
  std::chrono::milliseconds header{10000};          // whole request head must arrive within this
  std::chrono::milliseconds keepalive{60000};       // idle client connection between requests
  std::chrono::milliseconds connect{5000};          // per address attempt
  std::chrono::milliseconds response{60000};        // upstream response head (and gaps in its body)
  std::chrono::milliseconds tunnel_idle{300000};    // no bytes either way
  std::chrono::milliseconds shutdown_grace{10000};  // SIGTERM: time for requests and tunnels to finish
};

// "limits" beyond the request head: client connections, and each user's request rate and bandwidth.
// A user is the verified proxy user; a request without one is counted by its client address.
// 0 means no limit everywhere.
struct TrafficLimits {
  std::size_t max_connections = 0;             // open client connections, whole process
  std::size_t max_connections_per_client = 0;  // open client connections from one address
  double requests_per_second = 0;              // "per_user": token bucket; over it: 429 + Retry-After
  double request_burst = 0;                    // default: max(1, requests_per_second)
  std::uint64_t bytes_per_second = 0;          // "per_user": each direction, tunnels and bodies, shaped
  std::uint64_t burst_bytes = 0;               // default: bytes_per_second (one second's worth)
  std::vector<std::string> exempt_groups;      // members are never rate-limited or shaped
  std::chrono::milliseconds log_interval{60000};  // one "limit reached" line per limit and interval
  bool per_user() const noexcept { return requests_per_second > 0 || bytes_per_second > 0; }
};

struct OriginPool {
  std::size_t max_idle_per_host = 128;
  std::size_t max_idle_total = 2048;  // per worker thread
  std::chrono::milliseconds idle{30000};
};

// ---- "egress": regions of exits, and how a request picks one ----------------------------------

// An exit: direct (optionally from a source address) or a chain of parent proxies, tunnelled
// through each hop in turn.
struct ExitConfig {
  std::string name;                  // unique across all regions; default "<region>-<n>"
  std::vector<http::ProxyUrl> hops;  // empty = direct
  std::optional<IpAddress> bind;     // source address of the connection this exit opens
  unsigned weight = 1;               // weighted balancing and sticky sessions; 0 = standby only
  bool connect_all = false;          // "http_forward": "connect": plain HTTP too goes through CONNECT
  std::string pointer;
};

enum class Balance { round_robin, least_conn, weighted_random };
enum class OnExitDown { failover, strict };

// Active health checks of a region's exits.
struct ProbeConfig {
  bool enabled = false;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};
  unsigned rise = 2;  // consecutive successes to come back
  unsigned fall = 3;  // consecutive failures to go down
  std::optional<http::Authority> target;  // CONNECT through the chain to this; none = a TCP connect to the first hop
};

struct RegionConfig {
  std::string name;
  std::vector<ExitConfig> exits;
  Balance balance = Balance::round_robin;
  OnExitDown on_exit_down = OnExitDown::failover;
  std::vector<std::string> fallback;  // regions tried in order when no exit here is healthy
  policy::Audience audience;          // who may pick it by user name parameter (empty = anyone)
  ProbeConfig probe;
  std::string pointer;
};

struct Egress {
  std::string default_region{policy::kDirectRegion};
  std::vector<RegionConfig> regions;
  std::vector<std::pair<std::string, std::string>> user_region;   // user -> region
  std::vector<std::pair<std::string, std::string>> group_region;  // group -> region, config order
  policy::UsernameGrammar username;
  policy::Audience username_audience;
  unsigned session_default_minutes = 10;
  unsigned session_max_minutes = 1440;
  std::size_t max_sessions = 100000;  // sticky-session table entries per process
  unsigned fail_after = 3;            // passive health: consecutive connect failures ...
  std::chrono::milliseconds down_for{30000};  // ... mark an exit down this long

  const RegionConfig* region(std::string_view name) const noexcept;
};

// ---- "reverse": routes to pools of backends (reverse listeners) -----------------------------------

enum class HostHeader { preserve, backend, fixed };

struct RouteConfig {
  std::string name;                    // default "/reverse/routes/<i>"
  std::vector<std::string> listeners;  // empty = every reverse listener
  std::string host;                    // "" any; "app.example"; "*.example.com"
  std::string path = "/";              // prefix
  std::string path_regex;              // RE2 on the normalized path; empty = none
  std::string pool;
  HostHeader host_header = HostHeader::preserve;
  std::string host_value;              // HostHeader::fixed
  bool strip_prefix = false;
  std::optional<std::chrono::milliseconds> connect_timeout;   // default: /timeouts
  std::optional<std::chrono::milliseconds> response_timeout;  // default: /timeouts
  std::string pointer;
};

enum class PoolBalance { round_robin, least_conn, weighted, hash_client, hash_header };

// Active HTTP checks of a pool's backends.
struct HealthCheckConfig {
  bool enabled = false;
  std::string path;  // "GET <path>"
  std::string host;  // Host header; empty = the backend's address
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds timeout{2000};
  int expect_low = 200;   // a status in [low, high] is a success
  int expect_high = 399;
  unsigned rise = 2;
  unsigned fall = 3;
};

struct BackendConfig {
  // The backend as a hop: http://host:port, or https://host:port with ParentTls (verification,
  // server name, the context built by compile) when the pool speaks TLS to it.
  http::ProxyUrl url;
  unsigned weight = 1;
  std::string address;  // "host:port" as logged
  std::string pointer;
};

struct PoolConfig {
  std::string name;
  PoolBalance balance = PoolBalance::round_robin;
  std::string hash_header;  // PoolBalance::hash_header
  std::vector<BackendConfig> backends;
  HealthCheckConfig health;
  unsigned fail_after = 1;                   // passive: connect failures in a row ...
  std::chrono::milliseconds down_for{10000};  // ... take a backend out this long
  std::string pointer;
};

struct Reverse {
  std::vector<Cidr> trusted_proxies;  // their X-Forwarded-* and Forwarded are kept (appended to)
  std::vector<RouteConfig> routes;
  std::vector<PoolConfig> pools;
  const PoolConfig* pool(std::string_view name) const noexcept;
};

// "admin": the operators' endpoint (metrics, health, config, reload). Off unless configured.
struct Admin {
  bool enabled = false;
  SocketAddress listen;      // default 127.0.0.1:9090
  std::string token;         // when set, every request needs "Authorization: Bearer <token>"
};

// "pac": the proxy auto-config script browsers fetch (GET <path>). The admin endpoint always serves
// it (without its token: browsers cannot send one); forward listeners only when "listeners" says so.
struct Pac {
  std::string path = "/proxy.pac";
  bool all_listeners = false;             // "listeners": true: every forward listener serves it
  std::vector<std::string> listeners;     // "listeners": [...]: these forward listeners serve it
  std::vector<policy::PacProxy> proxies;  // "proxy"; empty = derived from the address the browser used
  policy::PacRules rules;                 // "direct" and the switches; compile adds ssrf.allow's ranges
  bool served_on(const Listener& l) const noexcept;
};

struct Config {
  std::string base_dir;  // directory of the config file: relative paths start here
  std::string source;    // the JSON text it was loaded from (the admin endpoint shows it, redacted)
  unsigned workers = 0;  // 0 = one per core
  std::vector<Listener> listeners;
  Auth auth;
  std::vector<ListConfig> lists;
  Policy policy;
  AccessLog access_log;
  ErrorLog error_log;
  Forward forward;
  std::vector<Cidr> ssrf_allow;  // internal ranges an admin opens on purpose
  Timeouts timeouts;
  Egress egress;
  http::Limits limits;
  TrafficLimits traffic;  // also under "limits"
  OriginPool origin_pool;
  Reverse reverse;
  Admin admin;
  Pac pac;
};

struct ConfigError {
  std::string pointer;  // JSON pointer, "" for the whole document
  std::string message;  // "expected ..., got ..."
};
// "config error: /listeners/0/listen/1: expected \"ip:port\", got \"foo\"" (pointer "/" printed for "")
std::string format_error(const ConfigError& e);

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // all of them, in document order
};

LoadResult parse_config(std::string_view json_text);
LoadResult load_config_file(const std::string& path);

// Compiled, immutable view used by sessions.
struct Snapshot {
  Config config;
  policy::PolicySnapshot policy;
  CidrSet ssrf_allow;
  CidrSet reverse_trusted;  // /reverse/trusted_proxies
  std::shared_ptr<const policy::UsersFile> users;  // null when auth has no users_file
  std::unordered_map<std::string, std::vector<std::string>> user_groups;  // user -> groups
  std::string block_page;  // the template's text (built-in when not configured)
  // TLS server contexts of the listeners that have "tls", by listener name (certificates are
  // re-read on reload like everything else).
  std::unordered_map<std::string, std::shared_ptr<ssl_ctx_st>> listener_tls;
  // The PAC script, generated once per snapshot; pac_text is the whole script when the config
  // names the proxies, else empty and the proxy list is filled in per request (session/pac.hpp).
  policy::PacScript pac;
  std::string pac_text;
};

struct CompileResult {
  std::shared_ptr<const Snapshot> snapshot;  // set only when errors is empty
  std::vector<ConfigError> errors;           // every list line, pattern and users-file error
};

// Loads what the config names (lists, users file, block page), compiles the rules, and reports
// every error: pointer for config values, "file:line" for list and users-file lines.
CompileResult compile(Config config);

// load_config_file + compile: what --check, start-up and reload do.
CompileResult load_and_compile(const std::string& path);

}  // namespace portier::config

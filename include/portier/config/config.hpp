#pragma once
// JSON config -> validated Config (every error reported with its JSON pointer) -> compiled,
// immutable Snapshot shared by all sessions. A bad file never replaces a good snapshot.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "portier/core/ip.hpp"
#include "portier/http/codec.hpp"
#include "portier/policy/decide.hpp"

namespace portier::config {

enum class ListenerMode { forward };

struct Listener {
  std::string name;
  std::vector<SocketAddress> listen;
  ListenerMode mode = ListenerMode::forward;
};

struct AccessLog {
  std::string path = "-";  // "-" = stdout, "" or "off" = no access log
  bool log_query = false;  // query strings are left out of logged paths unless on
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

struct OriginPool {
  std::size_t max_idle_per_host = 128;
  std::size_t max_idle_total = 2048;  // per worker thread
  std::chrono::milliseconds idle{30000};
};

struct Config {
  unsigned workers = 0;  // 0 = one per core
  std::vector<Listener> listeners;
  AccessLog access_log;
  Forward forward;
  std::vector<Cidr> ssrf_allow;  // internal ranges an admin opens on purpose
  Timeouts timeouts;
  http::Limits limits;
  OriginPool origin_pool;
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
};

std::shared_ptr<const Snapshot> compile(Config config);

}  // namespace portier::config

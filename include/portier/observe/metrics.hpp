#pragma once
// Counters for the Prometheus endpoint. Each worker thread owns one WorkerMetrics and is its only
// writer, so counting costs no lock and no atomic; a scrape asks every worker for a copy on its own
// thread and adds them up. Label sets are bounded by the config (listeners, rule ids), the
// decisions and the HTTP status codes: never a host or a user.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portier::observe {

struct AccessRecord;

// Upstream connect latency, seconds; the last bucket is +Inf.
inline constexpr std::array<double, 12> kConnectBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                        0.1,   0.25,   0.5,   1.0,  2.5,   5.0};

struct Histogram {
  std::array<std::uint64_t, kConnectBuckets.size() + 1> buckets{};  // not cumulative; rendered cumulatively
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds) noexcept;
  void add(const Histogram& o) noexcept;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using CounterByName = std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>>;

// Which limit refused a connection or request (config "limits"): a label of portier_limit_refusals_total.
enum class LimitKind { connections, connections_per_client, request_rate };
inline constexpr std::size_t kLimitKinds = 3;
const char* limit_label(LimitKind k) noexcept;

struct WorkerMetrics {
  // Requests by (listener, decision, status), packed into one key: no allocation per request.
  std::unordered_map<std::uint64_t, std::uint64_t> requests;
  CounterByName rule_hits;
  std::uint64_t tunnels_total = 0;
  std::int64_t tunnels_active = 0;
  std::uint64_t bytes_up = 0;    // client -> upstream (bodies and tunnels)
  std::uint64_t bytes_down = 0;  // upstream -> client
  std::uint64_t auth_success = 0;
  std::uint64_t auth_failure = 0;
  std::uint64_t connections_total = 0;
  std::int64_t connections_open = 0;
  Histogram connect;
  std::array<std::uint64_t, kLimitKinds> limit_refusals{};  // by LimitKind
  std::array<double, 2> shaping_seconds{};        // pauses for bandwidth limits: up, down

  // One finished request or tunnel, from its access record. `listener` is its index in the config.
  void count(const AccessRecord& r, std::size_t listener);
  void add(const WorkerMetrics& o);

  static std::uint64_t request_key(std::size_t listener, std::size_t decision, int status) noexcept {
    return (static_cast<std::uint64_t>(listener) << 32) | (static_cast<std::uint64_t>(decision) << 16) |
           static_cast<std::uint64_t>(status & 0xffff);
  }
};

// "forward", "tunnel", "deny", "challenge", "answer", "error" and "" (none), by index.
std::size_t decision_index(std::string_view decision) noexcept;
std::string_view decision_label(std::size_t index) noexcept;

// Prometheus text exposition (version 0.0.4) of what is counted here; `listeners` names the
// listener indexes. Gauges the server knows (health, reloads) are appended by the caller.
void render_prometheus(std::string& out, const WorkerMetrics& m, const std::vector<std::string>& listeners);

// Helpers for the caller's own series: "# HELP"/"# TYPE" once, then samples.
void metric_header(std::string& out, std::string_view name, std::string_view type, std::string_view help);
void metric_sample(std::string& out, std::string_view name,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value);

}  // namespace portier::observe

#include "portier/observe/metrics.hpp"

#include <cmath>
#include <cstdio>

#include "portier/observe/access_log.hpp"

namespace portier::observe {

namespace {

constexpr std::array<std::string_view, 7> kDecisions{"", "forward", "tunnel", "deny", "challenge", "answer", "error"};

// Label values are config names and fixed words, but escape anyway: the format must hold.
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6g", v);
  }
  out += buf;
}

}  // namespace

void Histogram::observe(double seconds) noexcept {
  std::size_t i = 0;
  while (i < kConnectBuckets.size() && seconds > kConnectBuckets[i]) ++i;
  ++buckets[i];
  ++count;
  sum += seconds;
}

void Histogram::add(const Histogram& o) noexcept {
  for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += o.buckets[i];
  count += o.count;
  sum += o.sum;
}

std::size_t decision_index(std::string_view decision) noexcept {
  for (std::size_t i = 0; i < kDecisions.size(); ++i)
    if (kDecisions[i] == decision) return i;
  return 0;
}

std::string_view decision_label(std::size_t index) noexcept {
  return index < kDecisions.size() ? kDecisions[index] : std::string_view{};
}

void WorkerMetrics::count(const AccessRecord& r, std::size_t listener) {
  ++requests[request_key(listener, decision_index(r.decision), r.status)];
  if (!r.rule.empty()) {
    if (auto it = rule_hits.find(std::string_view(r.rule)); it != rule_hits.end()) {
      ++it->second;
    } else {
      rule_hits.emplace(r.rule, 1);
    }
  }
  bytes_up += r.bytes_up;
  bytes_down += r.bytes_down;
  if (r.connect_us >= 0 && !r.upstream.empty()) connect.observe(static_cast<double>(r.connect_us) / 1e6);  // opened
}

const char* limit_label(LimitKind k) noexcept {
  switch (k) {
    case LimitKind::connections: return "connections";
    case LimitKind::connections_per_client: return "connections_per_client";
    case LimitKind::request_rate: return "request_rate";
  }
  return "";
}

void WorkerMetrics::add(const WorkerMetrics& o) {
  for (const auto& [k, v] : o.requests) requests[k] += v;
  for (const auto& [k, v] : o.rule_hits) rule_hits[k] += v;
  tunnels_total += o.tunnels_total;
  tunnels_active += o.tunnels_active;
  bytes_up += o.bytes_up;
  bytes_down += o.bytes_down;
  auth_success += o.auth_success;
  auth_failure += o.auth_failure;
  connections_total += o.connections_total;
  connections_open += o.connections_open;
  connect.add(o.connect);
  for (std::size_t i = 0; i < kLimitKinds; ++i) limit_refusals[i] += o.limit_refusals[i];
  for (std::size_t i = 0; i < shaping_seconds.size(); ++i) shaping_seconds[i] += o.shaping_seconds[i];
}

void metric_header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void metric_sample(std::string& out, std::string_view name,
                   std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value) {
  out.append(name);
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out.append(k).append("=\"");
      append_label_value(out, v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void render_prometheus(std::string& out, const WorkerMetrics& m, const std::vector<std::string>& listeners) {
  metric_header(out, "portier_requests_total", "counter",
                "Requests and tunnels finished, by listener, decision and the status sent (0: none).");
  for (const auto& [key, n] : m.requests) {
    const std::size_t l = key >> 32;
    const std::string_view listener = l < listeners.size() ? std::string_view(listeners[l]) : "other";
    const std::string status = std::to_string(key & 0xffff);
    metric_sample(out, "portier_requests_total",
                  {{"listener", listener}, {"decision", decision_label((key >> 16) & 0xffff)}, {"code", status}},
                  static_cast<double>(n));
  }
  metric_header(out, "portier_rule_hits_total", "counter", "Requests decided by each rule (built-in checks included).");
  for (const auto& [rule, n] : m.rule_hits) metric_sample(out, "portier_rule_hits_total", {{"rule", rule}}, static_cast<double>(n));
  metric_header(out, "portier_tunnels_total", "counter", "Tunnels opened (CONNECT and WebSocket).");
  metric_sample(out, "portier_tunnels_total", {}, static_cast<double>(m.tunnels_total));
  metric_header(out, "portier_tunnels_active", "gauge", "Tunnels open now.");
  metric_sample(out, "portier_tunnels_active", {}, static_cast<double>(m.tunnels_active));
  metric_header(out, "portier_bytes_total", "counter", "Body and tunnel bytes relayed, by direction.");
  metric_sample(out, "portier_bytes_total", {{"direction", "up"}}, static_cast<double>(m.bytes_up));
  metric_sample(out, "portier_bytes_total", {{"direction", "down"}}, static_cast<double>(m.bytes_down));
  metric_header(out, "portier_auth_total", "counter", "Proxy credential checks, by result.");
  metric_sample(out, "portier_auth_total", {{"result", "success"}}, static_cast<double>(m.auth_success));
  metric_sample(out, "portier_auth_total", {{"result", "failure"}}, static_cast<double>(m.auth_failure));
  metric_header(out, "portier_connections_total", "counter", "Client connections accepted.");
  metric_sample(out, "portier_connections_total", {}, static_cast<double>(m.connections_total));
  metric_header(out, "portier_connections_open", "gauge", "Client connections open now.");
  metric_sample(out, "portier_connections_open", {}, static_cast<double>(m.connections_open));
  metric_header(out, "portier_limit_refusals_total", "counter",
                "Connections closed and requests answered 429 because a configured limit was reached, by limit.");
  for (std::size_t i = 0; i < kLimitKinds; ++i)
    metric_sample(out, "portier_limit_refusals_total", {{"limit", limit_label(static_cast<LimitKind>(i))}},
                  static_cast<double>(m.limit_refusals[i]));
  metric_header(out, "portier_shaping_delay_seconds_total", "counter",
                "Time transfers were paused to keep users within their bandwidth limit, by direction.");
  metric_sample(out, "portier_shaping_delay_seconds_total", {{"direction", "up"}}, m.shaping_seconds[0]);
  metric_sample(out, "portier_shaping_delay_seconds_total", {{"direction", "down"}}, m.shaping_seconds[1]);

  metric_header(out, "portier_upstream_connect_seconds", "histogram",
                "Time to open a new upstream path (direct, through an exit's chain, or to a backend).");
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kConnectBuckets.size(); ++i) {
    cumulative += m.connect.buckets[i];
    char le[16];
    std::snprintf(le, sizeof le, "%g", kConnectBuckets[i]);
    metric_sample(out, "portier_upstream_connect_seconds_bucket", {{"le", le}}, static_cast<double>(cumulative));
  }
  cumulative += m.connect.buckets.back();
  metric_sample(out, "portier_upstream_connect_seconds_bucket", {{"le", "+Inf"}}, static_cast<double>(cumulative));
  metric_sample(out, "portier_upstream_connect_seconds_sum", {}, m.connect.sum);
  metric_sample(out, "portier_upstream_connect_seconds_count", {}, static_cast<double>(m.connect.count));
}

}  // namespace portier::observe

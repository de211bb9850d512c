#include "admin.hpp"

#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "portier/http/codec.hpp"
#include "portier/http/rewrite.hpp"
#include "portier/session/backends.hpp"
#include "portier/session/egress.hpp"

namespace portier::server {

namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr auto kHeadTimeout = 5s;
constexpr auto kReloadWait = 60s;

// Passwords in proxy URLs ("http://user:pw@host:port") are replaced, the user kept.
void redact_urls(Json& v) {
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    const auto scheme = s.find("://");
    const auto at = s.find('@');
    if (scheme == std::string::npos || at == std::string::npos || at < scheme) return;
    const auto colon = s.find(':', scheme + 3);
    if (colon != std::string::npos && colon < at) v = s.substr(0, colon + 1) + "<redacted>" + s.substr(at);
  } else if (v.is_structured()) {
    for (auto& child : v) redact_urls(child);
  }
}

void collect_health(std::string& out, const session::WorkerContext& ctx) {
  const auto now = net::Clock::now();
  observe::metric_header(out, "portier_exit_healthy", "gauge", "1 when an egress exit may be chosen (probes and passive marks).");
  if (ctx.egress) {
    for (const auto& region : ctx.egress->regions())
      for (const auto& exit : region->exits)
        observe::metric_sample(out, "portier_exit_healthy", {{"region", region->config->name}, {"exit", exit.config->name}},
                               exit.health->healthy(now) ? 1 : 0);
  }
  observe::metric_header(out, "portier_exit_selections_total", "counter", "Times an egress exit was chosen.");
  if (ctx.egress) {
    for (const auto& region : ctx.egress->regions())
      for (const auto& exit : region->exits)
        observe::metric_sample(out, "portier_exit_selections_total",
                               {{"region", region->config->name}, {"exit", exit.config->name}},
                               static_cast<double>(exit.health->selections.load(std::memory_order_relaxed)));
  }
  observe::metric_header(out, "portier_backend_healthy", "gauge", "1 when a reverse backend may be chosen (checks and passive marks).");
  if (ctx.backends) {
    for (const auto& pool : ctx.backends->pools())
      for (const auto& b : pool->backends)
        observe::metric_sample(out, "portier_backend_healthy", {{"pool", pool->config->name}, {"backend", b.config->address}},
                               b.health->healthy(now) ? 1 : 0);
  }
  observe::metric_header(out, "portier_backend_selections_total", "counter", "Times a reverse backend was chosen.");
  if (ctx.backends) {
    for (const auto& pool : ctx.backends->pools())
      for (const auto& b : pool->backends)
        observe::metric_sample(out, "portier_backend_selections_total",
                               {{"pool", pool->config->name}, {"backend", b.config->address}},
                               static_cast<double>(b.health->selections.load(std::memory_order_relaxed)));
  }
}

// Every worker's counters, each copied on its own thread (they are never locked).
net::awaitable<std::string> render_metrics(AdminState& state, const session::WorkerContext& here) {
  observe::WorkerMetrics total;
  for (std::size_t i = 0; i < state.workers.size(); ++i) {
    session::WorkerContext* w = state.workers[i];
    auto copy = co_await asio::co_spawn(
        state.executors[i], [w]() -> net::awaitable<observe::WorkerMetrics> { co_return w->metrics; },
        asio::use_awaitable);
    total.add(copy);
  }
  std::string out;
  out.reserve(8192);
  observe::render_prometheus(out, total, state.listener_names);
  collect_health(out, here);
  observe::metric_header(out, "portier_reloads_total", "counter", "Config reloads (SIGHUP or POST /reload), by outcome.");
  observe::metric_sample(out, "portier_reloads_total", {{"result", "ok"}}, static_cast<double>(state.reloads_ok.load()));
  observe::metric_sample(out, "portier_reloads_total", {{"result", "failed"}},
                         static_cast<double>(state.reloads_failed.load()));
  observe::metric_header(out, "portier_config_loaded_timestamp_seconds", "gauge", "When the running config was loaded (unix time).");
  observe::metric_sample(out, "portier_config_loaded_timestamp_seconds", {}, state.last_reload_time.load());
  co_return out;
}

bool token_ok(const http::Headers& h, const std::string& token) {
  if (token.empty()) return true;
  const std::string* auth = h.find("Authorization");
  if (auth == nullptr || auth->size() != 7 + token.size() || auth->compare(0, 7, "Bearer ") != 0) return false;
  return CRYPTO_memcmp(auth->data() + 7, token.data(), token.size()) == 0;
}

}  // namespace

std::string redacted_config(const std::string& json_text) {
  Json doc = Json::parse(json_text, nullptr, false);
  if (doc.is_discarded()) return "{}";
  if (doc.contains("admin") && doc["admin"].is_object() && doc["admin"].contains("token"))
    doc["admin"]["token"] = "<redacted>";
  redact_urls(doc);
  return doc.dump(2) + "\n";
}

net::awaitable<void> run_admin_session(net::tcp::socket socket, AdminState& state, session::WorkerContext& ctx) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer deadline(ex);
  // Reading the request, then writing the answer, each within kHeadTimeout.
  auto arm = [&deadline, &socket] {
    deadline.expires_after(kHeadTimeout);
    deadline.async_wait([&socket](std::error_code ec) {
      if (!ec) {
        std::error_code ignored;
        socket.cancel(ignored);
      }
    });
  };
  arm();
  http::Parser parser(http::Parser::Kind::request, ctx.snapshot->config.limits);
  std::array<char, 8192> buf;
  bool head = false;
  while (!head) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), net::nothrow);
    if (ec) co_return;
    auto r = parser.feed(std::string_view(buf.data(), n));
    if (!r) co_return;  // not HTTP: just close
    head = r->stop == http::Stop::head || r->stop == http::Stop::message_complete || r->stop == http::Stop::upgrade;
  }
  deadline.cancel();

  const auto& req = parser.request();
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string cache_control = "no-store";
  std::string body;
  http::Headers extra;
  const std::string path = req.target.substr(0, req.target.find('?'));
  const auto& cfg = ctx.snapshot->config;
  auto method_is = [&](const char* m) { return req.method == m; };

  if (path == cfg.pac.path && (method_is("GET") || method_is("HEAD"))) {
    // No token: browsers cannot send one, and the script tells nothing its users do not see.
    std::error_code ec;
    const auto local = socket.local_endpoint(ec);
    content_type = policy::kPacContentType;
    cache_control = policy::kPacCacheControl;
    body = session::pac_for_admin(*ctx.snapshot, state.bound, req.headers.find("Host"),
                                  ec ? IpAddress{} : net::to_ip(local.address()));
  } else if (!token_ok(req.headers, cfg.admin.token)) {
    status = 401;
    extra.add("WWW-Authenticate", "Bearer realm=\"portier admin\"");
    body = "401 Unauthorized: send Authorization: Bearer <admin.token>\n";
  } else if (path == "/healthz") {
    body = "ok\n";
  } else if (path == "/readyz") {
    const bool ready = state.ready.load() && !ctx.draining;
    status = ready ? 200 : 503;
    body = ready ? "ready\n" : "not ready\n";
  } else if (path == "/metrics" && (method_is("GET") || method_is("HEAD"))) {
    content_type = "text/plain; version=0.0.4; charset=utf-8";
    body = co_await render_metrics(state, ctx);
  } else if (path == "/config" && (method_is("GET") || method_is("HEAD"))) {
    content_type = "application/json";
    body = redacted_config(cfg.source);
  } else if (path == "/reload") {
    if (!method_is("POST")) {
      status = 405;
      extra.add("Allow", "POST");
      body = "405 Method Not Allowed: POST /reload\n";
    } else {
      // The main thread reloads on SIGHUP; ask it, then wait for its outcome.
      const auto before = state.reloads_ok.load() + state.reloads_failed.load();
      const auto failed_before = state.reloads_failed.load();
      ::kill(::getpid(), SIGHUP);
      asio::steady_timer poll(ex);
      const auto until = net::Clock::now() + kReloadWait;
      while (state.reloads_ok.load() + state.reloads_failed.load() == before && net::Clock::now() < until) {
        poll.expires_after(10ms);
        co_await poll.async_wait(net::nothrow);
      }
      if (state.reloads_ok.load() + state.reloads_failed.load() == before) {
        status = 504;
        body = "504: the reload did not finish in time\n";
      } else if (state.reloads_failed.load() != failed_before) {
        status = 422;
        std::lock_guard lock(state.mutex);
        body = "reload failed, the running config stays:\n" + state.last_reload_errors;
      } else {
        body = "reloaded\n";
      }
    }
  } else {
    status = 404;
    body = "404 Not Found: /healthz, /readyz, /metrics, /config, POST /reload, " + cfg.pac.path + "\n";
  }

  extra.add("Content-Type", content_type);
  extra.add("Content-Length", std::to_string(body.size()));
  extra.add("Cache-Control", cache_control);
  extra.add("Connection", "close");
  std::string out;
  http::write_response_head(out, status, {}, extra);
  if (!method_is("HEAD")) out += body;
  arm();
  co_await asio::async_write(socket, asio::buffer(out), net::nothrow);
  deadline.cancel();
  std::error_code ignored;
  socket.shutdown(net::tcp::socket::shutdown_send, ignored);
  socket.close(ignored);
}

}  // namespace portier::server

#include "portier/session/probe.hpp"

#include <algorithm>

#include <array>
#include <functional>
#include <span>

#include "portier/http/codec.hpp"
#include "portier/observe/log.hpp"
#include "portier/session/backends.hpp"
#include "portier/session/egress.hpp"
#include "portier/upstream/chain.hpp"

namespace portier::session {

// ---- the pure part ------------------------------------------------------------------------------

ProbeTransition record_probe(ProbeCounts& c, bool success, unsigned rise, unsigned fall) noexcept {
  rise = std::max(rise, 1u);
  fall = std::max(fall, 1u);
  if (success) {
    c.failures = 0;
    if (!c.down) return ProbeTransition::none;
    if (++c.successes < rise) return ProbeTransition::none;
    c.successes = 0;
    c.down = false;
    return ProbeTransition::came_up;
  }
  c.successes = 0;
  if (c.down) return ProbeTransition::none;
  if (++c.failures < fall) return ProbeTransition::none;
  c.failures = 0;
  c.down = true;
  return ProbeTransition::went_down;
}

// ---- one probe ----------------------------------------------------------------------------------

namespace {

using namespace asio::experimental::awaitable_operators;

bool probed(const config::ProbeConfig& probe, const config::ExitConfig& exit) {
  return probe.enabled && (probe.target.has_value() || !exit.hops.empty());
}

// With a target: a path through the exit to it, as a client's CONNECT would open (every hop's
// handshake and the last hop's answer about the target count). Without: a TCP connect to the first hop.
net::awaitable<Result<void>> probe_once(const ExitState& exit, const config::ProbeConfig& probe,
                                        const config::Snapshot& snapshot) {
  const auto& hops = exit.config->hops;
  if (probe.target) {
    upstream::PathOptions options{net::DestinationGuard{&snapshot.ssrf_allow}, probe.timeout, exit.config->bind};
    bool exit_fault = false;
    auto path = co_await upstream::open_path(hops, probe.target->host, probe.target->port, upstream::PathEnd::target,
                                             options, exit_fault);
    if (!path) co_return std::move(path).error();
    std::error_code ignored;
    path->conn.stream.socket().shutdown(net::tcp::socket::shutdown_both, ignored);
    path->conn.stream.socket().close(ignored);
    co_return Result<void>{};
  }
  auto conn = co_await upstream::connect_to_parent(hops.front(), probe.timeout, exit.config->bind);
  if (!conn) co_return std::move(conn).error();
  std::error_code ignored;
  conn->stream.socket().close(ignored);
  co_return Result<void>{};
}

// ---- one backend check -------------------------------------------------------------------------

// GET <path> on a fresh connection (TLS when the backend has it); a status in the expected range
// is a success. The connection is closed after the head: the body does not matter.
net::awaitable<Result<void>> check_backend(const BackendRuntime& backend, const config::HealthCheckConfig& check) {
  const config::BackendConfig& bc = *backend.config;
  upstream::PathOptions options{net::DestinationGuard{nullptr, true}, check.timeout, std::nullopt};
  bool fault = false;
  auto path = co_await upstream::open_path(std::span(&bc.url, 1), {}, 0, upstream::PathEnd::last_hop, options, fault);
  if (!path) co_return std::move(path).error();
  net::Stream& stream = path->conn.stream;
  std::string request = "GET " + check.path + " HTTP/1.1\r\nHost: " + (check.host.empty() ? bc.address : check.host) +
                        "\r\nUser-Agent: portier-health-check\r\nConnection: close\r\n\r\n";
  auto [wec, wn] = co_await asio::async_write(stream, asio::buffer(request), net::nothrow);
  if (wec) co_return Error{errc::upstream_closed, Side::upstream, "GET " + check.path + ": " + wec.message()};
  http::Parser parser(http::Parser::Kind::response);
  std::array<char, 4096> buf;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buf), net::nothrow);
    if (ec) co_return Error{errc::upstream_closed, Side::upstream, "GET " + check.path + ": no response (" + ec.message() + ")"};
    auto r = parser.feed(std::string_view(buf.data(), n));
    if (!r) co_return Error{errc::upstream_bad_response, Side::upstream, "GET " + check.path + ": " + r.error().context};
    if (r->stop == http::Stop::head || r->stop == http::Stop::upgrade || r->stop == http::Stop::message_complete) {
      const int status = parser.response().status;
      if (status < 200) continue;  // an interim response; the final one follows
      std::error_code ignored;
      stream.socket().close(ignored);
      if (status >= check.expect_low && status <= check.expect_high) co_return Result<void>{};
      co_return Error{errc::upstream_bad_response, Side::upstream,
                      "GET " + check.path + ": status " + std::to_string(status) + ", expected " +
                          std::to_string(check.expect_low) + "-" + std::to_string(check.expect_high)};
    }
  }
}

}  // namespace

// ---- the loops ----------------------------------------------------------------------------------

// One loop checks one target — an egress exit or a reverse backend — every interval.
struct Prober::Loop {
  explicit Loop(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;  // the check's deadline, then the pause until the next one
  // The current table (egress or backends): owns everything the pointers below point to.
  std::shared_ptr<const void> owner;
  Health* health = nullptr;
  std::string name;  // "egress exit fi-1 (region fi)", "backend 10.0.0.5:80 (pool api)"
  std::chrono::milliseconds interval{}, timeout{};
  unsigned rise = 1, fall = 1;
  std::string signature;  // what the check does: a change re-times the loop at once
  // Exactly one of these pairs is set.
  const ExitState* exit = nullptr;
  const config::ProbeConfig* probe = nullptr;
  const config::Snapshot* snapshot = nullptr;
  const BackendRuntime* backend = nullptr;
  const config::HealthCheckConfig* check = nullptr;
  bool sleeping = false;
  bool stopped = false;
};

namespace {


void apply(Prober::Loop& loop, const Result<void>& result) {
  Health& health = *loop.health;
  switch (record_probe(health.probe, result.has_value(), loop.rise, loop.fall)) {
    case ProbeTransition::none:
      return;
    case ProbeTransition::went_down:
      health.probe_down.store(true, std::memory_order_relaxed);
      observe::log(observe::Level::warning, loop.name + " down: " + result.error().describe());
      return;
    case ProbeTransition::came_up:
      health.probe_down.store(false, std::memory_order_relaxed);
      observe::log(observe::Level::info, loop.name + " up");
      return;
  }
}

net::awaitable<Result<void>> check_once(const Prober::Loop& loop) {
  if (loop.exit != nullptr) co_return co_await probe_once(*loop.exit, *loop.probe, *loop.snapshot);
  co_return co_await check_backend(*loop.backend, *loop.check);
}

net::awaitable<void> run_loop(std::shared_ptr<Prober::Loop> loop) {
  while (!loop->stopped) {
    const auto started = net::Clock::now();
    // Held across the check: a reload may replace loop->owner meanwhile.
    const std::shared_ptr<const void> owner = loop->owner;
    const auto timeout = loop->timeout;
    loop->timer.expires_at(started + timeout);
    auto r = co_await (check_once(*loop) || loop->timer.async_wait(net::nothrow));
    if (loop->stopped) co_return;
    if (r.index() == 0) {
      apply(*loop, std::get<0>(r));
    } else {
      apply(*loop, Error{errc::connect_timeout, Side::upstream,
                         "no answer within " + std::to_string(timeout.count()) + " ms"});
    }
    loop->timer.expires_at(started + loop->interval);
    loop->sleeping = true;
    co_await loop->timer.async_wait(net::nothrow);
    loop->sleeping = false;
  }
}

std::string exit_signature(const config::ProbeConfig& p) {
  return std::to_string(p.interval.count()) + "|" + std::to_string(p.timeout.count()) + "|" +
         (p.target ? p.target->to_string() : std::string());
}

std::string check_signature(const config::HealthCheckConfig& c) {
  return std::to_string(c.interval.count()) + "|" + std::to_string(c.timeout.count()) + "|" + c.path + "|" + c.host +
         "|" + std::to_string(c.expect_low) + "-" + std::to_string(c.expect_high);
}

// What every loop has, from either config (ProbeConfig and HealthCheckConfig share these fields).
template <class Timing>
void set_common(Prober::Loop& l, std::shared_ptr<const void> owner, Health* health, const std::string& name,
                const Timing& t, std::string signature) {
  l.owner = std::move(owner);
  l.health = health;
  l.name = name;
  l.interval = t.interval;
  l.timeout = t.timeout;
  l.rise = t.rise;
  l.fall = t.fall;
  l.signature = std::move(signature);
}

// A target no longer checked: what the last checks said no longer holds.
void forget_checks(Health& h, const std::string& name) {
  const bool was_down = h.probe.down;
  h.probe = ProbeCounts{};
  h.probe_down.store(false, std::memory_order_relaxed);
  if (was_down) observe::log(observe::Level::info, name + " up (no longer checked)");
}

}  // namespace

Prober::Prober(asio::any_io_executor executor) : executor_(std::move(executor)) {}

Prober::~Prober() { stop(); }

void Prober::update(std::shared_ptr<const EgressTable> egress, std::shared_ptr<const BackendTable> backends) {
  if (stopped_) return;
  std::unordered_map<std::string, std::shared_ptr<Loop>> next;
  // Keeps (or starts) the loop for `key`, set up by `fill` with the new table's pointers.
  auto keep = [&](const std::string& key, const std::function<void(Loop&)>& fill) {
    std::shared_ptr<Loop> loop;
    if (auto it = loops_.find(key); it != loops_.end()) {
      loop = it->second;
      loops_.erase(it);
      const std::string old_signature = loop->signature;
      fill(*loop);
      // A new interval, timeout or target applies now rather than after the old pause.
      if (loop->signature != old_signature && loop->sleeping) loop->timer.cancel();
    } else {
      loop = std::make_shared<Loop>(executor_);
      fill(*loop);
      asio::co_spawn(executor_, run_loop(loop), asio::detached);
    }
    next.emplace(key, std::move(loop));
  };

  if (egress) {
    for (const auto& region : egress->regions()) {
      const auto& probe = region->config->probe;
      for (const auto& exit : region->exits) {
        const std::string name = "egress exit " + exit.config->name + " (region " + region->config->name + ")";
        if (!probed(probe, *exit.config)) {
          forget_checks(*exit.health, name);
          continue;
        }
        keep(exit.key, [&](Loop& l) {
          set_common(l, egress, exit.health.get(), name, probe, exit_signature(probe));
          l.exit = &exit;
          l.probe = &probe;
          l.snapshot = &egress->snapshot();
        });
      }
    }
  }
  if (backends) {
    for (const auto& pool : backends->pools()) {
      const auto& check = pool->config->health;
      for (const auto& backend : pool->backends) {
        const std::string name = "backend " + backend.config->address + " (pool " + pool->config->name + ")";
        if (!check.enabled) {
          forget_checks(*backend.health, name);
          continue;
        }
        keep(backend.key, [&](Loop& l) {
          set_common(l, backends, backend.health.get(), name, check, check_signature(check));
          l.backend = &backend;
          l.check = &check;
        });
      }
    }
  }
  // Targets gone from the tables: their health goes with them (or a later table starts it afresh).
  stop_loops();
  loops_ = std::move(next);
}

void Prober::stop() {
  stopped_ = true;
  stop_loops();
}

void Prober::stop_loops() {
  for (auto& [key, loop] : loops_) {
    loop->stopped = true;
    loop->timer.cancel();
  }
  loops_.clear();
}

}  // namespace portier::session

#include "portier/session/probe.hpp"

#include <algorithm>
#include <iostream>

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

}  // namespace

// ---- the loops ----------------------------------------------------------------------------------

struct Prober::Loop {
  explicit Loop(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;  // the probe's deadline, then the pause until the next one
  std::shared_ptr<const EgressTable> table;  // the current one; owns region and exit
  const RegionState* region = nullptr;
  const ExitState* exit = nullptr;
  bool sleeping = false;
  bool stopped = false;
};

namespace {

void log_line(const std::string& line) { std::cerr << line << std::flush; }

void apply(Prober::Loop& loop, const Result<void>& result) {
  const auto& probe = loop.region->config->probe;
  ExitHealth& health = *loop.exit->health;
  switch (record_probe(health.probe, result.has_value(), probe.rise, probe.fall)) {
    case ProbeTransition::none:
      return;
    case ProbeTransition::went_down:
      health.probe_down.store(true, std::memory_order_relaxed);
      log_line("portier: egress exit " + loop.exit->config->name + " (region " + loop.region->config->name +
               ") down: " + result.error().describe() + "\n");
      return;
    case ProbeTransition::came_up:
      health.probe_down.store(false, std::memory_order_relaxed);
      log_line("portier: egress exit " + loop.exit->config->name + " (region " + loop.region->config->name + ") up\n");
      return;
  }
}

net::awaitable<void> run_loop(std::shared_ptr<Prober::Loop> loop) {
  while (!loop->stopped) {
    const auto started = net::Clock::now();
    // Held across the probe: a reload may replace loop->table meanwhile.
    const std::shared_ptr<const EgressTable> table = loop->table;
    const config::ProbeConfig probe = loop->region->config->probe;
    loop->timer.expires_at(started + probe.timeout);
    auto r = co_await (probe_once(*loop->exit, probe, table->snapshot()) || loop->timer.async_wait(net::nothrow));
    if (loop->stopped) co_return;
    if (r.index() == 0) {
      apply(*loop, std::get<0>(r));
    } else {
      apply(*loop, Error{errc::connect_timeout, Side::upstream,
                         "probe via " + loop->exit->chain + ": no answer within " +
                             std::to_string(probe.timeout.count()) + " ms"});
    }
    loop->timer.expires_at(started + loop->region->config->probe.interval);
    loop->sleeping = true;
    co_await loop->timer.async_wait(net::nothrow);
    loop->sleeping = false;
  }
}

bool same_probe(const config::ProbeConfig& a, const config::ProbeConfig& b) {
  auto target = [](const config::ProbeConfig& p) { return p.target ? p.target->to_string() : std::string(); };
  return a.interval == b.interval && a.timeout == b.timeout && target(a) == target(b);
}

}  // namespace

Prober::Prober(asio::any_io_executor executor) : executor_(std::move(executor)) {}

Prober::~Prober() { stop(); }

void Prober::update(std::shared_ptr<const EgressTable> table) {
  if (stopped_ || !table) return;
  std::unordered_map<std::string, std::shared_ptr<Loop>> next;
  for (const auto& region : table->regions()) {
    const auto& probe = region->config->probe;
    for (const auto& exit : region->exits) {
      if (!probed(probe, *exit.config)) {
        // No longer probed: what the last probes said no longer holds.
        ExitHealth& h = *exit.health;
        const bool was_down = h.probe.down;
        h.probe = ProbeCounts{};
        h.probe_down.store(false, std::memory_order_relaxed);
        if (was_down)
          log_line("portier: egress exit " + exit.config->name + " (region " + region->config->name +
                   ") up (no longer probed)\n");
        continue;
      }
      std::shared_ptr<Loop> loop;
      if (auto it = loops_.find(exit.key); it != loops_.end()) {
        loop = it->second;
        loops_.erase(it);
        const bool changed = !same_probe(loop->region->config->probe, probe);
        loop->table = table;
        loop->region = region.get();
        loop->exit = &exit;
        // A new interval, timeout or target applies now rather than after the old pause.
        if (changed && loop->sleeping) loop->timer.cancel();
      } else {
        loop = std::make_shared<Loop>(executor_);
        loop->table = table;
        loop->region = region.get();
        loop->exit = &exit;
        asio::co_spawn(executor_, run_loop(loop), asio::detached);
      }
      next.emplace(exit.key, std::move(loop));
    }
  }
  // Exits gone from the table: their health goes with them (or a later table starts it afresh).
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

#include "portier/server/server.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

#include "portier/config/config.hpp"
#include "portier/net/asio.hpp"
#include "portier/net/resolve.hpp"
#include "portier/observe/access_log.hpp"
#include "portier/observe/log.hpp"
#include "portier/policy/users.hpp"
#include "portier/session/probe.hpp"
#include "portier/session/worker.hpp"

#include "admin.hpp"

namespace portier::server {
namespace {

using net::tcp;

struct BoundAddress {
  std::string listener;
  tcp::endpoint endpoint;
};

struct Worker {
  // One thread runs each worker's io_context, and every socket and timer of a worker is touched
  // only by that thread (other threads reach a worker through asio::post): the reactor's
  // per-socket locks are pure cost, two lock/unlock pairs per socket operation. The scheduler's
  // lock stays, for those posts.
  asio::io_context io{ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  session::WorkerContext ctx;
  std::vector<std::pair<tcp::acceptor, std::string>> acceptors;
  std::thread thread;
};

tcp::acceptor open_acceptor(asio::io_context& io, const tcp::endpoint& ep) {
  tcp::acceptor acc(io);
  acc.open(ep.protocol());
  acc.set_option(tcp::acceptor::reuse_address(true));
  int one = 1;
  if (::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    throw std::system_error(errno, std::system_category(), "SO_REUSEPORT");
  if (ep.protocol() == tcp::v6()) acc.set_option(asio::ip::v6_only(true));
  acc.bind(ep);
  net::tune_socket(acc.native_handle());  // inherited by every accepted client socket
  acc.listen(asio::socket_base::max_listen_connections);
  return acc;
}

net::awaitable<void> accept_loop(tcp::acceptor& acc, const std::string& listener, session::WorkerContext& ctx) {
  auto ex = co_await asio::this_coro::executor;
  tcp::endpoint peer;
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(peer, net::nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      // Out of descriptors or memory: back off briefly instead of spinning on the error.
      observe::log(observe::Level::warning, "accept on " + listener + ": " + ec.message());
      asio::steady_timer t(ex, std::chrono::milliseconds(100));
      co_await t.async_wait(net::nothrow);
      continue;
    }
    asio::co_spawn(ex, session::run_session(std::move(sock), peer, listener, ctx), asio::detached);
  }
}

net::awaitable<void> admin_accept_loop(tcp::acceptor& acc, AdminState& state, session::WorkerContext& ctx) {
  auto ex = co_await asio::this_coro::executor;
  for (;;) {
    auto [ec, sock] = co_await acc.async_accept(net::nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      asio::steady_timer t(ex, std::chrono::milliseconds(100));
      co_await t.async_wait(net::nothrow);
      continue;
    }
    asio::co_spawn(ex, run_admin_session(std::move(sock), state, ctx), asio::detached);
  }
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

net::awaitable<void> pool_sweeper(session::WorkerContext& ctx) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (!ctx.draining) {
    t.expires_after(std::chrono::seconds(5));
    co_await t.async_wait(net::nothrow);
    ctx.pool.sweep();
  }
}

// Stop accepting, let connections finish within the grace period, then cut what is left.
net::awaitable<void> drain(Worker& w, std::chrono::milliseconds grace) {
  for (auto& [acc, name] : w.acceptors) {
    std::error_code ignored;
    acc.close(ignored);
  }
  w.ctx.begin_drain();
  w.ctx.pool.clear();
  asio::steady_timer t(w.io);
  auto deadline = net::Clock::now() + grace;
  while (w.ctx.sessions.size() > 0 && net::Clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(net::nothrow);
  }
  if (w.ctx.sessions.size() > 0) {
    w.ctx.abort_all();
    auto hard = net::Clock::now() + std::chrono::seconds(2);
    while (w.ctx.sessions.size() > 0 && net::Clock::now() < hard) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(net::nothrow);
    }
  }
  w.ctx.pool.clear();
  w.io.stop();
}

unsigned worker_count(const config::Config& c) {
  if (c.workers > 0) return c.workers;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

std::size_t address_count(const config::Config& c) {
  std::size_t n = 0;
  for (const auto& l : c.listeners) n += l.listen.size();
  return n;
}

policy::ThrottleOptions throttle_options(const config::Config& c) {
  policy::ThrottleOptions o;
  o.max_failures = c.auth.max_failures;
  // The throttle counts in seconds: round up, so a block of 500 ms is 1 s and never 0 (no block).
  o.window = std::chrono::ceil<std::chrono::seconds>(c.auth.failure_window);
  o.backoff = std::chrono::ceil<std::chrono::seconds>(c.auth.block);
  return o;
}

void print_errors(const std::vector<config::ConfigError>& errors, const char* prefix) {
  for (const auto& e : errors) std::cerr << prefix << config::format_error(e) << "\n";
}

// What a reload cannot change while listeners stay open.
std::string restart_only_changes(const config::Config& old_cfg, const config::Config& new_cfg) {
  auto addresses = [](const config::Config& c) {
    std::vector<std::string> out;
    for (const auto& l : c.listeners)
      for (const auto& a : l.listen) out.push_back(l.name + "@" + a.to_string());
    return out;
  };
  std::string why;
  if (addresses(old_cfg) != addresses(new_cfg)) why += " listeners";
  if (old_cfg.workers != new_cfg.workers) why += " workers";
  if (old_cfg.access_log.path != new_cfg.access_log.path) why += " access_log.path";
  return why;
}

}  // namespace

int check(const std::string& config_path) {
  auto compiled = config::load_and_compile(config_path);
  if (!compiled.errors.empty()) {
    print_errors(compiled.errors, "");
    std::cerr << "portier: config " << config_path << " has " << compiled.errors.size() << " error(s)\n";
    return 1;
  }
  const auto& c = compiled.snapshot->config;
  std::size_t exits = 0;
  for (const auto& r : c.egress.regions) exits += r.exits.size();
  std::cout << "portier: config " << config_path << " is valid: " << c.listeners.size() << " listener(s), "
            << address_count(c) << " address(es), " << worker_count(c) << " worker(s), "
            << compiled.snapshot->policy.rules.size() << " rule(s), " << c.lists.size() << " list(s), "
            << c.egress.regions.size() << " region(s), " << exits << " exit(s), " << c.reverse.routes.size()
            << " route(s), " << c.reverse.pools.size() << " pool(s)\n";
  return 0;
}

int run(const std::string& config_path) {
  auto compiled = config::load_and_compile(config_path);
  if (!compiled.errors.empty()) {
    print_errors(compiled.errors, "");
    return 1;
  }
  std::shared_ptr<const config::Snapshot> snapshot = compiled.snapshot;
  const auto& cfg = snapshot->config;
  observe::set_log_level(observe::parse_level(cfg.error_log.level).value_or(observe::Level::info));

  std::string log_error;
  auto access_log = observe::AccessLog::open(cfg.access_log.path, &log_error);
  if (!log_error.empty()) {
    observe::log(observe::Level::error, log_error);
    return 1;
  }

  // Signals are taken synchronously by the main thread; workers never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const unsigned n = worker_count(cfg);
  asio::thread_pool verifier(2);
  session::SharedThrottle throttle(throttle_options(cfg));
  session::SharedCredentials shared_credentials;
  session::LimitTable limits;
  session::HealthRegistry health;
  auto egress = std::make_shared<const session::EgressTable>(snapshot, health);
  auto backends = std::make_shared<const session::BackendTable>(snapshot, health);
  std::vector<std::unique_ptr<Worker>> workers;
  std::random_device rd;
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->ctx.index = i;
    w->ctx.worker_count = n;
    w->ctx.snapshot = snapshot;
    w->ctx.egress = egress;
    w->ctx.backends = backends;
    w->ctx.access_log = &access_log;
    w->ctx.verifier = &verifier;
    w->ctx.throttle = &throttle;
    w->ctx.shared_credentials = &shared_credentials;
    w->ctx.limits = &limits;
    w->ctx.request_seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    w->ctx.pool.set_limits(upstream::PoolLimits{cfg.origin_pool.max_idle_per_host, cfg.origin_pool.max_idle_total,
                                                cfg.origin_pool.idle});
    workers.push_back(std::move(w));
  }

  // Bind every address on every worker. Port 0 is resolved by the first bind and shared by the rest.
  std::vector<session::BoundListener> bound;
  try {
    for (const auto& l : cfg.listeners) {
      bound.push_back(session::BoundListener{l.name, {}});
      for (const auto& a : l.listen) {
        tcp::endpoint ep(net::to_asio(a.ip), a.port);
        for (auto& w : workers) {
          auto acc = open_acceptor(w->io, ep);
          if (ep.port() == 0) ep = acc.local_endpoint();
          w->acceptors.emplace_back(std::move(acc), l.name);
        }
        bound.back().addresses.push_back(SocketAddress{a.ip, ep.port()});
        observe::announce("listener " + l.name + " listening on " + net::endpoint_string(ep));
      }
    }
  } catch (const std::system_error& e) {
    observe::log(observe::Level::error, std::string("cannot listen: ") + e.what());
    return 1;
  }

  // The admin endpoint: one socket (no SO_REUSEPORT: a second portier on the same address must
  // fail, not share it), served on the first worker's loop.
  AdminState admin;
  for (auto& w : workers) {
    admin.workers.push_back(&w->ctx);
    admin.executors.push_back(w->io.get_executor());
  }
  for (const auto& l : cfg.listeners) admin.listener_names.push_back(l.name);
  admin.bound = std::move(bound);
  admin.last_reload_time = unix_now();
  std::optional<tcp::acceptor> admin_acceptor;
  if (cfg.admin.enabled) {
    try {
      tcp::endpoint ep(net::to_asio(cfg.admin.listen.ip), cfg.admin.listen.port);
      admin_acceptor.emplace(workers.front()->io);
      admin_acceptor->open(ep.protocol());
      admin_acceptor->set_option(tcp::acceptor::reuse_address(true));
      if (ep.protocol() == tcp::v6()) admin_acceptor->set_option(asio::ip::v6_only(true));
      admin_acceptor->bind(ep);
      admin_acceptor->listen();
      observe::announce("admin listening on " + net::endpoint_string(admin_acceptor->local_endpoint()));
    } catch (const std::system_error& e) {
      observe::log(observe::Level::error, std::string("cannot listen (admin): ") + e.what());
      return 1;
    }
    asio::co_spawn(workers.front()->io, admin_accept_loop(*admin_acceptor, admin, workers.front()->ctx), asio::detached);
  }

  // Active health checks run on the first worker's loop; they follow each reload's tables.
  Worker* prober_worker = workers.front().get();
  session::Prober prober(prober_worker->io.get_executor());
  prober.update(egress, backends);  // before the thread starts: the loops are queued on its io_context

  for (auto& w : workers) {
    for (auto& [acc, name] : w->acceptors) asio::co_spawn(w->io, accept_loop(acc, name, w->ctx), asio::detached);
    asio::co_spawn(w->io, pool_sweeper(w->ctx), asio::detached);
    Worker* raw = w.get();
    raw->thread = std::thread([raw] {
      auto guard = asio::make_work_guard(raw->io);
      raw->io.run();
    });
  }
  admin.ready = true;
  observe::log(observe::Level::info, std::to_string(n) + " worker thread(s)");
  observe::announce("ready");

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGTERM || sig == SIGINT) {
      observe::log(observe::Level::info, std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining (grace " +
                                             std::to_string(cfg.timeouts.shutdown_grace.count()) + " ms)");
      break;
    }
    if (sig == SIGUSR1) {
      std::string why;
      if (access_log.reopen(&why)) {
        observe::log(observe::Level::info, "SIGUSR1: access log reopened");
      } else {
        observe::log(observe::Level::error, "SIGUSR1: " + why + "; still writing to the old file");
      }
      continue;
    }
    if (sig == SIGHUP) {
      // Compile off the I/O threads; publish only a good snapshot. Sessions keep the snapshot they
      // started with, so requests and tunnels in flight finish under the old rules.
      auto next = config::load_and_compile(config_path);
      if (!next.errors.empty()) {
        for (const auto& e : next.errors)
          observe::log(observe::Level::error, "reload failed, keeping the running config: " + config::format_error(e));
        {
          std::lock_guard lock(admin.mutex);
          admin.last_reload_errors.clear();
          for (const auto& e : next.errors) admin.last_reload_errors += config::format_error(e) + "\n";
        }
        admin.reloads_failed.fetch_add(1);
        continue;
      }
      if (auto why = restart_only_changes(snapshot->config, next.snapshot->config); !why.empty()) {
        observe::log(observe::Level::warning, "reload: changes to" + why + " need a restart; applying the rest");
      }
      snapshot = next.snapshot;
      observe::set_log_level(observe::parse_level(snapshot->config.error_log.level).value_or(observe::Level::info));
      // Exits that keep their name, hops and source address keep their health.
      egress = std::make_shared<const session::EgressTable>(snapshot, health);
      backends = std::make_shared<const session::BackendTable>(snapshot, health);
      auto keys = egress->keys();
      for (auto& k : backends->keys()) keys.push_back(std::move(k));
      health.keep_only(keys);
      throttle.reconfigure(throttle_options(snapshot->config));
      shared_credentials.clear();  // users may have changed; the users-file epoch also guards this
      for (auto& w : workers) {
        Worker* raw = w.get();
        auto limits = upstream::PoolLimits{snapshot->config.origin_pool.max_idle_per_host,
                                           snapshot->config.origin_pool.max_idle_total, snapshot->config.origin_pool.idle};
        asio::post(raw->io, [raw, snap = snapshot, egress, backends, limits] {
          raw->ctx.snapshot = snap;
          raw->ctx.egress = egress;
          raw->ctx.backends = backends;
          raw->ctx.pool.set_limits(limits);
          raw->ctx.credentials.clear();  // users may have changed; the epoch also guards this
        });
      }
      asio::post(prober_worker->io, [&prober, egress, backends] { prober.update(egress, backends); });
      admin.last_reload_time = unix_now();
      admin.reloads_ok.fetch_add(1);
      observe::log(observe::Level::info, "reloaded " + config_path + ": " + std::to_string(snapshot->policy.rules.size()) +
                                             " rule(s), " + std::to_string(snapshot->config.lists.size()) + " list(s)");
    }
  }

  // /readyz answers 503 from now on; the admin socket stays open through the drain (load
  // balancers see the proxy leave) and closes with the first worker's loop.
  admin.ready = false;
  // Probes stop first, before the drain: posted ahead of it on the same loop.
  asio::post(prober_worker->io, [&prober] { prober.stop(); });
  for (auto& w : workers) {
    Worker* raw = w.get();
    asio::co_spawn(raw->io, drain(*raw, cfg.timeouts.shutdown_grace), asio::detached);
  }
  for (auto& w : workers) w->thread.join();
  verifier.join();
  observe::announce("stopped");
  return 0;
}

}  // namespace portier::server

#pragma once
// The admin endpoint: its own listener (never a proxy listener), on the first worker's loop.
//   GET  /healthz   200 while the process runs
//   GET  /readyz    200 once listening and until a drain starts, else 503
//   GET  /metrics   Prometheus text: every worker's counters, exit and backend health, reloads
//   GET  /config    the running config as loaded, secrets redacted
//   POST /reload    reload now (as SIGHUP) and answer the outcome
//   GET  /proxy.pac the PAC script for browsers (pac.path)
// With admin.token every request but the PAC's needs "Authorization: Bearer <token>" (else 401):
// browsers fetch a PAC and cannot send a token.
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "portier/net/asio.hpp"
#include "portier/session/pac.hpp"
#include "portier/session/worker.hpp"

namespace portier::server {

// Written by the main thread (reloads, drain), read by the admin sessions.
struct AdminState {
  std::vector<session::WorkerContext*> workers;
  std::vector<asio::any_io_executor> executors;  // each worker's, in the same order
  std::vector<std::string> listener_names;       // by config position: metric labels
  std::vector<session::BoundListener> bound;      // what each listener listens on (the PAC names them)
  std::atomic<bool> ready{false};
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<double> last_reload_time{0};  // unix seconds of the last successful load
  std::mutex mutex;               // guards last_reload_errors
  std::string last_reload_errors;  // of the last failed reload
};

// Serves one admin connection (one request, then close). Runs on worker 0's loop.
net::awaitable<void> run_admin_session(net::tcp::socket socket, AdminState& state, session::WorkerContext& ctx);

// The config document with secrets replaced by "<redacted>": admin.token, user:password in proxy
// URLs. Pure, for the unit tests.
std::string redacted_config(const std::string& json_text);

}  // namespace portier::server

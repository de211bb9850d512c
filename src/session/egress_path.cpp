// Leaving through an exit: pick one for the route, open a path through it, and on the exit's own
// failure (not the target's) mark it and try one other exit before the client sees an error.

#include "portier/observe/log.hpp"
#include "session_impl.hpp"

namespace portier::session {

Result<ExitChoice> Session::pick_exit(const policy::Route& route, std::span<const ExitState* const> tried) {
  return choose_exit(*egress_, route, identity_.user, ctx_.sticky, tried, net::Clock::now());
}

upstream::PathEnd Session::path_end(const ExitState& exit, bool plain_http) noexcept {
  const auto& hops = exit.config->hops;
  // Plain HTTP goes to an http(s) parent as an absolute-form request, unless told to CONNECT.
  if (plain_http && !hops.empty() && hops.back().scheme != http::ProxyScheme::socks5 && !exit.config->connect_all)
    return upstream::PathEnd::last_hop;
  return upstream::PathEnd::target;
}

net::awaitable<Result<upstream::OpenedPath>> Session::open_upstream(const policy::Route& route, ExitChoice& choice,
                                                                    std::string_view host, std::uint16_t port,
                                                                    bool plain_http) {
  const auto& egress = egress_->config();
  const auto started = net::Clock::now();
  std::array<const ExitState*, 2> tried{};
  std::size_t attempts = 0;
  for (;;) {
    const ExitState& exit = *choice.exit;
    rec_.region = choice.region->config->name;
    rec_.exit = exit.config->name;
    rec_.chain = exit.chain;
    upstream::PathOptions options{guard(), timeouts().connect, exit.config->bind};
    bool exit_fault = false;
    auto path = co_await upstream::open_path(exit.config->hops, host, port, path_end(exit, plain_http), options,
                                             exit_fault);
    record_connect_time(started);
    if (path) {
      if (!exit.config->hops.empty()) exit.health->succeeded();
      active_exit_ = ActiveExit(exit.health);
      co_return path;
    }
    // The target's fault (a dead origin, a parent refusing the target): another exit would not help.
    if (!exit_fault) co_return path;
    if (exit.health->failed(net::Clock::now(), egress.fail_after, egress.down_for)) {
      observe::log(observe::Level::warning, rec_.request_id,
                   "exit " + exit.config->name + " (" + exit.chain + ") of region " + choice.region->config->name +
                       " marked down for " + std::to_string(egress.down_for.count()) +
                       " ms: " + path.error().describe());
    }
    tried[attempts++] = &exit;
    if (attempts == tried.size()) co_return path;
    auto next = pick_exit(route, std::span<const ExitState* const>(tried.data(), attempts));
    if (!next) co_return path;  // nothing else to try: the client hears about the exit that failed
    choice = *next;
  }
}

}  // namespace portier::session

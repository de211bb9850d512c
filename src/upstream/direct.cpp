#include "portier/upstream/direct.hpp"

namespace portier::upstream {

net::awaitable<Result<net::Connected>> connect_direct(std::string_view host, std::uint16_t port,
                                                       const DirectOptions& opt) {
  auto endpoints = co_await net::resolve(host, port, opt.guard);
  if (!endpoints) co_return std::move(endpoints).error();
  co_return co_await net::connect_any(*endpoints, opt.attempt_timeout);
}

}  // namespace portier::upstream

#pragma once
// The direct egress: resolve, guard, dial. Chains of parent proxies will sit beside it.
#include <cstdint>
#include <string_view>

#include "portier/core/error.hpp"
#include "portier/net/resolve.hpp"

namespace portier::upstream {

struct DirectOptions {
  net::DestinationGuard guard;
  net::Clock::duration attempt_timeout = std::chrono::seconds(5);
};

net::awaitable<Result<net::Connected>> connect_direct(std::string_view host, std::uint16_t port,
                                                       const DirectOptions& opt);

}  // namespace portier::upstream

#pragma once
// One place for the Asio pieces the data path uses, so the version differences live here.
#include <asio.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#if ASIO_VERSION < 102300
#include <asio/experimental/as_tuple.hpp>
#endif

namespace portier::net {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Awaits that return (error_code, ...) instead of throwing: errors are values on the data path.
#if ASIO_VERSION >= 102300
inline constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
#else
inline constexpr auto nothrow = asio::experimental::as_tuple(asio::use_awaitable);
#endif

template <class T = void>
using awaitable = asio::awaitable<T>;

}  // namespace portier::net

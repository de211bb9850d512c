#pragma once
// Reverse mode, the pure part: which route a request takes (host + path -> pool) and which backend
// of the pool serves it. No I/O, no clock: health and load come in as facts, so every rule here is
// a table-driven unit test. The session gathers the facts and carries out the choice.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace portier::reverse {

// ---- routes -------------------------------------------------------------------------------------

struct Route {
  std::string id;                  // the route's name, or "/reverse/routes/<i>": logged as "route"
  std::vector<std::string> listeners;  // reverse listeners it serves; empty = all
  // Host: "" = any; "app.example" = exactly that name; "*.example.com" = any name under it (not
  // example.com itself). Stored lowercased, without a port or trailing dot.
  std::string host;
  std::string path_prefix = "/";   // matches "/api/" and "/api/x"; "/api" also "/api" and "/api/x", not "/apix"
  std::shared_ptr<const re2::RE2> path_regex;  // optional, on the path (without the query); all must hold
  std::string pool;                // the pool's name
  std::size_t order = 0;           // position in the config: breaks ties
};

// How specific a route is: exact host > longer suffix > shorter suffix > any host; then the longer
// path prefix; then a route with a path regex before one without; then config order.
class RouteTable {
 public:
  RouteTable() = default;
  explicit RouteTable(std::vector<Route> routes);  // sorts them most specific first

  // The most specific route whose conditions hold, or null (the listener answers 404).
  // `host` is the request's host (Host header or absolute-form authority) as normalize_host()
  // returns it (the caller has normalized it once for the log and the rules); `path` is the
  // path without the query.
  const Route* match(std::string_view listener, std::string_view host, std::string_view path) const noexcept;

  const std::vector<Route>& routes() const noexcept { return routes_; }

 private:
  std::vector<Route> routes_;
};

// The host part of a Host header value: lowercased, port and trailing dot removed, IPv6 brackets
// kept off ("[::1]:8080" -> "::1"). Empty for an empty or malformed value.
std::string normalize_host(std::string_view host_header);

// True when `path` falls under `prefix` as described at Route::path_prefix.
bool path_under(std::string_view path, std::string_view prefix) noexcept;

// The path a backend gets when the route strips its prefix: "/api/users" under "/api/" -> "/users";
// always starts with "/" (and keeps a query: "/api?x=1" -> "/?x=1").
std::string strip_prefix(std::string_view path_and_query, std::string_view prefix);

// ---- balancing ----------------------------------------------------------------------------------

enum class Balance {
  round_robin,
  least_conn,   // fewest active requests; ties broken by round robin
  weighted,     // by weight, deterministic: over every sum(weights) consecutive counter values each
                // backend gets exactly its weight, spread out (90/10 is not 90 A's in a row)
  hash_client,  // consistent hash of the client address
  hash_header,  // consistent hash of a named request header (falls back to the client address when absent)
};

// What the balancer knows about one backend at the moment of the choice.
struct BackendState {
  unsigned weight = 1;   // 0 = never chosen
  bool healthy = true;   // false: active or passive checks took it out
  bool tried = false;    // this request already failed to connect to it
  int active = 0;        // requests in flight through it (least_conn)
  std::string_view key;  // stable identity ("10.0.0.5:8080") for consistent hashing
};

// The index of the backend to use, or nothing when no backend is healthy, untried and weighted.
// `counter` is the pool's pick counter (round robin / weighted), taken by the caller from an atomic
// fetch_add; `hash_key` is the client address or header value for the hash methods. Consistent
// hashing is weighted rendezvous hashing (core/hash.hpp): removing or adding a backend
// moves only the keys that belonged to it.
std::optional<std::size_t> pick_backend(Balance method, std::span<const BackendState> backends, std::uint64_t counter,
                                        std::string_view hash_key) noexcept;

}  // namespace portier::reverse

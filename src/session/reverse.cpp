// Reverse listeners: the target comes from the route table (Host + normalized path -> pool -> one
// backend) instead of the request line. From there on it is the forward path: the same policy
// decision, upstream connector, exchange (bodies, keep-alive, pooling), tunnel and access record.
#include "portier/reverse/request.hpp"
#include "portier/upstream/chain.hpp"
#include "session_impl.hpp"

namespace portier::session {

namespace {

// RFC 9110 §9.2.2: a retry of these cannot repeat a side effect the first try had.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

}  // namespace

const config::Listener* Session::listener_config() const noexcept {
  for (const auto& l : snap_->config.listeners)
    if (l.name == listener_) return &l;
  return nullptr;
}

// A redirect listener: every request is sent to the same URL over https.
net::awaitable<bool> Session::handle_redirect(const config::Listener& listener) {
  const auto& head = req_.request();
  rec_.decision = "answer";
  head_request_ = head.method == "HEAD";
  const std::string* host = head.headers.find("Host");
  std::string name = host != nullptr ? reverse::normalize_host(*host) : std::string();
  auto form = http::classify_target(head.method, head.target);
  if (name.empty() || form != http::TargetForm::origin) {
    rec_.decision = "error";
    co_await answer_error(Error{errc::bad_request, Side::downstream,
                                name.empty() ? "a redirect needs a valid Host header" : "expected an origin-form target"},
                          false);
    finish_record();
    co_return false;
  }
  rec_.target = name;
  rec_.path = head.target.substr(0, head.target.find('?'));
  std::string location = "https://";
  location += name.find(':') != std::string::npos ? "[" + name + "]" : name;
  if (listener.redirect.https_port != 443) location += ":" + std::to_string(listener.redirect.https_port);
  location += head.target;
  http::Headers h;
  h.add("Location", location);
  h.add("Cache-Control", "no-store");
  const bool keep = !head.has_body && head.keep_alive && !stopping_ && finish_request_without_body();
  co_await answer(listener.redirect.status, "moved to " + location, keep, std::move(h));
  finish_record();
  co_return keep;
}

// Everything a reverse request goes through before a backend: target and Host, normalization,
// route, rules and rate limits, and the head for the backends (into rev_). Plain code, not part
// of the coroutine: see ReverseRequest.
Session::ReverseStop Session::prepare_reverse() {
  auto& head = req_.request();
  ReverseRequest& rq = rev_;
  rec_.decision = "forward";
  head_request_ = head.method == "HEAD";
  client_http10_ = head.version_major == 1 && head.version_minor == 0;

  if (head.method == "CONNECT") return Error{errc::method_not_allowed, Side::downstream, "this is a reverse proxy: no CONNECT"};

  // Host and path: origin-form with Host (HTTP/1.1 requires it), or absolute-form (whose authority wins).
  std::string_view target = head.target;
  std::string& host_value = rq.original_host;
  host_value.clear();
  const std::string* host_header = head.headers.find("Host");
  switch (http::classify_target(head.method, head.target)) {
    case http::TargetForm::origin:
      if (host_header != nullptr) host_value = *host_header;
      break;
    case http::TargetForm::absolute: {
      auto url = http::parse_absolute_url(head.target);
      if (!url) return std::move(url).error();
      host_value = url->authority.to_string();
      origin_target_ = url->origin_form();
      target = origin_target_;
      break;
    }
    default:
      return Error{errc::bad_request, Side::downstream, "expected a path (origin-form target)"};
  }
  std::size_t host_fields = 0;
  for (const auto& f : head.headers)
    if (http::iequals(f.name, "Host")) ++host_fields;
  if (host_fields > 1) return Error{errc::bad_request, Side::downstream, "more than one Host header"};
  if (host_header == nullptr && !client_http10_)
    return Error{errc::bad_request, Side::downstream, "an HTTP/1.1 request needs a Host header"};
  rq.host = reverse::normalize_host(host_value);
  const std::string& host = rq.host;
  if (host.empty() && !host_value.empty()) return Error{errc::bad_request, Side::downstream, "malformed Host header"};

  const auto query_at = target.find('?');
  auto path = reverse::normalize_path(target.substr(0, query_at));
  if (!path) {
    return Error{errc::bad_request, Side::downstream,
                 "malformed path (bad percent-encoding, NUL, or \"..\" above the root)"};
  }
  const std::string_view query = query_at == std::string_view::npos ? std::string_view{} : target.substr(query_at);
  rec_.target = host;
  rec_.path = *path;
  if (snap_->config.access_log.log_query) rec_.path += query;

  const reverse::Route* route = backends_->match(listener_, host, *path);
  if (route == nullptr) return Error{errc::no_route, Side::downstream, "no route for " + host + *path};
  rec_.route = route->id;
  rq.route = route;
  rq.rc = &backends_->route_config(*route);
  rq.pool = &backends_->pool_of(*route);
  const config::RouteConfig& rc = *rq.rc;

  // The same rules as forward mode, on what this listener serves.
  const std::string_view proto = client_.plain() ? "http" : "https";
  std::string& url = facts_url_;  // its memory serves request after request
  url.clear();
  url.append(proto).append("://").append(host).append(*path).append(query);
  identity_ = Identity{};
  policy::RequestFacts facts = base_facts();
  facts.host = host;
  facts.port = local_port_;
  facts.path = *path;
  facts.url = url;
  auto decision = policy::decide(facts, snap_->policy);
  if (!std::holds_alternative<policy::Forward>(decision)) return decision;
  rec_.rule = std::get<policy::Forward>(decision).rule;
  if (auto wait = apply_user_limits()) return *wait;

  // The request for the backend: hop-by-hop fields out (a WebSocket upgrade back in), forwarding
  // headers, the route's path and Host.
  rq.upgrade = reverse::websocket_upgrade(head.headers);
  if (rq.upgrade && head.has_body) rq.upgrade.reset();  // an upgrade carries no body; a plain request then
  // A refused upgrade (any answer but 101) ends the connection: the client may already be sending
  // frames behind its handshake, which must never be read as a next request.
  if (rq.upgrade) head.keep_alive = false;
  http::strip_hop_by_hop(head.headers);
  if (rq.upgrade) {
    head.headers.add("Connection", "upgrade");
    head.headers.add("Upgrade", *rq.upgrade);
  }
  reverse::apply_forwarded(head.headers, reverse::ForwardedFacts{client_ip_string_, proto, rq.original_host,
                                                                 snap_->reverse_trusted.contains(client_ip_)});
  if (rc.strip_prefix) {
    rq.backend_target = reverse::strip_prefix(*path, route->path_prefix);
  } else {
    rq.backend_target = *path;
  }
  rq.backend_target.append(query);

  rq.fopt = http::ForwardOptions{};  // no Via, no proxy X-Forwarded-For: a gateway speaks for the site
  rq.fopt.via.clear();
  response_timeout_ = rc.response_timeout.value_or(timeouts().response);
  rq.connect_timeout = rc.connect_timeout.value_or(timeouts().connect);

  const PoolState& pool = *rq.pool;
  const std::string* hash_header =
      pool.balance == reverse::Balance::hash_header ? head.headers.find(pool.config->hash_header) : nullptr;
  rq.hash_key = hash_header != nullptr ? std::string_view(*hash_header) : client_ip_string_;
  return std::monostate{};
}

// Answers a request that stops before (or instead of) a backend; true when the connection stays
// for the next request, which needs nothing of this one left unread.
net::awaitable<bool> Session::stop_reverse(ReverseStop stop) {
  auto& head = req_.request();
  const bool has_body = head.has_body;
  if (const auto* d = std::get_if<policy::Decision>(&stop)) {
    const bool keep = co_await answer_refusal(*d, has_body);
    finish_record();
    co_return keep;
  }
  if (const auto* wait = std::get_if<net::Clock::duration>(&stop)) co_return co_await answer_rate_limited(*wait, has_body);
  Error e = std::get<Error>(std::move(stop));
  rec_.decision = "error";
  const bool keep = e.side == Side::upstream || e.is(errc::no_route)
                        ? !has_body && head.keep_alive && !stopping_ && finish_request_without_body()
                        : false;
  if (e.is(errc::method_not_allowed)) {
    rec_.error = e.describe();
    http::Headers h;
    h.add("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    co_await answer(405, rec_.error, false, std::move(h));
  } else {
    co_await answer_error(e, keep);
  }
  finish_record();
  co_return keep;
}

// The head for this backend: the route's Host, then serialized (kept for a retry).
void Session::write_backend_head(const BackendRuntime& backend) {
  auto& head = req_.request();
  const ReverseRequest& rq = rev_;
  const config::BackendConfig& bc = *backend.config;
  switch (rq.rc->host_header) {
    case config::HostHeader::preserve:
      head.headers.set("Host", rq.original_host);
      break;
    case config::HostHeader::backend:
      head.headers.set("Host", bc.url.tls.server_name.empty() ? bc.address : bc.url.tls.server_name);
      break;
    case config::HostHeader::fixed:
      head.headers.set("Host", rq.rc->host_value);
      break;
  }
  // An HTTP/1.0 client may send no Host; the backend gets HTTP/1.1, which needs one.
  if (rq.original_host.empty() && rq.rc->host_header == config::HostHeader::preserve) head.headers.set("Host", bc.address);
  upstream_head_.clear();
  http::write_request_head(upstream_head_, head.method, rq.backend_target, head.headers);
}

// A new connection to the backend (into up_), or why not; marks the backend's health either way.
net::awaitable<std::optional<Error>> Session::connect_backend(const BackendRuntime& backend) {
  const config::BackendConfig& bc = *backend.config;
  const auto started = net::Clock::now();
  upstream::PathOptions options{net::DestinationGuard{nullptr, true}, rev_.connect_timeout, std::nullopt};
  bool fault = false;
  auto opened = co_await upstream::open_path(std::span(&bc.url, 1), {}, 0, upstream::PathEnd::last_hop, options, fault);
  if (!opened) {
    const PoolState& pool = *rev_.pool;
    backend.health->failed(net::Clock::now(), pool.config->fail_after, pool.config->down_for);
    Error e = std::move(opened).error();
    e.context = "backend " + bc.address + ": " + e.context;
    co_return e;
  }
  backend.health->succeeded();
  record_connect_time(started);
  up_ = std::make_unique<net::Connected>(std::move(opened->conn));
  co_return std::nullopt;
}

// prepare_reverse() with its answer kept in rev_: a ReverseStop returned into handle_reverse()
// would take a place in that coroutine's frame.
bool Session::reverse_goes_on() {
  rev_.stop = prepare_reverse();
  return rev_.stop.index() == 0;
}

// The hot path of a reverse listener. Its frame is allocated for every request: what does not
// cross a suspension stays in the plain functions above, so that it fits Asio's frame recycling.
net::awaitable<bool> Session::handle_reverse() {
  if (!reverse_goes_on()) co_return co_await stop_reverse(std::move(rev_.stop));
  const ReverseRequest& rq = rev_;
  const bool may_retry_reused = !req_.request().has_body && idempotent(req_.request().method);

  std::array<const BackendRuntime*, 2> tried{};
  std::size_t tries = 0;
  std::optional<Error> connect_error;
  for (;;) {
    const BackendRuntime* backend = choose_backend(*rq.pool, rq.hash_key, std::span(tried.data(), tries), net::Clock::now());
    if (backend == nullptr) {
      if (!connect_error)
        connect_error = Error{errc::no_backend, Side::upstream, "pool " + rq.pool->config->name + ": no healthy backend"};
      co_return co_await stop_reverse(std::move(*connect_error));
    }
    rec_.backend = backend->config->address;
    write_backend_head(*backend);

    bool reused = false;
    if (!rq.upgrade) {
      if (auto idle = ctx_.pool.acquire(backend->pool_key)) {
        up_ = std::move(idle);
        reused = true;
        rec_.connect_ms = 0;
      }
    }
    if (!reused) {
      connect_error = co_await connect_backend(*backend);
      if (connect_error) {
        // Nothing was sent: another backend may take the request whatever its method.
        if (tries + 1 < tried.size()) {
          tried[tries++] = backend;
          continue;
        }
        co_return co_await stop_reverse(std::move(*connect_error));
      }
    }
    rec_.upstream = net::endpoint_string(up_->peer);
    active_exit_ = ActiveExit(backend->health);  // least_conn counts it until the record is written

    bool answered = false;
    upgrade_allowed_ = rq.upgrade.has_value();
    upgraded_ = false;
    auto result = co_await exchange(upstream_head_, rq.fopt, reused && may_retry_reused, answered);
    upgrade_allowed_ = false;
    if (result == Exchange::retry_fresh) {
      // An idle connection the backend had closed: once more, on a fresh connection.
      end_exchange(nullptr);
      continue;
    }
    if (upgraded_) co_return co_await relay_upgraded();
    end_exchange(&backend->pool_key);
    finish_record();
    co_return result == Exchange::keep_alive;
  }
}

// The backend answered 101 to a WebSocket upgrade (its head is with the client): from here the
// connection carries frames both ways, relayed as a tunnel until either side closes.
net::awaitable<bool> Session::relay_upgraded() {
  if (!ubuf_.empty()) {  // frames the backend sent right behind its 101
    auto w = co_await write_client(ubuf_.readable());
    if (!w) {
      rec_.error = w.error().describe();
      finish_record();
      co_return false;
    }
    rec_.bytes_down += ubuf_.size();
    ubuf_.consume(ubuf_.size());
  }
  if (!cbuf_.empty()) {  // frames the client sent right behind its request
    deadline_.arm(net::Phase::upstream_write, timeouts().tunnel_idle);
    auto w = co_await write_upstream(cbuf_.readable());
    if (!w) {
      rec_.error = w.error().describe();
      finish_record();
      co_return false;
    }
    rec_.bytes_up += cbuf_.size();
    cbuf_.consume(cbuf_.size());
  }
  cbuf_.release_if_empty();
  ubuf_.release_if_empty();
  co_await relay_both_ways();
  up_.reset();
  resp_.reset();
  finish_record();
  co_return false;  // the connection was the WebSocket's
}

}  // namespace portier::session

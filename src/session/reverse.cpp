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

net::awaitable<bool> Session::handle_reverse() {
  auto& head = req_.request();
  rec_.decision = "forward";
  const bool has_body = head.has_body;
  head_request_ = head.method == "HEAD";
  client_http10_ = head.version_major == 1 && head.version_minor == 0;

  // A request refused before any backend: answered here, the connection kept when nothing of the
  // request is left unread.
  auto refuse = [&](Error e) -> net::awaitable<bool> {
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
  };

  if (head.method == "CONNECT")
    co_return co_await refuse(Error{errc::method_not_allowed, Side::downstream, "this is a reverse proxy: no CONNECT"});

  // Host and path: origin-form with Host (HTTP/1.1 requires it), or absolute-form (whose authority wins).
  std::string_view target = head.target;
  std::string host_value;
  const std::string* host_header = head.headers.find("Host");
  switch (http::classify_target(head.method, head.target)) {
    case http::TargetForm::origin:
      if (host_header != nullptr) host_value = *host_header;
      break;
    case http::TargetForm::absolute: {
      auto url = http::parse_absolute_url(head.target);
      if (!url) co_return co_await refuse(url.error());
      host_value = url->authority.to_string();
      origin_target_ = url->origin_form();
      target = origin_target_;
      break;
    }
    default:
      co_return co_await refuse(Error{errc::bad_request, Side::downstream, "expected a path (origin-form target)"});
  }
  std::size_t host_fields = 0;
  for (const auto& f : head.headers)
    if (http::iequals(f.name, "Host")) ++host_fields;
  if (host_fields > 1) co_return co_await refuse(Error{errc::bad_request, Side::downstream, "more than one Host header"});
  if (host_header == nullptr && !client_http10_)
    co_return co_await refuse(Error{errc::bad_request, Side::downstream, "an HTTP/1.1 request needs a Host header"});
  std::string host = reverse::normalize_host(host_value);
  if (host.empty() && !host_value.empty())
    co_return co_await refuse(Error{errc::bad_request, Side::downstream, "malformed Host header"});

  const auto query_at = target.find('?');
  auto path = reverse::normalize_path(target.substr(0, query_at));
  if (!path)
    co_return co_await refuse(Error{errc::bad_request, Side::downstream,
                                    "malformed path (bad percent-encoding, NUL, or \"..\" above the root)"});
  const std::string_view query = query_at == std::string_view::npos ? std::string_view{} : target.substr(query_at);
  rec_.target = host;
  rec_.path = *path;
  if (snap_->config.access_log.log_query) rec_.path += query;

  const reverse::Route* route = backends_->match(listener_, host, *path);
  if (route == nullptr)
    co_return co_await refuse(Error{errc::no_route, Side::downstream, "no route for " + host + *path});
  rec_.route = route->id;
  const config::RouteConfig& rc = backends_->route_config(*route);
  const PoolState& pool = backends_->pool_of(*route);

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
  if (!std::holds_alternative<policy::Forward>(decision)) {
    bool keep = co_await answer_refusal(decision, has_body);
    finish_record();
    co_return keep;
  }
  rec_.rule = std::get<policy::Forward>(decision).rule;
  if (auto wait = apply_user_limits()) co_return co_await answer_rate_limited(*wait, has_body);

  // The request for the backend: hop-by-hop fields out (a WebSocket upgrade back in), forwarding
  // headers, the route's path and Host.
  auto upgrade = reverse::websocket_upgrade(head.headers);
  if (upgrade && has_body) upgrade.reset();  // an upgrade carries no body; treat it as a plain request
  // A refused upgrade (any answer but 101) ends the connection: the client may already be sending
  // frames behind its handshake, which must never be read as a next request.
  if (upgrade) head.keep_alive = false;
  const std::string original_host = host_value;
  http::strip_hop_by_hop(head.headers);
  if (upgrade) {
    head.headers.add("Connection", "upgrade");
    head.headers.add("Upgrade", *upgrade);
  }
  reverse::apply_forwarded(head.headers, reverse::ForwardedFacts{client_ip_string_, proto, original_host,
                                                                 snap_->reverse_trusted.contains(client_ip_)});
  std::string backend_target = rc.strip_prefix ? reverse::strip_prefix(*path, route->path_prefix) : *path;
  backend_target.append(query);

  http::ForwardOptions fopt;  // no Via, no proxy X-Forwarded-For: a gateway speaks for the site
  fopt.via.clear();
  response_timeout_ = rc.response_timeout.value_or(timeouts().response);
  const auto connect_timeout = rc.connect_timeout.value_or(timeouts().connect);

  const std::string* hash_header =
      pool.balance == reverse::Balance::hash_header ? head.headers.find(pool.config->hash_header) : nullptr;
  const std::string_view hash_key = hash_header != nullptr ? std::string_view(*hash_header) : client_ip_string_;

  std::array<const BackendRuntime*, 2> tried{};
  std::size_t tries = 0;
  std::optional<Error> connect_error;
  std::string& head_bytes = upstream_head_;  // its memory serves request after request
  head_bytes.clear();
  for (;;) {
    const auto now = net::Clock::now();
    const BackendRuntime* backend = choose_backend(pool, hash_key, std::span(tried.data(), tries), now);
    if (backend == nullptr) {
      Error e = connect_error ? *connect_error
                              : Error{errc::no_backend, Side::upstream, "pool " + pool.config->name + ": no healthy backend"};
      co_return co_await refuse(std::move(e));
    }
    const config::BackendConfig& bc = *backend->config;
    rec_.backend = bc.address;

    switch (rc.host_header) {
      case config::HostHeader::preserve:
        head.headers.set("Host", original_host);
        break;
      case config::HostHeader::backend:
        head.headers.set("Host", bc.url.tls.server_name.empty() ? bc.address : bc.url.tls.server_name);
        break;
      case config::HostHeader::fixed:
        head.headers.set("Host", rc.host_value);
        break;
    }
    // An HTTP/1.0 client may send no Host; the backend gets HTTP/1.1, which needs one.
    if (original_host.empty() && rc.host_header == config::HostHeader::preserve) head.headers.set("Host", bc.address);
    head_bytes.clear();
    http::write_request_head(head_bytes, head.method, backend_target, head.headers);

    bool reused = false;
    if (!upgrade) {
      if (auto idle = ctx_.pool.acquire(backend->pool_key)) {
        up_ = std::move(idle);
        reused = true;
        rec_.connect_ms = 0;
      }
    }
    if (!reused) {
      const auto started = net::Clock::now();
      upstream::PathOptions options{net::DestinationGuard{nullptr, true}, connect_timeout, std::nullopt};
      bool fault = false;
      auto opened = co_await upstream::open_path(std::span(&bc.url, 1), {}, 0, upstream::PathEnd::last_hop, options, fault);
      if (!opened) {
        // Nothing was sent: another backend may take the request whatever its method.
        backend->health->failed(net::Clock::now(), pool.config->fail_after, pool.config->down_for);
        Error e = std::move(opened).error();
        e.context = "backend " + bc.address + ": " + e.context;
        connect_error = std::move(e);
        if (tries + 1 < tried.size()) {
          tried[tries++] = backend;
          continue;
        }
        co_return co_await refuse(std::move(*connect_error));
      }
      backend->health->succeeded();
      record_connect_time(started);
      up_ = std::make_unique<net::Connected>(std::move(opened->conn));
    }
    rec_.upstream = net::endpoint_string(up_->peer);
    active_exit_ = ActiveExit(backend->health);  // least_conn counts it until the record is written

    bool answered = false;
    upgrade_allowed_ = upgrade.has_value();
    upgraded_ = false;
    auto result = co_await exchange(head_bytes, fopt, reused && !has_body && idempotent(head.method), answered);
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

// Absolute-form forwarding: origin-form request to the origin over a pooled or fresh connection,
// bodies streamed both ways (never buffered whole), keep-alive on both sides when both allow it.
#include "portier/session/pac.hpp"
#include "portier/upstream/handshake.hpp"
#include "session_impl.hpp"

namespace portier::session {

using namespace asio::experimental::awaitable_operators;

namespace {

constexpr std::string_view kNotAProxyRequest =
    "this is a forward proxy: send absolute-form requests (GET http://host/path HTTP/1.1) or CONNECT host:port";

}  // namespace

// A browser fetching the PAC script from this listener ("pac.listeners"). No proxy credentials are
// asked (a browser fetches the script before it uses the proxy) and no rules apply (there is no
// destination); only the listener's allow_clients does.
net::awaitable<bool> Session::answer_pac(const config::Listener& listener) {
  const auto& head = req_.request();
  rec_.decision = "answer";
  rec_.path = snap_->config.pac.path;
  identity_ = Identity{};
  if (auto refused = policy::refuse_client(base_facts(), snap_->policy)) {
    bool keep = co_await answer_refusal(*refused, head.has_body);
    finish_record();
    co_return keep;
  }
  std::error_code ec;
  const auto local = client_.socket().local_endpoint(ec);
  std::string body = pac_for_listener(*snap_, listener, head.headers.find("Host"),
                                      SocketAddress{net::to_ip(local.address()), local.port()});
  http::Headers h;
  h.add("Content-Type", policy::kPacContentType);
  h.add("Cache-Control", policy::kPacCacheControl);
  const bool keep = !head.has_body && head.keep_alive && !stopping_ && finish_request_without_body();
  co_await answer_body(200, std::move(body), keep, std::move(h));
  finish_record();
  co_return keep;
}

net::awaitable<bool> Session::handle_forward() {
  auto& head = req_.request();
  rec_.decision = "forward";
  const bool has_body = head.has_body;
  head_request_ = head.method == "HEAD";
  client_http10_ = head.version_major == 1 && head.version_minor == 0;

  auto refuse = [&](const Error& e) -> net::awaitable<bool> {
    rec_.decision = "error";
    co_await answer_error(e, false);
    finish_record();
    co_return false;
  };

  auto form = http::classify_target(head.method, head.target);
  if (form == http::TargetForm::origin && (head.method == "GET" || head.method == "HEAD") &&
      std::string_view(head.target).substr(0, head.target.find('?')) == snap_->config.pac.path) {
    const config::Listener* listener = listener_config();
    if (listener != nullptr && snap_->config.pac.served_on(*listener)) co_return co_await answer_pac(*listener);
  }
  if (form != http::TargetForm::absolute) {
    co_return co_await refuse(Error{errc::not_a_proxy_request, Side::downstream, std::string(kNotAProxyRequest)});
  }
  auto url = http::parse_absolute_url(head.target);
  if (!url) co_return co_await refuse(url.error());
  if (url->scheme != "http") {
    co_return co_await refuse(Error{errc::bad_request, Side::downstream,
                                    "only http:// URLs are forwarded; clients reach https:// through CONNECT"});
  }
  rec_.target = url->authority.to_string();
  rec_.path = url->path;
  if (snap_->config.access_log.log_query && url->has_query) {
    rec_.path += '?';
    rec_.path += url->query;
  }

  identity_ = Identity{};
  if (req_.request().headers.contains("Proxy-Authorization")) co_await authenticate();
  policy::RequestFacts facts = base_facts();
  facts.host = url->authority.host;
  facts.port = url->authority.port;
  facts.path = url->path;
  facts.url = head.target;
  auto decision = policy::decide(facts, snap_->policy);
  if (!std::holds_alternative<policy::Forward>(decision) || identity_.throttled) {
    bool keep = co_await answer_refusal(decision, has_body);
    finish_record();
    co_return keep;
  }
  const policy::Route& route = std::get<policy::Forward>(decision).route;
  rec_.rule = std::get<policy::Forward>(decision).rule;
  rec_.session = route.session;
  if (auto wait = apply_user_limits()) co_return co_await answer_rate_limited(*wait, has_body);

  // What goes to the origin: origin-form, or absolute-form when the exit ends at an http parent.
  const http::ForwardOptions fopt = forward_options();
  http::prepare_origin_request(head, *url, fopt);
  std::string& head_bytes = upstream_head_;  // its memory serves request after request
  head_bytes.clear();
  http::write_request_head(head_bytes, head.method, head.target, head.headers);
  std::string parent_head_bytes;  // built when an exit needs it
  auto head_for = [&](const ExitState& exit, upstream::PathEnd end) -> const std::string& {
    if (end == upstream::PathEnd::target) return head_bytes;
    parent_head_bytes.clear();
    const http::ProxyUrl& parent = exit.config->hops.back();
    http::Headers headers = head.headers;
    if (parent.has_credentials()) {
      headers.add("Proxy-Authorization",
                  upstream::basic_proxy_authorization(upstream::ProxyCredentials{parent.user, parent.password}));
    }
    http::write_request_head(parent_head_bytes, head.method, "http://" + url->authority.to_string() + head.target,
                             headers);
    return parent_head_bytes;
  };

  auto exit = pick_exit(route, {});
  if (!exit) {
    bool keep = !has_body && head.keep_alive && finish_request_without_body();
    co_await answer_error(exit.error(), keep);
    finish_record();
    co_return keep;
  }
  // Idle connections are kept per exit: to the origin (direct, or tunnelled through a chain), or to
  // an http parent, which takes requests for any origin.
  auto pool_key = [&](const ExitState& e, upstream::PathEnd end) {
    if (end == upstream::PathEnd::last_hop) return "exit " + e.config->name;
    if (e.config->hops.empty() && !e.config->bind) return rec_.target;
    return "exit " + e.config->name + " " + rec_.target;
  };

  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    upstream::PathEnd end = path_end(*exit->exit, true);
    std::string key = pool_key(*exit->exit, end);
    if (auto idle = ctx_.pool.acquire(key)) {
      up_ = std::move(idle);
      reused = true;
      rec_.region = exit->region->config->name;
      rec_.exit = exit->exit->config->name;
      rec_.chain = exit->exit->chain;
      rec_.connect_ms = 0;
    } else {
      auto opened = co_await open_upstream(route, *exit, url->authority.host, url->authority.port, true);
      if (!opened) {
        bool keep = !has_body && head.keep_alive && finish_request_without_body();
        co_await answer_error(opened.error(), keep);
        finish_record();
        co_return keep;
      }
      // open_upstream may have moved to another exit.
      end = path_end(*exit->exit, true);
      key = pool_key(*exit->exit, end);
      up_ = std::make_unique<net::Connected>(std::move(opened->conn));
      if (!opened->leftover.empty()) {
        // An origin does not speak before the request: bytes behind the parent's 200 are garbage.
        co_await answer_error(Error{errc::upstream_bad_response, Side::upstream,
                                    "bytes from the origin before the request was sent"},
                              false);
        up_.reset();
        finish_record();
        co_return false;
      }
    }
    rec_.upstream = net::endpoint_string(up_->peer);

    bool answered = false;
    parent_exit_ = end == upstream::PathEnd::last_hop ? exit->exit : nullptr;
    auto result = co_await exchange(head_for(*exit->exit, end), fopt, reused && attempt == 0 && !has_body, answered);
    parent_exit_ = nullptr;
    if (result == Exchange::retry_fresh) {
      // A pooled connection the origin had closed: once more on a fresh one, with a parser that
      // has not seen the dead connection's end.
      end_exchange(nullptr);
      continue;
    }
    end_exchange(&key);
    finish_record();
    co_return result == Exchange::keep_alive;
  }
}

// After an exchange: the upstream connection back to the pool under `pool_key` when it is reusable
// (never with a null key: a connection found dead), closed otherwise. The response parser stays
// for the next exchange, which resets it.
void Session::end_exchange(const std::string* pool_key) {
  if (pool_key != nullptr && upstream_reusable_ && up_) ctx_.pool.release(*pool_key, std::move(up_));
  up_.reset();
  ubuf_.consume(ubuf_.size());
  ubuf_.release_if_empty();
}

// Consumes the (empty) rest of a request without a body, so the parser is at the next request.
bool Session::finish_request_without_body() {
  if (request_complete_) return true;
  auto r = req_.feed(cbuf_.readable());
  if (!r || r->stop != http::Stop::message_complete) return false;
  cbuf_.consume(r->consumed);
  request_complete_ = true;
  return true;
}

net::awaitable<Session::Exchange> Session::exchange(const std::string& head_bytes, const http::ForwardOptions& fopt,
                                                    bool may_retry, bool& answered) {
  const auto& head = req_.request();
  request_body_done_ = !head.has_body;
  response_head_sent_ = false;
  response_done_ = false;
  response_until_close_ = false;
  upstream_reusable_ = false;
  dechunk_ = false;
  upstream_bytes_in_ = 0;
  client_keep_alive_ = head.keep_alive && !stopping_ && !ctx_.draining;
  if (resp_) {
    resp_->reset(snap_->config.limits);  // the last exchange's parser, with its memory
  } else {
    resp_.emplace(http::Parser::Kind::response, snap_->config.limits);
  }
  if (!head.has_body && !finish_request_without_body()) {
    client_keep_alive_ = false;
  }

  deadline_.arm(net::Phase::upstream_write, response_timeout_);
  std::error_code write_ec;
  std::string_view head_left = head_bytes, none;
  if (!up_->stream.write_now(head_left, none, write_ec)) {
    auto [ec, n] = co_await upstream_write_op(head_left);
    write_ec = ec;
  }
  auto wrote = upstream_write_result(write_ec);
  // (No co_await inside ?: here: GCC 12 miscompiles it, freeing a temporary twice.)
  Result<void> outcome = wrote;
  if (wrote && !head.has_body) {
    outcome = co_await relay_response(fopt);
  } else if (wrote) {
    outcome = co_await relay_response_beside_body(fopt);
  }

  if (!outcome) {
    const Error& e = outcome.error();
    if (may_retry && upstream_bytes_in_ == 0 && !response_head_sent_ && e.side == Side::upstream &&
        (e.is(errc::upstream_closed))) {
      co_return Exchange::retry_fresh;
    }
    rec_.error = e.describe();
    if (!response_head_sent_) {
      answered = true;
      co_await answer_error(e, false);
    }
    co_return Exchange::close;
  }
  upstream_reusable_ = upstream_reusable_ && request_body_done_ && response_done_ && !response_until_close_;
  if (!request_body_done_ || response_until_close_ || dechunk_) client_keep_alive_ = false;
  co_return client_keep_alive_ ? Exchange::keep_alive : Exchange::close;
}

net::awaitable<Result<void>> Session::send_request_body() {
  for (;;) {
    if (!cbuf_.empty()) {
      auto r = req_.feed(cbuf_.readable());
      if (!r) co_return r.error();
      std::string_view raw = cbuf_.readable().substr(0, r->consumed);
      if (!raw.empty()) {
        deadline_.touch(response_timeout_);
        auto w = co_await write_upstream(raw);
        if (!w) co_return w;
        rec_.bytes_up += raw.size();
        if (shaper_) co_await shape(Shaper::up, raw.size());  // no coroutine frame when not shaping
      }
      cbuf_.consume(r->consumed);
      if (r->stop == http::Stop::message_complete) {
        request_body_done_ = true;
        request_complete_ = true;
        co_return Result<void>{};
      }
      if (!cbuf_.empty()) continue;
    }
    auto [p, cap] = cbuf_.writable();
    auto [ec, n] = co_await client_.async_read_some(asio::buffer(p, shaped_cap(cap)), net::nothrow);
    if (ec) {
      if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none)
        co_return Error{errc::request_timeout, Side::downstream, "the request body stalled"};
      co_return Error{errc::client_closed, Side::downstream, "client closed during the request body"};
    }
    deadline_.touch(response_timeout_);
    cbuf_.commit(n);
  }
}

net::awaitable<Result<void>> Session::send_request_body_then_park() {
  auto r = co_await send_request_body();
  if (!r) co_return r;
  // Done: wait (cancellably) for the response side, which decides when this exchange ends.
  asio::steady_timer park(client_.get_executor(), net::Clock::time_point::max());
  co_await park.async_wait(net::nothrow);
  co_return Result<void>{};
}

// The origin may answer before the body is complete (an early 413, or 100 Continue first), so
// the body and the response run side by side; whichever fails first stops the other. Its own
// coroutine: the parallel group is large, and exchange()'s frame, allocated for every request,
// stays small enough for Asio's frame recycling (at most 1020 bytes).
net::awaitable<Result<void>> Session::relay_response_beside_body(const http::ForwardOptions& fopt) {
  auto both = co_await (send_request_body_then_park() || relay_response(fopt));
  if (both.index() == 0) co_return std::get<0>(std::move(both));
  Result<void> outcome = std::get<1>(std::move(both));
  if (outcome && !request_body_done_) client_keep_alive_ = false;  // rest of the body is unread
  co_return outcome;
}

// Why reading the response failed (not a clean end at EOF, which the caller handles).
Error Session::response_read_error(const std::error_code& ec) const {
  if (net::is_eof(ec)) {
    return Error{errc::upstream_closed, Side::upstream,
                 upstream_bytes_in_ == 0 ? "the origin closed the connection without a response"
                                         : "the origin closed the connection mid-response"};
  }
  if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none) {
    if (!request_body_done_ && deadline_.expired() != net::Phase::upstream_response)
      return Error{errc::request_timeout, Side::downstream, "the request body stalled"};
    return Error{errc::upstream_timeout, Side::upstream, "no response from the origin in time"};
  }
  return Error{errc::upstream_closed, Side::upstream, "reading the response: " + ec.message()};
}

// A WebSocket handshake answered: the head goes on with its upgrade fields.
void Session::prepare_upgrade_head(http::ResponseHead& h) {
  const std::string* upgrade = h.headers.find("Upgrade");
  std::string protocol = upgrade != nullptr ? *upgrade : std::string("websocket");
  http::strip_hop_by_hop(h.headers);
  h.headers.add("Connection", "upgrade");
  h.headers.add("Upgrade", protocol);
}

// The parent wants other credentials than the exit has: the client must not take that challenge
// for ours. It is the exit's failure (its config), so it counts against it.
Error Session::parent_refused_error() {
  const auto& egress = egress_->config();
  parent_exit_->health->failed(net::Clock::now(), egress.fail_after, egress.down_for);
  return Error{errc::parent_refused, Side::upstream,
               parent_exit_->config->hops.back().label() + ": the parent proxy rejected our credentials (407)"};
}

// Error paths and rare branches are plain functions (above): this coroutine's frame is allocated
// for every request, and it stays within Asio's frame recycling only while it is small.
net::awaitable<Result<void>> Session::relay_response(const http::ForwardOptions& fopt) {
  auto& rp = *resp_;
  rp.expect_head_response(head_request_);
  bool final_head = false;
  // Read only when the parser asked for more: a head without a body completes on an empty feed.
  bool need_read = ubuf_.empty();
  bool first_read = true;
  for (;;) {
    if (need_read) {
      auto [p, cap] = ubuf_.writable();
      deadline_.arm(net::Phase::upstream_response, response_timeout_);
      // The first read answers the request just written: a draining read (net/drain_read.hpp).
      const auto buffer = asio::buffer(p, shaped_cap(cap));
      auto read = first_read ? up_->stream.async_read_draining(buffer, net::nothrow)
                             : up_->stream.async_read_some(buffer, net::nothrow);
      auto [ec, n] = co_await std::move(read);
      first_read = false;
      if (ec) {
        if (net::is_eof(ec) && final_head) {
          auto fin = rp.finish();
          if (fin && fin->stop == http::Stop::message_complete) {
            response_done_ = true;
            response_until_close_ = true;
            co_return Result<void>{};
          }
        }
        co_return response_read_error(ec);
      }
      ubuf_.commit(n);
      upstream_bytes_in_ += n;
    }

    auto r = rp.feed(ubuf_.readable());
    if (!r) co_return Error{errc::upstream_bad_response, Side::upstream, r.error().context};
    const std::size_t consumed = r->consumed;
    need_read = r->stop == http::Stop::need_more;

    if (r->stop == http::Stop::head || r->stop == http::Stop::upgrade) {
      auto& h = rp.response();
      ubuf_.consume(consumed);
      if (h.status == 101 && upgrade_allowed_) {
        // A WebSocket handshake answered: the head goes on, then a tunnel.
        prepare_upgrade_head(h);
        http::write_response_head(out_, h.status, h.reason, h.headers);
        if (auto w = co_await write_client(out_); !w) co_return w;
        rec_.status = 101;
        response_head_sent_ = true;
        response_done_ = true;
        upgraded_ = true;
        co_return Result<void>{};
      }
      if (h.status == 101 || r->stop == http::Stop::upgrade) {
        co_return Error{errc::upstream_bad_response, Side::upstream, "unexpected protocol upgrade from the origin"};
      }
      out_.clear();
      if (h.status < 200) {  // interim (100 Continue, 103): pass on, the final response follows
        http::strip_hop_by_hop(h.headers);
        http::write_response_head(out_, h.status, h.reason, h.headers);
        if (auto w = co_await write_client(out_); !w) co_return w;
        continue;
      }
      if (h.status == 407 && parent_exit_ != nullptr) co_return parent_refused_error();
      final_head = true;
      rec_.status = h.status;
      response_until_close_ = h.body_until_close;
      dechunk_ = client_http10_ && h.chunked;  // an HTTP/1.0 client cannot read chunked framing
      if (response_until_close_ || dechunk_) client_keep_alive_ = false;
      if (dechunk_) h.headers.remove("Transfer-Encoding");
      upstream_reusable_ = h.keep_alive;
      http::prepare_client_response(h, fopt, client_keep_alive_);
      http::write_response_head(out_, h.status, h.reason, h.headers);
      if (ubuf_.empty()) {  // no body bytes yet: do not hold the head back for them
        if (auto w = co_await write_client(out_); !w) co_return w;
        response_head_sent_ = true;
        out_.clear();
      }
      continue;
    }

    // Body bytes (or nothing) up to `consumed`; raw bytes keep the origin's validated framing.
    std::string_view body = ubuf_.readable().substr(0, consumed);
    if (dechunk_) {
      dechunked_.clear();
      for (auto c : rp.body_chunks()) dechunked_.append(c.data(), c.size());
      body = dechunked_;
    }
    if (final_head && (!out_.empty() || !body.empty())) {
      std::error_code ec;
      std::string_view head_left = out_, body_left = body;
      if (!client_write_now(head_left, body_left, ec)) {
        auto [wec, n] = co_await client_write_op(head_left, body_left);
        ec = wec;
      }
      if (auto w = client_write_result(ec); !w) co_return w;
      response_head_sent_ = true;
      out_.clear();
      rec_.bytes_down += body.size();
      if (shaper_) co_await shape(Shaper::down, body.size());  // no coroutine frame when not shaping
    }
    ubuf_.consume(consumed);
    if (r->stop == http::Stop::message_complete) {
      if (!final_head) continue;  // end of an interim response
      response_done_ = true;
      if (!ubuf_.empty()) upstream_reusable_ = false;  // the origin sent more than one response
      co_return Result<void>{};
    }
  }
}

}  // namespace portier::session

// The per-connection pipeline: read a head -> facts -> policy::decide -> forward | tunnel | answer,
// and one access record for every request, whatever its outcome.

#include <algorithm>
#include <cstring>
#include <ctime>
#include <tuple>

#include "portier/observe/log.hpp"
#include "portier/policy/block_page.hpp"

#include "session_impl.hpp"

namespace portier::session {

using namespace asio::experimental::awaitable_operators;

// ---- worker bookkeeping ---------------------------------------------------------------------------

void SessionList::insert(Hook& h) noexcept {
  h.prev = nullptr;
  h.next = head_;
  if (head_) head_->prev = &h;
  head_ = &h;
  ++size_;
}

void SessionList::erase(Hook& h) noexcept {
  if (h.prev) h.prev->next = h.next;
  else if (head_ == &h) head_ = h.next;
  else return;  // not linked
  if (h.next) h.next->prev = h.prev;
  h.prev = h.next = nullptr;
  --size_;
}

std::uint64_t WorkerContext::next_request_id() noexcept {
  // splitmix64 over a per-worker random seed: unique within the process, unguessable across runs.
  std::uint64_t z = request_seed + (++requests) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void WorkerContext::begin_drain() {
  draining = true;
  sessions.for_each([](Session& s) { s.drain(); });
}

void WorkerContext::abort_all() {
  sessions.for_each([](Session& s) { s.abort(); });
}

net::awaitable<void> run_session(net::tcp::socket client, net::tcp::endpoint peer, std::string listener,
                                WorkerContext& ctx) {
  LimitTable::Slot slot;
  if (ctx.limits != nullptr) {
    const config::TrafficLimits& limits = ctx.snapshot->config.traffic;
    const IpAddress ip = net::to_ip(peer.address());
    if (auto refused = ctx.limits->admit(ip, limits, slot)) {
      // Closed at once, as Squid does: answering would mean reading (and for TLS, a handshake).
      ++ctx.metrics.limit_refusals[static_cast<std::size_t>(*refused)];
      const bool total = *refused == LimitKind::connections;
      ctx.limits->report(*refused, ip.to_string(),
                         total ? "max_connections (" + std::to_string(limits.max_connections) + ") open connections"
                               : "max_connections_per_client (" + std::to_string(limits.max_connections_per_client) +
                                     ") from one address",
                         limits.log_interval);
      std::error_code ignored;
      client.close(ignored);
      co_return;
    }
  }
  Session s(std::move(client), peer, std::move(listener), ctx);
  s.deadline().start([&s] { s.on_deadline(); });
  co_await s.run_then_stop_watchdog();
}

// ---- session lifetime --------------------------------------------------------------------------------

Session::Session(net::tcp::socket client, const net::tcp::endpoint& peer, std::string listener, WorkerContext& ctx)
    : ctx_(ctx),
      snap_(ctx.snapshot),
      egress_(ctx.egress),
      backends_(ctx.backends),
      client_(std::move(client)),
      listener_(std::move(listener)),
      client_addr_(net::endpoint_string(peer)),
      client_ip_(net::to_ip(peer.address())),
      deadline_(client_.get_executor()),
      req_(http::Parser::Kind::request, snap_->config.limits) {
  client_ip_string_ = client_ip_.to_string();
  std::error_code ec;
  local_port_ = client_.socket().local_endpoint(ec).port();
  conn_id_ = ctx_.next_connection_id();
  for (std::size_t i = 0; i < snap_->config.listeners.size(); ++i)
    if (snap_->config.listeners[i].name == listener_) listener_index_ = i;
  ++ctx_.metrics.connections_total;
  ++ctx_.metrics.connections_open;
  hook_.session = this;
  ctx_.sessions.insert(hook_);
}

Session::~Session() {
  --ctx_.metrics.connections_open;
  ctx_.sessions.erase(hook_);
}

void Session::on_deadline() {
  std::error_code ignored;
  client_.socket().cancel(ignored);
  if (up_) up_->stream.socket().cancel(ignored);
}

void Session::drain() {
  stopping_ = true;
  if (idle_) {
    std::error_code ignored;
    client_.socket().cancel(ignored);
  }
}

void Session::abort() {
  stopping_ = true;
  aborted_ = true;
  deadline_.arm(net::Phase::drain, std::chrono::milliseconds(0));
}

net::awaitable<void> Session::run_then_stop_watchdog() {
  try {
    co_await run();
  } catch (const std::exception& e) {
    // A bug, not traffic: log it and end only this connection.
    observe::log(observe::Level::error, rec_.request_id,
                 "connection " + std::to_string(conn_id_) + ": " + e.what());
  }
  co_await close_client();
  deadline_.stop();
}

// After an answer that ends the connection, the client may still be sending (the rest of a body,
// pipelined requests). Closing with unread bytes makes the kernel send a reset, which can destroy
// our answer before the client reads it; so send FIN first and read what comes, for a short,
// bounded while, before closing (as nginx's lingering close does).
net::awaitable<void> Session::close_client() {
  std::error_code ignored;
  if (!client_.plain() && !aborted_) co_await client_.shutdown_tls(std::chrono::milliseconds(500));
  if (linger_ && !aborted_) {
    client_.socket().shutdown(net::tcp::socket::shutdown_send, ignored);
    deadline_.arm(net::Phase::drain, std::chrono::seconds(2));
    std::size_t drained = 0;
    while (drained < 1024 * 1024) {
      cbuf_.consume(cbuf_.size());  // discard: nothing more is parsed on this connection
      auto [p, cap] = cbuf_.writable();
      auto [ec, n] = co_await client_.async_read_some(asio::buffer(p, cap), net::nothrow);
      if (ec) break;
      drained += n;
    }
  }
  client_.socket().close(ignored);
}

net::awaitable<void> Session::run() {
  if (!co_await start_tls()) co_return;
  for (;;) {
    begin_record();
    auto head = co_await read_request_head();
    // Each request runs under the snapshot current when it starts: a reload reaches keep-alive
    // connections at their next request, and never changes a request or tunnel in flight.
    snap_ = ctx_.snapshot;
    egress_ = ctx_.egress;
    backends_ = ctx_.backends;
    response_timeout_ = timeouts().response;
    if (!head) {
      const Error& e = head.error();
      if (!e.is(errc::client_closed) && !e.is(errc::shutting_down)) {
        rec_.decision = "error";
        co_await answer_error(e);
        finish_record();
      }
      co_return;
    }
    if (*head == HeadResult::closed) co_return;
    first_request_ = false;

    const auto& request = req_.request();
    rec_.method = request.method;
    const config::Listener* listener = listener_config();
    bool keep = false;
    if (listener != nullptr && listener->mode == config::ListenerMode::reverse) {
      keep = co_await handle_reverse();
    } else if (listener != nullptr && listener->mode == config::ListenerMode::redirect) {
      keep = co_await handle_redirect(*listener);
    } else {
      keep = request.method == "CONNECT" ? co_await handle_connect() : co_await handle_forward();
    }
    if (!keep || stopping_ || ctx_.draining) co_return;
  }
}

// An HTTPS proxy listener: the TLS handshake comes first, within the header timeout. A failed one
// is logged (there is no HTTP to answer with) and ends the connection.
net::awaitable<bool> Session::start_tls() {
  auto it = snap_->listener_tls.find(listener_);
  if (it == snap_->listener_tls.end()) co_return true;
  begin_record();  // times the handshake, for the record of a failed one
  deadline_.arm(net::Phase::request_head, timeouts().header);
  auto hs = co_await client_.start_tls_server(it->second.get());
  deadline_.disarm();
  if (hs) co_return true;
  rec_.decision = "error";
  rec_.error = deadline_.expired() == net::Phase::request_head ? "tls_failed: TLS handshake: no ClientHello in time"
                                                               : hs.error().describe();
  finish_record();
  co_return false;
}

// Reads until the parser has a complete head. The first byte of a request may take the keep-alive
// time; from then on, the whole head must arrive within the header timeout.
net::awaitable<Result<Session::HeadResult>> Session::read_request_head() {
  bool started = !cbuf_.empty();
  if (first_request_) {
    deadline_.arm(net::Phase::request_head, timeouts().header);
  } else if (!started) {
    deadline_.arm(net::Phase::keepalive_idle, timeouts().keepalive);
  } else {
    deadline_.arm(net::Phase::request_head, timeouts().header);
  }
  for (;;) {
    if (!cbuf_.empty()) {
      auto r = req_.feed(cbuf_.readable());
      if (!r) co_return r.error();
      cbuf_.consume(r->consumed);
      if (r->stop == http::Stop::head || r->stop == http::Stop::upgrade) {
        deadline_.disarm();
        request_complete_ = false;
        co_return HeadResult::ready;
      }
      if (r->stop == http::Stop::message_complete) continue;  // cannot happen before a head; be safe
    }
    if (stopping_ && !started) co_return HeadResult::closed;
    idle_ = !started;
    auto [read_ec, read_n] = co_await client_read_op();
    auto [ec, n] = client_read_result(read_ec, read_n);
    idle_ = false;
    if (ec) {
      if (ec == asio::error::operation_aborted && deadline_.expired() == net::Phase::request_head && started) {
        co_return Error{errc::request_timeout, Side::downstream, "the request head did not arrive in time"};
      }
      co_return HeadResult::closed;  // EOF, reset, idle timeout or drain between requests: just close
    }
    cbuf_.commit(n);
    if (!started) {
      started = true;
      rec_.start = std::chrono::system_clock::now();
      started_ = net::Clock::now();
      if (!first_request_) deadline_.arm(net::Phase::request_head, timeouts().header);
    }
  }
}

// ---- identity and facts ----------------------------------------------------------------------------

namespace {

// Runs on the verifier pool. Parameters are by value: the frame owns them, not the caller.
net::awaitable<policy::CheckResult> check_on_pool(std::shared_ptr<const policy::UsersFile> users, std::string user,
                                                  std::string password) {
  co_return users->check(user, password);
}

}  // namespace

// Verifies Proxy-Authorization, if any. A keep-alive request repeating the header this connection
// already proved costs a string compare; other cached successes a hash lookup; a miss is checked on
// the verifier pool so a bcrypt check never stalls this thread's other connections.
net::awaitable<void> Session::authenticate() {
  const std::string* header = req_.request().headers.find("Proxy-Authorization");
  identity_.present = true;
  if (!snap_->users) co_return;
  const auto now = net::Clock::now();
  const auto epoch = snap_->users->epoch();
  if (proven_ && proven_->epoch == epoch && now < proven_->expiry && proven_->header == *header) {
    identity_ = proven_->identity;
    set_user(proven_->identity.user);
    ++ctx_.metrics.auth_success;
    co_return;
  }
  auto creds = policy::parse_basic_credentials(*header);
  if (!creds) co_return;
  // Parameters in the user name ("alice-region-fi"): the password is the base user's.
  {
    auto params = policy::parse_username(creds->user, snap_->policy.egress.username);
    if (!params) {
      identity_.username_error = params.error().context;
      co_return;
    }
    identity_.region = params->region;
    identity_.session = params->session;
    identity_.sesstime = params->sesstime_minutes;
    std::string base(params->base);
    creds->user = std::move(base);
  }
  const auto ttl = snap_->config.auth.cache_ttl;
  auto expiry = now + ttl;
  bool ok = ctx_.credentials.lookup(*creds, now, epoch, &expiry);
  if (!ok && ctx_.shared_credentials != nullptr && ctx_.shared_credentials->lookup(*creds, now, epoch, &expiry)) {
    ctx_.credentials.insert(*creds, now, expiry - now, epoch);
    ok = true;
  }
  if (!ok) {
    if (!ctx_.throttle->allow(client_ip_, now)) {
      identity_.throttled = true;
      co_return;
    }
    policy::CheckResult r = policy::CheckResult::wrong_password;
    if (ctx_.verifier != nullptr) {
      r = co_await asio::co_spawn(*ctx_.verifier, check_on_pool(snap_->users, creds->user, creds->password),
                                  asio::use_awaitable);
    } else {
      r = snap_->users->check(creds->user, creds->password);
    }
    ok = r == policy::CheckResult::ok;
    const auto checked = net::Clock::now();
    if (ok) {
      expiry = checked + ttl;
      ctx_.credentials.insert(*creds, checked, ttl, epoch);
      if (ctx_.shared_credentials != nullptr) ctx_.shared_credentials->insert(*creds, checked, ttl, epoch);
    } else {
      ctx_.throttle->record_failure(client_ip_, checked);
      rec_.error = "auth_failed: user " + creds->user;
    }
  }
  if (!ok) {
    ++ctx_.metrics.auth_failure;
    co_return;
  }
  ++ctx_.metrics.auth_success;
  // Remember the proof for this connection's next requests, no longer than the cache would.
  if (ttl > net::Clock::duration::zero()) {
    if (!proven_) proven_ = std::make_unique<ProvenCredentials>();
    identity_.user = creds->user;
    *proven_ = ProvenCredentials{*header, identity_, epoch, expiry};
    proven_->identity.groups = nullptr;  // looked up again in the snapshot of each request
  }
  set_user(creds->user);
}

void Session::set_user(const std::string& user) {
  identity_.user = user;
  rec_.user = user;
  if (auto it = snap_->user_groups.find(user); it != snap_->user_groups.end()) {
    identity_.groups = &it->second;
    for (const auto& g : it->second) {
      if (!rec_.groups.empty()) rec_.groups += ',';
      rec_.groups += g;
    }
  }
}

policy::MinuteOfWeek Session::minute_of_week() const {
  const auto& t = snap_->config.policy;
  if (t.time_override) return *t.time_override;
  std::time_t secs = std::chrono::system_clock::to_time_t(rec_.start);
  std::tm tm{};
  if (t.time_utc) {
    ::gmtime_r(&secs, &tm);
  } else {
    ::localtime_r(&secs, &tm);
  }
  int monday_based = (tm.tm_wday + 6) % 7;
  return monday_based * 1440 + tm.tm_hour * 60 + tm.tm_min;
}

policy::RequestFacts Session::base_facts() const {
  policy::RequestFacts f;
  f.listener = listener_;
  f.client = client_ip_;
  f.method = req_.request().method;
  f.credentials_present = identity_.present;
  f.user = identity_.user;
  f.groups = identity_.groups;
  f.asked_region = identity_.region;
  f.session_id = identity_.session;
  f.sesstime = identity_.sesstime;
  f.username_error = identity_.username_error;
  if (snap_->policy.uses_time) f.minute_of_week = minute_of_week();  // localtime_r takes a global lock
  return f;
}

// After a refusal: the connection stays usable only if nothing of this request is left unread.
bool Session::refusal_keeps_connection(bool body_unread) {
  const auto& head = req_.request();
  if (body_unread || !head.keep_alive || stopping_) return false;
  if (head.method == "CONNECT") {
    if (!cbuf_.empty()) return false;  // bytes after the CONNECT head were meant for a tunnel
    req_ = http::Parser(http::Parser::Kind::request, snap_->config.limits);
    return true;
  }
  return finish_request_without_body();
}

std::optional<net::Clock::duration> Session::apply_user_limits() {
  shaper_.reset();
  const config::TrafficLimits& limits = snap_->config.traffic;
  if (!limits.per_user() || ctx_.limits == nullptr) return std::nullopt;
  if (identity_.groups != nullptr && !limits.exempt_groups.empty()) {
    for (const auto& g : *identity_.groups)
      if (std::find(limits.exempt_groups.begin(), limits.exempt_groups.end(), g) != limits.exempt_groups.end())
        return std::nullopt;
  }
  // "u:" and "a:" keep a user called "192.0.2.1" apart from that address.
  std::string key = identity_.user.empty() ? "a:" + client_ip_string_ : "u:" + identity_.user;
  const auto now = net::Clock::now();
  if (auto wait = ctx_.limits->take_request(key, limits, now)) {
    ++ctx_.metrics.limit_refusals[static_cast<std::size_t>(LimitKind::request_rate)];
    ctx_.limits->report(LimitKind::request_rate, identity_.user.empty() ? client_ip_string_ : "user " + identity_.user,
                        "per_user.requests_per_second", limits.log_interval);
    return wait;
  }
  shaper_ = ctx_.limits->shaper(key, limits, now);
  return std::nullopt;
}

net::awaitable<bool> Session::answer_rate_limited(net::Clock::duration wait, bool body_unread) {
  const auto secs = std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(wait).count());
  rec_.decision = "deny";
  rec_.rule = "rate_limit";
  rec_.error = "request rate limit reached";
  http::Headers h;
  h.add("Retry-After", std::to_string(secs));
  const bool keep = refusal_keeps_connection(body_unread);
  co_await answer(429, "too many requests; try again in " + std::to_string(secs) + " s", keep, h);
  finish_record();
  co_return keep;
}

net::awaitable<void> Session::shape(Shaper::Direction d, std::size_t n) {
  if (!shaper_ || n == 0) co_return;
  const auto pause = shaper_->moved(d, n, net::Clock::now());
  if (pause <= net::Clock::duration::zero()) co_return;
  ctx_.metrics.shaping_seconds[d] += std::chrono::duration<double>(pause).count();
  asio::steady_timer t(client_.get_executor(), pause);
  co_await t.async_wait(net::nothrow);
}

net::awaitable<bool> Session::answer_refusal(const policy::Decision& d, bool body_unread) {
  const auto& head = req_.request();
  const bool connect = head.method == "CONNECT";
  auto reusable = [&] { return refusal_keeps_connection(body_unread); };

  if (identity_.throttled) {
    rec_.decision = "deny";
    rec_.rule = "auth_throttle";
    rec_.error = "too many failed logins from this address";
    auto secs = std::chrono::ceil<std::chrono::seconds>(snap_->config.auth.block).count();
    http::Headers h;
    h.add("Retry-After", std::to_string(secs));
    bool keep = reusable();
    co_await answer(429, "too many failed logins from this address; try again in " + std::to_string(secs) + " s", keep, h);
    co_return keep;
  }
  if (const auto* c = std::get_if<policy::Challenge>(&d)) {
    rec_.decision = "challenge";
    if (rec_.error.empty()) rec_.error = identity_.present ? "auth_failed" : "auth_required";
    http::Headers h;
    h.add("Proxy-Authenticate", "Basic realm=\"" + c->realm + "\", charset=\"UTF-8\"");
    bool keep = reusable();  // browsers answer the challenge on the same connection
    co_await answer(407, "this proxy requires a user name and password", keep, h);
    co_return keep;
  }
  const auto& deny = std::get<policy::Deny>(d);
  record_denial(deny);
  if (deny.close) co_return false;  // refused network, configured to get no answer at all
  std::string request_id = observe::format_request_id(rec_.request_id);
  std::string host = rec_.target.substr(0, rec_.target.rfind(':'));
  policy::BlockPageFields fields{host, deny.reason, deny.category, deny.rule, request_id};
  const std::string* accept = head.headers.find("Accept");
  bool keep = !connect && reusable();
  if (!connect && accept != nullptr && policy::wants_html(*accept)) {
    http::Headers h;
    h.add("Content-Type", "text/html; charset=utf-8");
    h.add("Cache-Control", "no-store");
    co_await answer_body(deny.status, policy::render_block_page(snap_->block_page, fields), keep, h);
  } else {
    http::Headers h;
    h.add("Content-Type", "text/plain; charset=utf-8");
    h.add("Cache-Control", "no-store");
    co_await answer_body(deny.status, policy::render_block_text(fields), keep, h);
  }
  co_return keep;
}

// Reads what the client sent into cbuf_ (not committed: the caller commits n), in two halves so
// that the read of every request costs no coroutine frame: await client_read_op(), then pass what
// it gave to client_read_result(). With nothing buffered (between requests, or a tunnel's first
// bytes) the read goes to a small buffer in the session and is copied over: the connection holds
// no block while it waits, and on a plain socket the wait is a read queued on the socket (one
// receive that finds nothing, none to re-arm the descriptor). Over TLS, what a record holds beyond
// the small buffer stays in OpenSSL for the next read, which needs no wait. Every such read is
// answered by a write to the client (the response, the tunnel's), so it may be a draining read
// (net/drain_read.hpp): after the one that read a whole request, the next waits without a recv(2).
net::awaitable<std::tuple<std::error_code, std::size_t>> Session::client_read_op() {
  read_into_first_bytes_ = cbuf_.empty();
  char* to = first_bytes_.data();
  std::size_t cap = first_bytes_.size();
  if (read_into_first_bytes_) {
    cbuf_.release_if_empty();
  } else {
    std::tie(to, cap) = cbuf_.writable();
    // Full: an empty read of the socket itself completes at once with nothing (no TLS call).
    if (cap == 0) return client_.socket().async_read_some(asio::mutable_buffer(), net::nothrow);
  }
  return client_.async_read_draining(asio::buffer(to, cap), net::nothrow);
}

std::pair<std::error_code, std::size_t> Session::client_read_result(std::error_code ec, std::size_t n) {
  if (net::is_eof(ec)) ec = asio::error::eof;
  if (ec) return {ec, 0};
  if (!read_into_first_bytes_) {
    if (n == 0) return {asio::error::no_buffer_space, 0};  // the read had no room
    return {ec, n};
  }
  auto [block, room] = cbuf_.writable();  // an empty buffer: room for every byte of first_bytes_
  std::memcpy(block, first_bytes_.data(), n);
  return {ec, n};
}

// ---- writing -----------------------------------------------------------------------------------------

net::awaitable<Result<void>> Session::write_client(std::string_view a, std::string_view b) {
  if (aborted_) co_return Error{errc::shutting_down, Side::internal, "shutdown grace period over"};
  auto [ec, n] = co_await client_write_op(a, b);
  co_return client_write_result(ec);
}

net::awaitable<std::tuple<std::error_code, std::size_t>> Session::client_write_op(std::string_view a,
                                                                                 std::string_view b) {
  if (!aborted_) deadline_.arm(net::Phase::client_write, timeouts().response);  // after abort: its deadline
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  return asio::async_write(client_, bufs, net::nothrow);
}

// The first attempt of a client write, without waiting (net::Stream::write_now): true when it
// finished (or failed, ec), false when client_write_op must send what is left in a and b.
bool Session::client_write_now(std::string_view& a, std::string_view& b, std::error_code& ec) {
  if (aborted_) return false;  // client_write_op answers with the grace period's deadline
  deadline_.arm(net::Phase::client_write, timeouts().response);
  return client_.write_now(a, b, ec);
}

Result<void> Session::client_write_result(std::error_code ec) const {
  if (aborted_) return Error{errc::shutting_down, Side::internal, "shutdown grace period over"};
  if (!ec) return Result<void>{};
  if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none)
    return Error{errc::request_timeout, Side::downstream, "the client did not read in time"};
  return Error{errc::client_closed, Side::downstream, ec.message()};
}

net::awaitable<Result<void>> Session::write_upstream(std::string_view a, std::string_view b) {
  auto [ec, n] = co_await upstream_write_op(a, b);
  co_return upstream_write_result(ec);
}

net::awaitable<std::tuple<std::error_code, std::size_t>> Session::upstream_write_op(std::string_view a,
                                                                                   std::string_view b) {
  const std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  return asio::async_write(up_->stream, bufs, net::nothrow);
}

Result<void> Session::upstream_write_result(std::error_code ec) const {
  if (!ec) return Result<void>{};
  if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none)
    return Error{errc::upstream_timeout, Side::upstream, "the upstream did not read in time"};
  return Error{errc::upstream_closed, Side::upstream, "writing to the upstream: " + ec.message()};
}

net::awaitable<void> Session::answer(int status, std::string_view message, bool keep_alive, http::Headers extra) {
  std::string body;
  body.reserve(message.size() + 48);
  body += std::to_string(status);
  body += ' ';
  body += http::reason_phrase(status);
  body += ": ";
  body += message;
  body += '\n';
  extra.add("Content-Type", "text/plain; charset=utf-8");
  co_await answer_body(status, std::move(body), keep_alive, std::move(extra));
}

net::awaitable<void> Session::answer_body(int status, std::string body, bool keep_alive, http::Headers h) {
  h.add("Content-Length", std::to_string(body.size()));
  if (!keep_alive) h.add("Connection", "close");
  out_.clear();
  http::write_response_head(out_, status, {}, h);
  rec_.status = status;
  if (!keep_alive) linger_ = true;
  if (head_request_) body.clear();
  auto r = co_await write_client(out_, body);
  (void)r;  // the client going away while we answer changes nothing
}

net::awaitable<void> Session::answer_error(const Error& e, bool keep_alive) {
  rec_.error = e.describe();
  if (e.is(errc::destination_forbidden)) {  // the SSRF guard refused: a denial, not a failure
    rec_.decision = "deny";
    rec_.rule = "ssrf";
  }
  co_await answer(status_for(e), rec_.error, keep_alive);
}

// ---- the access record -----------------------------------------------------------------------------

void Session::begin_record() {
  rec_.reset();
  head_request_ = false;
  rec_.start = std::chrono::system_clock::now();
  started_ = net::Clock::now();
  rec_.request_id = ctx_.next_request_id();
  rec_.connection = conn_id_;
  rec_.listener = listener_;
  rec_.client = client_addr_;
}

void Session::record_connect_time(net::Clock::time_point started) {
  const auto took = net::Clock::now() - started;
  rec_.connect_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  rec_.connect_us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
}

void Session::record_denial(const policy::Deny& d) {
  rec_.decision = "deny";
  rec_.rule = d.rule;
  rec_.entry = d.entry;
  if (rec_.error.empty()) rec_.error = d.reason;
}

void Session::finish_record() {
  active_exit_.release();
  rec_.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(net::Clock::now() - started_).count();
  ctx_.metrics.count(rec_, listener_index_);
  if (ctx_.access_log) ctx_.access_log->write(rec_);
  log_failure();
}

// A failed request also gets an error-log line with its request id. A dead origin is routine for a
// forward proxy (info); a failing backend of a reverse listener is the admin's own server (warning);
// malformed requests are the client's business (debug).
void Session::log_failure() const {
  if (rec_.error.empty() || rec_.decision == "deny" || rec_.decision == "challenge") return;
  observe::Level level = observe::Level::debug;
  if (rec_.status >= 500 || rec_.status == 0) {
    const config::Listener* l = listener_config();
    level = l != nullptr && l->mode == config::ListenerMode::reverse ? observe::Level::warning : observe::Level::info;
  }
  if (!observe::log_enabled(level)) return;
  std::string line;
  line.reserve(160 + rec_.error.size());
  line.append(rec_.status != 0 ? std::to_string(rec_.status) : std::string("closed")).append(" ");
  line.append(rec_.method.empty() ? std::string_view("-") : std::string_view(rec_.method)).append(" ");
  line.append(rec_.target.empty() ? std::string_view("-") : std::string_view(rec_.target));
  if (!rec_.path.empty() && rec_.method != "CONNECT") line.append(rec_.path);
  line.append(" from ").append(client_addr_).append(" on ").append(listener_);
  if (!rec_.backend.empty()) line.append(" via backend ").append(rec_.backend);
  if (!rec_.exit.empty() && rec_.exit != "direct") line.append(" via exit ").append(rec_.exit);
  line.append(": ").append(rec_.error);
  observe::log(level, rec_.request_id, line);
}

http::ForwardOptions Session::forward_options() const {
  http::ForwardOptions o;
  o.via = snap_->config.forward.via;
  o.x_forwarded_for = snap_->config.forward.x_forwarded_for;
  if (o.x_forwarded_for) o.client_ip = client_ip_string_;
  return o;
}

}  // namespace portier::session

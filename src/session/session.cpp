// The per-connection pipeline: read a head -> facts -> policy::decide -> forward | tunnel | answer,
// and one access record for every request, whatever its outcome.
#include <iostream>

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
  Session s(std::move(client), peer, std::move(listener), ctx);
  s.deadline().start([&s] { s.on_deadline(); });
  co_await s.run_then_stop_watchdog();
}

// ---- session lifetime --------------------------------------------------------------------------------

Session::Session(net::tcp::socket client, const net::tcp::endpoint& peer, std::string listener, WorkerContext& ctx)
    : ctx_(ctx),
      snap_(ctx.snapshot),
      client_(std::move(client)),
      listener_(std::move(listener)),
      client_addr_(net::endpoint_string(peer)),
      client_ip_(net::to_ip(peer.address())),
      deadline_(client_.get_executor()),
      req_(http::Parser::Kind::request, snap_->config.limits) {
  net::tune_socket(client_);
  conn_id_ = ctx_.next_connection_id();
  hook_.session = this;
  ctx_.sessions.insert(hook_);
}

Session::~Session() { ctx_.sessions.erase(hook_); }

void Session::on_deadline() {
  std::error_code ignored;
  client_.cancel(ignored);
  if (up_) up_->socket.cancel(ignored);
}

void Session::drain() {
  stopping_ = true;
  if (idle_) {
    std::error_code ignored;
    client_.cancel(ignored);
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
    std::cerr << "portier: error: connection " << conn_id_ << ": " << e.what() << "\n";
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
  if (linger_ && !aborted_) {
    client_.shutdown(net::tcp::socket::shutdown_send, ignored);
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
  client_.close(ignored);
}

net::awaitable<void> Session::run() {
  for (;;) {
    begin_record();
    auto head = co_await read_request_head();
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
    if (request.method == "CONNECT") {
      co_await handle_connect();
      co_return;
    }
    bool keep = co_await handle_forward();
    if (!keep || stopping_ || ctx_.draining) co_return;
  }
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
    cbuf_.release_if_empty();  // an idle keep-alive connection keeps no buffer
    idle_ = !started;
    auto [p, cap] = cbuf_.writable();
    auto [ec, n] = co_await client_.async_read_some(asio::buffer(p, cap), net::nothrow);
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

// ---- writing -----------------------------------------------------------------------------------------

net::awaitable<Result<void>> Session::write_client(std::string_view a, std::string_view b) {
  if (aborted_) co_return Error{errc::shutting_down, Side::internal, "shutdown grace period over"};
  deadline_.arm(net::Phase::client_write, timeouts().response);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  auto [ec, n] = co_await asio::async_write(client_, bufs, net::nothrow);
  if (ec) {
    if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none)
      co_return Error{errc::request_timeout, Side::downstream, "the client did not read in time"};
    co_return Error{errc::client_closed, Side::downstream, ec.message()};
  }
  co_return Result<void>{};
}

net::awaitable<Result<void>> Session::write_upstream(std::string_view a, std::string_view b) {
  std::array<asio::const_buffer, 2> bufs{asio::buffer(a.data(), a.size()), asio::buffer(b.data(), b.size())};
  auto [ec, n] = co_await asio::async_write(up_->socket, bufs, net::nothrow);
  if (ec) {
    if (ec == asio::error::operation_aborted && deadline_.expired() != net::Phase::none)
      co_return Error{errc::upstream_timeout, Side::upstream, "the upstream did not read in time"};
    co_return Error{errc::upstream_closed, Side::upstream, "writing to the upstream: " + ec.message()};
  }
  co_return Result<void>{};
}

net::awaitable<void> Session::answer(int status, std::string_view message, bool keep_alive) {
  std::string body;
  body.reserve(message.size() + 48);
  body += std::to_string(status);
  body += ' ';
  body += http::reason_phrase(status);
  body += ": ";
  body += message;
  body += '\n';
  http::Headers h;
  h.add("Content-Type", "text/plain; charset=utf-8");
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
  rec_ = observe::AccessRecord{};
  head_request_ = false;
  rec_.start = std::chrono::system_clock::now();
  started_ = net::Clock::now();
  rec_.request_id = ctx_.next_request_id();
  rec_.connection = conn_id_;
  rec_.listener = listener_;
  rec_.client = client_addr_;
}

void Session::finish_record() {
  rec_.duration_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(net::Clock::now() - started_).count();
  if (ctx_.access_log) ctx_.access_log->write(rec_);
}

http::ForwardOptions Session::forward_options() const {
  http::ForwardOptions o;
  o.via = snap_->config.forward.via;
  o.x_forwarded_for = snap_->config.forward.x_forwarded_for;
  if (o.x_forwarded_for) o.client_ip = client_ip_.to_string();
  return o;
}

}  // namespace portier::session

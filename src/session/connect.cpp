// CONNECT: authority -> policy -> dial -> 200 -> tunnel. A tunnel ends the client connection.
#include "portier/http/client_hello.hpp"
#include "portier/relay/tunnel.hpp"
#include "session_impl.hpp"

namespace portier::session {

net::awaitable<bool> Session::handle_connect() {
  const auto& head = req_.request();
  rec_.decision = "tunnel";
  auto authority = http::parse_authority(head.target);
  if (!authority) {
    rec_.decision = "error";
    co_await answer_error(authority.error());
    finish_record();
    co_return false;
  }
  rec_.target = authority->to_string();

  identity_ = Identity{};
  if (req_.request().headers.contains("Proxy-Authorization")) co_await authenticate();
  policy::RequestFacts facts = base_facts();
  facts.is_connect = true;
  facts.host = authority->host;
  facts.port = authority->port;
  auto decision = policy::decide(facts, snap_->policy);
  if (!std::holds_alternative<policy::Tunnel>(decision) || identity_.throttled) {
    bool keep = co_await answer_refusal(decision, false);
    finish_record();
    co_return keep;
  }
  const policy::Route& route = std::get<policy::Tunnel>(decision).route;
  rec_.rule = std::get<policy::Tunnel>(decision).rule;
  rec_.session = route.session;
  if (auto wait = apply_user_limits()) co_return co_await answer_rate_limited(*wait, false);

  auto exit = pick_exit(route, {});
  if (!exit) {
    co_await answer_error(exit.error());
    finish_record();
    co_return false;
  }
  auto opened = co_await open_upstream(route, *exit, authority->host, authority->port, false);
  if (!opened) {
    co_await answer_error(opened.error());
    finish_record();
    co_return false;
  }
  up_ = std::make_unique<net::Connected>(std::move(opened->conn));
  rec_.upstream = net::endpoint_string(up_->peer);

  // Bytes the target sent before we answered (through a parent, behind its 200) follow our 200.
  static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
  rec_.bytes_down += opened->leftover.size();
  if (auto w = co_await write_client(kEstablished, opened->leftover); !w) {
    rec_.error = w.error().describe();
    finish_record();
    co_return false;
  }
  rec_.status = 200;

  // Read the ClientHello (if this is TLS) before a single byte goes upstream, and decide again
  // with its SNI: host rules apply to it too, and a name other than the CONNECT host is fronting.
  // Dialling came first so that a dead upstream still gets a clear 502 instead of a closed tunnel.
  auto hello = co_await read_client_hello();
  if (!hello) {
    rec_.error = hello.error().describe();
    finish_record();
    co_return false;
  }
  if (!hello->empty()) {
    rec_.sni = *hello;
    facts.sni = rec_.sni;
    auto with_sni = policy::decide(facts, snap_->policy);
    if (!std::holds_alternative<policy::Tunnel>(with_sni)) {
      const auto* deny = std::get_if<policy::Deny>(&with_sni);
      record_denial(deny != nullptr ? *deny : policy::Deny{403, "sni", "denied by its SNI", "", "", true});
      finish_record();  // the 200 is out; closing is the only answer left inside a tunnel
      co_return false;
    }
  }

  // Bytes the client sent right behind the CONNECT head already belong to the tunnel.
  if (!cbuf_.empty()) {
    auto leftover = cbuf_.readable();
    deadline_.arm(net::Phase::upstream_write, timeouts().tunnel_idle);
    if (auto w = co_await write_upstream(leftover); !w) {
      rec_.error = w.error().describe();
      finish_record();
      co_return false;
    }
    rec_.bytes_up += leftover.size();
    cbuf_.consume(leftover.size());
  }
  cbuf_.release_if_empty();  // an idle tunnel keeps no buffer of its own

  co_await relay_both_ways();
  finish_record();
  co_return false;  // a tunnel ends the client connection
}

// Relays client <-> upstream until both ends are done (CONNECT tunnels, WebSocket after its 101),
// counting the tunnel and its bytes for the record and the metrics.
net::awaitable<void> Session::relay_both_ways() {
  ++ctx_.metrics.tunnels_total;
  ++ctx_.metrics.tunnels_active;
  auto result = co_await relay::tunnel(client_, up_->stream, deadline_, timeouts().tunnel_idle, shaper_.get());
  --ctx_.metrics.tunnels_active;
  rec_.bytes_up += result.bytes_up;
  rec_.bytes_down += result.bytes_down;
  for (int d : {Shaper::up, Shaper::down})
    ctx_.metrics.shaping_seconds[d] += std::chrono::duration<double>(result.shaped[d]).count();
  if (result.end != "client_eof" && result.end != "upstream_eof") rec_.error = result.end;
}

// The SNI of the client's ClientHello: empty when the first bytes are not TLS, carry no SNI, or do
// not come within sni.wait_ms (a TLS client sends its ClientHello at once). The bytes stay in cbuf_
// to be relayed.
net::awaitable<Result<std::string>> Session::read_client_hello() {
  if (cbuf_.empty() && snap_->config.policy.sni_wait.count() == 0) co_return std::string{};
  http::ClientHelloParser parser;
  auto status = cbuf_.empty() ? http::HelloStatus::need_more : parser.feed(cbuf_.readable());
  // Nothing yet: wait briefly (the server may be the one to speak first). Once a ClientHello has
  // begun, it must be read whole within the header timeout: a hello sent slowly on purpose is
  // never relayed unchecked.
  deadline_.arm(net::Phase::client_hello, cbuf_.empty() ? snap_->config.policy.sni_wait : timeouts().header);
  while (status == http::HelloStatus::need_more) {
    const bool started = !cbuf_.empty();
    auto [read_ec, read_n] = co_await client_read_op();
    auto [ec, n] = client_read_result(read_ec, read_n);
    if (ec == asio::error::no_buffer_space) break;
    if (ec) {
      if (ec == asio::error::operation_aborted && deadline_.expired() == net::Phase::client_hello) {
        if (!started) break;  // a silent client: relay without an SNI
        co_return Error{errc::request_timeout, Side::downstream, "the TLS ClientHello did not arrive in time"};
      }
      co_return Error{errc::client_closed, Side::downstream, "before its first bytes into the tunnel"};
    }
    if (!started) deadline_.arm(net::Phase::client_hello, timeouts().header);
    const char* fresh = cbuf_.readable().data() + cbuf_.size();
    cbuf_.commit(n);
    status = parser.feed(std::string_view(fresh, n));
  }
  deadline_.disarm();
  if (status == http::HelloStatus::done && parser.info().has_sni) co_return parser.info().sni;
  co_return std::string();
}

}  // namespace portier::session

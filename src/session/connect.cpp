// CONNECT: authority -> policy -> dial -> 200 -> tunnel. A tunnel ends the client connection.
#include "portier/relay/tunnel.hpp"
#include "portier/upstream/direct.hpp"
#include "session_impl.hpp"

namespace portier::session {

net::awaitable<void> Session::handle_connect() {
  const auto& head = req_.request();
  rec_.decision = "tunnel";
  auto authority = http::parse_authority(head.target);
  if (!authority) {
    rec_.decision = "error";
    co_await answer_error(authority.error());
    finish_record();
    co_return;
  }
  rec_.target = authority->to_string();

  policy::RequestFacts facts;
  facts.listener = listener_;
  facts.client = client_ip_;
  facts.method = head.method;
  facts.is_connect = true;
  facts.host = authority->host;
  facts.port = authority->port;
  facts.now_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(rec_.start.time_since_epoch()).count();
  auto decision = policy::decide(facts, snap_->policy);
  if (auto* deny = std::get_if<policy::Deny>(&decision)) {
    rec_.decision = "deny";
    rec_.rule = deny->rule;
    rec_.error = deny->reason;
    co_await answer(deny->status, deny->reason, false);
    finish_record();
    co_return;
  }

  upstream::DirectOptions opt{guard(), timeouts().connect};
  auto connected = co_await upstream::connect_direct(authority->host, authority->port, opt);
  if (!connected) {
    co_await answer_error(connected.error());
    finish_record();
    co_return;
  }
  up_.emplace(std::move(*connected));
  rec_.upstream = net::endpoint_string(up_->peer);

  static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";
  if (auto w = co_await write_client(kEstablished); !w) {
    rec_.error = w.error().describe();
    finish_record();
    co_return;
  }
  rec_.status = 200;
  // Bytes the client sent right behind the CONNECT head already belong to the tunnel.
  if (!cbuf_.empty()) {
    auto leftover = cbuf_.readable();
    deadline_.arm(net::Phase::upstream_write, timeouts().tunnel_idle);
    if (auto w = co_await write_upstream(leftover); !w) {
      rec_.error = w.error().describe();
      finish_record();
      co_return;
    }
    rec_.bytes_up += leftover.size();
    cbuf_.consume(leftover.size());
  }
  cbuf_.release_if_empty();  // an idle tunnel keeps no buffer of its own

  auto result = co_await relay::tunnel(client_, up_->socket, deadline_, timeouts().tunnel_idle);
  rec_.bytes_up += result.bytes_up;
  rec_.bytes_down += result.bytes_down;
  if (result.end != "client_eof" && result.end != "upstream_eof") rec_.error = result.end;
  finish_record();
}

}  // namespace portier::session

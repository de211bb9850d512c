#pragma once
// Session internals, shared by session.cpp (the loop, heads, answers), forward.cpp and connect.cpp.
#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>

#include "portier/core/buffer.hpp"
#include "portier/http/codec.hpp"
#include "portier/http/rewrite.hpp"
#include "portier/http/target.hpp"
#include "portier/net/deadline.hpp"
#include "portier/net/resolve.hpp"
#include "portier/observe/access_log.hpp"
#include "portier/policy/decide.hpp"
#include "portier/session/backends.hpp"
#include "portier/session/worker.hpp"
#include "portier/upstream/chain.hpp"

namespace portier::session {

class Session {
 public:
  Session(net::tcp::socket client, const net::tcp::endpoint& peer, std::string listener, WorkerContext& ctx);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  net::awaitable<void> run_then_stop_watchdog();
  net::Deadline& deadline() noexcept { return deadline_; }

  // Watchdog: the armed deadline passed; cancel whatever we wait on.
  void on_deadline();
  // Drain: close now if waiting between requests; otherwise close after the current request.
  void drain();
  // Grace over: cut the connection wherever it is.
  void abort();

 private:
  enum class HeadResult { ready, closed };
  // Outcome of one forwarded exchange.
  enum class Exchange { keep_alive, close, retry_fresh };

  net::awaitable<void> run();
  net::awaitable<bool> start_tls();
  net::awaitable<void> close_client();
  net::awaitable<Result<HeadResult>> read_request_head();
  net::awaitable<bool> handle_forward();
  net::awaitable<bool> answer_pac(const config::Listener& listener);  // forward.cpp
  net::awaitable<bool> handle_connect();
  // Reverse and redirect listeners (reverse.cpp).
  const config::Listener* listener_config() const noexcept;
  net::awaitable<bool> handle_reverse();
  // A reverse request's stop before any backend: an error to answer, the rules' refusal, or the
  // wait of a rate limit; monostate when it goes on to a backend (with rev_ filled in).
  using ReverseStop = std::variant<std::monostate, Error, policy::Decision, net::Clock::duration>;
  ReverseStop prepare_reverse();
  net::awaitable<bool> stop_reverse(ReverseStop stop);
  // prepare_reverse() for the coroutine: false when the request stops (the reason in rev_.stop).
  bool reverse_goes_on();
  net::awaitable<std::optional<Error>> connect_backend(const BackendRuntime& backend);
  void write_backend_head(const BackendRuntime& backend);
  net::awaitable<bool> handle_redirect(const config::Listener& listener);
  net::awaitable<bool> relay_upgraded();
  net::awaitable<void> relay_both_ways();
  net::awaitable<Result<std::string>> read_client_hello();

  // Forwarding pieces (forward.cpp).
  net::awaitable<Exchange> exchange(const std::string& head_bytes, const http::ForwardOptions& fopt, bool reused,
                                    bool& answered);
  net::awaitable<Result<void>> send_request_body();
  net::awaitable<Result<void>> send_request_body_then_park();
  net::awaitable<Result<void>> relay_response(const http::ForwardOptions& fopt);
  net::awaitable<Result<void>> relay_response_beside_body(const http::ForwardOptions& fopt);
  Error response_read_error(const std::error_code& ec) const;
  void prepare_upgrade_head(http::ResponseHead& h);
  Error parent_refused_error();
  bool finish_request_without_body();
  void end_exchange(const std::string* pool_key);

  // Who the client is and the facts policy decides on (session.cpp).
  struct Identity {
    bool present = false;    // a Proxy-Authorization header came
    bool throttled = false;  // too many failures from this client: not even checked
    std::string user;        // set only when verified (the base name, without user name parameters)
    const std::vector<std::string>* groups = nullptr;
    // Egress parameters from the proxy user name ("alice-region-fi-session-s1").
    std::string region;
    std::string session;
    std::optional<unsigned> sesstime;
    std::string username_error;  // the user name could not be parsed: 400
  };
  net::awaitable<void> authenticate();
  void set_user(const std::string& user);  // verified: into the identity and the access record

  // Egress (egress_path.cpp): the exit for a route and a path through it to host:port. On an exit's
  // own failure one other exit is tried; `choice` ends as the exit the path goes through.
  Result<ExitChoice> pick_exit(const policy::Route& route, std::span<const ExitState* const> tried);
  net::awaitable<Result<upstream::OpenedPath>> open_upstream(const policy::Route& route, ExitChoice& choice,
                                                             std::string_view host, std::uint16_t port,
                                                             bool plain_http);
  static upstream::PathEnd path_end(const ExitState& exit, bool plain_http) noexcept;
  policy::RequestFacts base_facts() const;
  policy::MinuteOfWeek minute_of_week() const;
  // Answers a decision that is not a go-ahead; returns whether the connection stays usable.
  net::awaitable<bool> answer_refusal(const policy::Decision& d, bool body_unread);
  bool refusal_keeps_connection(bool body_unread);

  // Per-user limits (config "limits.per_user") for a request policy let through: takes a token of
  // the user's request rate and picks up the user's bandwidth shaper. Returns how long to wait when
  // the rate is exceeded; answer_rate_limited then answers 429 and finishes the record.
  std::optional<net::Clock::duration> apply_user_limits();
  net::awaitable<bool> answer_rate_limited(net::Clock::duration wait, bool body_unread);
  // After moving n bytes of a body one way: pauses as long as the user's bandwidth asks.
  net::awaitable<void> shape(Shaper::Direction d, std::size_t n);
  // How much to read at a time while shaping (a short pause's worth), else `cap`.
  std::size_t shaped_cap(std::size_t cap) const noexcept { return shaper_ ? std::min(cap, shaper_->chunk()) : cap; }

  // Answers and writes (session.cpp).
  net::awaitable<std::tuple<std::error_code, std::size_t>> client_read_op();  // see session.cpp
  std::pair<std::error_code, std::size_t> client_read_result(std::error_code ec, std::size_t n);
  net::awaitable<Result<void>> write_client(std::string_view a, std::string_view b = {});
  net::awaitable<Result<void>> write_upstream(std::string_view a, std::string_view b = {});
  // The two halves of write_client() / write_upstream(), for the writes every request makes, where a
  // coroutine frame per call is measurable (~1% of a request each): await the operation, then
  // pass its error to the result function. The views must outlive the operation.
  // The hot writes start with a send that does not wait (client_write_now(), Stream::write_now())
  // and await the operation only for what that left.
  net::awaitable<std::tuple<std::error_code, std::size_t>> client_write_op(std::string_view a, std::string_view b);
  bool client_write_now(std::string_view& a, std::string_view& b, std::error_code& ec);
  Result<void> client_write_result(std::error_code ec) const;
  net::awaitable<std::tuple<std::error_code, std::size_t>> upstream_write_op(std::string_view a,
                                                                             std::string_view b = {});
  Result<void> upstream_write_result(std::error_code ec) const;
  net::awaitable<void> answer(int status, std::string_view message, bool keep_alive, http::Headers extra = {});
  net::awaitable<void> answer_body(int status, std::string body, bool keep_alive, http::Headers h);
  net::awaitable<void> answer_error(const Error& e, bool keep_alive = false);
  Error read_error(std::error_code ec, Side side, bool head_started) const;

  void begin_record();
  void record_denial(const policy::Deny& d);
  void record_connect_time(net::Clock::time_point started);
  void finish_record();
  void log_failure() const;
  http::ForwardOptions forward_options() const;
  net::DestinationGuard guard() const noexcept { return net::DestinationGuard{&snap_->ssrf_allow}; }
  const config::Timeouts& timeouts() const noexcept { return snap_->config.timeouts; }

  WorkerContext& ctx_;
  std::shared_ptr<const config::Snapshot> snap_;
  std::shared_ptr<const EgressTable> egress_;  // taken with snap_, from the same reload
  std::shared_ptr<const BackendTable> backends_;  // likewise
  // The exit this request's upstream connection goes through, counted for least_conn balancing.
  struct ActiveExit {
    std::shared_ptr<Health> health;
    ActiveExit() = default;
    explicit ActiveExit(std::shared_ptr<Health> h) : health(std::move(h)) { health->active.fetch_add(1); }
    ActiveExit(const ActiveExit&) = delete;
    ActiveExit& operator=(const ActiveExit&) = delete;
    ActiveExit& operator=(ActiveExit&& o) noexcept {
      release();
      health = std::move(o.health);
      return *this;
    }
    ~ActiveExit() { release(); }
    void release() noexcept {
      if (health) health->active.fetch_sub(1);
      health.reset();
    }
  };
  ActiveExit active_exit_;
  const ExitState* parent_exit_ = nullptr;  // set while a request goes to an http parent in absolute form
  net::Stream client_;  // plain, or TLS on an HTTPS proxy listener
  std::string listener_;
  std::string client_addr_;
  IpAddress client_ip_;
  std::string client_ip_string_;  // without the port: forwarding headers, hashing
  std::uint16_t local_port_ = 0;  // the listener's port the client reached
  std::size_t listener_index_ = 0;  // position in the config's listeners (metrics labels)
  std::uint64_t conn_id_ = 0;
  net::Deadline deadline_;
  SessionList::Hook hook_;

  http::Parser req_;
  Buffer cbuf_;
  // A request's first bytes land here while cbuf_ holds no block: see client_read_op(). Sized for a
  // typical request head (a longer one takes a second read, straight into cbuf_).
  std::array<char, 1024> first_bytes_;
  bool read_into_first_bytes_ = false;  // the client read in flight goes to first_bytes_
  std::unique_ptr<net::Connected> up_;  // boxed: the pool and the session pass it by pointer
  std::optional<http::Parser> resp_;
  Buffer ubuf_;
  std::string out_;            // serialized heads for the client
  std::string facts_url_;      // the reverse request's URL for the rules; reused per request
  std::string upstream_head_;  // the request head for the upstream (kept for a retry); reused per request
  std::string dechunked_;      // a chunked body's data for an HTTP/1.0 client, per read
  // What a reverse request needs once its route is found and the rules let it through. In the
  // session, not in handle_reverse(): its strings serve request after request, and that
  // coroutine's frame, allocated per request, stays small enough for Asio's frame recycling.
  struct ReverseRequest {
    const reverse::Route* route = nullptr;
    const config::RouteConfig* rc = nullptr;
    const PoolState* pool = nullptr;
    std::string host;                    // normalized: routing and the record
    std::string original_host;           // as the client sent it (Host, or the URL's authority)
    std::string backend_target;          // path (prefix stripped or not) and query, for the backend
    std::optional<std::string> upgrade;  // a WebSocket upgrade's protocol
    std::string_view hash_key;           // for consistent hashing
    http::ForwardOptions fopt;
    net::Clock::duration connect_timeout{};
    ReverseStop stop;                    // why it stops before a backend, when it does
  } rev_;

  observe::AccessRecord rec_;
  Identity identity_;
  // The Proxy-Authorization value this connection last proved (browsers repeat it on every
  // request), valid while the users file is unchanged and the cached proof has not expired.
  struct ProvenCredentials {
    std::string header;
    Identity identity;  // user and user name parameters, as proved
    std::uint64_t epoch = 0;
    net::Clock::time_point expiry;
  };
  std::unique_ptr<ProvenCredentials> proven_;
  std::shared_ptr<Shaper> shaper_;  // the user's bandwidth limit, when there is one  // allocated only on connections that authenticate
  net::Clock::time_point started_;
  bool idle_ = false;       // waiting for the next request with nothing buffered
  bool stopping_ = false;   // drain or abort asked us to finish
  bool aborted_ = false;    // the shutdown grace period is over: write nothing more
  bool linger_ = false;     // we answered and close while the client may still be sending
  bool first_request_ = true;
  bool request_complete_ = false;  // the parser has passed the end of the current request

  // State of the current forwarded exchange.
  bool request_body_done_ = false;
  bool response_head_sent_ = false;
  bool response_done_ = false;
  bool response_until_close_ = false;
  bool client_keep_alive_ = true;
  bool upstream_reusable_ = false;
  bool dechunk_ = false;
  bool head_request_ = false;
  std::chrono::milliseconds response_timeout_{60000};  // the route's, on reverse listeners
  bool upgrade_allowed_ = false;  // a WebSocket upgrade went to the backend: its 101 is relayed
  bool upgraded_ = false;         // ... and came: the exchange ended in a tunnel
  std::string origin_target_;     // reverse: an absolute-form target turned into origin-form
  bool client_http10_ = false;
  std::uint64_t upstream_bytes_in_ = 0;
};

}  // namespace portier::session

#include "portier/http/codec.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include <llhttp.h>

namespace portier::http {
namespace {

enum class Phase : std::uint8_t { head, body, trailers };
// Why llhttp stopped with HPE_PAUSED: a callback of ours asked for it.
enum class Pause : std::uint8_t { none, head, message, trailers };

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

void reset_head(RequestHead& h) noexcept {
  h.method.clear();
  h.target.clear();
  h.version_major = 1;
  h.version_minor = 1;
  h.keep_alive = true;
  h.chunked = false;
  h.content_length.reset();
  h.has_body = false;
  h.expect_continue = false;
  h.upgrade = false;
}

void reset_head(ResponseHead& h) noexcept {
  h.status = 0;
  h.reason.clear();
  h.version_major = 1;
  h.version_minor = 1;
  h.keep_alive = true;
  h.chunked = false;
  h.content_length.reset();
  h.body_until_close = false;
  h.has_body = false;
}

const char kEmpty[1] = {0};

}  // namespace

struct Parser::State {
  llhttp_t p{};
  Parser* self = nullptr;

  Phase phase = Phase::head;
  Pause pause = Pause::none;
  bool failed = false;
  bool pending = false;    // a callback stored `error` and returned an error code to llhttp
  bool upgraded = false;   // llhttp stopped with HPE_PAUSED_UPGRADE: the rest is not HTTP
  bool upgrading = false;  // the current message ends in an upgrade (set at its head)
  bool closed = false;     // the last message did not keep the connection alive
  bool finished = false;   // finish() was called: the peer is gone
  bool finishing = false;  // inside llhttp_finish()
  bool field_open = false; // header-field bytes arrived and the field is not complete yet
  Headers* fields = nullptr;      // where header callbacks go: the head's fields, then the trailers
  std::size_t section_bytes = 0;  // raw bytes of the current head or trailer section
  std::size_t field_count = 0;
  Error error;

  // Raw scan of head and trailer sections, carried across feeds: llhttp 8.1 accepts obs-fold,
  // bare LF line endings and extra spaces in the request line, which a proxy must not pass on.
  bool scan_prev_cr = false;
  bool scan_line_start = true;
  bool scan_want_start_line = false;  // request heads: the first non-empty line is the request line
  bool scan_in_start_line = false;
  unsigned scan_spaces = 0;

  void begin_section(bool request_head) noexcept {
    section_bytes = 0;
    scan_prev_cr = false;
    scan_line_start = true;
    scan_want_start_line = request_head;
    scan_in_start_line = false;
    scan_spaces = 0;
  }

  // Returns nullptr when the bytes are well-formed so far, else why not. Only CR, LF, the first
  // byte of a line and the request line's spaces matter: the rest of a line is skipped with
  // memchr (a head is parsed twice, by llhttp and here, so this pass must cost little per byte).
  const char* scan(const char* b, std::size_t n) noexcept {
    std::size_t i = 0;
    while (i < n) {
      if (!scan_prev_cr && !scan_line_start) {
        // Inside a line: jump to its next CR or LF, counting the request line's spaces on the way.
        const char* from = b + i;
        const char* stop = static_cast<const char*>(std::memchr(from, '\n', n - i));
        const std::size_t span = stop == nullptr ? n - i : static_cast<std::size_t>(stop - from);
        if (const char* cr = static_cast<const char*>(std::memchr(from, '\r', span))) stop = cr;
        const char* end = stop == nullptr ? b + n : stop;
        if (scan_in_start_line) scan_spaces += static_cast<unsigned>(std::count(from, end, ' '));
        i = static_cast<std::size_t>(end - b);
        if (i == n) break;
      }
      const char c = b[i++];
      if (scan_prev_cr && c != '\n') return "bare CR in the header section";
      if (c == '\n') {
        if (!scan_prev_cr) return "bare LF line ending in the header section";
        if (scan_in_start_line) {
          if (scan_spaces != 2) return "malformed request line";
          scan_in_start_line = false;
        }
        scan_line_start = true;
      } else if (c != '\r') {
        if (scan_line_start) {
          if (is_ows(c)) return "obsolete line folding or whitespace at the start of a header line";
          if (scan_want_start_line) {
            scan_want_start_line = false;
            scan_in_start_line = true;
          }
          scan_line_start = false;
        }
        if (scan_in_start_line && c == ' ') ++scan_spaces;
      }
      scan_prev_cr = c == '\r';
    }
    return nullptr;
  }

  bool is_request() const noexcept { return self->kind_ == Kind::request; }

  // Builds the error this parser reports: request parsers blame the client with the specific
  // errc; response parsers blame the origin with upstream_bad_response (502), naming the cause.
  Error make_error(errc code, std::string context) const {
    if (is_request()) return Error(code, Side::downstream, std::move(context));
    if (code != errc::bad_request) context = make_error_code(code).message() + ": " + context;
    return Error(errc::upstream_bad_response, Side::upstream, std::move(context));
  }

  // From a callback: remember the error, make llhttp stop.
  int reject(errc code, std::string context) {
    error = make_error(code, std::move(context));
    pending = true;
    return -1;
  }

  Error fail(Error e) {
    failed = true;
    error = std::move(e);
    return error;
  }

  Error fail_llhttp(llhttp_errno_t err) {
    if (pending) return fail(error);
    std::string ctx = llhttp_errno_name(err);
    const char* reason = llhttp_get_error_reason(&p);
    if (reason != nullptr && *reason != '\0') {
      ctx += ": ";
      ctx += reason;
    }
    return fail(make_error(errc::bad_request, std::move(ctx)));
  }

  static State& of(llhttp_t* p) noexcept { return *static_cast<State*>(p->data); }

  // ---- llhttp callbacks ------------------------------------------------------------------------

  static int on_message_begin(llhttp_t* p) {
    State& s = of(p);
    Parser& P = *s.self;
    P.in_message_ = true;
    s.field_open = false;
    s.field_count = 0;
    s.upgrading = false;
    if (s.is_request()) {
      reset_head(P.request_);
      P.request_.headers.clear();
      s.fields = &P.request_.headers;
    } else {
      reset_head(P.response_);
      P.response_.headers.clear();
      s.fields = &P.response_.headers;
    }
    P.trailers_.clear();
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    State& s = of(p);
    Parser& P = *s.self;
    std::string& target = P.request_.target;
    if (target.size() + len > P.limits_.max_url_bytes) {
      return s.reject(errc::uri_too_long,
                      "request target longer than " + std::to_string(P.limits_.max_url_bytes) + " bytes");
    }
    for (std::size_t i = 0; i < len; ++i) {
      const auto c = static_cast<unsigned char>(at[i]);
      if (c <= 0x20 || c >= 0x7f) return s.reject(errc::bad_request, "invalid character in request target");
    }
    target.append(at, len);
    return 0;
  }

  static int on_status(llhttp_t* p, const char* at, std::size_t len) {
    // reason-phrase = *( HTAB / SP / VCHAR / obs-text ); llhttp lets control bytes through.
    for (std::size_t i = 0; i < len; ++i) {
      const auto c = static_cast<unsigned char>(at[i]);
      if ((c < 0x20 && c != '\t') || c == 0x7f) return of(p).reject(errc::bad_request, "invalid character in reason phrase");
    }
    of(p).self->response_.reason.append(at, len);
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    State& s = of(p);
    if (!s.field_open) {
      const std::size_t max = s.self->limits_.max_headers;
      if (++s.field_count > max) {
        return s.reject(errc::too_many_headers, "more than " + std::to_string(max) + " header fields");
      }
      s.fields->add_empty();
      s.field_open = true;
    }
    s.fields->back().name.append(at, len);
    return 0;
  }

  static int on_header_field_complete(llhttp_t* p) {
    State& s = of(p);
    if (!s.field_open) return s.reject(errc::bad_request, "empty header field name");
    s.field_open = false;
    const std::string& name = s.fields->back().name;
    // Every byte of the name is a tchar: llhttp's strict mode (see meson.build) checks that.
    if (name.empty()) return s.reject(errc::bad_request, "empty header field name");
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    State& s = of(p);
    Headers& f = *s.fields;
    if (f.empty()) return s.reject(errc::bad_request, "header value without a name");
    f.back().value.append(at, len);
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) {
    State& s = of(p);
    Headers& f = *s.fields;
    if (f.empty()) return s.reject(errc::bad_request, "header value without a name");
    std::string& v = f.back().value;
    while (!v.empty() && is_ows(v.back())) v.pop_back();
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) {
    State& s = of(p);
    Parser& P = *s.self;
    s.field_open = false;
    if (p->http_major != 1 || p->http_minor > 1) {
      return s.reject(errc::bad_request, "unsupported HTTP version " + std::to_string(p->http_major) + "." +
                                             std::to_string(p->http_minor));
    }
    const bool chunked = (p->flags & F_CHUNKED) != 0;
    std::optional<std::uint64_t> content_length;
    if ((p->flags & F_CONTENT_LENGTH) != 0) content_length = p->content_length;

    if (s.is_request()) {
      RequestHead& h = P.request_;
      h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
      h.version_major = p->http_major;
      h.version_minor = p->http_minor;
      int hosts = 0;
      for (const Header& f : h.headers) hosts += iequals(f.name, "Host") ? 1 : 0;
      if (hosts > 1) return s.reject(errc::bad_request, "more than one Host header field");
      if ((p->flags & F_TRANSFER_ENCODING) != 0 && p->http_minor == 0) {
        return s.reject(errc::bad_request, "Transfer-Encoding in an HTTP/1.0 request");
      }
      const bool connect = p->method == HTTP_CONNECT;
      h.upgrade = p->upgrade != 0;
      // Only CONNECT turns the connection into a tunnel here. An Upgrade request is an ordinary
      // request to this parser: the proxy strips Upgrade, and if an origin ever answers 101 the
      // response parser reports it.
      if (!connect) p->upgrade = 0;
      h.chunked = chunked;
      h.content_length = content_length;
      h.has_body = !connect && (chunked || (content_length && *content_length > 0));
      h.keep_alive = llhttp_should_keep_alive(p) != 0;
      const std::string* expect = h.headers.find("Expect");
      h.expect_continue = expect != nullptr && iequals(trim_ows(*expect), "100-continue");
      s.fields = &P.trailers_;
      s.field_count = 0;
      if (connect) {
        // llhttp completes the message at once and stops with HPE_PAUSED_UPGRADE.
        s.upgrading = true;
        return 0;
      }
      s.pause = Pause::head;
      return HPE_PAUSED;
    }

    ResponseHead& h = P.response_;
    const int status = p->status_code;
    if (status < 100) return s.reject(errc::bad_request, "invalid status code " + std::to_string(status));
    h.status = status;
    h.version_major = p->http_major;
    h.version_minor = p->http_minor;
    const bool informational = status / 100 == 1 && status != 101;
    const bool upgrade = status == 101 || (P.connect_response_ && status / 100 == 2);
    const bool skip = upgrade || informational || status == 204 || status == 304 ||
                      (P.head_response_ && !informational);
    if (!informational) {
      // The expectations were about this (final) response; the next one starts clean.
      P.head_response_ = false;
      P.connect_response_ = false;
    }
    if (skip) p->flags |= F_SKIPBODY;
    h.chunked = chunked;
    h.content_length = content_length;
    h.keep_alive = llhttp_should_keep_alive(p) != 0;
    h.body_until_close = !skip && llhttp_message_needs_eof(p) != 0;
    h.has_body = !skip && (chunked || (content_length && *content_length > 0) || h.body_until_close);
    s.fields = &P.trailers_;
    s.field_count = 0;
    if (upgrade) {
      // 2: no body, and llhttp stops with HPE_PAUSED_UPGRADE after completing the message.
      s.upgrading = true;
      return 2;
    }
    s.pause = Pause::head;
    return HPE_PAUSED;
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    of(p).self->body_chunks_.emplace_back(at, len);
    return 0;
  }

  static int on_chunk_header(llhttp_t* p) {
    if (p->content_length != 0) return 0;
    // The last chunk: stop so that feed() scans the trailer section like a head.
    of(p).pause = Pause::trailers;
    return HPE_PAUSED;
  }

  static int on_message_complete(llhttp_t* p) {
    State& s = of(p);
    s.self->in_message_ = false;
    s.closed = llhttp_should_keep_alive(p) == 0;
    if (s.upgrading || s.finishing) return 0;
    s.pause = Pause::message;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t& settings() noexcept {
    static const llhttp_settings_t kSettings = [] {
      llhttp_settings_t st;
      llhttp_settings_init(&st);
      st.on_message_begin = &State::on_message_begin;
      st.on_url = &State::on_url;
      st.on_status = &State::on_status;
      st.on_header_field = &State::on_header_field;
      st.on_header_field_complete = &State::on_header_field_complete;
      st.on_header_value = &State::on_header_value;
      st.on_header_value_complete = &State::on_header_value_complete;
      st.on_headers_complete = &State::on_headers_complete;
      st.on_body = &State::on_body;
      st.on_chunk_header = &State::on_chunk_header;
      st.on_message_complete = &State::on_message_complete;
      return st;
    }();
    return kSettings;
  }
};

Parser::Parser(Kind kind, Limits limits) : kind_(kind), limits_(limits), state_(std::make_unique<State>()) {
  State& s = *state_;
  start(s);
  (kind == Kind::request ? request_.headers : response_.headers).reserve(24);
  body_chunks_.reserve(4);
}

void Parser::start(State& s) {
  llhttp_init(&s.p, kind_ == Kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &State::settings());
  s.p.data = &s;
  s.self = this;
  s.begin_section(kind_ == Kind::request);
  s.fields = kind_ == Kind::request ? &request_.headers : &response_.headers;
}

void Parser::reset(Limits limits) {
  limits_ = limits;
  *state_ = State{};
  start(*state_);
  reset_head(request_);
  reset_head(response_);
  request_.headers.clear();
  response_.headers.clear();
  trailers_.clear();
  body_chunks_.clear();
  head_response_ = false;
  connect_response_ = false;
  in_message_ = false;
}

Parser::~Parser() = default;

Parser::Parser(Parser&& other) noexcept
    : kind_(other.kind_),
      limits_(other.limits_),
      state_(std::move(other.state_)),
      request_(std::move(other.request_)),
      response_(std::move(other.response_)),
      trailers_(std::move(other.trailers_)),
      body_chunks_(std::move(other.body_chunks_)),
      head_response_(other.head_response_),
      connect_response_(other.connect_response_),
      in_message_(other.in_message_) {
  if (state_) {
    state_->self = this;
    if (state_->fields == &other.request_.headers) state_->fields = &request_.headers;
    if (state_->fields == &other.response_.headers) state_->fields = &response_.headers;
    if (state_->fields == &other.trailers_) state_->fields = &trailers_;
  }
}

Parser& Parser::operator=(Parser&& other) noexcept {
  if (this == &other) return *this;
  kind_ = other.kind_;
  limits_ = other.limits_;
  state_ = std::move(other.state_);
  request_ = std::move(other.request_);
  response_ = std::move(other.response_);
  trailers_ = std::move(other.trailers_);
  body_chunks_ = std::move(other.body_chunks_);
  head_response_ = other.head_response_;
  connect_response_ = other.connect_response_;
  in_message_ = other.in_message_;
  if (state_) {
    state_->self = this;
    if (state_->fields == &other.request_.headers) state_->fields = &request_.headers;
    if (state_->fields == &other.response_.headers) state_->fields = &response_.headers;
    if (state_->fields == &other.trailers_) state_->fields = &trailers_;
  }
  return *this;
}

Result<Progress> Parser::feed(std::string_view data) {
  body_chunks_.clear();
  State& s = *state_;
  if (s.failed) return s.error;
  if (s.upgraded) return Progress{0, Stop::upgrade};
  if (s.finished) {
    return s.fail(kind_ == Kind::request ? Error(errc::client_closed, Side::downstream, "bytes fed after the connection closed")
                               : Error(errc::upstream_closed, Side::upstream, "bytes fed after the connection closed"));
  }
  if (s.closed && !data.empty()) {
    return s.fail(s.make_error(errc::bad_request, "bytes after the last message of a non-persistent connection"));
  }

  const char* const base = data.empty() ? kEmpty : data.data();
  const std::size_t size = data.size();
  std::size_t off = 0;
  for (;;) {
    const Phase phase = s.phase;
    std::size_t len = size - off;
    bool truncated = false;
    if (phase != Phase::body) {
      // A head (or trailer section) may not grow past the limit: hand llhttp at most the room
      // left, so it fails the moment the limit is crossed rather than after buffering.
      const std::size_t room = limits_.max_header_bytes - s.section_bytes;
      if (len > room) {
        len = room;
        truncated = true;
      }
    }
    if (llhttp_get_errno(&s.p) == HPE_PAUSED) llhttp_resume(&s.p);
    s.pause = Pause::none;
    const char* const chunk = base + off;
    const llhttp_errno_t err = llhttp_execute(&s.p, chunk, len);
    std::size_t n = len;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      n = static_cast<std::size_t>(llhttp_get_error_pos(&s.p) - chunk);
    } else if (err != HPE_OK) {
      return s.fail_llhttp(err);
    }
    if (phase != Phase::body) {
      if (const char* why = s.scan(chunk, n)) return s.fail(s.make_error(errc::bad_request, why));
      s.section_bytes += n;
    }
    off += n;

    if (err == HPE_PAUSED_UPGRADE) {
      s.upgraded = true;
      return Progress{off, Stop::upgrade};
    }
    if (err == HPE_OK) {
      if (truncated) {
        return s.fail(s.make_error(errc::header_too_large,
                                   std::string(phase == Phase::head ? "message head" : "trailer section") +
                                       " larger than " + std::to_string(limits_.max_header_bytes) + " bytes"));
      }
      return Progress{off, Stop::need_more};
    }
    switch (s.pause) {
      case Pause::head:
        s.phase = Phase::body;
        return Progress{off, Stop::head};
      case Pause::message:
        s.phase = Phase::head;
        s.begin_section(kind_ == Kind::request);
        return Progress{off, Stop::message_complete};
      case Pause::trailers:
        s.phase = Phase::trailers;
        s.begin_section(false);
        continue;  // internal stop: scan the trailer section from here on
      case Pause::none:
        break;
    }
    return s.fail(Error(errc::internal, Side::internal, "llhttp paused for no known reason"));
  }
}

Result<Progress> Parser::finish() {
  body_chunks_.clear();
  State& s = *state_;
  if (s.failed) return s.error;
  if (s.upgraded) return Progress{0, Stop::upgrade};
  s.finished = true;
  if (!in_message_) return Progress{0, Stop::need_more};

  // Let llhttp take the steps it owes after the stop at the head: a message without a body
  // completes here; a read-until-close body becomes completable by llhttp_finish.
  if (llhttp_get_errno(&s.p) == HPE_PAUSED) {
    llhttp_resume(&s.p);
    s.pause = Pause::none;
    const llhttp_errno_t err = llhttp_execute(&s.p, kEmpty, 0);
    if (err == HPE_PAUSED && s.pause == Pause::message) {
      s.phase = Phase::head;
      return Progress{0, Stop::message_complete};
    }
    if (err != HPE_OK && err != HPE_PAUSED) return s.fail_llhttp(err);
  }

  s.finishing = true;
  const llhttp_errno_t err = llhttp_finish(&s.p);
  s.finishing = false;
  if (err == HPE_OK && !in_message_) {
    s.phase = Phase::head;
    return Progress{0, Stop::message_complete};
  }
  const char* where = s.phase == Phase::head ? "the message head" : "the message body";
  std::string ctx = std::string("connection closed before the end of ") + where;
  if (kind_ == Kind::request) return s.fail(Error(errc::client_closed, Side::downstream, std::move(ctx)));
  return s.fail(Error(errc::upstream_closed, Side::upstream, std::move(ctx)));
}

}  // namespace portier::http

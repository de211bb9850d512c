#include "portier/http/codec.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

using portier::Error;
using portier::errc;
using portier::Side;
using portier::http::Limits;
using portier::http::Parser;
using portier::http::RequestHead;
using portier::http::ResponseHead;
using portier::http::Stop;

namespace {

// What a caller sees when it feeds `in` in pieces of at most `step` bytes, always re-feeding
// the unconsumed rest (possibly empty) after a head or a complete message.
struct Trace {
  std::vector<Stop> stops;               // every stop other than need_more
  std::vector<std::size_t> stop_offsets;  // input offset right after each stop
  std::string body;
  std::vector<RequestHead> requests;     // copied at each head / upgrade
  std::vector<ResponseHead> responses;
  std::optional<Error> error;
  std::size_t consumed = 0;
};

Trace run(Parser& p, std::string_view in, std::size_t step = std::string_view::npos, bool is_request = true) {
  Trace t;
  std::size_t off = 0;
  for (int guard = 0; guard < 100000; ++guard) {
    const std::size_t n = std::min(step, in.size() - off);
    auto r = p.feed(in.substr(off, n));
    if (!r) {
      t.error = r.error();
      break;
    }
    for (std::string_view c : p.body_chunks()) t.body.append(c);
    REQUIRE(r->consumed <= n);
    off += r->consumed;
    if (r->stop == Stop::need_more) {
      REQUIRE(r->consumed == n);
      if (off >= in.size()) break;
      continue;
    }
    t.stops.push_back(r->stop);
    t.stop_offsets.push_back(off);
    if (r->stop == Stop::head || r->stop == Stop::upgrade) {
      if (is_request) {
        t.requests.push_back(p.request());
      } else {
        t.responses.push_back(p.response());
      }
    }
    if (r->stop == Stop::upgrade) break;
  }
  t.consumed = off;
  return t;
}

Trace run_response(Parser& p, std::string_view in, std::size_t step = std::string_view::npos) {
  return run(p, in, step, false);
}

// A string literal with its embedded NULs.
template <std::size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::vector<Stop> stops(std::initializer_list<Stop> s) { return s; }

Error request_error(std::string_view in, Limits limits = {}, std::size_t step = std::string_view::npos) {
  Parser p(Parser::Kind::request, limits);
  Trace t = run(p, in, step);
  REQUIRE_MESSAGE(t.error.has_value(), "accepted: " << in);
  return *t.error;
}

}  // namespace

TEST_SUITE("http.codec") {

TEST_CASE("an absolute-form GET yields its head, then completes with no body") {
  Parser p(Parser::Kind::request);
  const std::string in = "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
  auto r = p.feed(in);
  REQUIRE(r);
  CHECK(r->stop == Stop::head);
  CHECK(r->consumed == in.size());
  const RequestHead& h = p.request();
  CHECK(h.method == "GET");
  CHECK(h.target == "http://example.com/a?b=1");
  CHECK(h.version_major == 1);
  CHECK(h.version_minor == 1);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.has_body);
  CHECK_FALSE(h.chunked);
  CHECK_FALSE(h.content_length.has_value());
  REQUIRE(h.headers.size() == 2);
  CHECK(h.headers[0].name == "Host");
  CHECK(h.headers[0].value == "example.com");
  CHECK(*h.headers.find("user-agent") == "t");
  CHECK(p.in_message());

  auto done = p.feed({});
  REQUIRE(done);
  CHECK(done->stop == Stop::message_complete);
  CHECK(done->consumed == 0);
  CHECK_FALSE(p.in_message());

  auto idle = p.feed({});
  REQUIRE(idle);
  CHECK(idle->stop == Stop::need_more);
}

TEST_CASE("a Content-Length body is reported as views into the fed bytes") {
  Parser p(Parser::Kind::request);
  const std::string in = "POST http://h/ HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
  auto head = p.feed(in);
  REQUIRE(head);
  CHECK(head->stop == Stop::head);
  CHECK(p.request().has_body);
  REQUIRE(p.request().content_length.has_value());
  CHECK(*p.request().content_length == 5);
  auto body = p.feed(std::string_view(in).substr(head->consumed));
  REQUIRE(body);
  CHECK(body->stop == Stop::message_complete);
  CHECK(body->consumed == 5);
  REQUIRE(p.body_chunks().size() == 1);
  CHECK(p.body_chunks()[0] == "hello");
  CHECK(p.body_chunks()[0].data() == in.data() + head->consumed);
}

TEST_CASE("a body split over feeds arrives piece by piece and ends the message at its length") {
  Parser p(Parser::Kind::request);
  REQUIRE(p.feed("PUT http://h/x HTTP/1.1\r\nContent-Length: 6\r\n\r\n")->stop == Stop::head);
  auto a = p.feed("abc");
  REQUIRE(a);
  CHECK(a->stop == Stop::need_more);
  CHECK(a->consumed == 3);
  REQUIRE(p.body_chunks().size() == 1);
  CHECK(p.body_chunks()[0] == "abc");
  auto b = p.feed("defGET");
  REQUIRE(b);
  CHECK(b->stop == Stop::message_complete);
  CHECK(b->consumed == 3);
  CHECK(p.body_chunks()[0] == "def");
}

TEST_CASE("pipelined requests in one buffer stop after each head and each message") {
  Parser p(Parser::Kind::request);
  const std::string first = "GET http://a/1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "POST http://a/2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
  Trace t = run(p, first + second);
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
  CHECK(t.stop_offsets[0] == first.size());
  CHECK(t.stop_offsets[1] == first.size());
  CHECK(t.stop_offsets[3] == first.size() + second.size());
  REQUIRE(t.requests.size() == 2);
  CHECK(t.requests[0].target == "http://a/1");
  CHECK(t.requests[1].target == "http://a/2");
  CHECK(t.requests[1].method == "POST");
  CHECK(t.body == "ok");
  CHECK(p.request().target == "http://a/2");
}

TEST_CASE("the next message starts with a fresh head") {
  Parser p(Parser::Kind::request);
  Trace t = run(p, "GET http://a/ HTTP/1.1\r\nX-One: 1\r\nContent-Length: 1\r\n\r\nx"
                   "GET http://b/ HTTP/1.1\r\nX-Two: 2\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK_FALSE(p.request().headers.contains("X-One"));
  CHECK(p.request().headers.contains("X-Two"));
  CHECK_FALSE(p.request().content_length.has_value());
  CHECK_FALSE(p.request().has_body);
}

TEST_CASE("a chunked request with trailers parses the same when fed one byte at a time") {
  const std::string in =
      "POST http://h/upload HTTP/1.1\r\n"
      "Host: h\r\n"
      "Transfer-Encoding: chunked\r\n"
      "X-Long-Header-Name: some value with spaces\r\n"
      "\r\n"
      "5;ext=1\r\nhello\r\n"
      "6\r\n world\r\n"
      "0\r\n"
      "X-Checksum: abc123\r\n"
      "X-Other: two\r\n"
      "\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{7}, in.size()}) {
    CAPTURE(step);
    Parser p(Parser::Kind::request);
    Trace t = run(p, in, step);
    REQUIRE_FALSE(t.error);
    CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
    CHECK(t.consumed == in.size());
    CHECK(t.body == "hello world");
    REQUIRE(t.requests.size() == 1);
    CHECK(t.requests[0].chunked);
    CHECK(t.requests[0].has_body);
    CHECK(t.requests[0].target == "http://h/upload");
    CHECK(*t.requests[0].headers.find("X-Long-Header-Name") == "some value with spaces");
    REQUIRE(p.trailers().size() == 2);
    CHECK(*p.trailers().find("x-checksum") == "abc123");
    CHECK(*p.trailers().find("X-Other") == "two");
  }
}

TEST_CASE("header values lose surrounding whitespace") {
  Parser p(Parser::Kind::request);
  REQUIRE(p.feed("GET http://h/ HTTP/1.1\r\nX-A:  padded \t \r\nX-B:tight\r\nX-C:\r\n\r\n")->stop == Stop::head);
  CHECK(*p.request().headers.find("X-A") == "padded");
  CHECK(*p.request().headers.find("X-B") == "tight");
  CHECK(*p.request().headers.find("X-C") == "");
}

TEST_CASE("CONNECT reports upgrade at the end of its head and leaves the tunnel bytes unconsumed") {
  const std::string head = "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n";
  Parser p(Parser::Kind::request);
  auto r = p.feed(head + "XYZ");
  REQUIRE(r);
  CHECK(r->stop == Stop::upgrade);
  CHECK(r->consumed == head.size());
  CHECK(p.request().method == "CONNECT");
  CHECK(p.request().target == "a:443");
  CHECK(p.request().upgrade);
  CHECK_FALSE(p.request().has_body);
  CHECK_FALSE(p.in_message());

  SUBCASE("the parser is done after the upgrade") {
    auto again = p.feed("more");
    REQUIRE(again);
    CHECK(again->stop == Stop::upgrade);
    CHECK(again->consumed == 0);
    auto fin = p.finish();
    REQUIRE(fin);
    CHECK(fin->stop == Stop::upgrade);
  }
}

TEST_CASE("CONNECT fed byte by byte still reports upgrade exactly at the end of the head") {
  const std::string head = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic eA==\r\n\r\n";
  Parser p(Parser::Kind::request);
  Trace t = run(p, head + "\x16\x03\x01", 1);
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::upgrade}));
  CHECK(t.consumed == head.size());
}

TEST_CASE("CONNECT with a Content-Length still tunnels right after the head") {
  const std::string head = "CONNECT a:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\n";
  Parser p(Parser::Kind::request);
  auto r = p.feed(head + "abc");
  REQUIRE(r);
  CHECK(r->stop == Stop::upgrade);
  CHECK(r->consumed == head.size());
}

TEST_CASE("a request asking for Upgrade is an ordinary request with the upgrade flag") {
  Parser p(Parser::Kind::request);
  Trace t = run(p, "GET http://h/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                   "GET http://h/next HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
  CHECK(t.requests[0].upgrade);
  CHECK_FALSE(t.requests[1].upgrade);
}

TEST_CASE("keep-alive follows HTTP/1.1 defaults, Connection and HTTP/1.0 rules") {
  auto keep = [](std::string_view in) {
    Parser p(Parser::Kind::request);
    auto r = p.feed(in);
    REQUIRE(r);
    REQUIRE(r->stop == Stop::head);
    return p.request().keep_alive;
  };
  CHECK(keep("GET http://h/ HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(keep("GET http://h/ HTTP/1.1\r\nConnection: close\r\n\r\n"));
  CHECK_FALSE(keep("GET http://h/ HTTP/1.0\r\n\r\n"));
  CHECK(keep("GET http://h/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
}

TEST_CASE("Expect: 100-continue is reported") {
  Parser p(Parser::Kind::request);
  REQUIRE(p.feed("POST http://h/ HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")->stop == Stop::head);
  CHECK(p.request().expect_continue);
  Parser q(Parser::Kind::request);
  REQUIRE(q.feed("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\n\r\n")->stop == Stop::head);
  CHECK_FALSE(q.request().expect_continue);
}

TEST_CASE("an absolute-form request without Host is accepted") {
  Parser p(Parser::Kind::request);
  Trace t = run(p, "GET http://h/ HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
}

TEST_CASE("empty lines before a request are skipped") {
  Parser p(Parser::Kind::request);
  Trace t = run(p, "\r\n\r\nGET http://h/ HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
}

TEST_CASE("malformed requests are rejected as bad_request from the client") {
  struct Case {
    const char* name;
    std::string in;
  };
  const std::vector<Case> cases = {
      {"obs-fold", "GET http://h/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n"},
      {"obs-fold with a tab", "GET http://h/ HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n"},
      {"obs-fold after an empty value", "GET http://h/ HTTP/1.1\r\nX:\r\n b\r\n\r\n"},
      {"whitespace before the first header line", "GET http://h/ HTTP/1.1\r\n Host: h\r\n\r\n"},
      {"space before the colon", "GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n"},
      {"tab before the colon", "GET http://h/ HTTP/1.1\r\nHost\t: h\r\n\r\n"},
      {"empty field name", "GET http://h/ HTTP/1.1\r\n: v\r\n\r\n"},
      {"invalid field name character", "GET http://h/ HTTP/1.1\r\nX(y): v\r\n\r\n"},
      {"space inside a field name", "GET http://h/ HTTP/1.1\r\nX y: v\r\n\r\n"},
      {"Content-Length with Transfer-Encoding",
       "POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding with Content-Length",
       "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n0\r\n\r\n"},
      {"duplicate Content-Length", "POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx"},
      {"Content-Length list", "POST http://h/ HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\nx"},
      {"signed Content-Length", "POST http://h/ HTTP/1.1\r\nContent-Length: +1\r\n\r\nx"},
      {"non-digit Content-Length", "POST http://h/ HTTP/1.1\r\nContent-Length: 1a\r\n\r\nx"},
      {"invalid chunk size", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
      {"chunk size with a space", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 \r\nx\r\n0\r\n\r\n"},
      {"bare LF after chunk data", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\n0\r\n\r\n"},
      {"request Transfer-Encoding not ending in chunked", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"},
      {"chunked then gzip", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"},
      {"Transfer-Encoding in HTTP/1.0", "POST http://h/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
      {"bare CR in a value", "GET http://h/ HTTP/1.1\r\nX: a\rb\r\n\r\n"},
      {"bare LF after the request line", "GET http://h/ HTTP/1.1\nHost: h\r\n\r\n"},
      {"bare LF after a header", "GET http://h/ HTTP/1.1\r\nHost: h\n\r\n"},
      {"bare LF ending the head", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\n"},
      {"LF-only message", "GET http://h/ HTTP/1.1\n\n"},
      {"NUL in a header value", lit("GET http://h/ HTTP/1.1\r\nX: a\0b\r\n\r\n")},
      {"control character in a header value", "GET http://h/ HTTP/1.1\r\nX: a\x01z\r\n\r\n"},
      {"DEL in a header value", "GET http://h/ HTTP/1.1\r\nX: a\x7fz\r\n\r\n"},
      {"control character in the target", "GET http://h/a\x01 HTTP/1.1\r\n\r\n"},
      {"NUL in the target", lit("GET http://h/a\0 HTTP/1.1\r\n\r\n")},
      {"tab in the target", "GET http://h/a\tb HTTP/1.1\r\n\r\n"},
      {"non-ASCII in the target", "GET http://h/\xc3\xa9 HTTP/1.1\r\n\r\n"},
      {"two spaces after the method", "GET  http://h/ HTTP/1.1\r\n\r\n"},
      {"two spaces before the version", "GET http://h/  HTTP/1.1\r\n\r\n"},
      {"trailing space after the version", "GET http://h/ HTTP/1.1 \r\n\r\n"},
      {"HTTP/2.0 in the request line", "GET http://h/ HTTP/2.0\r\n\r\n"},
      {"HTTP/1.2", "GET http://h/ HTTP/1.2\r\n\r\n"},
      {"HTTP/0.9", "GET http://h/ HTTP/0.9\r\n\r\n"},
      {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
      {"unknown method", "FOO http://h/ HTTP/1.1\r\n\r\n"},
      {"lowercase method", "get http://h/ HTTP/1.1\r\n\r\n"},
      {"two Host fields", "GET http://h/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
      {"obs-fold in trailers",
       "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n"},
      {"space before the colon in trailers",
       "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : a\r\n\r\n"},
      {"bare LF ending trailers", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n\n"},
      {"bare LF after the last chunk", "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n"},
      {"data after Connection: close", "GET http://h/ HTTP/1.1\r\nConnection: close\r\n\r\nGET http://h/ HTTP/1.1\r\n\r\n"},
  };
  for (const Case& c : cases) {
    // Whole, and split at every spacing: the raw scan skips through lines, so splits land anywhere.
    for (std::size_t step : {std::string_view::npos, std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}}) {
      CAPTURE(c.name);
      CAPTURE(step);
      Error e = request_error(c.in, {}, step);
      CHECK_MESSAGE(e.is(errc::bad_request), e.describe());
      CHECK(e.side == Side::downstream);
      CHECK_FALSE(e.context.empty());
    }
  }
}

TEST_CASE("obs-fold split exactly at the feed boundary is still rejected") {
  Parser p(Parser::Kind::request);
  auto a = p.feed("GET http://h/ HTTP/1.1\r\nX: a\r\n");
  REQUIRE(a);
  CHECK(a->stop == Stop::need_more);
  auto b = p.feed(" b\r\n\r\n");
  REQUIRE_FALSE(b);
  CHECK(b.error().is(errc::bad_request));
}

TEST_CASE("a failed parser stays failed") {
  Parser p(Parser::Kind::request);
  auto a = p.feed("GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n");
  REQUIRE_FALSE(a);
  auto b = p.feed("GET http://h/ HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(b);
  CHECK(b.error().is(errc::bad_request));
  auto c = p.finish();
  REQUIRE_FALSE(c);
  CHECK(c.error().is(errc::bad_request));
}

TEST_CASE("the head limit allows a head of exactly max_header_bytes and rejects one byte more") {
  Limits limits;
  limits.max_header_bytes = 200;
  auto head_of = [](std::size_t total) {
    std::string base = "GET http://h/ HTTP/1.1\r\nX-Pad: \r\n\r\n";
    std::string pad(total - base.size(), 'p');
    return "GET http://h/ HTTP/1.1\r\nX-Pad: " + pad + "\r\n\r\n";
  };
  const std::string exact = head_of(200);
  REQUIRE(exact.size() == 200);
  const std::string over = head_of(201);
  for (std::size_t step : {std::string_view::npos, std::size_t{1}, std::size_t{64}}) {
    CAPTURE(step);
    {
      Parser p(Parser::Kind::request, limits);
      Trace t = run(p, exact, step);
      REQUIRE_FALSE(t.error);
      CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
    }
    {
      Error e = request_error(over, limits, step);
      CHECK(e.is(errc::header_too_large));
      CHECK(e.side == Side::downstream);
      CHECK(portier::status_for(e) == 431);
    }
  }

  SUBCASE("the limit applies to each message of a connection anew") {
    Parser p(Parser::Kind::request, limits);
    Trace t = run(p, exact + exact + exact);
    REQUIRE_FALSE(t.error);
    CHECK(t.stops.size() == 6);
  }
  SUBCASE("an endless head fails as soon as it crosses the limit") {
    Parser p(Parser::Kind::request, limits);
    auto r = p.feed("GET http://h/ HTTP/1.1\r\nX-Pad: " + std::string(1000, 'p'));
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::header_too_large));
  }
}

TEST_CASE("the trailer section is held to the head limit") {
  Limits limits;
  limits.max_header_bytes = 100;
  const std::string head = "POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  Error e = request_error(head + "X-T: " + std::string(200, 't') + "\r\n\r\n", limits);
  CHECK(e.is(errc::header_too_large));
  Parser p(Parser::Kind::request, limits);
  Trace t = run(p, head + "X-T: " + std::string(50, 't') + "\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
}

TEST_CASE("the URL limit allows max_url_bytes and answers 414 one byte over") {
  Limits limits;
  limits.max_url_bytes = 50;
  const std::string prefix = "http://h/";
  const std::string exact = prefix + std::string(50 - prefix.size(), 'a');
  const std::string over = exact + "a";
  for (std::size_t step : {std::string_view::npos, std::size_t{1}}) {
    CAPTURE(step);
    Parser p(Parser::Kind::request, limits);
    Trace t = run(p, "GET " + exact + " HTTP/1.1\r\n\r\n", step);
    REQUIRE_FALSE(t.error);
    CHECK(t.requests.at(0).target == exact);
    Error e = request_error("GET " + over + " HTTP/1.1\r\n\r\n", limits, step);
    CHECK(e.is(errc::uri_too_long));
    CHECK(portier::status_for(e) == 414);
  }
}

TEST_CASE("the header count limit allows max_headers fields and answers 431 for one more") {
  Limits limits;
  limits.max_headers = 5;
  auto with_fields = [](int n) {
    std::string s = "GET http://h/ HTTP/1.1\r\n";
    for (int i = 0; i < n; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
    return s + "\r\n";
  };
  Parser p(Parser::Kind::request, limits);
  Trace t = run(p, with_fields(5));
  REQUIRE_FALSE(t.error);
  CHECK(t.requests.at(0).headers.size() == 5);
  Error e = request_error(with_fields(6), limits);
  CHECK(e.is(errc::too_many_headers));
  CHECK(portier::status_for(e) == 431);
}

TEST_CASE("finish() without a message in progress reports need_more") {
  Parser p(Parser::Kind::request);
  auto r = p.finish();
  REQUIRE(r);
  CHECK(r->stop == Stop::need_more);

  Parser q(Parser::Kind::request);
  Trace t = run(q, "GET http://h/ HTTP/1.1\r\n\r\n");
  REQUIRE(t.stops.size() == 2);
  auto f = q.finish();
  REQUIRE(f);
  CHECK(f->stop == Stop::need_more);
}

TEST_CASE("finish() in the middle of a request is client_closed") {
  Parser p(Parser::Kind::request);
  REQUIRE(p.feed("POST http://h/ HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")->stop == Stop::head);
  REQUIRE(p.feed("abc")->stop == Stop::need_more);
  auto r = p.finish();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::client_closed));
  CHECK(r.error().side == Side::downstream);

  Parser q(Parser::Kind::request);
  REQUIRE(q.feed("GET http://h/ HTT")->stop == Stop::need_more);
  auto s = q.finish();
  REQUIRE_FALSE(s);
  CHECK(s.error().is(errc::client_closed));
}

// ---- responses -------------------------------------------------------------------------------

TEST_CASE("a response with Content-Length has its status, reason and body") {
  Parser p(Parser::Kind::response);
  Trace t = run_response(p, "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\nX: y\r\n\r\nnope");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
  const ResponseHead& h = t.responses.at(0);
  CHECK(h.status == 404);
  CHECK(h.reason == "Not Found");
  CHECK(h.has_body);
  CHECK_FALSE(h.body_until_close);
  CHECK(h.keep_alive);
  CHECK(t.body == "nope");
}

TEST_CASE("a chunked response with trailers is decoded") {
  Parser p(Parser::Kind::response);
  Trace t = run_response(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", 3);
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
  CHECK(t.responses.at(0).chunked);
  CHECK(t.body == "abc");
  CHECK(*p.trailers().find("X-T") == "1");
}

TEST_CASE("a response to HEAD has no body even with a Content-Length") {
  Parser p(Parser::Kind::response);
  p.expect_head_response(true);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n";
  const std::string next = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  Trace t = run_response(p, head + next);
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
  CHECK(t.stop_offsets[1] == head.size());
  CHECK_FALSE(t.responses[0].has_body);
  CHECK(t.responses[0].content_length.value() == 1234);
  CHECK(t.responses[0].keep_alive);
  // The expectation was used up by the first final response.
  CHECK(t.responses[1].has_body);
  CHECK(t.body == "hi");
}

TEST_CASE("204 and 304 responses have no body whatever their framing headers say") {
  for (const char* status : {"204 No Content", "304 Not Modified"}) {
    CAPTURE(status);
    Parser p(Parser::Kind::response);
    const std::string first = std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 5\r\n\r\n";
    Trace t = run_response(p, first + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE_FALSE(t.error);
    CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
    CHECK(t.stop_offsets[1] == first.size());
    CHECK_FALSE(t.responses[0].has_body);
    CHECK_FALSE(t.responses[0].body_until_close);
    CHECK(t.responses[0].keep_alive);
    CHECK(t.body == "ok");
  }
}

TEST_CASE("100 Continue is a complete message and the final response follows on the same parser") {
  const std::string in =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
  for (std::size_t step : {std::string_view::npos, std::size_t{1}}) {
    CAPTURE(step);
    Parser p(Parser::Kind::response);
    Trace t = run_response(p, in, step);
    REQUIRE_FALSE(t.error);
    CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
    REQUIRE(t.responses.size() == 2);
    CHECK(t.responses[0].status == 100);
    CHECK_FALSE(t.responses[0].has_body);
    CHECK(t.responses[1].status == 200);
    CHECK(t.body == "abc");
  }
}

TEST_CASE("a 1xx response leaves expect_head_response for the final response") {
  Parser p(Parser::Kind::response);
  p.expect_head_response(true);
  Trace t = run_response(p, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete, Stop::head, Stop::message_complete}));
  CHECK_FALSE(t.responses[1].has_body);
}

TEST_CASE("a response without length is read until close and completed by finish()") {
  Parser p(Parser::Kind::response);
  Trace t = run_response(p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head}));
  CHECK(t.body == "some body");
  const ResponseHead& h = t.responses.at(0);
  CHECK(h.body_until_close);
  CHECK(h.has_body);
  CHECK_FALSE(h.keep_alive);
  CHECK(p.in_message());
  auto more = p.feed("more");
  REQUIRE(more);
  CHECK(more->stop == Stop::need_more);
  CHECK(p.body_chunks().at(0) == "more");
  auto r = p.finish();
  REQUIRE(r);
  CHECK(r->stop == Stop::message_complete);
  CHECK_FALSE(p.in_message());
}

TEST_CASE("a read-until-close response closed right after its head completes empty") {
  Parser p(Parser::Kind::response);
  REQUIRE(p.feed("HTTP/1.0 200 OK\r\n\r\n")->stop == Stop::head);
  auto r = p.finish();
  REQUIRE(r);
  CHECK(r->stop == Stop::message_complete);
}

TEST_CASE("a Transfer-Encoding other than chunked in a response is read until close") {
  Parser p(Parser::Kind::response);
  Trace t = run_response(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz");
  REQUIRE_FALSE(t.error);
  CHECK(t.responses.at(0).body_until_close);
  CHECK_FALSE(t.responses.at(0).chunked);
  CHECK(t.body == "zzz");
  CHECK(p.finish()->stop == Stop::message_complete);
}

TEST_CASE("finish() in the middle of a Content-Length body is upstream_closed") {
  Parser p(Parser::Kind::response);
  REQUIRE(p.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")->stop == Stop::head);
  REQUIRE(p.feed("12345")->stop == Stop::need_more);
  auto r = p.finish();
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::upstream_closed));
  CHECK(r.error().side == Side::upstream);
  CHECK(portier::status_for(r.error()) == 502);
}

TEST_CASE("finish() right after the head of a bodiless response completes it") {
  Parser p(Parser::Kind::response);
  REQUIRE(p.feed("HTTP/1.1 204 No Content\r\n\r\n")->stop == Stop::head);
  auto r = p.finish();
  REQUIRE(r);
  CHECK(r->stop == Stop::message_complete);
}

TEST_CASE("a 2xx answer to CONNECT is an upgrade at the end of its head") {
  Parser p(Parser::Kind::response);
  p.expect_connect_response(true);
  const std::string head = "HTTP/1.1 200 Connection established\r\nContent-Length: 100\r\n\r\n";
  auto r = p.feed(head + "\x16\x03");
  REQUIRE(r);
  CHECK(r->stop == Stop::upgrade);
  CHECK(r->consumed == head.size());
  CHECK(p.response().status == 200);
  CHECK(p.response().reason == "Connection established");
  CHECK_FALSE(p.response().has_body);
}

TEST_CASE("a refusal of CONNECT is an ordinary response with a body") {
  Parser p(Parser::Kind::response);
  p.expect_connect_response(true);
  Trace t = run_response(p, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\ndeny");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
  CHECK(t.body == "deny");
}

TEST_CASE("a 101 response is an upgrade") {
  Parser p(Parser::Kind::response);
  const std::string head = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  auto r = p.feed(head + "frame");
  REQUIRE(r);
  CHECK(r->stop == Stop::upgrade);
  CHECK(r->consumed == head.size());
  CHECK(p.response().status == 101);
}

TEST_CASE("without expect_connect_response a 200 is an ordinary response") {
  Parser p(Parser::Kind::response);
  Trace t = run_response(p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
}

TEST_CASE("malformed responses are upstream_bad_response blamed on the upstream") {
  const std::vector<std::string> cases = {
      "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX y: a\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n",
      "HTTP/1.1 099 Odd\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 1000 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
      "SMTP ready\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 O\x7fK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n",
  };
  for (const std::string& in : cases) {
    CAPTURE(in);
    Parser p(Parser::Kind::response);
    Trace t = run_response(p, in);
    REQUIRE(t.error.has_value());
    CHECK(t.error->is(errc::upstream_bad_response));
    CHECK(t.error->side == Side::upstream);
    CHECK(portier::status_for(*t.error) == 502);
  }
}

TEST_CASE("an oversized response head is upstream_bad_response naming the limit") {
  Limits limits;
  limits.max_header_bytes = 64;
  Parser p(Parser::Kind::response, limits);
  auto r = p.feed("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'x') + "\r\n\r\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::upstream_bad_response));
  CHECK(r.error().context.find("header_too_large") != std::string::npos);
}

TEST_CASE("a moved parser carries on where it was") {
  Parser p(Parser::Kind::request);
  REQUIRE(p.feed("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n")->stop == Stop::head);
  Parser q(std::move(p));
  Trace t = run(q, "2\r\nab\r\n0\r\nX-T: t\r\n\r\nGET http://h/2 HTTP/1.1\r\nX-B: 2\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(t.stops == stops({Stop::message_complete, Stop::head, Stop::message_complete}));
  CHECK(t.body == "ab");
  CHECK(q.request().target == "http://h/2");
  CHECK(*q.request().headers.find("X-B") == "2");

  Parser r(Parser::Kind::response);
  r = std::move(q);
  Trace u = run(r, "GET http://h/3 HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(u.error);
  CHECK(u.requests.at(0).target == "http://h/3");
}

}  // TEST_SUITE

TEST_CASE("reset() makes a used parser new again: after a failure, an upgrade, finish() and half a message") {
  Limits small;
  small.max_header_bytes = 64;
  Parser p(Parser::Kind::response);
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: y\r\n\r\nhi";
  auto check_fresh = [&](Limits limits) {
    p.reset(limits);
    CHECK_FALSE(p.in_message());
    CHECK(p.response().status == 0);
    CHECK(p.response().headers.empty());
    Trace t = run_response(p, ok);
    REQUIRE_FALSE(t.error);
    CHECK(t.stops == stops({Stop::head, Stop::message_complete}));
    CHECK(t.body == "hi");
    CHECK(*p.response().headers.find("X") == "y");
  };

  REQUIRE_FALSE(p.feed("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"));  // failed
  check_fresh({});
  p.expect_connect_response(true);
  REQUIRE(p.feed("HTTP/1.1 200 Connection established\r\n\r\n")->stop == Stop::upgrade);
  check_fresh({});
  REQUIRE(p.feed("HTTP/1.1 200 OK\r\n\r\n")->stop == Stop::head);  // read until close
  REQUIRE(p.finish());
  check_fresh({});
  REQUIRE(p.feed("HTTP/1.1 200 OK\r\nContent-Le")->stop == Stop::need_more);
  p.expect_head_response(true);
  check_fresh({});  // the HEAD expectation is gone too: the body of 2 bytes is read
  // The new limits apply.
  p.reset(small);
  auto r = p.feed("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'x') + "\r\n\r\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().context.find("header_too_large") != std::string::npos);

  Parser q(Parser::Kind::request);
  REQUIRE(q.feed("GET http://h/a HTTP/1.1\r\nConnection: close\r\n\r\n")->stop == Stop::head);
  q.reset({});
  Trace t = run(q, "GET http://h/b HTTP/1.1\r\nX-B: 2\r\n\r\nGET http://h/c HTTP/1.1\r\n\r\n");
  REQUIRE_FALSE(t.error);
  CHECK(q.request().target == "http://h/c");
}

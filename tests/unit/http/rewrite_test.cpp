#include "portier/http/rewrite.hpp"

#include <string>

#include <doctest/doctest.h>

#include "header_text.hpp"

using portier::http::AbsoluteUrl;
using portier::http::ForwardOptions;
using portier::http::Headers;
using portier::http::parse_absolute_url;
using portier::http::prepare_client_response;
using portier::http::prepare_origin_request;
using portier::http::reason_phrase;
using portier::http::RequestHead;
using portier::http::ResponseHead;
using portier::http::strip_hop_by_hop;
using portier::http::write_chunk_size;
using portier::http::write_last_chunk;
using portier::http::write_request_head;
using portier::http::write_response_head;

namespace {

AbsoluteUrl url(const char* text) {
  auto u = parse_absolute_url(text);
  REQUIRE_MESSAGE(u.has_value(), text);
  return *u;
}

}  // namespace

TEST_SUITE("http.rewrite") {

TEST_CASE("strip_hop_by_hop removes the fixed set and the fields Connection names") {
  Headers h;
  h.add("Host", "h");
  h.add("Connection", "close, X-Foo");
  h.add("connection", "x-bar");
  h.add("Proxy-Connection", "keep-alive");
  h.add("Proxy-Authorization", "Basic eA==");
  h.add("Proxy-Authenticate", "Basic");
  h.add("Keep-Alive", "timeout=5");
  h.add("TE", "trailers");
  h.add("Trailer", "X-T");
  h.add("Upgrade", "websocket");
  h.add("X-Foo", "1");
  h.add("X-Bar", "2");
  h.add("X-Keep", "3");
  h.add("Transfer-Encoding", "chunked");
  h.add("Content-Length", "0");
  strip_hop_by_hop(h);
  CHECK(portier::http::test::header_text(h) == "Host: h\nX-Keep: 3\nTransfer-Encoding: chunked\nContent-Length: 0\n");
}

TEST_CASE("Connection cannot make the proxy drop framing or Host") {
  Headers h;
  h.add("Host", "h");
  h.add("Content-Length", "5");
  h.add("Transfer-Encoding", "chunked");
  h.add("Connection", "Content-Length, Transfer-Encoding, Host");
  strip_hop_by_hop(h);
  CHECK(h.contains("Content-Length"));
  CHECK(h.contains("Transfer-Encoding"));
  CHECK(h.contains("Host"));
  CHECK_FALSE(h.contains("Connection"));
}

TEST_CASE("prepare_origin_request makes an origin-form request with Host from the URL") {
  RequestHead head;
  head.method = "GET";
  head.target = "http://Example.com:8080/a?b=1";
  head.headers.add("Host", "spoofed.example");
  head.headers.add("Accept", "*/*");
  head.headers.add("Proxy-Connection", "keep-alive");
  head.headers.add("Proxy-Authorization", "Basic eA==");
  head.headers.add("Connection", "keep-alive, X-Secret");
  head.headers.add("X-Secret", "s");
  head.headers.add("Keep-Alive", "300");
  head.headers.add("TE", "trailers");
  head.headers.add("Upgrade", "h2c");
  ForwardOptions opt;
  prepare_origin_request(head, url("http://Example.com:8080/a?b=1"), opt);
  CHECK(head.target == "/a?b=1");
  CHECK(*head.headers.find("Host") == "example.com:8080");
  for (const char* name : {"Proxy-Connection", "Proxy-Authorization", "Connection", "X-Secret", "Keep-Alive", "TE",
                           "Upgrade", "Trailer"}) {
    CAPTURE(name);
    CHECK_FALSE(head.headers.contains(name));
  }
  CHECK(*head.headers.find("Accept") == "*/*");
  CHECK(*head.headers.find("Via") == "1.1 portier");
  CHECK_FALSE(head.headers.contains("X-Forwarded-For"));
  CHECK(head.headers[0].name == "Host");
}

TEST_CASE("the default port is omitted from Host") {
  RequestHead head;
  head.method = "GET";
  prepare_origin_request(head, url("http://example.com:80/"), {});
  CHECK(*head.headers.find("Host") == "example.com");
  RequestHead tls;
  prepare_origin_request(tls, url("https://example.com:443/"), {});
  CHECK(*tls.headers.find("Host") == "example.com");
  RequestHead other;
  prepare_origin_request(other, url("https://example.com:80/"), {});
  CHECK(*other.headers.find("Host") == "example.com:80");
  RequestHead v6;
  prepare_origin_request(v6, url("http://[::1]:8080/"), {});
  CHECK(*v6.headers.find("Host") == "[::1]:8080");
}

TEST_CASE("a missing Host is added first") {
  RequestHead head;
  head.headers.add("Accept", "*/*");
  prepare_origin_request(head, url("http://example.com/"), {});
  REQUIRE(head.headers.size() == 3);
  CHECK(head.headers[0].name == "Host");
  CHECK(head.headers[0].value == "example.com");
}

TEST_CASE("Via is appended to an existing Via, and left out when empty") {
  RequestHead head;
  head.headers.add("Via", "1.0 fred");
  ForwardOptions opt;
  prepare_origin_request(head, url("http://example.com/"), opt);
  CHECK(*head.headers.find("Via") == "1.0 fred, 1.1 portier");
  CHECK(head.headers.remove("Via") == 1);

  RequestHead none;
  ForwardOptions no_via;
  no_via.via.clear();
  prepare_origin_request(none, url("http://example.com/"), no_via);
  CHECK_FALSE(none.headers.contains("Via"));
}

TEST_CASE("X-Forwarded-For is appended when on and not added when off") {
  ForwardOptions on;
  on.x_forwarded_for = true;
  on.client_ip = "192.0.2.7";

  RequestHead fresh;
  prepare_origin_request(fresh, url("http://example.com/"), on);
  CHECK(*fresh.headers.find("X-Forwarded-For") == "192.0.2.7");

  RequestHead chained;
  chained.headers.add("X-Forwarded-For", "198.51.100.1");
  prepare_origin_request(chained, url("http://example.com/"), on);
  CHECK(*chained.headers.find("X-Forwarded-For") == "198.51.100.1, 192.0.2.7");

  ForwardOptions off;
  off.client_ip = "192.0.2.7";
  RequestHead plain;
  prepare_origin_request(plain, url("http://example.com/"), off);
  CHECK_FALSE(plain.headers.contains("X-Forwarded-For"));
}

TEST_CASE("prepare_client_response strips hop-by-hop, appends Via and closes when asked") {
  ResponseHead head;
  head.status = 200;
  head.headers.add("Content-Type", "text/plain");
  head.headers.add("Connection", "keep-alive, X-Internal");
  head.headers.add("X-Internal", "1");
  head.headers.add("Keep-Alive", "timeout=5");
  head.headers.add("Proxy-Authenticate", "Basic");
  head.headers.add("Via", "1.1 origin-cache");
  prepare_client_response(head, {}, true);
  CHECK_FALSE(head.headers.contains("Connection"));
  CHECK_FALSE(head.headers.contains("X-Internal"));
  CHECK_FALSE(head.headers.contains("Keep-Alive"));
  CHECK_FALSE(head.headers.contains("Proxy-Authenticate"));
  CHECK(*head.headers.find("Via") == "1.1 origin-cache, 1.1 portier");

  ResponseHead closing;
  closing.headers.add("Connection", "keep-alive");
  prepare_client_response(closing, {}, false);
  CHECK(*closing.headers.find("Connection") == "close");
  CHECK(closing.headers.remove("Connection") == 1);
}

TEST_CASE("write_request_head writes the exact bytes") {
  Headers h;
  h.add("Host", "example.com");
  h.add("Accept", "*/*");
  std::string out = "prefix|";
  write_request_head(out, "GET", "/a?b=1", h);
  CHECK(out == "prefix|GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
}

TEST_CASE("write_response_head writes the status line and defaults the reason") {
  Headers h;
  h.add("Content-Length", "0");
  std::string out;
  write_response_head(out, 404, "", h);
  CHECK(out == "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  out.clear();
  write_response_head(out, 200, "Connection established", {});
  CHECK(out == "HTTP/1.1 200 Connection established\r\n\r\n");
  out.clear();
  write_response_head(out, 599, "", {});
  CHECK(out == "HTTP/1.1 599 \r\n\r\n");
}

TEST_CASE("write_chunk_size writes lowercase hex and CRLF") {
  std::string out;
  write_chunk_size(out, 1);
  write_chunk_size(out, 10);
  write_chunk_size(out, 0x1a2b);
  write_chunk_size(out, 65536);
  CHECK(out == "1\r\na\r\n1a2b\r\n10000\r\n");
}

TEST_CASE("write_last_chunk ends the body with trailers") {
  std::string out;
  write_last_chunk(out, {});
  CHECK(out == "0\r\n\r\n");
  Headers t;
  t.add("X-Checksum", "abc");
  out.clear();
  write_last_chunk(out, t);
  CHECK(out == "0\r\nX-Checksum: abc\r\n\r\n");
}

TEST_CASE("reason_phrase knows the statuses a proxy sends") {
  CHECK(reason_phrase(200) == "OK");
  CHECK(reason_phrase(400) == "Bad Request");
  CHECK(reason_phrase(403) == "Forbidden");
  CHECK(reason_phrase(407) == "Proxy Authentication Required");
  CHECK(reason_phrase(408) == "Request Timeout");
  CHECK(reason_phrase(414) == "URI Too Long");
  CHECK(reason_phrase(431) == "Request Header Fields Too Large");
  CHECK(reason_phrase(502) == "Bad Gateway");
  CHECK(reason_phrase(504) == "Gateway Timeout");
  CHECK(reason_phrase(799).empty());
}

}  // TEST_SUITE

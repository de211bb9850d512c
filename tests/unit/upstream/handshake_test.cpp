#include "portier/upstream/handshake.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "portier/policy/users.hpp"

using portier::errc;
using portier::Side;
using portier::status_for;
using portier::upstream::authority;
using portier::upstream::base64_encode;
using portier::upstream::basic_proxy_authorization;
using portier::upstream::connect_refusal;
using portier::upstream::ConnectResponseParser;
using portier::upstream::http_connect_request;
using portier::upstream::kMaxParentHeadBytes;
using portier::upstream::ProxyCredentials;
namespace socks5 = portier::upstream::socks5;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string out;
  for (int c : b) out += static_cast<char>(c);
  return out;
}

// Feeds `in` byte by byte; returns the parser and the offset just past the head (or npos).
struct Fed {
  std::size_t head_end = std::string::npos;
  std::optional<portier::Error> error;
};
Fed feed_bytewise(ConnectResponseParser& p, std::string_view in) {
  Fed out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    auto r = p.feed(in.substr(i, 1));
    if (!r) {
      out.error = r.error();
      return out;
    }
    if (r->complete) {
      out.head_end = i + r->consumed;
      return out;
    }
    CHECK(r->consumed == 1);
  }
  return out;
}

}  // namespace

TEST_SUITE("upstream.handshake.http") {
TEST_CASE("authority brackets IPv6 literals only") {
  CHECK(authority("example.com", 443) == "example.com:443");
  CHECK(authority("10.0.0.1", 80) == "10.0.0.1:80");
  CHECK(authority("::1", 8080) == "[::1]:8080");
  CHECK(authority("2001:db8::5", 443) == "[2001:db8::5]:443");
  CHECK(authority("[::1]", 443) == "[::1]:443");
}

TEST_CASE("base64 matches RFC 4648 test vectors") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode(bytes({0xff, 0xfe, 0xfd})) == "//79");
  CHECK(base64_encode(bytes({0x00})) == "AA==");
}

TEST_CASE("Basic proxy authorization of user:pass, including non-ASCII bytes") {
  CHECK(basic_proxy_authorization({"Aladdin", "open sesame"}) == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  // UTF-8 user "jösé", password with ':' and a raw high byte: sent as given.
  ProxyCredentials c{"j\xc3\xb6s\xc3\xa9", "p:\xe2\x82\xac\xff"};
  const std::string h = basic_proxy_authorization(c);
  CHECK(h == "Basic asO2c8OpOnA64oKs/w==");  // python3: base64.b64encode(b"j\xc3\xb6s\xc3\xa9:p:\xe2\x82\xac\xff")
  // What our own listener would decode from it (round trip through policy's strict decoder).
  ProxyCredentials utf8{"j\xc3\xb6s\xc3\xa9", "p:\xe2\x82\xac"};
  auto back = portier::policy::parse_basic_credentials(basic_proxy_authorization(utf8));
  REQUIRE(back);
  CHECK(back->user == utf8.user);
  CHECK(back->password == utf8.password);
}

TEST_CASE("CONNECT request without and with credentials") {
  CHECK(http_connect_request("example.com", 443, {}) ==
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  CHECK(http_connect_request("::1", 22, {}) == "CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n\r\n");
  CHECK(http_connect_request("10.1.2.3", 8443, {"Aladdin", "open sesame"}) ==
        "CONNECT 10.1.2.3:8443 HTTP/1.1\r\nHost: 10.1.2.3:8443\r\n"
        "Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n");
  CHECK(ProxyCredentials{}.empty());
  CHECK_FALSE(ProxyCredentials{"u", ""}.empty());
  CHECK_FALSE(ProxyCredentials{"", "p"}.empty());
}

TEST_CASE("200 response in one piece leaves the tunnel bytes after the head") {
  const std::string head = "HTTP/1.1 200 Connection established\r\n\r\n";
  const std::string banner = "SSH-2.0-OpenSSH_9.2\r\n";
  ConnectResponseParser p;
  auto r = p.feed(head + banner);
  REQUIRE(r);
  CHECK(r->complete);
  CHECK(r->consumed == head.size());
  CHECK(p.tunnel_open());
  CHECK(p.status() == 200);
  CHECK(p.reason() == "Connection established");
}

TEST_CASE("200 response fed byte by byte completes exactly at the end of the head") {
  const std::string head = "HTTP/1.0 200 OK\r\nProxy-Agent: test/1\r\nX-Thing: a, b\r\n\r\n";
  ConnectResponseParser p;
  auto f = feed_bytewise(p, head + "leftover");
  REQUIRE_FALSE(f.error);
  CHECK(f.head_end == head.size());
  CHECK(p.tunnel_open());
  REQUIRE(p.headers().find("Proxy-Agent"));
  CHECK(*p.headers().find("Proxy-Agent") == "test/1");
  // Further feeds are no-ops.
  auto again = p.feed("more");
  REQUIRE(again);
  CHECK(again->consumed == 0);
  CHECK(again->complete);
}

TEST_CASE("2xx with Content-Length or Transfer-Encoding still opens the tunnel, nothing read as body") {
  for (const char* framing : {"Content-Length: 5\r\n", "Transfer-Encoding: chunked\r\n"}) {
    const std::string head = std::string("HTTP/1.1 200 OK\r\n") + framing + "\r\n";
    ConnectResponseParser p;
    auto r = p.feed(head + "hello");
    REQUIRE(r);
    CHECK(r->complete);
    CHECK(r->consumed == head.size());
    CHECK(p.tunnel_open());
  }
  ConnectResponseParser p;
  auto r = p.feed("HTTP/1.1 204 No Content\r\n\r\n");
  REQUIRE(r);
  CHECK(p.tunnel_open());
}

TEST_CASE("1xx interim responses are skipped") {
  const std::string in = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nX";
  ConnectResponseParser p;
  auto r = p.feed(in);
  REQUIRE(r);
  CHECK(r->complete);
  CHECK(r->consumed == in.size() - 1);
  CHECK(p.status() == 200);
  ConnectResponseParser q;
  auto f = feed_bytewise(q, in);
  REQUIRE_FALSE(f.error);
  CHECK(f.head_end == in.size() - 1);
}

TEST_CASE("non-2xx answers are refusals naming the hop, the target and the status") {
  ConnectResponseParser p;
  auto r = p.feed("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden");
  REQUIRE(r);
  CHECK(r->complete);
  CHECK_FALSE(p.tunnel_open());
  auto e = connect_refusal(p, false, "http://10.0.0.1:3128", "example.com:443");
  CHECK(e.is(errc::parent_refused));
  CHECK(e.side == Side::upstream);
  CHECK(status_for(e) == 502);
  CHECK(e.describe() == "parent_refused: http://10.0.0.1:3128, CONNECT example.com:443: the parent answered 403 Forbidden");

  ConnectResponseParser q;
  REQUIRE(q.feed("HTTP/1.1 502 Bad Gateway\r\n\r\n"));
  CHECK(connect_refusal(q, true, "h", "t:1").context == "h, CONNECT t:1: the parent answered 502 Bad Gateway");

  ConnectResponseParser s;  // 101 to a CONNECT is no tunnel
  REQUIRE(s.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"));
  CHECK(s.complete());
  CHECK_FALSE(s.tunnel_open());
}

TEST_CASE("407 says whether the parent wants credentials or rejected ours") {
  ConnectResponseParser p;
  REQUIRE(p.feed("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"up\"\r\n"
                 "Content-Length: 0\r\n\r\n"));
  REQUIRE(p.complete());
  auto want = connect_refusal(p, false, "http://127.0.0.1:3129", "example.com:443");
  CHECK(want.is(errc::parent_refused));
  CHECK(want.context.find("the parent proxy at http://127.0.0.1:3129 wants credentials (407") != std::string::npos);
  CHECK(want.context.find("Basic realm=\"up\"") != std::string::npos);
  auto rejected = connect_refusal(p, true, "http://127.0.0.1:3129", "example.com:443");
  CHECK(rejected.context.find("the parent proxy at http://127.0.0.1:3129 rejected our credentials (407") !=
        std::string::npos);
}

TEST_CASE("control bytes in the reason phrase are not copied into messages") {
  ConnectResponseParser p;
  REQUIRE(p.feed("HTTP/1.1 403 Bad \xff\xfe Thing\r\n\r\n"));
  auto e = connect_refusal(p, false, "h", "t:1");
  CHECK(e.context.find('\xff') == std::string::npos);
  CHECK(e.context.find("403 Bad ?? Thing") != std::string::npos);
}

TEST_CASE("garbage is parent_bad_response") {
  for (const char* junk : {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "HTTP/1.1 2OO OK\r\n\r\n", "\x05\x00",
                           "HTTP/1.1 200 OK\nbare: lf\n\n", "HTTP/2 200\r\n\r\n"}) {
    CAPTURE(junk);
    ConnectResponseParser p;
    auto r = p.feed(junk);
    if (r) {  // the junk might need more bytes to be recognized; feed a full terminator
      r = p.feed("\r\n\r\n\r\n");
    }
    REQUIRE_FALSE(r);
    CHECK(r.error().is(errc::parent_bad_response));
    CHECK(r.error().side == Side::upstream);
    CHECK(status_for(r.error()) == 502);
  }
}

TEST_CASE("a head over 16 KiB is an error, also when it arrives byte by byte") {
  const std::string filler = "X-Filler: " + std::string(990, 'f') + "\r\n";  // 1002 bytes: few fields
  std::string head = "HTTP/1.1 200 OK\r\n";
  while (head.size() < kMaxParentHeadBytes + 100) head += filler;
  head += "\r\n";
  ConnectResponseParser p;
  auto r = p.feed(head);
  REQUIRE_FALSE(r);
  CHECK(r.error().is(errc::parent_bad_response));

  ConnectResponseParser q;
  auto f = feed_bytewise(q, head);
  REQUIRE(f.error);
  CHECK(f.error->is(errc::parent_bad_response));

  // Just under the limit is fine.
  std::string ok = "HTTP/1.1 200 OK\r\n";
  while (ok.size() + filler.size() + 2 <= kMaxParentHeadBytes) ok += filler;
  ok += "X-Pad: " + std::string(kMaxParentHeadBytes - ok.size() - 2 - 9, 'p') + "\r\n\r\n";
  REQUIRE(ok.size() == kMaxParentHeadBytes);
  ConnectResponseParser s;
  auto g = s.feed(ok);
  REQUIRE(g);
  CHECK(g->complete);
}
}

TEST_SUITE("upstream.handshake.socks5") {
TEST_CASE("greeting offers user/password only with credentials") {
  CHECK(socks5::greeting({}) == bytes({5, 1, 0}));
  CHECK(socks5::greeting({"u", "p"}) == bytes({5, 2, 0, 2}));
}

TEST_CASE("method choice") {
  auto none = socks5::parse_method_choice(bytes({5, 0}), false);
  REQUIRE(none);
  CHECK(*none == socks5::kMethodNoAuth);
  auto up = socks5::parse_method_choice(bytes({5, 2}), true);
  REQUIRE(up);
  CHECK(*up == socks5::kMethodUserPass);

  auto unacceptable = socks5::parse_method_choice(bytes({5, 0xff}), false);
  REQUIRE_FALSE(unacceptable);
  CHECK(unacceptable.error().is(errc::parent_refused));
  CHECK(unacceptable.error().context.find("wants credentials") != std::string::npos);
  auto unacceptable2 = socks5::parse_method_choice(bytes({5, 0xff}), true);
  REQUIRE_FALSE(unacceptable2);
  CHECK(unacceptable2.error().is(errc::parent_refused));

  auto not_offered = socks5::parse_method_choice(bytes({5, 2}), false);
  REQUIRE_FALSE(not_offered);
  CHECK(not_offered.error().is(errc::parent_bad_response));
  auto gssapi = socks5::parse_method_choice(bytes({5, 1}), true);
  REQUIRE_FALSE(gssapi);
  CHECK(gssapi.error().is(errc::parent_bad_response));
  auto socks4 = socks5::parse_method_choice(bytes({4, 0}), false);
  REQUIRE_FALSE(socks4);
  CHECK(socks4.error().is(errc::parent_bad_response));
  auto http = socks5::parse_method_choice("HT", false);
  REQUIRE_FALSE(http);
  CHECK(http.error().is(errc::parent_bad_response));
}

TEST_CASE("RFC 1929 request and its length limits") {
  auto r = socks5::user_pass_request({"alice", "s3cret"});
  REQUIRE(r);
  CHECK(*r == bytes({1, 5}) + "alice" + bytes({6}) + "s3cret");

  auto max = socks5::user_pass_request({std::string(255, 'u'), std::string(255, 'p')});
  REQUIRE(max);
  CHECK(max->size() == 3 + 255 + 255);
  CHECK(static_cast<unsigned char>((*max)[1]) == 255);

  for (const ProxyCredentials& bad : {ProxyCredentials{std::string(256, 'u'), "p"},
                                      ProxyCredentials{"u", std::string(256, 'p')},
                                      ProxyCredentials{"", "p"}, ProxyCredentials{"u", ""}}) {
    auto e = socks5::user_pass_request(bad);
    REQUIRE_FALSE(e);
    CHECK(e.error().is(errc::bad_parent_config));
    CHECK(e.error().context.find(std::string(10, 'p')) == std::string::npos);  // never the secret
  }
}

TEST_CASE("RFC 1929 reply") {
  CHECK(socks5::parse_user_pass_reply(bytes({1, 0})));
  CHECK(socks5::parse_user_pass_reply(bytes({5, 0})));  // sloppy servers
  auto no = socks5::parse_user_pass_reply(bytes({1, 1}));
  REQUIRE_FALSE(no);
  CHECK(no.error().is(errc::parent_refused));
  CHECK(no.error().context.find("rejected our credentials") != std::string::npos);
  auto junk = socks5::parse_user_pass_reply(bytes({0x48, 0}));
  REQUIRE_FALSE(junk);
  CHECK(junk.error().is(errc::parent_bad_response));
}

TEST_CASE("CONNECT request address types") {
  auto v4 = socks5::connect_request("192.0.2.7", 443);
  REQUIRE(v4);
  CHECK(*v4 == bytes({5, 1, 0, 1, 192, 0, 2, 7, 0x01, 0xbb}));

  auto v6 = socks5::connect_request("2001:db8::1", 80);
  REQUIRE(v6);
  CHECK(*v6 == bytes({5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80}));
  auto v6b = socks5::connect_request("[2001:db8::1]", 80);
  REQUIRE(v6b);
  CHECK(*v6b == *v6);

  auto name = socks5::connect_request("example.com", 65535);
  REQUIRE(name);
  CHECK(*name == bytes({5, 1, 0, 3, 11}) + "example.com" + bytes({0xff, 0xff}));

  auto longest = socks5::connect_request(std::string(255, 'a'), 1);
  REQUIRE(longest);
  CHECK(longest->size() == 4 + 1 + 255 + 2);

  auto too_long = socks5::connect_request(std::string(256, 'a'), 1);
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().is(errc::bad_parent_config));
  auto empty = socks5::connect_request("", 1);
  REQUIRE_FALSE(empty);
  CHECK(empty.error().is(errc::bad_parent_config));
}

TEST_CASE("reply with ATYP 1, 3 and 4: exact length, read byte by byte") {
  struct Case {
    std::string reply;
    std::string bound;
  };
  const Case cases[] = {
      {bytes({5, 0, 0, 1, 10, 0, 0, 1, 0x0f, 0xa0}), "10.0.0.1:4000"},
      {bytes({5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80}), "[::1]:80"},
      {bytes({5, 0, 0, 3, 9}) + "proxy.lan" + bytes({0x04, 0x38}), "proxy.lan:1080"},
      {bytes({5, 0, 0, 3, 0, 0, 0}), ":0"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.bound);
    std::string have;
    for (std::size_t i = 0; i < c.reply.size(); ++i) {
      auto r = socks5::parse_reply(have);
      REQUIRE(r);
      REQUIRE_FALSE(r->complete);
      // Never asks for more than the reply holds: no tunnel byte is consumed.
      CHECK(r->needed <= c.reply.size());
      CHECK(r->needed > have.size());
      CHECK(r->has_rep == (have.size() >= 2));
      if (have.size() >= 5) CHECK(r->needed == c.reply.size());
      have += c.reply[i];
    }
    auto r = socks5::parse_reply(have);
    REQUIRE(r);
    CHECK(r->complete);
    CHECK(r->rep == 0);
    CHECK(r->needed == c.reply.size());
    CHECK(r->bound == c.bound);
  }
}

TEST_CASE("reply garbage") {
  auto socks4 = socks5::parse_reply(bytes({0, 0x5a}));
  REQUIRE_FALSE(socks4);
  CHECK(socks4.error().is(errc::parent_bad_response));
  auto http = socks5::parse_reply("HTTP/1.1 400");
  REQUIRE_FALSE(http);
  CHECK(http.error().is(errc::parent_bad_response));
  auto atyp = socks5::parse_reply(bytes({5, 0, 0, 9, 1}));
  REQUIRE_FALSE(atyp);
  CHECK(atyp.error().is(errc::parent_bad_response));
  auto rsv = socks5::parse_reply(bytes({5, 0, 1, 1, 1}));
  REQUIRE_FALSE(rsv);
  CHECK(rsv.error().is(errc::parent_bad_response));
  auto too_long = socks5::parse_reply(bytes({5, 0, 0, 1, 1, 2, 3, 4, 0, 80, 0x41}));
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().is(errc::parent_bad_response));
}

TEST_CASE("each REP code maps to its message and a parent_refused error") {
  const char* expected[] = {"succeeded",
                            "general failure",
                            "connection not allowed by ruleset",
                            "network unreachable",
                            "host unreachable",
                            "connection refused",
                            "TTL expired",
                            "command not supported",
                            "address type not supported"};
  for (int rep = 0; rep <= 8; ++rep) CHECK(std::string(socks5::reply_message(static_cast<std::uint8_t>(rep))) == expected[rep]);
  CHECK(std::string(socks5::reply_message(9)) == "unassigned reply code");
  CHECK(std::string(socks5::reply_message(0xff)) == "unassigned reply code");

  for (int rep = 1; rep <= 8; ++rep) {
    // A failure is known after two bytes, whatever follows (some servers send junk or nothing).
    auto r = socks5::parse_reply(bytes({5, rep}));
    REQUIRE(r);
    CHECK(r->has_rep);
    CHECK(r->rep == rep);
    auto junk_atyp = socks5::parse_reply(bytes({5, rep, 0, 0, 0}));
    REQUIRE(junk_atyp);
    CHECK(junk_atyp->complete);
    auto e = socks5::refusal(static_cast<std::uint8_t>(rep), "socks5://127.0.0.1:1080", "example.com:443");
    CHECK(e.is(errc::parent_refused));
    CHECK(e.side == Side::upstream);
    CHECK(status_for(e) == 502);
    CHECK(e.context == std::string("socks5://127.0.0.1:1080, SOCKS5 CONNECT example.com:443: the parent answered ") +
                           expected[rep] + " (REP " + std::to_string(rep) + ")");
  }
}

TEST_CASE("error names are stable") {
  CHECK(portier::error_name(portier::Error{errc::parent_refused, Side::upstream}) == "parent_refused");
  CHECK(portier::error_name(portier::Error{errc::parent_bad_response, Side::upstream}) == "parent_bad_response");
  CHECK(portier::error_name(portier::Error{errc::bad_parent_config, Side::internal}) == "bad_parent_config");
  CHECK(status_for(portier::Error{errc::parent_bad_response, Side::upstream}) == 502);
  CHECK(status_for(portier::Error{errc::bad_parent_config, Side::internal}) == 500);
}
}

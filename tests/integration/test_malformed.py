"""Malformed and slow requests: each gets the right status, the connection is closed, and nothing
reaches the origin."""
import select
import socket
import time
import unittest

from tests.support.clients import ConnectionClosed
from tests.integration.helpers import ProxyTestCase


def head(lines, body=b""):
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# name -> (function(origin url, origin host:port) -> raw bytes, expected status, what must hold
# at the origin: "nothing" = no connection at all, "no-request" = no complete request)
CASES = {
    "cl_and_te": (lambda u, hp: head(["POST %s/echo HTTP/1.1" % u, "Host: " + hp,
                                      "Content-Length: 5", "Transfer-Encoding: chunked"],
                                     b"0\r\n\r\n"), 400, "nothing"),
    "te_and_cl": (lambda u, hp: head(["POST %s/echo HTTP/1.1" % u, "Host: " + hp,
                                      "Transfer-Encoding: chunked", "Content-Length: 5"],
                                     b"0\r\n\r\n"), 400, "nothing"),
    "two_different_content_lengths": (lambda u, hp: head(
        ["POST %s/echo HTTP/1.1" % u, "Host: " + hp, "Content-Length: 5", "Content-Length: 6"],
        b"hello!"), 400, "nothing"),
    "content_length_list": (lambda u, hp: head(
        ["POST %s/echo HTTP/1.1" % u, "Host: " + hp, "Content-Length: 5, 6"], b"hello!"),
        400, "nothing"),
    "negative_content_length": (lambda u, hp: head(
        ["POST %s/echo HTTP/1.1" % u, "Host: " + hp, "Content-Length: -1"]), 400, "nothing"),
    "transfer_encoding_not_chunked_last": (lambda u, hp: head(
        ["POST %s/echo HTTP/1.1" % u, "Host: " + hp, "Transfer-Encoding: chunked, gzip"],
        b"0\r\n\r\n"), 400, "nothing"),
    "obs_fold": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp,
                                     "X-Folded: first", " continued"]), 400, "nothing"),
    "space_before_colon": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp,
                                               "X-Bad : value"]), 400, "nothing"),
    "bad_header_name_char": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp,
                                                 "X(Bad): value"]), 400, "nothing"),
    "nul_in_header_value": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp,
                                                "X-Nul: a\x00b"]), 400, "nothing"),
    "bare_cr_in_header": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp,
                                              "X-A: a\rX-B: b"]), 400, "nothing"),
    "bad_method_token": (lambda u, hp: head(["G@T %s/echo HTTP/1.1" % u, "Host: " + hp]),
                         400, "nothing"),
    "invalid_chunk_size": (lambda u, hp: head(["POST %s/echo HTTP/1.1" % u, "Host: " + hp,
                                               "Transfer-Encoding: chunked"],
                                              b"zz\r\nhello\r\n0\r\n\r\n"), 400, "no-request"),
    "chunk_size_overflow": (lambda u, hp: head(["POST %s/echo HTTP/1.1" % u, "Host: " + hp,
                                                "Transfer-Encoding: chunked"],
                                               b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
                            400, "no-request"),
    "url_too_long": (lambda u, hp: head(["GET %s/echo?%s HTTP/1.1" % (u, "a" * 9000),
                                         "Host: " + hp]), 414, "nothing"),
    "head_too_big": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp] +
                                        ["X-Big-%02d: %s" % (i, "b" * 1000) for i in range(70)]),
                     431, "nothing"),
    "too_many_headers": (lambda u, hp: head(["GET %s/echo HTTP/1.1" % u, "Host: " + hp] +
                                            ["X-H-%03d: v" % i for i in range(100)]),
                         431, "nothing"),
    "origin_form_request": (lambda u, hp: head(["GET /echo HTTP/1.1", "Host: " + hp]),
                            400, "nothing"),
    "connect_without_port": (lambda u, hp: head(["CONNECT 127.0.0.1 HTTP/1.1",
                                                 "Host: 127.0.0.1"]), 400, "nothing"),
    "connect_unclosed_bracket": (lambda u, hp: head(["CONNECT [::1 HTTP/1.1", "Host: [::1"]),
                                 400, "nothing"),
    "connect_non_numeric_port": (lambda u, hp: head(["CONNECT a:b HTTP/1.1", "Host: a:b"]),
                                 400, "nothing"),
    "connect_port_out_of_range": (lambda u, hp: head(["CONNECT a:99999 HTTP/1.1",
                                                      "Host: a:99999"]), 400, "nothing"),
    "connect_empty_host": (lambda u, hp: head(["CONNECT :443 HTTP/1.1", "Host: :443"]),
                           400, "nothing"),
}


class Malformed(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.start_portier()

    def check_case(self, name):
        make, status, at_origin = CASES[name]
        raw = make(self.origin.url, self.origin.hostport)
        c = self.connect()
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.fail("proxy reset the connection while the request was sent (%s)%s"
                      % (e, self.diag()))
        try:
            r = c.read_response("CONNECT" if raw.startswith(b"CONNECT") else "GET")
        except (ConnectionClosed, ConnectionResetError) as e:
            self.fail("no %d answer, the connection was closed/reset instead (%s)%s"
                      % (status, e, self.diag()))
        self.assertStatus(r, status, "case %s" % name)
        self.assertIn("close", r.tokens("connection"),
                      "error answer on a closing connection must say Connection: close: %r" % r)
        self.assertClosed(c, 3.0)
        if name == "origin_form_request":
            self.assertIn("proxy", r.body.decode("latin-1").lower(),
                          "400 body should explain that this is a proxy: %r" % r.body)
        if at_origin == "nothing":
            self.assertNothingReached(self.origin, msg=name)
        else:
            self.assertEqual(self.origin.requests, [], "origin received a complete request")
        self.assertTrue(self.portier.alive(), "portier died" + self.diag())


def _make(name):
    def t(self):
        self.check_case(name)
    t.__name__ = "test_" + name
    t.__doc__ = None
    return t


for _name in CASES:
    setattr(Malformed, "test_" + _name, _make(_name))


class Limits(ProxyTestCase):
    """The limits are configurable, and requests just under them pass."""

    def setUp(self):
        self.origin = self.start_origin()

    def test_url_just_under_limit_passes(self):
        self.start_portier()
        url = "%s/echo?" % self.origin.url
        url += "a" * (8000 - len(url))
        c, r = self.raw(head(["GET %s HTTP/1.1" % url, "Host: " + self.origin.hostport]))
        self.assertStatus(r, 200)

    def test_100_headers_pass(self):
        self.start_portier()
        c, r = self.raw(head(["GET %s/echo HTTP/1.1" % self.origin.url,
                              "Host: " + self.origin.hostport] +
                             ["X-H-%03d: v" % i for i in range(99)]))
        self.assertStatus(r, 200)

    def test_configured_max_url_bytes(self):
        self.start_portier({"limits": {"max_url_bytes": 1024}})
        c, r = self.raw(head(["GET %s/echo?%s HTTP/1.1" % (self.origin.url, "q" * 1100),
                              "Host: " + self.origin.hostport]))
        self.assertStatus(r, 414)
        self.assertNothingReached(self.origin)

    def test_configured_max_headers(self):
        self.start_portier({"limits": {"max_headers": 10}})
        c, r = self.raw(head(["GET %s/echo HTTP/1.1" % self.origin.url,
                              "Host: " + self.origin.hostport] +
                             ["X-H-%03d: v" % i for i in range(10)]))
        self.assertStatus(r, 431)
        self.assertNothingReached(self.origin)


class SlowClient(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()

    def test_half_head_gets_408(self):
        self.start_portier({"timeouts": {"header_ms": 1000}})
        c = self.connect()
        t0 = time.monotonic()
        c.send(("GET %s/echo HTTP/1.1\r\nHost: %s\r\n" % (self.origin.url,
                                                          self.origin.hostport)).encode())
        c.settimeout(6.0)
        try:
            r = c.read_response()
        except (ConnectionClosed, ConnectionResetError) as e:
            self.fail("closed without a 408 (%s) after %.2fs%s" % (e, time.monotonic() - t0,
                                                                  self.diag()))
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 408)
        self.assertGreater(elapsed, 0.8, "408 came before header_ms")
        self.assertLess(elapsed, 2.5, "408 took %.2fs with header_ms 1000" % elapsed)
        self.assertClosed(c, 2.0)
        self.assertNothingReached(self.origin)
        rec = self.wait_record(lambda x: x.get("status") == 408)
        self.assertTrue(rec["error"], rec)

    def test_trickling_client_cut_at_deadline(self):
        self.start_portier({"timeouts": {"header_ms": 1000}})
        c = self.connect()
        raw = ("GET %s/echo HTTP/1.1\r\nHost: %s\r\nX-Slow: %s\r\n\r\n" % (
            self.origin.url, self.origin.hostport, "s" * 200)).encode()
        t0 = time.monotonic()
        cut = None
        got = b""
        i = 0
        while time.monotonic() - t0 < 6.0 and i < len(raw):
            try:
                c.sock.sendall(raw[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                cut = ("reset on send", time.monotonic() - t0)
                break
            i += 1
            r, _, _ = select.select([c.sock], [], [], 0.2)
            if r:
                try:
                    data = c.sock.recv(65536)
                except ConnectionResetError:
                    cut = ("reset", time.monotonic() - t0)
                    break
                got += data
                if not data:
                    cut = ("eof", time.monotonic() - t0)
                    break
                if b"\r\n\r\n" in got:
                    cut = ("response", time.monotonic() - t0)
                    break
        self.assertIsNotNone(cut, "a client trickling a byte every 200 ms was never cut off "
                             "(sent %d bytes in %.1fs)%s" % (i, time.monotonic() - t0, self.diag()))
        how, elapsed = cut
        self.assertLess(elapsed, 2.5, "cut off only after %.2fs (%s); header_ms is for the whole "
                        "head" % (elapsed, how))
        self.assertGreater(elapsed, 0.8)
        if got:
            self.assertTrue(got.startswith(b"HTTP/1.1 408"), "answer was %r" % got[:100])
        self.assertNothingReached(self.origin)

    def test_silent_connection_closed(self):
        self.start_portier({"timeouts": {"header_ms": 1000, "keepalive_ms": 1000}})
        c = self.connect()
        extra = self.assertClosed(c, 4.0, "a connection that never sends a byte was not closed")
        if extra:
            self.assertTrue(extra.startswith(b"HTTP/1.1 408"), extra[:100])

    def test_idle_keepalive_closed_after_keepalive_ms(self):
        self.start_portier({"timeouts": {"keepalive_ms": 1000}})
        c, r = self.raw(head(["GET %s/echo HTTP/1.1" % self.origin.url,
                              "Host: " + self.origin.hostport]))
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        self.assertClosed(c, 4.0, "idle keep-alive connection not closed after keepalive_ms")
        self.assertGreater(time.monotonic() - t0, 0.8)

    def test_slow_but_in_time_head_is_served(self):
        self.start_portier({"timeouts": {"header_ms": 3000}})
        c = self.connect()
        c.send(("GET %s/echo/slowok HTTP/1.1\r\n" % self.origin.url).encode())
        time.sleep(0.5)
        c.send(("Host: %s\r\n\r\n" % self.origin.hostport).encode())
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/slowok")


if __name__ == "__main__":
    unittest.main()


class LingeringClose(ProxyTestCase):
    """After an answer that ends the connection, the proxy keeps reading for a moment (lingering
    close): a client still uploading sees an orderly end, not a reset. Over a real network a reset
    sent while the answer is still in flight destroys the answer; on loopback we can observe the
    cause: the rest of the upload is taken and the connection ends with FIN."""

    def test_upload_after_error_answer_ends_with_fin_not_reset(self):
        self.start_portier()
        s = socket.create_connection((self.portier.host, self.portier.port), timeout=10)
        self.addCleanup(s.close)
        body = b"x" * (512 * 1024)
        # Origin-form: refused with 400 right after the head, before the body was read.
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: example\r\nContent-Length: %d\r\n\r\n" % len(body))
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            self.assertTrue(chunk, "closed before the answer")
            got += chunk
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got[:200])
        time.sleep(0.2)  # the proxy has answered and would have closed by now
        try:
            for i in range(0, len(body), 16384):
                s.sendall(body[i:i + 16384])
            s.shutdown(socket.SHUT_WR)
            rest = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                rest += chunk
        except (ConnectionResetError, BrokenPipeError) as e:
            self.fail("the connection was reset while the client was still sending: %r" % e)

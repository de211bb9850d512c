"""Upstream errors and the SSRF guard: status, reason line, and the access log's "error"."""
import socket
import time
import unittest

from tests.support.origins import free_port
from tests.integration.helpers import ProxyTestCase


def get(url, hostport, extra=()):
    lines = ["GET %s HTTP/1.1" % url, "Host: %s" % hostport] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class UpstreamErrors(ProxyTestCase):
    def check_logged(self, status, method=None):
        rec = self.wait_record(lambda r: r.get("status") == status and
                               (method is None or r.get("method") == method),
                               what="record with status %d" % status)
        self.assertTrue(rec.get("error"), "access log record has no reason in \"error\": %r" % rec)
        return rec

    def test_unknown_host_502(self):
        self.start_portier()
        r = self.curl("http://nonexistent.invalid/echo", timeout=30)
        self.assertStatus(r, 502)
        self.assertTrue(r.body.strip(), "error body should name the reason")
        rec = self.check_logged(502)
        # the spec does not say whether a failed forward logs "forward" or "error"
        self.assertIn(rec["decision"], ("forward", "error"))
        self.assertEqual(rec["upstream"], "")
        self.assertEqual(rec["target"], "nonexistent.invalid:80")

    def test_unknown_host_connect_502(self):
        self.start_portier()
        c, r = self.tunnel("nonexistent.invalid", 443)
        self.assertStatus(r, 502)
        self.check_logged(502, "CONNECT")

    def test_refused_port_502(self):
        self.start_portier()
        port = free_port()
        t0 = time.monotonic()
        r = self.curl("http://127.0.0.1:%d/echo" % port)
        self.assertStatus(r, 502)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertTrue(r.body.strip())
        self.check_logged(502)

    def test_response_timeout_504(self):
        origin = self.start_origin()
        self.start_portier({"timeouts": {"response_ms": 1000}})
        t0 = time.monotonic()
        c, r = self.raw(get(origin.url + "/slow-head/5", origin.hostport))
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 504)
        self.assertLess(elapsed, 3.0, "504 after %.2fs with response_ms 1000" % elapsed)
        self.assertGreater(elapsed, 0.8)
        self.assertEqual(len(origin.requests), 1, "the request did reach the origin")
        rec = self.check_logged(504)
        self.assertEqual(rec["upstream"], origin.hostport)

    def test_response_in_time_not_cut(self):
        origin = self.start_origin()
        self.start_portier({"timeouts": {"response_ms": 3000}})
        c, r = self.raw(get(origin.url + "/slow-head/1", origin.hostport))
        self.assertStatus(r, 200)

    def test_connect_timeout_504(self):
        # a listener with a full accept queue drops SYNs: the connect hangs
        lsock = socket.socket()
        self.addCleanup(lsock.close)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(0)
        port = lsock.getsockname()[1]
        fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
            self.addCleanup(s.close)
        time.sleep(0.2)
        probe = socket.socket()
        self.addCleanup(probe.close)
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            self.skipTest("this kernel accepts connections beyond the backlog; cannot make a "
                          "hanging connect")
        except socket.timeout:
            pass
        self.start_portier({"timeouts": {"connect_ms": 1000, "response_ms": 20000}})
        t0 = time.monotonic()
        c, r = self.raw(get("http://127.0.0.1:%d/echo" % port, "127.0.0.1:%d" % port))
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 504)
        self.assertLess(elapsed, 3.5, "504 after %.2fs with connect_ms 1000" % elapsed)
        self.check_logged(504)

    def test_upstream_garbage_502(self):
        origin = self.start_origin()
        self.start_portier()
        c, r = self.raw(get(origin.url + "/garbage", origin.hostport))
        self.assertStatus(r, 502)
        self.check_logged(502)

    def test_truncated_response_is_not_completed(self):
        # the origin promises 100000 bytes and closes after 50000: the client must see the
        # connection end early (never a response that looks complete, never a hang)
        origin = self.start_origin()
        self.start_portier()
        c = self.connect()
        c.send(get(origin.url + "/truncate/100000", origin.hostport))
        t0 = time.monotonic()
        with self.assertRaises(Exception) as cm:
            c.read_response()
        self.assertNotIsInstance(cm.exception, socket.timeout,
                                 "client hung instead of seeing the connection close")
        self.assertLess(time.monotonic() - t0, 5.0)

    def test_truncated_chunked_response_is_not_completed(self):
        origin = self.start_origin()
        self.start_portier()
        c = self.connect()
        c.send(get(origin.url + "/truncate-chunked/100000", origin.hostport))
        with self.assertRaises(Exception) as cm:
            c.read_response()
        self.assertNotIsInstance(cm.exception, socket.timeout,
                                 "client hung instead of seeing the connection close")

    def test_stalled_response_body_cut(self):
        # response_ms also bounds gaps in the response body
        origin = self.start_origin()
        self.start_portier({"timeouts": {"response_ms": 1000}})
        c = self.connect(timeout=8.0)
        c.send(get(origin.url + "/stall-body/4", origin.hostport))
        t0 = time.monotonic()
        head = c.read_head()
        self.assertEqual(head.status, 200)
        closed, extra = c.wait_closed(3.5)
        self.assertTrue(closed, "client connection still open %.1fs into a stalled body%s"
                        % (time.monotonic() - t0, self.diag()))
        self.assertNotEqual(extra, b"0123456789")

    def test_connection_survives_upstream_error(self):
        # a 502 is not the client's fault: the client connection may stay open; if the proxy keeps
        # it, the next request on it must work
        origin = self.start_origin()
        self.start_portier()
        c, r = self.raw(get("http://127.0.0.1:%d/echo" % free_port(), "x"))
        self.assertStatus(r, 502)
        if "close" in r.tokens("connection"):
            self.assertClosed(c)
            return
        c.send(get(origin.url + "/echo/after-502", origin.hostport))
        r2 = c.read_response()
        self.assertStatus(r2, 200)


class BodyOfFailedRequest(ProxyTestCase):
    """The body of a request that is denied or fails is never parsed as a request of its own."""

    def setUp(self):
        self.origin = self.start_origin()
        # 127.0.0.1 is open, the rest of 127/8 is not
        self.start_portier({"ssrf": {"allow": ["127.0.0.1/32"]}})
        self.smuggled = get(self.origin.url + "/echo/smuggled", self.origin.hostport)

    def post(self, url, hostport, body, extra=()):
        lines = ["POST %s HTTP/1.1" % url, "Host: %s" % hostport,
                 "Content-Length: %d" % len(body)] + list(extra)
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def check_no_smuggling(self, c, first_status):
        r = c.read_response()
        self.assertStatus(r, first_status)
        if "close" not in r.tokens("connection"):
            # the proxy keeps the connection: the next request must be the real next one
            c.send(get(self.origin.url + "/echo/next", self.origin.hostport))
            r2 = c.read_response()
            self.assertStatus(r2, 200)
            self.assertEqual(r2.json()["target"], "/echo/next")
        else:
            self.assertClosed(c)
        time.sleep(0.2)
        self.assertEqual([x["target"] for x in self.origin.requests
                          if x["target"] == "/echo/smuggled"], [],
                         "the body of a failed request was forwarded as a request")

    def test_denied_post_body_not_a_request(self):
        c = self.connect()
        c.send(self.post("http://127.0.0.2:%d/deny" % self.origin.port,
                         "127.0.0.2:%d" % self.origin.port, self.smuggled))
        self.check_no_smuggling(c, 403)

    def test_failed_post_body_not_a_request(self):
        c = self.connect()
        hp = "127.0.0.1:%d" % free_port()
        c.send(self.post("http://%s/refused" % hp, hp, self.smuggled))
        self.check_no_smuggling(c, 502)

    def test_denied_with_expect_answers_without_the_body(self):
        c = self.connect()
        c.send(("POST http://127.0.0.2:%d/deny HTTP/1.1\r\nHost: 127.0.0.2\r\n"
                "Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n" %
                self.origin.port).encode())
        c.settimeout(3.0)
        r = c.read_response()
        self.assertStatus(r, 403, "a denial must not wait for a body the client holds back")


class Ssrf(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.start_portier({"ssrf": None, "forward": {"connect_ports": [443, self.origin.port]}})

    def check_denied(self, raw, method="GET"):
        c, r = self.raw(raw, method)
        self.assertStatus(r, 403)
        self.assertTrue(r.body.strip(), "403 body should name the reason")
        self.assertNothingReached(self.origin)
        rec = self.wait_record(lambda x: x.get("status") == 403)
        self.assertTrue(rec.get("error"), "no reason in the access log: %r" % rec)
        self.assertEqual(rec["upstream"], "")
        return rec

    def test_get_loopback_denied(self):
        rec = self.check_denied(get(self.origin.url + "/echo", self.origin.hostport))
        self.assertEqual(rec["decision"], "deny", "an SSRF denial is a deny: %r" % rec)

    def test_curl_get_loopback_denied(self):
        r = self.curl(self.origin.url + "/echo")
        self.assertStatus(r, 403)
        self.assertNothingReached(self.origin)

    def test_connect_loopback_443_denied(self):
        rec = self.check_denied(b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
                                "CONNECT")
        self.assertEqual(rec["decision"], "deny", "an SSRF denial is a deny: %r" % rec)

    def test_connect_loopback_origin_port_denied(self):
        hp = self.origin.hostport
        self.check_denied(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp)).encode(),
                          "CONNECT")

    def test_localhost_name_denied(self):
        hp = "localhost:%d" % self.origin.port
        self.check_denied(get("http://%s/echo" % hp, hp))

    def test_unspecified_address_denied(self):
        hp = "0.0.0.0:%d" % self.origin.port
        self.check_denied(get("http://%s/echo" % hp, hp))

    def test_ipv4_mapped_ipv6_denied(self):
        hp = "[::ffff:127.0.0.1]:%d" % self.origin.port
        self.check_denied(get("http://%s/echo" % hp, hp))

    def test_other_loopback_address_denied(self):
        hp = "127.1.2.3:%d" % self.origin.port
        self.check_denied(get("http://%s/echo" % hp, hp))

    def test_decimal_ip_not_a_bypass(self):
        hp = "2130706433:%d" % self.origin.port
        c, r = self.raw(get("http://%s/echo" % hp, hp))
        self.assertIn(r.status, (400, 403, 502), r)
        self.assertNothingReached(self.origin)

    def test_private_and_link_local_denied(self):
        for host in ("10.0.0.1", "192.168.1.1", "172.16.0.1", "169.254.169.254", "100.64.0.1"):
            with self.subTest(host=host):
                t0 = time.monotonic()
                c, r = self.raw(get("http://%s:81/" % host, "%s:81" % host))
                self.assertStatus(r, 403, host)
                self.assertLess(time.monotonic() - t0, 2.0, "denial must not dial first")


if __name__ == "__main__":
    unittest.main()

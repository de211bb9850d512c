"""HTTP forwarding (absolute-form) through portier: methods, bodies, keep-alive, pipelining,
header rewriting, large transfers, IPv6."""
import hashlib
import os
import subprocess
import tempfile
import time
import unittest

from tests.support.clients import HttpConn, curl, curl_env
from tests.support.origins import header_values, pattern_sha256, ipv6_available
from tests.integration.helpers import (ProxyTestCase, HOP_BY_HOP, random_bytes, sha256,
                                       skip_unless_ipv6)


def request(method, url, hostport, headers=(), body=b"", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, url, version), "Host: %s" % hostport]
    lines += ["%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ForwardBasics(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.start_portier()

    def test_get_via_curl(self):
        r = self.curl(self.origin.url + "/echo/get?x=1")
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertEqual(seen["method"], "GET")
        self.assertEqual(seen["target"], "/echo/get?x=1", "origin must get origin-form")
        self.assertEqual(seen["version"], "HTTP/1.1")
        self.assertEqual(header_values(seen["headers"], "host"), [self.origin.hostport])
        self.assertEqual(len(self.origin.requests), 1)

    def test_response_has_via(self):
        r = self.curl(self.origin.url + "/echo")
        self.assertStatus(r, 200)
        via = ", ".join(header_values(r.headers, "via"))
        self.assertIn("1.1 portier", via, "response headers: %r" % r.headers)

    def test_head(self):
        r = self.curl(self.origin.url + "/bytes/12345", args=["-I"])
        self.assertStatus(r, 200)
        self.assertEqual(r.header("content-length"), "12345")
        # (curl -I writes the headers to its output; the raw HEAD tests check that no body follows)
        self.assertEqual([x["method"] for x in self.origin.requests], ["HEAD"])

    def test_head_then_get_on_same_connection(self):
        # a HEAD response has Content-Length but no body: the proxy must not wait for one
        c = self.connect()
        url = self.origin.url + "/bytes/5000"
        c.send(request("HEAD", url, self.origin.hostport))
        r1 = c.read_response("HEAD")
        self.assertStatus(r1, 200)
        self.assertEqual(r1.header("content-length"), "5000")
        c.send(request("GET", self.origin.url + "/echo", self.origin.hostport))
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json()["target"], "/echo")

    def test_post_body(self):
        data = random_bytes(300 * 1024)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.curl(self.origin.url + "/echo/post", args=["--data-binary", "@" + f.name])
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertEqual(seen["method"], "POST")
        self.assertEqual(seen["body_length"], len(data))
        self.assertEqual(seen["body_sha256"], sha256(data))

    def test_post_large_body(self):
        data = random_bytes(16 * 1024 * 1024, b"large")
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.curl(self.origin.url + "/echo/post", args=["--data-binary", "@" + f.name],
                          timeout=60)
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["body_length"], len(data))
        self.assertEqual(r.json()["body_sha256"], sha256(data))

    def test_chunked_upload(self):
        data = random_bytes(200 * 1024 + 17, b"chunked")
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.curl(self.origin.url + "/echo/chunked-up",
                          args=["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + f.name])
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertEqual(seen["body_length"], len(data))
        self.assertEqual(seen["body_sha256"], sha256(data))

    def test_chunked_upload_with_trailer_raw(self):
        body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
        c, r = self.raw(request("POST", self.origin.url + "/echo/trailer", self.origin.hostport,
                                [("Transfer-Encoding", "chunked")], body))
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertEqual(seen["body_length"], 11)
        self.assertEqual(seen["body_sha256"], sha256(b"hello world"))
        # and the connection is still usable afterwards
        c.send(request("GET", self.origin.url + "/echo/after", self.origin.hostport))
        self.assertEqual(c.read_response().json()["target"], "/echo/after")

    def test_expect_100_continue(self):
        data = random_bytes(64 * 1024, b"expect")
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            t0 = time.monotonic()
            r = self.curl(self.origin.url + "/echo/expect",
                          args=["-H", "Expect: 100-continue", "--expect100-timeout", "3",
                                "--data-binary", "@" + f.name])
            elapsed = time.monotonic() - t0
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["body_sha256"], sha256(data))
        self.assertEqual(r.json()["body_length"], len(data))
        total = float(r.info.get("time_total", elapsed))
        self.assertLess(total, 1.0, "curl waited for 100 Continue (no 100 relayed or sent): "
                        "time_total=%.2fs, header blocks %r" % (total, [b[0] for b in r.blocks]))

    def test_expect_100_continue_raw(self):
        # raw client: send the head, wait for 100 Continue, then the body
        data = random_bytes(4096, b"expect-raw")
        c = self.connect()
        c.send(request("PUT", self.origin.url + "/echo/put", self.origin.hostport,
                       [("Content-Length", str(len(data))), ("Expect", "100-continue")]))
        c.settimeout(2.0)
        interim = c.read_head()
        c.settimeout(10.0)
        self.assertEqual(interim.status, 100, "expected 100 Continue before sending the body: %r"
                         % interim)
        c.send(data)
        r = c.read_response("PUT")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["body_sha256"], sha256(data))

    def test_pipelining(self):
        c = self.connect()
        hp = self.origin.hostport
        c.send(request("GET", self.origin.url + "/echo?n=1", hp) +
               request("GET", self.origin.url + "/echo?n=2", hp) +
               request("POST", self.origin.url + "/echo?n=3", hp, [("Content-Length", "3")], b"abc"))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        for r in (r1, r2, r3):
            self.assertStatus(r, 200)
        self.assertEqual([r1.json()["target"], r2.json()["target"], r3.json()["target"]],
                         ["/echo?n=1", "/echo?n=2", "/echo?n=3"])
        self.assertEqual(r3.json()["body_sha256"], sha256(b"abc"))

    def test_chunked_response(self):
        r = self.curl(self.origin.url + "/chunked/300000")
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), 300000)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(300000))

    def test_close_delimited_response(self):
        r = self.curl(self.origin.url + "/close/300000")
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), 300000)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(300000))

    def test_close_delimited_response_raw_keeps_framing(self):
        # the client must be able to find the end of the body: either the proxy re-frames it
        # (chunked) or it closes the client connection after it
        c = self.connect()
        c.send(request("GET", self.origin.url + "/close/70000", self.origin.hostport))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(70000))

    def test_status_204_and_304(self):
        c = self.connect()
        for status in (204, 304):
            c.send(request("GET", self.origin.url + "/status/%d" % status, self.origin.hostport))
            r = c.read_response()
            self.assertStatus(r, status)
            self.assertEqual(r.body, b"")
        c.send(request("GET", self.origin.url + "/echo/after", self.origin.hostport))
        self.assertEqual(c.read_response().json()["target"], "/echo/after")

    def test_status_passthrough(self):
        r = self.curl(self.origin.url + "/status/404")
        self.assertStatus(r, 404)
        self.assertEqual(r.body, b"status 404\n")

    def test_hop_by_hop_headers_stripped(self):
        hdrs = [("Connection", "keep-alive, X-Custom"),
                ("X-Custom", "secret"),
                ("Proxy-Connection", "keep-alive"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Trailer", "X-Checksum"),
                ("Upgrade", "h2c"),
                ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
                ("X-End-To-End", "kept")]
        c, r = self.raw(request("GET", self.origin.url + "/echo/hop", self.origin.hostport, hdrs))
        self.assertStatus(r, 200)
        seen = r.json()["headers"]
        for name in HOP_BY_HOP + ["x-custom"]:
            self.assertNoHeader(seen, name, "hop-by-hop")
        self.assertEqual(header_values(seen, "x-end-to-end"), ["kept"])
        via = ", ".join(header_values(seen, "via"))
        self.assertIn("1.1 portier", via, "origin headers: %r" % seen)

    def test_response_hop_by_hop_stripped(self):
        c, r = self.raw(request("GET", self.origin.url + "/hop-response", self.origin.hostport))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"hop\n")
        for name in ("x-resp-hop", "keep-alive", "proxy-connection", "upgrade"):
            self.assertNoHeader(r.headers, name, "response hop-by-hop")
        self.assertNotIn("x-resp-hop", r.tokens("connection"))
        self.assertEqual(r.header("x-end-to-end"), "kept")

    def test_url_without_path(self):
        c, r = self.raw(request("GET", self.origin.url, self.origin.hostport))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/")

    def test_url_with_query_but_no_path(self):
        c, r = self.raw(request("GET", self.origin.url + "?x=1", self.origin.hostport))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/?x=1")

    def test_head_of_chunked_response_then_get(self):
        c = self.connect()
        c.send(request("HEAD", self.origin.url + "/chunked/1000", self.origin.hostport))
        r1 = c.read_response("HEAD")
        self.assertStatus(r1, 200)
        c.send(request("GET", self.origin.url + "/echo/after-head", self.origin.hostport))
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json()["target"], "/echo/after-head")

    def test_early_hints_then_final(self):
        c, r = self.raw(request("GET", self.origin.url + "/early-hints", self.origin.hostport))
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"final\n")
        c.send(request("GET", self.origin.url + "/echo/after-103", self.origin.hostport))
        self.assertEqual(c.read_response().json()["target"], "/echo/after-103")

    def test_origin_connection_close_not_reused(self):
        c = self.connect()
        c.send(request("GET", self.origin.url + "/close-after", self.origin.hostport))
        r1 = c.read_response()
        self.assertStatus(r1, 200)
        self.assertEqual(r1.body, b"closing\n")
        if "close" in r1.tokens("connection"):
            self.assertClosed(c)
            return
        c.send(request("GET", self.origin.url + "/echo/next", self.origin.hostport))
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json()["conn_request_index"], 1, "a closed origin connection was reused")

    def test_get_then_denied_connect_on_same_connection(self):
        c = self.connect()
        c.send(request("GET", self.origin.url + "/echo/first", self.origin.hostport))
        self.assertStatus(c.read_response(), 200)
        # CONNECT to a port not allowed (default [443]) is denied; the GET before it was fine
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.origin.hostport,
                                                                 self.origin.hostport)).encode())
        r = c.read_response("CONNECT")
        self.assertStatus(r, 403)

    def test_many_concurrent_clients(self):
        conns = [self.connect() for _ in range(40)]
        for i, c in enumerate(conns):
            c.send(request("GET", self.origin.url + "/echo/c%d" % i, self.origin.hostport))
        for i, c in enumerate(conns):
            r = c.read_response()
            self.assertStatus(r, 200)
            self.assertEqual(r.json()["target"], "/echo/c%d" % i)

    def test_via_appended_to_existing(self):
        c, r = self.raw(request("GET", self.origin.url + "/echo/via", self.origin.hostport,
                                [("Via", "1.0 fred")]))
        self.assertStatus(r, 200)
        via = ", ".join(header_values(r.json()["headers"], "via"))
        self.assertIn("1.0 fred", via)
        self.assertIn("1.1 portier", via)
        self.assertLess(via.index("1.0 fred"), via.index("1.1 portier"), via)

    def test_host_rewritten_from_url(self):
        c, r = self.raw(request("GET", self.origin.url + "/echo/host", "wrong.example:81"))
        self.assertStatus(r, 200)
        self.assertEqual(header_values(r.json()["headers"], "host"), [self.origin.hostport])

    def test_host_added_when_missing(self):
        raw = ("GET %s/echo/nohost HTTP/1.1\r\nX-A: 1\r\n\r\n" % self.origin.url).encode()
        c, r = self.raw(raw)
        # RFC 9112 says a 1.1 request without Host is invalid; either answer is acceptable, but if
        # forwarded, the origin must get the Host of the URL.
        if r.status == 200:
            self.assertEqual(header_values(r.json()["headers"], "host"), [self.origin.hostport])
        else:
            self.assertStatus(r, 400)
            self.assertNothingReached(self.origin)

    def test_x_forwarded_for_absent_by_default(self):
        r = self.curl(self.origin.url + "/echo/xff")
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "x-forwarded-for")

    def test_connection_close_from_client(self):
        c, r = self.raw(request("GET", self.origin.url + "/echo/close", self.origin.hostport,
                                [("Connection", "close")]))
        self.assertStatus(r, 200)
        self.assertClosed(c, 3.0, "proxy kept the connection open after Connection: close")

    def test_http10_client(self):
        c, r = self.raw(request("GET", self.origin.url + "/echo/h10", self.origin.hostport,
                                version="HTTP/1.0"))
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/h10")
        self.assertClosed(c, 3.0, "proxy kept an HTTP/1.0 connection without keep-alive open")

    def test_download_100mb(self):
        n = 100 * 1024 * 1024
        expected = pattern_sha256(n)
        cmd = ["curl", "-q", "-sS", "--max-time", "120", "-x", self.portier.proxy_url,
               self.origin.url + "/bytes/%d" % n]
        h = hashlib.sha256()
        got = 0
        t0 = time.monotonic()
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=curl_env()) as proc:
            try:
                while True:
                    chunk = proc.stdout.read(1 << 20)
                    if not chunk:
                        break
                    h.update(chunk)
                    got += len(chunk)
                rc = proc.wait(30)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            err = proc.stderr.read().decode("utf-8", "replace")
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "curl failed: %s%s" % (err, self.diag()))
        self.assertEqual(got, n)
        self.assertEqual(h.hexdigest(), expected)
        mbps = n / elapsed / 1e6
        print("100 MB through portier in %.2fs = %.0f MB/s" % (elapsed, mbps))
        min_mbps = float(os.environ.get("PORTIER_TEST_MIN_MBPS", "100"))
        self.assertGreater(mbps, min_mbps, "throughput %.0f MB/s below %.0f MB/s" % (mbps, min_mbps))


class KeepAlive(ProxyTestCase):
    def setUp(self):
        self.a = self.start_origin()
        self.b = self.start_origin()
        self.start_portier()

    def test_keepalive_reuse_two_origins(self):
        urls = [self.a.url + "/echo/1", self.b.url + "/echo/1", self.a.url + "/echo/2",
                self.b.url + "/echo/2"]
        with tempfile.TemporaryDirectory() as d:
            args = ["-x", self.portier.proxy_url, "-w", "%{num_connects} %{http_code}\\n"]
            for i, u in enumerate(urls):
                args += ["-o", os.path.join(d, "body%d" % i), u]
            p = curl(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().split()
        connects, codes = lines[0::2], lines[1::2]
        self.assertEqual(codes, ["200"] * 4)
        self.assertEqual(connects, ["1", "0", "0", "0"],
                         "curl opened more than one connection to the proxy%s" % self.diag())
        for origin in (self.a, self.b):
            reqs = origin.requests
            self.assertEqual([r["target"] for r in reqs], ["/echo/1", "/echo/2"])
            self.assertEqual(reqs[1]["conn_id"], reqs[0]["conn_id"],
                             "proxy did not reuse its origin connection: %r" %
                             [(r["conn_id"], r["peer_port"]) for r in reqs])
            self.assertEqual(reqs[1]["conn_request_index"], 2)
            self.assertEqual(origin.accepted, 1)

    def test_pipelining_across_two_origins(self):
        c = self.connect()
        c.send(request("GET", self.a.url + "/echo/p1", self.a.hostport) +
               request("GET", self.b.url + "/slow-head/0.3", self.b.hostport) +
               request("GET", self.a.url + "/echo/p3", self.a.hostport))
        targets = [c.read_response().json()["target"] for _ in range(3)]
        self.assertEqual(targets, ["/echo/p1", "/slow-head/0.3", "/echo/p3"])

    def test_pipelined_request_after_an_error(self):
        from tests.support.origins import free_port
        c = self.connect()
        bad = "127.0.0.1:%d" % free_port()
        c.send(request("GET", "http://%s/" % bad, bad) +
               request("GET", self.a.url + "/echo/after-error", self.a.hostport))
        r1 = c.read_response()
        self.assertStatus(r1, 502)
        if "close" in r1.tokens("connection"):
            self.assertClosed(c)
            self.assertEqual(self.a.requests, [])
            return
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json()["target"], "/echo/after-error")

    def test_reuse_after_chunked_and_close_delimited(self):
        c = self.connect()
        hp = self.a.hostport
        c.send(request("GET", self.a.url + "/chunked/100000", hp))
        r = c.read_response()
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(100000))
        c.send(request("GET", self.a.url + "/echo/next", hp))
        r = c.read_response()
        self.assertEqual(r.json()["conn_request_index"], 2, "origin connection not reused "
                         "after a chunked response")


class StalePool(ProxyTestCase):
    def test_origin_closed_idle_connection_is_not_a_502(self):
        # the origin closes idle keep-alive connections after 0.3 s; the proxy's pooled
        # connection is dead when the next request comes and must not cost the client an error
        origin = self.start_origin(idle_close=0.3)
        self.start_portier()
        c = self.connect()
        c.send(request("GET", origin.url + "/echo/1", origin.hostport))
        self.assertStatus(c.read_response(), 200)
        time.sleep(0.8)
        self.assertEqual(origin.idle_closed, 1)
        c.send(request("GET", origin.url + "/echo/2", origin.hostport))
        r = c.read_response()
        self.assertStatus(r, 200, "request on a stale pooled origin connection")
        self.assertEqual(r.json()["target"], "/echo/2")
        self.assertEqual(origin.accepted, 2)


class ConnectSameConnection(ProxyTestCase):
    def test_get_then_connect_tunnel(self):
        origin = self.start_origin()
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c = self.connect()
        c.send(request("GET", origin.url + "/echo/first", origin.hostport))
        self.assertStatus(c.read_response(), 200)
        hp = "127.0.0.1:%d" % srv.port
        c.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hp, hp)).encode())
        self.assertStatus(c.read_response("CONNECT"), 200)
        c.send(b"through")
        self.assertEqual(c.read_available(7), b"through")


class ForwardConfigured(ProxyTestCase):
    def test_x_forwarded_for_when_configured(self):
        origin = self.start_origin()
        self.start_portier({"forward": {"x_forwarded_for": True}})
        r = self.curl(origin.url + "/echo/xff")
        self.assertStatus(r, 200)
        xff = ", ".join(header_values(r.json()["headers"], "x-forwarded-for"))
        self.assertIn("127.0.0.1", xff)

    def test_via_disabled(self):
        origin = self.start_origin()
        self.start_portier({"forward": {"via": ""}})
        r = self.curl(origin.url + "/echo/novia")
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "via", "with forward.via \"\"")
        self.assertNoHeader(r.headers, "via", "with forward.via \"\" (response)")

    def test_via_false(self):
        origin = self.start_origin()
        self.start_portier({"forward": {"via": False}})
        r = self.curl(origin.url + "/echo/novia")
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "via", "with forward.via false")


@skip_unless_ipv6
class IPv6(ProxyTestCase):
    def test_startup_prints_every_address(self):
        p = self.start_portier({"listeners": [{"name": "dual", "mode": "forward",
                                               "listen": ["127.0.0.1:0", "[::1]:0"]}]})
        hosts = sorted(h for _, h, _ in p.listeners)
        self.assertEqual(hosts, ["127.0.0.1", "::1"], p.stderr_text())
        self.assertEqual(len(p.listeners), 2, "one line per bound address, not per worker: %s"
                         % p.stderr_text())
        for name, host, port in p.listeners:
            self.assertEqual(name, "dual")
            self.assertNotEqual(port, 0)

    def test_get_over_ipv6(self):
        origin = self.start_origin(host="::1")
        p = self.start_portier({"listeners": [{"name": "v6", "mode": "forward",
                                               "listen": ["[::1]:0"]}]})
        self.assertEqual(p.host, "::1")
        self.assertEqual(p.proxy_url, "http://[::1]:%d" % p.port)
        r = self.curl("http://[::1]:%d/echo/v6" % origin.port)
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertEqual(seen["target"], "/echo/v6")
        self.assertEqual(seen["peer_addr"], "::1")
        self.assertEqual(header_values(seen["headers"], "host"), ["[::1]:%d" % origin.port])

    def test_connect_over_ipv6(self):
        origin = self.start_origin(host="::1")
        p = self.start_portier({"listeners": [{"name": "v6", "mode": "forward",
                                               "listen": ["[::1]:0"]}],
                                "forward": {"connect_ports": [origin.port]}})
        c, r = self.tunnel("::1", origin.port)
        self.assertStatus(r, 200)
        c.send(b"GET /echo/tunnel6 HTTP/1.1\r\nHost: x\r\n\r\n")
        r2 = c.read_response()
        self.assertEqual(r2.json()["target"], "/echo/tunnel6")
        self.assertEqual(r2.json()["peer_addr"], "::1")


if __name__ == "__main__":
    unittest.main()

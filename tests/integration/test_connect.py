"""CONNECT tunnels through portier: TLS via curl, raw tunnels, ports policy, half-close."""
import hashlib
import socket
import threading
import time
import unittest

from tests.support.origins import free_port
from tests.integration.helpers import ProxyTestCase, random_bytes, sha256


class ConnectTls(ProxyTestCase):
    def setUp(self):
        self.tls = self.start_tls_origin()
        self.start_portier({"forward": {"connect_ports": [self.tls.port]}})

    def test_curl_proxytunnel_localhost(self):
        r = self.curl("https://localhost:%d/echo/tls" % self.tls.port,
                      args=["-p", "--cacert", self.tls.cafile])
        self.assertStatus(r, 200)
        seen = r.json()
        self.assertTrue(seen["tls"])
        self.assertEqual(seen["target"], "/echo/tls")
        self.assertEqual(len(self.tls.requests), 1)

    def test_curl_https_url_through_proxy(self):
        r = self.curl("https://127.0.0.1:%d/echo/https" % self.tls.port,
                      args=["--cacert", self.tls.cafile])
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/https")
        self.assertTrue(r.json()["tls"])
        # the CONNECT answer curl saw
        self.assertTrue(r.blocks and r.blocks[0][0].startswith("HTTP/1.1 200"),
                        "header blocks: %r" % [b[0] for b in r.blocks])

    def test_curl_several_https_requests_one_tunnel(self):
        u = "https://127.0.0.1:%d/echo/n" % self.tls.port
        r = self.curl(u, args=["--cacert", self.tls.cafile, "-o", "/dev/null", u])
        self.assertEqual(r.returncode, 0, r.describe())
        self.assertEqual(self.tls.accepted, 1)
        self.assertEqual([x["conn_request_index"] for x in self.tls.requests], [1, 2])


class ConnectTlsRsa(ProxyTestCase):
    def test_curl_proxytunnel_rsa_certificate(self):
        tls = self.start_tls_origin(key_type="rsa")
        self.start_portier({"forward": {"connect_ports": [tls.port]}})
        r = self.curl("https://localhost:%d/echo/rsa" % tls.port,
                      args=["-p", "--cacert", tls.cafile])
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/rsa")


class ConnectRaw(ProxyTestCase):
    def test_connect_answer_is_exact(self):
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        self.assertEqual(r.raw_head, b"HTTP/1.1 200 Connection established\r\n\r\n")
        c.send(b"ping")
        self.assertEqual(c.read_available(4), b"ping")

    def test_connect_closed_port_502_within_a_second(self):
        port = free_port()
        self.start_portier({"forward": {"connect_ports": [port]}})
        t0 = time.monotonic()
        c, r = self.tunnel("127.0.0.1", port)
        elapsed = time.monotonic() - t0
        self.assertStatus(r, 502)
        self.assertLess(elapsed, 1.0, "502 took %.2fs" % elapsed)
        self.assertTrue(r.body.strip(), "error answers carry a short reason line")

    def test_connect_port_not_allowed_403(self):
        origin = self.start_origin()
        self.start_portier()  # connect_ports default [443]
        c, r = self.tunnel("127.0.0.1", origin.port)
        self.assertStatus(r, 403)
        self.assertNothingReached(origin)

    def test_connect_port_not_in_configured_list_403(self):
        origin = self.start_origin()
        other = self.start_origin()
        self.start_portier({"forward": {"connect_ports": [other.port]}})
        c, r = self.tunnel("127.0.0.1", origin.port)
        self.assertStatus(r, 403)
        self.assertNothingReached(origin)

    def test_connect_port_range(self):
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [443, "%d-%d" % (srv.port - 1,
                                                                          srv.port + 1)]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        c.send(b"range")
        self.assertEqual(c.read_available(5), b"range")

    def test_connect_leftover_bytes(self):
        origin = self.start_origin()
        self.start_portier({"forward": {"connect_ports": [origin.port]}})
        early = b"GET /echo/early HTTP/1.1\r\nHost: tunneled\r\n\r\n"
        c, r = self.tunnel("127.0.0.1", origin.port, extra=early)
        self.assertStatus(r, 200)
        r2 = c.read_response()
        self.assertStatus(r2, 200)
        seen = r2.json()
        self.assertEqual(seen["target"], "/echo/early")
        # the proxy does not rewrite tunneled bytes
        self.assertEqual([h for h in seen["headers"] if h[0].lower() == "host"], [["Host", "tunneled"]])
        self.assertEqual(len(origin.requests), 1)

    def test_connect_leftover_bytes_record(self):
        srv = self.start_tcp("record")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        extra = b"\x16\x03\x01 first bytes of the tunnel \x00\xff"
        c, r = self.tunnel("127.0.0.1", srv.port, extra=extra)
        self.assertStatus(r, 200)
        c.shutdown_write()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and srv.total_received() != extra:
            time.sleep(0.05)
        self.assertEqual(srv.total_received(), extra)

    def test_tunnel_half_close(self):
        srv = self.start_tcp("count")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        payload = random_bytes(100000, b"half")
        c.send(payload)
        c.shutdown_write()
        reply = c.read_until_eof(timeout=10.0)
        self.assertEqual(reply, b"%d\n" % len(payload),
                         "after the client's half-close the server's reply must still arrive")

    def test_tunnel_server_speaks_first(self):
        srv = self.start_tcp("banner", banner=b"220 hello from the server\r\n")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        banner = b"220 hello from the server\r\n"
        self.assertEqual(c.read_available(len(banner), timeout=5.0), banner)

    def test_tunnel_server_closes_first(self):
        srv = self.start_tcp("greet-close", banner=b"bye\n")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        self.assertEqual(c.read_until_eof(5.0), b"bye\n")

    def test_tunnel_bulk_both_ways(self):
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port, timeout=30.0)
        self.assertStatus(r, 200)
        payload = random_bytes(8 * 1024 * 1024, b"bulk")
        err = []

        def sender():
            try:
                for i in range(0, len(payload), 256 * 1024):
                    c.send(payload[i:i + 256 * 1024])
                c.shutdown_write()
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        back = c.read_until_eof(timeout=30.0)
        t.join(10)
        self.assertEqual(err, [])
        self.assertEqual(len(back), len(payload))
        self.assertEqual(sha256(back), sha256(payload))

    def test_tunnel_idle_timeout(self):
        srv = self.start_tcp("hold")
        self.start_portier({"forward": {"connect_ports": [srv.port]},
                            "timeouts": {"tunnel_idle_ms": 1000}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        self.assertClosed(c, 4.0, "idle tunnel not closed after tunnel_idle_ms")
        self.assertGreater(time.monotonic() - t0, 0.8)


if __name__ == "__main__":
    unittest.main()

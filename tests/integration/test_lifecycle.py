"""Start-up lines, SIGTERM/SIGINT drain and shutdown."""
import signal
import socket
import threading
import time
import unittest

from tests.integration.helpers import ProxyTestCase


def get(url, hostport, extra=()):
    lines = ["GET %s HTTP/1.1" % url, "Host: %s" % hostport] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Startup(ProxyTestCase):
    def test_ready_and_listener_lines(self):
        p = self.start_portier()
        lines = p.stderr_text().splitlines()
        listen = [l for l in lines if l.startswith("portier: info: listener ")]
        self.assertEqual(len(listen), 1, "one line per bound address: %r" % lines)
        self.assertRegex(listen[0], r"^portier: info: listener test listening on 127\.0\.0\.1:\d+$")
        self.assertNotEqual(p.port, 0)
        ready = [i for i, l in enumerate(lines) if l == "portier: info: ready"]
        self.assertEqual(len(ready), 1, lines)
        self.assertGreater(ready[0], lines.index(listen[0]), "ready comes after the listener lines")

    def test_port_shared_by_workers(self):
        # workers 2: both accept on the same port; many connections all work
        origin = self.start_origin()
        p = self.start_portier({"workers": 2})
        conns = [self.connect() for _ in range(8)]
        for c in conns:
            c.send(get(origin.url + "/echo", origin.hostport))
        for c in conns:
            self.assertStatus(c.read_response(), 200)

    def test_two_listeners(self):
        p = self.start_portier({"listeners": [
            {"name": "one", "listen": ["127.0.0.1:0"], "mode": "forward"},
            {"name": "two", "listen": ["127.0.0.1:0"], "mode": "forward"}]})
        self.assertEqual(sorted(n for n, _, _ in p.listeners), ["one", "two"])
        origin = self.start_origin()
        for i, (name, host, port) in enumerate(p.listeners):
            from tests.support.clients import HttpConn
            with HttpConn(host, port) as c:
                c.send(get(origin.url + "/echo", origin.hostport))
                self.assertStatus(c.read_response(), 200)
        recs = p.access_log_records(2)
        self.assertEqual(sorted(r["listener"] for r in recs), ["one", "two"])


class Shutdown(ProxyTestCase):
    def open_echo_tunnel(self, overrides=None):
        srv = self.start_tcp("echo")
        cfg = {"forward": {"connect_ports": [srv.port]}}
        cfg.update(overrides or {})
        p = self.start_portier(cfg)
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        c.send(b"before")
        self.assertEqual(c.read_available(6), b"before")
        return p, c

    def assert_refusing(self, p, within=2.0):
        deadline = time.monotonic() + within
        last = None
        while time.monotonic() < deadline:
            s = socket.socket()
            s.settimeout(1.0)
            try:
                s.connect((p.host, p.port))
                last = "accepted"
            except ConnectionRefusedError:
                return
            except OSError as e:
                last = repr(e)
            finally:
                s.close()
            time.sleep(0.05)
        self.fail("new connections still %s %.1fs after SIGTERM%s" % (last, within, self.diag()))

    def test_sigterm_drains_active_tunnel(self):
        p, c = self.open_echo_tunnel()
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertTrue(p.alive(), "portier exited with an active tunnel" + self.diag())
        for msg in (b"during-1", b"during-2"):
            c.send(msg)
            self.assertEqual(c.read_available(len(msg), timeout=3.0), msg,
                             "tunnel stopped carrying data after SIGTERM")
            time.sleep(0.2)
        self.assert_refusing(p)
        self.assertTrue(p.alive(), "portier exited with an active tunnel" + self.diag())
        c.shutdown_write()
        self.assertEqual(c.read_until_eof(5.0), b"")
        c.close()
        rc = p.wait(5.0)
        self.assertIsNotNone(rc, "portier did not exit after its last tunnel closed" + self.diag())
        self.assertEqual(rc, 0, self.diag())
        rec = p.wait_record(lambda r: r.get("method") == "CONNECT", 2.0)
        self.assertIsNotNone(rec, "tunnel record missing after drain")
        self.assertEqual(rec["bytes_up"], len(b"before" b"during-1" b"during-2"))

    def test_sigterm_grace_cuts_open_tunnel(self):
        p, c = self.open_echo_tunnel({"timeouts": {"shutdown_grace_ms": 1000}})
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        rc = p.wait(5.0)
        elapsed = time.monotonic() - t0
        self.assertIsNotNone(rc, "portier still running 5s after SIGTERM with grace 1000ms"
                             + self.diag())
        self.assertEqual(rc, 0, self.diag())
        self.assertLess(elapsed, 3.0, "exit took %.2fs with shutdown_grace_ms 1000" % elapsed)
        self.assertGreater(elapsed, 0.8, "tunnel cut before the grace period")
        self.assertClosed(c, 2.0, "tunnel still open after portier exited")

    def test_sigterm_idle_keepalive_closed_at_once(self):
        origin = self.start_origin()
        p = self.start_portier()
        c = self.connect()
        c.send(get(origin.url + "/echo", origin.hostport))
        self.assertStatus(c.read_response(), 200)
        t0 = time.monotonic()
        p.signal(signal.SIGTERM)
        self.assertClosed(c, 2.0, "idle keep-alive connection not closed at SIGTERM")
        rc = p.wait(3.0)
        self.assertIsNotNone(rc, "portier did not exit with only idle connections" + self.diag())
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_sigterm_lets_inflight_request_finish(self):
        origin = self.start_origin()
        p = self.start_portier()
        c = self.connect()
        c.send(get(origin.url + "/slow-head/1.5", origin.hostport))
        deadline = time.monotonic() + 5
        while not origin.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertTrue(origin.requests, "request did not reach the origin")
        p.signal(signal.SIGTERM)
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/slow-head/1.5")
        self.assertClosed(c, 3.0)
        rc = p.wait(5.0)
        self.assertEqual(rc, 0, self.diag())

    def test_sigint_exits_0(self):
        p = self.start_portier()
        self.assertEqual(p.stop(signal.SIGINT, timeout=5.0), 0, self.diag())

    def test_sigterm_idle_exits_quickly(self):
        p = self.start_portier()
        t0 = time.monotonic()
        self.assertEqual(p.stop(signal.SIGTERM, timeout=5.0), 0, self.diag())
        self.assertLess(time.monotonic() - t0, 1.5)


if __name__ == "__main__":
    unittest.main()

"""Limits (config "limits"): open connections in total and per client address (closed at once),
each user's request rate (429 with Retry-After, token bucket), each user's bandwidth (shaped, not
cut: a transfer takes as long as the rate says and arrives whole), their metrics, and one log line
per limit and interval."""
import json
import os
import re
import signal
import threading
import time

from tests.integration.helpers import ProxyTestCase
from tests.support.clients import HttpConn, admin_request
from tests.support.policy_files import basic_token, hash_password, request_bytes, write_htpasswd

LIMIT_LINE = "limit reached: "
KIB = 1024


def metric(text, name, **labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return None


class LimitsBase(ProxyTestCase):
    def start(self, limits, **extra):
        cfg = {"limits": limits, "admin": {"listen": "127.0.0.1:0"}}
        cfg.update(extra)
        p = self.start_portier(cfg)
        self.admin = p.admin_addr
        self.assertIsNotNone(self.admin, p.diag())
        return p

    def metrics(self):
        status, _, body = admin_request(self.admin, "/metrics")
        self.assertEqual(status, 200, body)
        return body

    def limit_lines(self):
        return [l for l in self.portier.stderr_text().splitlines() if LIMIT_LINE in l]

    def get(self, conn, path, creds=None):
        headers = []
        if creds is not None:
            headers.append("Proxy-Authorization: Basic %s" % basic_token(*creds))
        conn.send(request_bytes("GET", "%s%s" % (self.origin.url, path), headers))
        return conn.read_response()

    def held_connection(self):
        """A connection that made one request (so portier has admitted it) and stays open."""
        c = self.connect()
        self.assertStatus(self.get(c, "/ok"), 200)
        return c


class ConnectionLimits(LimitsBase):
    def setUp(self):
        self.origin = self.start_origin()

    def test_per_client_limit_closes_the_extra_connection_and_frees_on_close(self):
        self.start({"max_connections_per_client": 2, "log_interval_ms": 600000})
        a = self.held_connection()
        self.held_connection()
        for _ in range(3):
            extra = self.connect()
            extra.send(request_bytes("GET", self.origin.url + "/ok"))
            self.assertClosed(extra, msg="a third connection from one address")
        # The first two still work; closing one makes room for a new one.
        self.assertStatus(self.get(a, "/ok"), 200)
        a.close()
        deadline = time.monotonic() + 5
        while True:
            c = self.connect()
            try:
                c.send(request_bytes("GET", self.origin.url + "/ok"))
                r = c.read_response()
                break
            except Exception:  # the freed slot is given back when portier sees the close
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.assertStatus(r, 200)
        self.assertEqual(metric(self.metrics(), "portier_limit_refusals_total", limit="connections_per_client"), 3.0)
        # Three refusals, one log line (the interval is long).
        lines = self.limit_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("max_connections_per_client (2) from one address", lines[0])
        self.assertIn("127.0.0.1", lines[0])
        self.assertTrue(lines[0].startswith("portier: warning: limit reached: "), lines[0])

    def test_total_limit(self):
        self.start({"max_connections": 3})
        held = [self.held_connection() for _ in range(3)]
        extra = self.connect()
        extra.send(request_bytes("GET", self.origin.url + "/ok"))
        self.assertClosed(extra, msg="a fourth connection over max_connections 3")
        self.assertEqual(metric(self.metrics(), "portier_limit_refusals_total", limit="connections"), 1.0)
        self.assertStatus(self.get(held[0], "/ok"), 200)
        self.assertIn("max_connections (3) open connections", "\n".join(self.limit_lines()))

    def test_no_limits_by_default(self):
        self.start({})
        held = [self.held_connection() for _ in range(20)]
        self.assertStatus(self.get(held[-1], "/ok"), 200)
        self.assertEqual(metric(self.metrics(), "portier_limit_refusals_total", limit="connections_per_client"), 0.0)


class RequestRate(LimitsBase):
    def setUp(self):
        self.origin = self.start_origin()

    def write_users(self):
        d = self.make_tmpdir()
        hashes = {u: hash_password(u + "-pw", "sha512") for u in ("alice", "bob", "root")}
        for u, h in hashes.items():
            self.assertIsNotNone(h, "openssl passwd -6 must work for %s" % u)
        return write_htpasswd(os.path.join(d, "users.htpasswd"), hashes)

    def test_429_with_retry_after_then_tokens_come_back(self):
        self.start({"per_user": {"requests_per_second": 2, "burst": 3}, "log_interval_ms": 600000})
        c = self.connect()
        for i in range(3):
            self.assertStatus(self.get(c, "/ok"), 200, "request %d of the burst" % i)
        before = self.origin.snapshot()
        r = self.get(c, "/ok")
        self.assertStatus(r, 429)
        self.assertEqual(r.header("Retry-After"), "1")
        self.assertNothingReached(self.origin, before, "a request over the rate")
        rec = self.wait_record(lambda x: x.get("status") == 429)
        self.assertEqual((rec["decision"], rec["rule"]), ("deny", "rate_limit"))
        # The 429 kept the connection; after half a second one token is back (2 per second).
        time.sleep(0.6)
        self.assertStatus(self.get(c, "/ok"), 200)
        self.assertStatus(self.get(c, "/ok"), 429)
        self.assertEqual(metric(self.metrics(), "portier_limit_refusals_total", limit="request_rate"), 2.0)
        lines = self.limit_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("per_user.requests_per_second (127.0.0.1)", lines[0])

    def test_connect_is_counted_too(self):
        self.start({"per_user": {"requests_per_second": 0.5, "burst": 1}},
                   forward={"connect_ports": ["1-65535"]})
        tcp = self.start_tcp("echo")
        c, r = self.tunnel(tcp.host, tcp.port)
        self.assertStatus(r, 200)
        c2, r2 = self.tunnel(tcp.host, tcp.port)
        self.assertStatus(r2, 429)
        self.assertEqual(r2.header("Retry-After"), "2")

    def test_each_user_has_a_bucket_and_exempt_groups_have_none(self):
        users = self.write_users()
        self.start({"per_user": {"requests_per_second": 0.2, "burst": 2, "exempt_groups": ["ops"]}},
                   auth={"users_file": users, "groups": {"ops": ["root"]}},
                   listeners=[{"name": "test", "listen": ["127.0.0.1:0"], "auth": "required"}])
        c = self.connect()
        alice, bob, root = ("alice", "alice-pw"), ("bob", "bob-pw"), ("root", "root-pw")
        for creds in (alice, alice):
            self.assertStatus(self.get(c, "/ok", creds), 200)
        self.assertStatus(self.get(c, "/ok", alice), 429)
        # Same client address, another user: its own bucket.
        self.assertStatus(self.get(c, "/ok", bob), 200)
        for i in range(10):
            self.assertStatus(self.get(c, "/ok", root), 200, "exempt request %d" % i)
        rec = self.wait_record(lambda x: x.get("status") == 429)
        self.assertEqual(rec["user"], "alice")
        self.assertIn("(user alice)", "\n".join(self.limit_lines()))

    def test_reload_changes_the_rate(self):
        p = self.start({"per_user": {"requests_per_second": 0.1, "burst": 1}})
        c = self.connect()
        self.assertStatus(self.get(c, "/ok"), 200)
        self.assertStatus(self.get(c, "/ok"), 429)
        # Lifted by a reload: the same keep-alive connection goes on without a 429.
        p.config["limits"] = {}
        before = p.stderr_text().count("reloaded ")
        with open(p.config_path, "w") as f:
            json.dump(p.config, f)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while p.stderr_text().count("reloaded ") == before:
            self.assertLess(time.monotonic(), deadline, "no reload line" + p.diag())
            time.sleep(0.05)
        for _ in range(5):
            self.assertStatus(self.get(c, "/ok"), 200)


class Bandwidth(LimitsBase):
    """200 KiB/s per user and direction with one second of burst: 1 MiB takes (1024 - 200) / 200 =
    4.1 s. Shaped means it arrives whole and no faster; the tolerance is generous on the slow side
    only (a loaded machine is slower, never faster)."""
    RATE = 200 * KIB
    SIZE = 1024 * KIB
    EXPECTED = (SIZE - RATE) / RATE

    def setUp(self):
        self.origin = self.start_origin()
        self.start({"per_user": {"bytes_per_second": self.RATE}}, forward={"connect_ports": ["1-65535"]})

    def assertShaped(self, seconds, what):
        self.assertGreater(seconds, self.EXPECTED * 0.85, "%s: %.2f s is faster than the limit%s" % (what, seconds, self.diag()))
        self.assertLess(seconds, self.EXPECTED * 2.5, "%s: %.2f s is far slower than the limit" % (what, seconds))

    def download(self, conn, path):
        conn.send(request_bytes("GET", self.origin.url + path))
        return conn.read_response()

    def test_forwarded_response_body_is_shaped(self):
        c = self.connect(timeout=30)
        t0 = time.monotonic()
        r = self.download(c, "/bytes/%d" % self.SIZE)
        took = time.monotonic() - t0
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), self.SIZE)
        self.assertShaped(took, "a 1 MiB response")
        self.assertGreater(metric(self.metrics(), "portier_shaping_delay_seconds_total", direction="down"), 2.0)

    def test_two_connections_of_one_user_share_the_rate(self):
        took = {}

        def fetch(i):
            c = HttpConn(self.portier.host, self.portier.port, timeout=30)
            try:
                t0 = time.monotonic()
                r = self.download(c, "/bytes/%d" % (self.SIZE // 2))
                took[i] = (time.monotonic() - t0, r.status, len(r.body))
            finally:
                c.close()

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(sorted(took), [0, 1], took)
        for i in (0, 1):
            self.assertEqual(took[i][1:], (200, self.SIZE // 2))
        self.assertShaped(max(v[0] for v in took.values()), "two 512 KiB responses side by side")

    def test_tunnel_is_shaped_both_ways(self):
        # Down: an HTTP request inside a CONNECT tunnel to the origin.
        c, r = self.tunnel(self.origin.host, self.origin.port, timeout=30)
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        resp = self.download(c, "/bytes/%d" % self.SIZE)
        self.assertEqual(len(resp.body), self.SIZE)
        self.assertShaped(time.monotonic() - t0, "1 MiB down a tunnel")
        # Up: 1 MiB into a tunnel to a counting server.
        tcp = self.start_tcp("count")
        up, r = self.tunnel(tcp.host, tcp.port, timeout=30)
        self.assertStatus(r, 200)
        payload = os.urandom(self.SIZE)
        t0 = time.monotonic()
        up.send(payload)
        up.shutdown_write()
        answer = up.read_until_eof(timeout=30)
        took = time.monotonic() - t0
        self.assertEqual(answer.strip(), b"%d" % self.SIZE)
        self.assertShaped(took, "1 MiB up a tunnel")
        m = self.metrics()
        self.assertGreater(metric(m, "portier_shaping_delay_seconds_total", direction="up"), 2.0)

    def test_request_body_is_shaped(self):
        c = self.connect(timeout=30)
        body = os.urandom(self.SIZE)
        t0 = time.monotonic()
        c.send(request_bytes("POST", self.origin.url + "/upload", ["Content-Type: application/octet-stream"], body))
        r = c.read_response()
        took = time.monotonic() - t0
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["body_length"], self.SIZE)
        self.assertShaped(took, "a 1 MiB request body")

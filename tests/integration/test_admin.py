"""The admin endpoint: its own listener with Prometheus metrics that move with traffic, health and
readiness, the running config with secrets redacted, POST /reload, and the bearer token."""
import json
import re
import time
import unittest

from tests.support.clients import admin_request, curl
from tests.integration.helpers import ProxyTestCase

TOKEN = "test-admin-token-0123456789"


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from Prometheus text."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class AdminBase(ProxyTestCase):
    token = TOKEN

    def start(self, overrides=None):
        admin = {"listen": "127.0.0.1:0"}
        if self.token:
            admin["token"] = self.token
        cfg = {"admin": admin}
        cfg.update(overrides or {})
        p = self.start_portier(cfg)
        self.admin = p.admin_addr
        self.assertIsNotNone(self.admin, p.diag())
        return p

    def call(self, path, method="GET", token="default"):
        token = self.token if token == "default" else token
        return admin_request(self.admin, path, method, token)

    def metrics(self):
        status, headers, body = self.call("/metrics")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers["Content-Type"])
        return parse_metrics(body)

    def value(self, metrics, name, **labels):
        return metrics.get((name, frozenset(labels.items())), 0.0)


class Admin(AdminBase):
    def test_token_is_enforced(self):
        self.start()
        for token in (None, "wrong-token-0123456789abc", TOKEN + "x"):
            status, headers, _ = self.call("/metrics", token=token)
            self.assertEqual(status, 401, "token %r" % token)
            self.assertIn("Bearer", headers["WWW-Authenticate"])
        self.assertEqual(self.call("/healthz")[0], 200)

    def test_health_and_readiness(self):
        self.start()
        self.assertEqual(self.call("/healthz")[:3:2], (200, "ok\n"))
        self.assertEqual(self.call("/readyz")[:3:2], (200, "ready\n"))
        self.assertEqual(self.call("/nope")[0], 404)

    def test_metrics_move_with_traffic(self):
        origin = self.start_origin()
        p = self.start({"forward": {"connect_ports": ["1-65535"]}})
        before = self.metrics()
        for _ in range(3):
            r = curl(["-x", p.proxy_url, "-s", "-o", "/dev/null", origin.url + "/bytes/1000"])
            self.assertEqual(r.returncode, 0, r.stderr)
        r = curl(["-x", p.proxy_url, "-s", "-o", "/dev/null", "-p", origin.url + "/bytes/500"])  # CONNECT tunnel
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + 5
        while True:
            after = self.metrics()
            got = self.value(after, "portier_requests_total", listener="test", decision="forward", code="200")
            # The tunnel's end reaches portier just after curl is done with it.
            done = (got >= 3 and self.value(after, "portier_tunnels_total") >= 1
                    and self.value(after, "portier_tunnels_active") == 0)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(self.value(before, "portier_requests_total", listener="test", decision="forward", code="200"), 0)
        self.assertEqual(got, 3)
        self.assertEqual(self.value(after, "portier_tunnels_total"), 1)
        self.assertEqual(self.value(after, "portier_tunnels_active"), 0)
        self.assertGreaterEqual(self.value(after, "portier_bytes_total", direction="down"), 3500)
        self.assertGreaterEqual(self.value(after, "portier_connections_total"), 4)
        # The first GET and the tunnel open new connections; the other GETs may reuse a pooled one.
        count = self.value(after, "portier_upstream_connect_seconds_count")
        self.assertGreaterEqual(count, 2)
        self.assertLessEqual(count, 4)
        self.assertEqual(self.value(after, "portier_upstream_connect_seconds_bucket", le="+Inf"), count)

    def test_rule_hits_and_denials(self):
        origin = self.start_origin()
        p = self.start({"rules": [{"id": "no-blocked", "when": {"url": "/blocked"}, "action": "deny"}]})
        for path in ("/blocked", "/blocked", "/fine"):
            curl(["-x", p.proxy_url, "-s", "-o", "/dev/null", origin.url + path])
        deadline = time.monotonic() + 5
        while self.value(self.metrics(), "portier_rule_hits_total", rule="no-blocked") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        m = self.metrics()
        self.assertEqual(self.value(m, "portier_rule_hits_total", rule="no-blocked"), 2)
        self.assertEqual(self.value(m, "portier_requests_total", listener="test", decision="deny", code="403"), 2)

    def test_config_is_redacted(self):
        self.start({"egress": {"regions": {"fi": {"exits": ["http://bob:hunter2-secret@127.0.0.1:3999"]}}}})
        status, headers, body = self.call("/config")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertNotIn(TOKEN, body)
        self.assertNotIn("hunter2-secret", body)
        doc = json.loads(body)
        self.assertEqual(doc["admin"]["token"], "<redacted>")
        self.assertEqual(doc["egress"]["regions"]["fi"]["exits"][0], "http://bob:<redacted>@127.0.0.1:3999")
        self.assertEqual(doc["listeners"][0]["name"], "test")

    def test_reload_endpoint_and_counters(self):
        p = self.start()
        self.assertEqual(self.call("/reload")[0], 405)
        status, _, body = self.call("/reload", method="POST")
        self.assertEqual((status, body), (200, "reloaded\n"), p.diag())
        with open(p.config_path) as f:
            cfg = json.load(f)
        cfg["timeouts"] = {"connect_ms": 0}
        with open(p.config_path, "w") as f:
            json.dump(cfg, f)
        status, _, body = self.call("/reload", method="POST")
        self.assertEqual(status, 422, body)
        self.assertIn("/timeouts/connect_ms", body)
        m = self.metrics()
        self.assertEqual(self.value(m, "portier_reloads_total", result="ok"), 1)
        self.assertEqual(self.value(m, "portier_reloads_total", result="failed"), 1)
        self.assertEqual(self.call("/healthz")[0], 200, "a failed reload keeps the proxy running")

    def test_admin_is_not_served_on_the_proxy_listener(self):
        p = self.start()
        r = curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", p.proxy_url + "/metrics"])
        self.assertEqual(r.stdout.strip(), b"400")


class AdminWithoutToken(AdminBase):
    token = None

    def test_open_without_a_token(self):
        self.start()
        self.assertEqual(self.call("/metrics")[0], 200)

    def test_health_gauges_of_backends(self):
        self.start({"listeners": [{"name": "test", "listen": ["127.0.0.1:0"]},
                                  {"name": "site", "listen": ["127.0.0.1:0"], "mode": "reverse"}],
                    "reverse": {"routes": [{"pool": "p"}], "pools": {"p": {"backends": ["127.0.0.1:1"]}}}})
        m = self.metrics()
        self.assertEqual(self.value(m, "portier_backend_healthy", pool="p", backend="127.0.0.1:1"), 1)
        url = "http://%s:%d/" % self.portier.listeners[1][1:]
        r = curl(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
        self.assertEqual(r.stdout.strip(), b"502")
        m = self.metrics()
        self.assertEqual(self.value(m, "portier_backend_healthy", pool="p", backend="127.0.0.1:1"), 0,
                         "a failed connect marks the backend down")
        self.assertEqual(self.value(m, "portier_backend_selections_total", pool="p", backend="127.0.0.1:1"), 1)


class AdminConfig(unittest.TestCase):
    def test_check_refuses_a_short_token_without_echoing_it(self):
        import os
        import subprocess
        import tempfile
        from tests.support.portier_proc import portier_bin
        d = tempfile.mkdtemp()
        path = os.path.join(d, "p.json")
        with open(path, "w") as f:
            json.dump({"listeners": [{"listen": ["127.0.0.1:0"]}], "admin": {"token": "short-secret"}}, f)
        p = subprocess.run([portier_bin(), "--check", path], capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"/admin/token: expected a token of 16 to 256", p.stderr)
        self.assertNotIn(b"short-secret", p.stderr)

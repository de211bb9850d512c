"""Reverse mode, backend choice (the contract is /work/notes/reverse_spec.md): the balancing methods,
active health checks, passive marks and the retry on connect failure, timeouts, and pools changed by
SIGHUP under load. Fixtures are in test_reverse.ReverseBase."""
import collections
import copy
import re
import threading
import time
import unittest

from tests.integration.test_reverse import ReverseBase, pool, req_bytes
from tests.support.clients import HttpConn
from tests.support.origins import header_values, header_tokens


def wait_until(cond, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)


class LbBase(ReverseBase):
    def spread(self, n, conn=None, path="/lb", headers=(), host="app.test"):
        """n GETs (on one keep-alive connection unless conn is given); Counter of X-Backend."""
        c = conn or self.conn()
        got = collections.Counter()
        for i in range(n):
            c.send(req_bytes("GET", "%s/%d" % (path, i), host, headers))
            r = c.read_response()
            self.assertStatus(r, 200, "request %d of %d to %s" % (i + 1, n, path))
            got[r.header("X-Backend")] += 1
        return got

    def backend_for(self, path="/x", headers=(), conn=None, source=None):
        r = self.request(path, headers=headers, conn=conn, source=source)
        self.assertStatus(r, 200, "%s %r from %s" % (path, headers, source))
        return r.header("X-Backend")

    def health_line(self, b, pool_name, what):
        """The stderr line for a health transition ("down" with a reason, or "up")."""
        if what == "down":
            return re.compile(r"^portier: warning: backend %s \(pool %s\) down: \S" % (re.escape(b.address),
                                                                               re.escape(pool_name)), re.M)
        return re.compile(r"^portier: info: backend %s \(pool %s\) up\s*$" % (re.escape(b.address), re.escape(pool_name)),
                          re.M)

    def wait_health_line(self, b, pool_name, what, count=1, timeout=3.0):
        pat = self.health_line(b, pool_name, what)
        ok = wait_until(lambda: len(pat.findall(self.portier.stderr_text())) >= count, timeout)
        self.assertTrue(ok, "no stderr line matching %r within %.1fs%s" % (pat.pattern, timeout, self.diag()))

    def wait_health_hits(self, *backends, n=3, timeout=5.0):
        ok = wait_until(lambda: all(b.counts()[1] >= n for b in backends), timeout)
        self.assertTrue(ok, "health checks did not reach every backend %d times within %.0fs: %r%s" % (
            n, timeout, {b.name: b.counts()[1] for b in backends}, self.diag()))


# ---------------------------------------------------------------------------------------------
# balancing

class Balancing(LbBase):
    N = 200

    def test_round_robin_even(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(a, b, balance="round_robin")})
        got = self.spread(self.N)
        for name in ("a", "b"):
            self.assertTrue(90 <= got[name] <= 110, "round_robin over 2 backends, %d requests: %r (want 100 +-10 "
                            "each)" % (self.N, dict(got)))
        # the default balance is round robin as well
        cfg = copy.deepcopy(self.portier.config)
        cfg["reverse"]["pools"]["p"] = pool(a, b)
        self.reload_with(cfg)
        got = self.spread(100, conn=self.conn())
        self.assertTrue(40 <= got["a"] <= 60, "default balance (round_robin): %r" % dict(got))

    def test_weighted_90_10(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool({"address": a.address, "weight": 9},
                                                       {"address": b.address, "weight": 1}, balance="weighted")})
        got = self.spread(self.N)
        share = got["b"] / float(self.N)
        self.assertTrue(0.05 <= share <= 0.15, "weighted 9:1 over %d requests: %r (b's share %.1f%%, want "
                        "10%% +-5)" % (self.N, dict(got), share * 100))
        self.assertEqual(got["a"] + got["b"], self.N, dict(got))

    def test_least_conn_prefers_idle_backend(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(a, b, balance="least_conn")})
        # one long request keeps one backend busy; every other request goes to the idle one
        slow = {}

        def run_slow():
            try:
                c = HttpConn(self.portier.host, self.portier.port, timeout=10)
                try:
                    c.send(req_bytes("GET", "/slow?ms=2000", "app.test"))
                    slow["r"] = c.read_response()
                finally:
                    c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                slow["error"] = e

        t = threading.Thread(target=run_slow, daemon=True)
        t.start()
        self.assertTrue(wait_until(lambda: a.active + b.active == 1, 3.0),
                        "the slow request did not reach a backend%s" % self.diag())
        busy, idle = (a, b) if a.active else (b, a)
        c = self.conn()
        got = collections.Counter()
        t0 = time.monotonic()
        for i in range(20):
            got[self.backend_for("/fast/%d" % i, conn=c)] += 1
        self.assertLess(time.monotonic() - t0, 1.8, "the fast requests must finish while the slow one runs")
        self.assertEqual(got[busy.name], 0, "least_conn sent requests to %s which had 1 request in flight "
                         "while %s had none: %r" % (busy.name, idle.name, dict(got)))
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertNotIn("error", slow, slow)
        self.assertStatus(slow["r"], 200, "the slow request")
        self.assertEqual(slow["r"].header("X-Backend"), busy.name)

        # many concurrent clients, one backend slowed for every request: most requests go to the other
        s, f = self.backend("slowed", delay_ms=300), self.backend("fast")
        self.reload_with(dict(self.portier.config, reverse={"routes": [{"pool": "q"}],
                                                            "pools": {"q": pool(s, f, balance="least_conn")}}))
        counts = collections.Counter()
        errors = []
        lock = threading.Lock()

        def worker(n):
            try:
                c = HttpConn(self.portier.host, self.portier.port, timeout=10)
                try:
                    for i in range(10):
                        c.send(req_bytes("GET", "/conc/%d/%d" % (n, i), "app.test"))
                        r = c.read_response()
                        with lock:
                            counts[(r.status, r.header("X-Backend"))] += 1
                finally:
                    c.close()
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append("worker %d: %s: %s" % (n, type(e).__name__, e))

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(20)
        self.assertEqual(errors, [])
        total = sum(counts.values())
        self.assertEqual(total, 60, dict(counts))
        self.assertEqual(sum(v for (st, _), v in counts.items() if st != 200), 0, dict(counts))
        self.assertLess(counts[(200, "slowed")], 15, "least_conn with one backend taking 300 ms per request: "
                        "%r (round robin would give 30/30)" % dict(counts))

    def test_hash_header_sticky_and_consistent_on_reload(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "h"}], {"h": pool(a, b, balance="hash_header", hash_header="X-User")})
        users = ["user-%d@example.test" % i for i in range(100)]
        c = self.conn()
        first = {u: self.backend_for("/u", ["X-User: " + u], conn=c) for u in users}
        c2 = self.conn()
        again = {u: self.backend_for("/u2", ["x-user: " + u], conn=c2) for u in reversed(users)}
        changed = [u for u in users if first[u] != again[u]]
        self.assertEqual(changed, [], "the same X-User must always reach the same backend")
        per = collections.Counter(first.values())
        self.assertTrue(per["a"] >= 20 and per["b"] >= 20, "100 users over 2 backends: %r" % dict(per))

        cfg = copy.deepcopy(self.portier.config)
        c3b = self.backend("c")
        cfg["reverse"]["pools"]["h"]["backends"].append(c3b.address)
        self.reload_with(cfg)
        c3 = self.conn()
        after = {u: self.backend_for("/u3", ["X-User: " + u], conn=c3) for u in users}
        moved = {u: (first[u], after[u]) for u in users if first[u] != after[u]}
        between_old = {u: m for u, m in moved.items() if m[1] != "c"}
        self.assertEqual(between_old, {}, "adding backend c moved keys between the old backends a and b")
        self.assertTrue(15 <= len(moved) <= 50, "adding a third backend should move about 1/3 of 100 keys, "
                        "moved %d: %r" % (len(moved), collections.Counter(after.values())))

    def test_hash_client_by_source_address(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "c"}], {"c": pool(a, b, balance="hash_client")})
        sources = ["127.0.0.%d" % i for i in range(10, 50)]
        chosen = {}
        for src in sources:
            seen = {self.backend_for("/client/%d" % k, source=src) for k in range(3)}
            self.assertEqual(len(seen), 1, "client %s on 3 connections reached %r" % (src, seen))
            chosen[src] = seen.pop()
        per = collections.Counter(chosen.values())
        self.assertTrue(per["a"] >= 5 and per["b"] >= 5, "40 client addresses over 2 backends: %r" % dict(per))


# ---------------------------------------------------------------------------------------------
# health checks, passive marks, retry

class Health(LbBase):
    HEALTH = {"path": "/healthz", "interval_ms": 200, "timeout_ms": 500, "rise": 2, "fall": 2}

    def test_active_health_down_and_up(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(a, b, health=dict(self.HEALTH))})
        self.wait_health_hits(a, b)
        head = a.health_heads[-1]
        self.assertEqual((head["method"], head["path"]), ("GET", "/healthz"), head)
        self.assertEqual(header_values(head["headers"], "host"), [a.address], "default health Host: %r" % head)
        self.assertIn("close", header_tokens(head["headers"], "connection"), head)
        got = self.spread(10)
        self.assertTrue(got["a"] and got["b"], "both healthy backends serve: %r" % dict(got))

        t0 = time.monotonic()
        a.healthy = False
        self.wait_health_line(a, "p", "down", timeout=3.0)
        self.assertLess(time.monotonic() - t0, 2.5, "fall 2 at interval 200 ms")
        got = self.spread(20)
        self.assertEqual(dict(got), {"b": 20}, "a backend marked down by health checks is out of rotation")
        self.assertEqual(self.health_line(a, "p", "up").findall(self.portier.stderr_text()), [],
                         "no 'up' line while a answers 503")

        a.healthy = True
        self.wait_health_line(a, "p", "up", timeout=3.0)
        got = self.spread(20)
        self.assertGreaterEqual(got["a"], 5, "a is back in rotation after rise 2: %r" % dict(got))
        self.assertEqual(len(self.health_line(b, "p", "down").findall(self.portier.stderr_text())), 0,
                         "b never went down")

    def test_all_backends_down_by_health_is_503(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(a, b, health=dict(self.HEALTH, host="health.test"))})
        self.wait_health_hits(a, b)
        self.assertEqual(header_values(a.health_heads[-1]["headers"], "host"), ["health.test"],
                         "health.host sets the Host of checks")
        a.healthy = b.healthy = False
        self.wait_health_line(a, "p", "down")
        self.wait_health_line(b, "p", "down")
        r = self.request("/none-healthy")
        self.assertStatus(r, 503, "every backend of the pool is down")
        self.assertUntouched(a, b, msg="no backend is healthy")
        b.healthy = True
        self.wait_health_line(b, "p", "up")
        self.assertEqual(self.backend_for("/one-back"), "b")

    def test_health_state_survives_reload(self):
        a, b = self.backend("a"), self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(a, b, health=dict(self.HEALTH))})
        self.wait_health_hits(a, b)
        a.healthy = False
        self.wait_health_line(a, "p", "down")
        # a reload that keeps pool p (same backends) and adds a route: a stays down at once
        cfg = dict(self.portier.config)
        cfg["reverse"] = dict(cfg["reverse"], routes=[{"host": "new.test", "pool": "p"}, {"pool": "p"}])
        self.reload_with(cfg)
        got = self.spread(20, path="/after-reload")
        self.assertEqual(dict(got), {"b": 20}, "backend a was down before the reload and still answers 503: "
                         "its health (pool p + address) must survive the reload")
        self.assertEqual(len(self.health_line(a, "p", "up").findall(self.portier.stderr_text())), 0,
                         "a never came back up")

    def test_dead_backend_skipped_post_retried_and_mark_expires(self):
        dead = self.dead_port()
        live = self.backend("live")
        self.start_reverse([{"pool": "p"}], {"p": pool({"address": dead.address, "weight": 1000},
                                                       {"address": live.address, "weight": 1}, balance="weighted",
                                                       passive={"fail_after": 1, "down_ms": 3000})})
        body = bytes(range(256)) * 256
        t0 = time.monotonic()
        r = self.request("/upload", method="POST", body=body)
        self.assertStatus(r, 200, "POST whose first pick (weight 1000) is a dead port: retried on another backend")
        self.assertEqual(r.header("X-Backend"), "live")
        self.assertEqual(r.json()["body_length"], len(body), "the whole body reached the live backend")
        got = self.spread(10)
        self.assertEqual(dict(got), {"live": 10}, "GETs with one backend dead")
        # bring something up on the dead port: while the passive mark lasts (3 s) it gets nothing
        dead.release()
        revived = self.backend("revived", port=dead.port)
        got = self.spread(5, path="/after-revive")
        if time.monotonic() - t0 < 2.8:
            self.assertEqual(dict(got), {"live": 5}, "a passively marked backend is skipped for down_ms")
            self.assertUntouched(revived, msg="within down_ms")
        # after down_ms the backend is tried again
        time.sleep(max(0.0, t0 + 3.2 - time.monotonic()))
        c = self.conn()
        ok = wait_until(lambda: self.backend_for("/poll", conn=c) == "revived", 4.0, step=0.05)
        self.assertTrue(ok, "the revived backend (weight 1000) was not used again after down_ms%s" % self.diag())

    def test_all_backends_dead_is_502(self):
        d1, d2 = self.dead_port(), self.dead_port()
        self.start_reverse([{"pool": "p"}], {"p": pool(d1, d2)})
        r = self.request("/all-dead")
        self.assertStatus(r, 502, "connect fails on both backends (first try and the retry)")
        rec = self.wait_record(lambda x: x["status"] == 502)
        self.assertIn(rec.get("backend"), (d1.address, d2.address), rec)
        r = self.request("/all-dead-again")
        self.assertIn(r.status, (502, 503), "both backends are dead or passively marked: %r" % r)

    def test_response_timeout_is_504(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p", "response_timeout_ms": 500}], {"p": pool(b)})
        t0 = time.monotonic()
        r = self.request("/slow?ms=3000")
        took = time.monotonic() - t0
        self.assertStatus(r, 504, "backend answers after 3 s, response_timeout_ms 500")
        self.assertLess(took, 2.5, "504 after %.2fs" % took)


# ---------------------------------------------------------------------------------------------
# reload

class ReloadPools(LbBase):
    THREADS = 2
    PER_THREAD = 300

    def test_pool_change_under_load(self):
        old, new = self.backend("old"), self.backend("new")
        self.start_reverse([{"name": "all", "pool": "p"}], {"p": pool(old)})
        base = copy.deepcopy(self.portier.config)
        lock = threading.Lock()
        failures = []
        done = [0]
        seen = collections.Counter()

        def worker(n):
            c = None
            for i in range(self.PER_THREAD):
                path = "/load/%d/%d" % (n, i)
                try:
                    if c is None:
                        c = HttpConn(self.portier.host, self.portier.port, timeout=10)
                    c.send(req_bytes("GET", path, "app.test"))
                    r = c.read_response()
                    name = r.header("X-Backend")
                    if r.status != 200 or name not in ("old", "new") or r.json()["path"] != path:
                        with lock:
                            failures.append("%s: %d %s %r" % (path, r.status, name, r.body[:200]))
                        c.close()
                        c = None
                    else:
                        with lock:
                            seen[name] += 1
                except Exception as e:  # noqa: BLE001 - every failure counts
                    with lock:
                        failures.append("%s: %s: %s" % (path, type(e).__name__, e))
                    if c is not None:
                        c.close()
                    c = None
                with lock:
                    done[0] += 1
                time.sleep(0.002)
            if c is not None:
                c.close()

        threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(self.THREADS)]
        for t in threads:
            t.start()
        try:
            self.assertTrue(wait_until(lambda: done[0] >= 100, 15), "load did not start")
            cfg = copy.deepcopy(base)
            cfg["reverse"]["pools"]["p"] = pool(old, new)
            self.reload_with(cfg)
            at = done[0]
            wait_until(lambda: done[0] >= at + 100, 15)
            cfg = copy.deepcopy(base)
            cfg["reverse"]["pools"]["p"] = pool(new)
            self.reload_with(cfg)
            at_second = done[0]
        finally:
            for t in threads:
                t.join(30)
        self.assertFalse([t for t in threads if t.is_alive()], "load threads did not finish")
        self.assertEqual(failures, [], "failed requests while the pool was reloaded (%d done, second reload "
                         "at %d)%s" % (done[0], at_second, self.diag()))
        self.assertEqual(sum(seen.values()), self.THREADS * self.PER_THREAD, dict(seen))
        self.assertGreater(seen["new"], 0, "the added backend got no requests under load: %r" % dict(seen))
        c = self.conn()
        got = self.spread(10, conn=c, path="/after")
        self.assertEqual(dict(got), {"new": 10}, "after the second reload only the new backend serves")


if __name__ == "__main__":
    unittest.main()

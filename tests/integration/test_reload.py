"""SIGHUP reload: good configs apply to new requests, broken ones keep the running config, tunnels
and load survive reloads."""
import json
import os
import random
import signal
import threading
import time
import unittest

from tests.integration.helpers import ProxyTestCase, random_bytes
from tests.support.clients import HttpConn, open_tunnel
from tests.support.portier_proc import base_config, deep_merge
from tests.support.policy_files import (basic_token, hash_password, request_bytes, write_htpasswd,
                                        write_json_atomic, write_text)

RELOADED = "portier: info: reloaded "
FAILED = "portier: error: reload failed"


class ReloadBase(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.files = self.make_tmpdir()

    def full_config(self, overrides):
        return deep_merge(base_config(self.portier.log_path), overrides)

    def count(self, marker):
        return self.portier.stderr_text().count(marker)

    def wait_count(self, marker, at_least, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(marker) >= at_least:
                return True
            time.sleep(0.01)
        return False

    def reload(self, overrides):
        """Write a good config and SIGHUP; returns once portier says it reloaded."""
        before = self.count(RELOADED)
        failed_before = self.count(FAILED)
        write_json_atomic(self.portier.config_path, self.full_config(overrides))
        self.portier.signal(signal.SIGHUP)
        ok = self.wait_count(RELOADED, before + 1)
        self.assertTrue(ok, "no %r within 5 s (reload failed: %s)%s" % (
            RELOADED, self.count(FAILED) > failed_before, self.diag()))

    def reload_broken(self, text):
        """Write a broken config file and SIGHUP; returns once portier says the reload failed."""
        before = self.count(FAILED)
        tmp = self.portier.config_path + ".tmp"
        write_text(tmp, text)
        os.replace(tmp, self.portier.config_path)
        self.portier.signal(signal.SIGHUP)
        ok = self.wait_count(FAILED, before + 1)
        self.assertTrue(ok, "no %r within 5 s after a broken config%s" % (FAILED, self.diag()))

    def get(self, path, conn=None, headers=()):
        c = conn or self.connect()
        c.send(request_bytes("GET", self.origin.url + path, list(headers)))
        return c.read_response()

    def poll_status(self, path, status, timeout=5.0, headers=()):
        """New connections until `path` answers `status` (new requests must see a reload at once;
        the deadline only covers handing the snapshot to the worker threads)."""
        deadline = time.monotonic() + timeout
        while True:
            r = self.get(path, headers=headers)
            if r.status == status or time.monotonic() >= deadline:
                return r
            time.sleep(0.02)


def deny_url(rule_id, path):
    return {"id": rule_id, "when": {"url": "^http://[^/]+%s" % path}, "action": "deny"}


class Reload(ReloadBase):
    def test_good_reload_applies_new_deny_rule(self):
        self.start_portier()
        self.assertStatus(self.get("/denied/x"), 200)
        self.reload({"rules": [deny_url("new-rule", "/denied/")]})
        r = self.poll_status("/denied/x", 403)
        self.assertStatus(r, 403, "the new rule must apply to new requests")
        self.assertIn(b"rule: new-rule", r.body)
        self.assertStatus(self.get("/allowed/x"), 200)
        # and back: removing the rule allows again
        self.reload({})
        self.assertStatus(self.poll_status("/denied/x", 200), 200)
        self.assertTrue(self.portier.alive())

    def test_keepalive_connection_sees_new_rules_after_reload(self):
        # README, Reload: "new requests use it at once, while requests and tunnels already running
        # finish under the snapshot they started with". A new request on an old keep-alive
        # connection is a new request.
        self.start_portier()
        c = self.connect()
        self.assertStatus(self.get("/ka/first", conn=c), 200)
        self.reload({"rules": [deny_url("ka-rule", "/ka/denied")]})
        self.assertStatus(self.poll_status("/ka/denied", 403), 403)  # new connections see it
        r = self.get("/ka/denied", conn=c)
        self.assertStatus(r, 403, "a request sent after the reload on a keep-alive connection opened "
                          "before it was decided under the old rules")

    def test_broken_reloads_keep_old_rules(self):
        self.start_portier({"rules": [deny_url("old-rule", "/old/")]})
        self.assertStatus(self.get("/old/x"), 403)
        good = self.full_config({"rules": [deny_url("old-rule", "/old/")]})
        missing = dict(good, lists={"gone": {"file": os.path.join(self.files, "missing.txt")}},
                       rules=[{"id": "l", "when": {"list": "gone"}, "action": "deny"}])
        bad_regex_list = write_text(os.path.join(self.files, "bad-re.txt"), "ok\\.example\n(unclosed\n")
        broken = {
            "invalid JSON": json.dumps(good)[:-5] + ",,}",
            "empty file": "",
            "bad RE2 in a rule": json.dumps(dict(good, rules=[
                {"id": "bad", "when": {"host": "(ads|"}, "action": "deny"}])),
            "missing list file": json.dumps(missing),
            "bad line in a regex list": json.dumps(dict(good, lists={"re": {
                "file": bad_regex_list, "match": "regex"}}, rules=[
                {"id": "r", "when": {"list": "re"}, "action": "deny"}])),
            "unknown key": json.dumps(dict(good, rulez=[])),
            "missing users file": json.dumps(dict(good, auth={
                "users_file": os.path.join(self.files, "no-users")})),
        }
        for what, text in broken.items():
            with self.subTest(broken=what):
                self.reload_broken(text)
                self.assertTrue(self.portier.alive(), self.diag())
                self.assertStatus(self.get("/old/y"), 403, "old rule after a broken reload (%s)" % what)
                self.assertStatus(self.get("/fine/y"), 200)
        self.assertNotIn(RELOADED, self.portier.stderr_text())
        # a good config afterwards still reloads
        self.reload({})
        self.assertStatus(self.poll_status("/old/z", 200), 200)

    def test_tunnel_opened_before_reload_keeps_working(self):
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        c.send(b"before")
        self.assertEqual(c.read_available(6, timeout=5), b"before")
        # the new config no longer allows CONNECT to that port at all
        self.reload({"forward": {"connect_ports": [443]},
                     "rules": [{"id": "no-tunnels", "when": {"method": "CONNECT"}, "action": "deny"}]})
        deadline = time.monotonic() + 5
        while True:
            c2, r2 = self.tunnel("127.0.0.1", srv.port)
            if r2.status == 403 or time.monotonic() > deadline:
                break
            c2.close()
            time.sleep(0.05)
        self.assertStatus(r2, 403, "new tunnels follow the new config")
        for i in range(3):
            msg = b"after-%d" % i
            c.send(msg)
            self.assertEqual(c.read_available(len(msg), timeout=5), msg)
        c.shutdown_write()
        self.assertEqual(c.read_until_eof(5.0), b"")

    def test_reload_rereads_users_file(self):
        users = os.path.join(self.files, "users")
        write_htpasswd(users, {"alice": hash_password("old-pw", "sha512")})
        cfg = {"listeners": [{"name": "test", "listen": ["127.0.0.1:0"], "mode": "forward",
                              "auth": "required"}],
               "auth": {"users_file": users}}
        self.start_portier(cfg)
        old = ["Proxy-Authorization: Basic " + basic_token("alice", "old-pw")]
        new = ["Proxy-Authorization: Basic " + basic_token("alice", "new-pw")]
        c = self.connect()
        self.assertStatus(self.get("/u/1", conn=c, headers=old), 200)  # now cached
        write_htpasswd(users, {"alice": hash_password("new-pw", "sha512"),
                               "bob": hash_password("bob-pw", "sha256")})
        self.reload(cfg)
        self.assertStatus(self.poll_status("/u/2", 200, headers=new), 200)
        self.assertStatus(self.get("/u/3", headers=old), 407, "the old password is gone")
        self.assertStatus(self.get("/u/4", headers=[
            "Proxy-Authorization: Basic " + basic_token("bob", "bob-pw")]), 200)
        # The keep-alive connection that proved the old password before the reload must not keep
        # using that proof.
        self.assertStatus(self.get("/u/5", conn=c, headers=old), 407,
                          "a connection's remembered credentials must not outlive a users-file reload")
        self.assertStatus(self.get("/u/6", conn=c, headers=new), 200)

    def test_reload_rereads_list_file(self):
        lst = os.path.join(self.files, "list.txt")
        write_text(lst, "one.blocked.test\n")
        cfg = {"lists": {"l": {"file": lst}},
               "rules": [{"id": "listed", "when": {"list": "l"}, "action": "deny"}]}
        self.start_portier(cfg)
        c = self.connect()
        c.send(request_bytes("GET", "http://two.blocked.test/", []))
        self.assertNotEqual(c.read_response().status, 403)
        write_text(lst, "# now two\none.blocked.test\ntwo.blocked.test\n")
        self.reload(cfg)
        deadline = time.monotonic() + 5
        while True:
            c = self.connect()
            c.send(request_bytes("GET", "http://two.blocked.test/", []))
            r = c.read_response()
            if r.status == 403 or time.monotonic() > deadline:
                break
        self.assertStatus(r, 403)
        rec = self.wait_record(lambda x: x["rule"] == "listed" and x["target"] == "two.blocked.test:80")
        self.assertTrue(rec["entry"].endswith("list.txt:3"), rec)

    def test_restart_only_change_is_reported_and_rest_applied(self):
        self.start_portier()
        self.reload({"workers": 3, "rules": [deny_url("r", "/after-workers/")]})
        self.assertIn("need a restart", self.portier.stderr_text())
        self.assertStatus(self.poll_status("/after-workers/x", 403), 403)

    def test_reload_applies_new_auth_throttle_settings(self):
        users = os.path.join(self.files, "users")
        write_htpasswd(users, {"alice": hash_password("pw", "sha512")})
        cfg = {"listeners": [{"name": "test", "listen": ["127.0.0.1:0"], "mode": "forward",
                              "auth": "required"}],
               "auth": {"users_file": users, "max_failures": 100}, "workers": 1}
        self.start_portier(cfg)
        cfg["auth"] = {"users_file": users, "max_failures": 2, "block_ms": 5000}
        self.reload(cfg)
        c = self.connect()
        bad = ["Proxy-Authorization: Basic " + basic_token("alice", "wrong")]
        good = ["Proxy-Authorization: Basic " + basic_token("alice", "pw")]
        self.assertStatus(self.get("/t/1", conn=c, headers=bad), 407)
        self.assertStatus(self.get("/t/2", conn=c, headers=bad), 407)
        self.assertStatus(self.get("/t/3", conn=c, headers=good), 429,
                          "auth.max_failures 2 from the reloaded config")


class ReloadUnderLoad(ReloadBase):
    RELOADS = 20
    HTTP_THREADS = 4
    TUNNEL_THREADS = 2

    def gen_config(self, k, tcp_port):
        """Good config number k: denies /gen-k/ (even k) or the host genk.blocked.test via a list
        file (odd k)."""
        cfg = {"forward": {"connect_ports": [tcp_port]}}
        if k % 2 == 0:
            cfg["rules"] = [deny_url("gen-%d" % k, "/gen-%d/" % k)]
        else:
            lst = write_text(os.path.join(self.files, "gen-%d.txt" % k), "# gen %d\ngen%d.blocked.test\n"
                             % (k, k))
            cfg["lists"] = {"gen": {"file": lst}}
            cfg["rules"] = [{"id": "gen-%d" % k, "when": {"list": "gen"}, "action": "deny"}]
        return cfg

    def probe(self, k):
        c = HttpConn(self.portier.host, self.portier.port, timeout=5)
        try:
            if k % 2 == 0:
                c.send(request_bytes("GET", self.origin.url + "/gen-%d/probe" % k, []))
            else:
                c.send(request_bytes("GET", "http://gen%d.blocked.test/probe" % k, []))
            return c.read_response()
        finally:
            c.close()

    def test_twenty_reloads_under_load(self):
        tcp = self.start_tcp("echo")
        self.start_portier(self.gen_config(0, tcp.port))
        stop = threading.Event()
        lock = threading.Lock()
        failures = []
        stats = {"http": 0, "tunnels": 0, "tunnel_bytes": 0}

        def fail(what):
            with lock:
                if len(failures) < 50:
                    failures.append("%.3f %s" % (time.monotonic() - t_start, what))

        def http_worker(n):
            conn = None
            i = 0
            while not stop.is_set():
                i += 1
                path = "/load/w%d/%d" % (n, i)
                try:
                    if conn is None:
                        conn = HttpConn(self.portier.host, self.portier.port, timeout=10)
                    conn.send(request_bytes("GET", self.origin.url + path, []))
                    r = conn.read_response()
                    if r.status != 200 or r.json()["target"] != path:
                        fail("http %s: status %d %r" % (path, r.status, r.body[:200]))
                        conn.close()
                        conn = None
                    else:
                        with lock:
                            stats["http"] += 1
                    if conn is not None and i % 25 == 0:  # fresh connections pick up new snapshots
                        conn.close()
                        conn = None
                except Exception as e:  # noqa: BLE001 - every failure counts
                    fail("http %s: %s: %s" % (path, type(e).__name__, e))
                    if conn is not None:
                        conn.close()
                    conn = None
            if conn is not None:
                conn.close()

        def tunnel_worker(n):
            rnd = random.Random(n)
            j = 0
            while not stop.is_set():
                j += 1
                c = None
                try:
                    c, r = open_tunnel(self.portier.host, self.portier.port, "127.0.0.1", tcp.port,
                                       timeout=10)
                    if r.status != 200:
                        fail("tunnel %d/%d: status %d %r" % (n, j, r.status, r.body[:200]))
                        continue
                    total = 0
                    for m in range(3):
                        payload = random_bytes(rnd.randint(1, 65536), b"t%d-%d-%d" % (n, j, m))
                        c.send(payload)
                        back = c.read_available(len(payload), timeout=10)
                        if back != payload:
                            fail("tunnel %d/%d: echo mismatch" % (n, j))
                            break
                        total += len(payload)
                    else:
                        c.shutdown_write()
                        rest = c.read_until_eof(10)
                        if rest:
                            fail("tunnel %d/%d: %d extra bytes" % (n, j, len(rest)))
                        else:
                            with lock:
                                stats["tunnels"] += 1
                                stats["tunnel_bytes"] += total
                except Exception as e:  # noqa: BLE001
                    fail("tunnel %d/%d: %s: %s" % (n, j, type(e).__name__, e))
                finally:
                    if c is not None:
                        c.close()

        t_start = time.monotonic()
        threads = [threading.Thread(target=http_worker, args=(n,), daemon=True)
                   for n in range(self.HTTP_THREADS)]
        threads += [threading.Thread(target=tunnel_worker, args=(n,), daemon=True)
                    for n in range(self.TUNNEL_THREADS)]
        for t in threads:
            t.start()

        broken_kinds = [
            ("invalid JSON", lambda: '{"listeners": [,,]'),
            ("bad RE2", lambda: json.dumps(self.full_config(
                {"rules": [{"id": "x", "when": {"url": "(unclosed"}, "action": "deny"}]}))),
            ("missing list file", lambda: json.dumps(self.full_config(
                {"lists": {"m": {"file": os.path.join(self.files, "nope.txt")}},
                 "rules": [{"id": "x", "when": {"list": "m"}, "action": "deny"}]}))),
        ]
        reload_log = []
        current = 0       # the good config in force
        k = 0
        broken_i = 0
        try:
            for i in range(self.RELOADS):
                t0 = time.monotonic()
                if i % 4 == 3:
                    what, make = broken_kinds[broken_i % len(broken_kinds)]
                    broken_i += 1
                    self.reload_broken(make())
                    r = self.probe(current)
                    reload_log.append("%d broken (%s): probe gen-%d -> %d" % (i, what, current, r.status))
                    self.assertStatus(r, 403, "gen-%d must stay in force after a broken reload (%s)"
                                      % (current, what))
                else:
                    k += 1
                    self.reload(self.gen_config(k, tcp.port))
                    deadline = time.monotonic() + 2.0
                    while True:
                        r = self.probe(k)
                        if r.status == 403 or time.monotonic() > deadline:
                            break
                        time.sleep(0.01)
                    lag = time.monotonic() - t0
                    reload_log.append("%d good gen-%d: probe %d after %.3fs" % (i, k, r.status, lag))
                    self.assertStatus(r, 403, "gen-%d not in force within 2 s of the reload" % k)
                    if current % 2 == 0:  # the previous URL rule is gone
                        old = self.probe(current)
                        self.assertStatus(old, 200, "gen-%d still in force after gen-%d" % (current, k))
                    current = k
                time.sleep(max(0.0, 0.25 - (time.monotonic() - t0)))
                self.assertLess(time.monotonic() - t_start, 30, "reloads took too long")
            time.sleep(0.3)  # load keeps running a moment after the last reload
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        alive = [t.name for t in threads if t.is_alive()]
        summary = "stats %r; reloads:\n  %s" % (stats, "\n  ".join(reload_log))
        self.assertEqual(alive, [], "load threads did not stop; " + summary)
        self.assertEqual(failures, [], "failures under reload load; %s%s" % (summary, self.diag()))
        self.assertGreater(stats["http"], 100, summary)
        self.assertGreater(stats["tunnels"], 10, summary)
        self.assertTrue(self.portier.alive(), self.diag())
        self.assertEqual(self.count(RELOADED), 15, self.diag())
        self.assertEqual(self.count(FAILED) > 0, True)
        # No connection ended in a caught exception (the only other error lines are the failed reloads).
        errors = [l for l in self.portier.stderr_text().splitlines()
                  if l.startswith("portier: error:") and "reload failed" not in l]
        self.assertEqual(errors, [])
        self.assertEqual(self.origin.errors, [])
        self.assertEqual(tcp.errors, [])
        print(summary)


if __name__ == "__main__":
    unittest.main()

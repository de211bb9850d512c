"""Egress regions: exits through chains of http/socks5 parents (real portier processes, FakeParent,
microsocks), regions chosen by user name parameter, rule, user, group or default, sticky sessions,
passive health with failover and fallback regions, active probes, and --check of the /egress section."""
import json
import re
import os
import signal
import subprocess
import tempfile
import time
import unittest

from tests.integration.helpers import ProxyTestCase
from tests.support.clients import HttpConn
from tests.support.origins import free_port, header_values
from tests.support.parents import FakeParent, basic, microsocks_available, start_microsocks
from tests.support.policy_files import basic_token, hash_password, request_bytes, write_htpasswd, write_json_atomic
from tests.support.portier_proc import Portier, portier_bin

PASSWORDS = {"alice": "alice-Secret", "bob": "bob-Secret", "carol": "carol-Secret",
             "up": "up-Secret"}
GROUPS = {"staff": ["bob"], "finance": ["carol"]}
_hashes = {}


def users_hashes():
    if not _hashes:
        for u, pw in PASSWORDS.items():
            h = hash_password(pw, "sha512")
            if h is None:
                raise unittest.SkipTest("openssl passwd -6 does not work here")
            _hashes[u] = h
    return _hashes


def creds(user, password=None):
    """(user name as sent, password): user may carry parameters, the password is the base user's."""
    base = user.split("-", 1)[0]
    return (user, PASSWORDS[base] if password is None else password)


class EgressBase(ProxyTestCase):
    # -- processes ------------------------------------------------------------------------------
    def proxy(self, overrides=None, ports=(), auth=False, listen="127.0.0.1:0", front=False):
        """Another portier: connect_ports for `ports`, auth required (users file) if asked."""
        cfg = dict(overrides or {})
        if ports:
            cfg["forward"] = dict(cfg.get("forward", {}), connect_ports=list(ports))
        lst = {"name": "test", "listen": [listen], "mode": "forward"}
        if auth:
            lst["auth"] = "required"
            cfg["auth"] = {"realm": "egress", "users_file": self.users_file(), "groups": GROUPS}
        cfg["listeners"] = [lst]
        p = Portier(cfg)
        self.addCleanup(p.close)
        p.start()
        if front:
            self.portier = p   # diag() reports this one's stderr
        return p

    def users_file(self):
        if not getattr(self, "_users_file", None):
            d = self.make_tmpdir()
            self._users_file = write_htpasswd(os.path.join(d, "users.htpasswd"), users_hashes())
        return self._users_file

    def parent(self, **kw):
        fp = FakeParent(**kw)
        self.addCleanup(fp.stop)
        return fp

    @staticmethod
    def hop(p, userinfo=""):
        return "http://%s%s:%d" % (userinfo + "@" if userinfo else "", p.host, p.port)

    # -- clients --------------------------------------------------------------------------------
    def get(self, p, url, creds=None, headers=(), timeout=10.0):
        """One GET on a new connection (Connection: close)."""
        c = HttpConn(p.host, p.port, timeout=timeout)
        self.addCleanup(c.close)
        h = list(headers) + ["Connection: close"]
        if creds is not None:
            h.append("Proxy-Authorization: Basic %s" % basic_token(*creds))
        c.send(request_bytes("GET", url, h))
        return c.read_response()

    def tunnel(self, p, port, creds=None, host="127.0.0.1", timeout=10.0):
        c = HttpConn(p.host, p.port, timeout=timeout)
        self.addCleanup(c.close)
        auth = "Proxy-Authorization: Basic %s\r\n" % basic_token(*creds) if creds else ""
        c.send(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n%s\r\n" % (host, port, host, port, auth)).encode())
        return c, c.read_response("CONNECT")

    def assertEchoes(self, conn, payload=b"egress-tunnel-ping\n"):
        conn.send(payload)
        self.assertEqual(conn.read_available(len(payload), timeout=5.0), payload)

    def record(self, p, predicate, what="access log record", timeout=5.0):
        rec = p.wait_record(predicate, timeout)
        self.assertIsNotNone(rec, "no %s within %.0fs; log:\n%s%s" % (
            what, timeout, "\n".join(p.access_log_lines()[-10:]), p.diag()))
        return rec

    def assertRoute(self, rec, region, exit_name, chain):
        got = (rec.get("region"), rec.get("exit"), rec.get("chain"))
        self.assertEqual(got, (region, exit_name, chain), "region/exit/chain of %r" % rec)


# ---------------------------------------------------------------------------------------------
# 1. chains of real portier processes

class PortierChains(EgressBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.echo = self.start_tcp("echo")

    def test_three_portiers_each_with_its_region(self):
        ports = [self.echo.port, self.origin.port]
        c = self.proxy(ports=ports)
        b = self.proxy({"egress": {"default": "de", "regions": {"de": {"exits": [self.hop(c)]}}}}, ports=ports)
        a = self.proxy({"egress": {"default": "fi", "regions": {"fi": {"exits": [self.hop(b)]}}}}, ports=ports,
                       front=True)

        r = self.get(a, self.origin.url + "/echo/through-three")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/through-three")
        rec = self.record(a, lambda x: x["path"] == "/echo/through-three")
        self.assertEqual(rec["status"], 200)
        self.assertRoute(rec, "fi", "fi-1", "http://127.0.0.1:%d" % b.port)
        self.assertIsInstance(rec["connect_ms"], int)
        rec = self.record(b, lambda x: x["path"] == "/echo/through-three", "B's record")
        self.assertRoute(rec, "de", "de-1", "http://127.0.0.1:%d" % c.port)
        rec = self.record(c, lambda x: x["path"] == "/echo/through-three", "C's record")
        self.assertRoute(rec, "direct", "direct", "direct")
        self.assertEqual(rec["upstream"], self.origin.hostport)

        conn, resp = self.tunnel(a, self.echo.port)
        self.assertStatus(resp, 200)
        self.assertEchoes(conn)
        conn.close()
        target = "127.0.0.1:%d" % self.echo.port
        for p, route in ((a, ("fi", "fi-1", "http://127.0.0.1:%d" % b.port)),
                         (b, ("de", "de-1", "http://127.0.0.1:%d" % c.port)),
                         (c, ("direct", "direct", "direct"))):
            rec = self.record(p, lambda x: x["method"] == "CONNECT" and x["target"] == target, "CONNECT record")
            self.assertEqual(rec["status"], 200)
            self.assertRoute(rec, *route)

    def test_two_hop_chain_exit(self):
        c = self.proxy(ports=[self.echo.port, self.origin.port])
        b = self.proxy(ports=[c.port])   # B only ever opens a tunnel to C
        chain = [self.hop(b), self.hop(c)]
        a = self.proxy({"egress": {"default": "fi", "regions": {"fi": {"exits": [
            {"name": "fi-chain", "via": chain}]}}}}, ports=[self.echo.port], front=True)
        label = "http://127.0.0.1:%d,http://127.0.0.1:%d" % (b.port, c.port)

        r = self.get(a, self.origin.url + "/echo/two-hops")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/two-hops")
        self.assertRoute(self.record(a, lambda x: x["path"] == "/echo/two-hops"), "fi", "fi-chain", label)
        # C forwarded the absolute-form GET (through the tunnel B opened to it)
        self.record(c, lambda x: x["path"] == "/echo/two-hops" and x["method"] == "GET", "C's GET")

        conn, resp = self.tunnel(a, self.echo.port)
        self.assertStatus(resp, 200)
        self.assertEchoes(conn)
        conn.close()
        target = "127.0.0.1:%d" % self.echo.port
        self.assertRoute(self.record(a, lambda x: x["target"] == target), "fi", "fi-chain", label)
        self.record(c, lambda x: x["method"] == "CONNECT" and x["target"] == target, "C's CONNECT")
        # B only carried tunnels to C (logged when they end: the GET's stays pooled until A stops)
        a.stop()
        recs = b.access_log_records(2, timeout=5.0)
        self.assertEqual([(r["method"], r["target"], r["status"]) for r in recs],
                         [("CONNECT", "127.0.0.1:%d" % c.port, 200)] * 2, recs)


# ---------------------------------------------------------------------------------------------
# 2. a parent that wants credentials

class ParentAuth(EgressBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.echo = self.start_tcp("echo")

    def front_to(self, exit_url, ports=()):
        return self.proxy({"egress": {"default": "fi", "regions": {"fi": {"exits": [exit_url]}}}},
                          ports=list(ports) + [self.echo.port], auth=True, front=True)

    def test_portier_parent_with_auth(self):
        b = self.proxy(ports=[self.echo.port], auth=True)
        a = self.front_to(self.hop(b, "up:" + PASSWORDS["up"]))
        r = self.get(a, self.origin.url + "/echo/authed", creds=creds("alice"))
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "proxy-authorization", "the origin:")
        rec = self.record(b, lambda x: x["path"] == "/echo/authed", "B's record")
        self.assertEqual((rec["status"], rec["user"]), (200, "up"), rec)
        self.assertEqual(self.record(a, lambda x: x["path"] == "/echo/authed")["user"], "alice")

        conn, resp = self.tunnel(a, self.echo.port, creds=creds("alice"))
        self.assertStatus(resp, 200)
        self.assertEchoes(conn)
        conn.close()   # a tunnel is logged when it ends
        rec = self.record(b, lambda x: x["method"] == "CONNECT", "B's CONNECT")
        self.assertEqual((rec["status"], rec["user"]), (200, "up"), rec)

    def test_wrong_parent_password_is_502_naming_the_parent(self):
        b = self.proxy(ports=[self.echo.port], auth=True)
        a = self.front_to(self.hop(b, "up:not-the-password"))
        label = "http://127.0.0.1:%d" % b.port
        conn, resp = self.tunnel(a, self.echo.port, creds=creds("alice"))
        self.assertStatus(resp, 502)
        rec = self.record(a, lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["status"], 502)
        self.assertIn(label, rec["error"])
        self.assertIn("407", rec["error"])
        self.assertNotIn("not-the-password", json.dumps(rec))

    # Plain HTTP goes to an http parent in absolute form; when the parent refuses our credentials
    # its 407 must not reach the client as if the front proxy wanted credentials.
    def test_wrong_parent_password_plain_http_is_502(self):
        b = self.proxy(ports=[self.echo.port], auth=True)
        a = self.front_to(self.hop(b, "up:not-the-password"))
        label = "http://127.0.0.1:%d" % b.port
        r = self.get(a, self.origin.url + "/echo/wrong-parent-pw", creds=creds("alice"))
        self.assertStatus(r, 502, "plain HTTP through a parent that refuses our credentials")
        self.assertEqual(header_values(r.headers, "proxy-authenticate"), [],
                         "the parent's challenge must not reach the client")
        rec = self.record(a, lambda x: x["path"] == "/echo/wrong-parent-pw")
        self.assertEqual(rec["status"], 502)
        self.assertIn(label, rec["error"])
        self.assertEqual(self.origin.snapshot(), (0, 0))

    def test_refused_credentials_count_against_the_exit(self):
        # A parent refusing our credentials is the exit's fault, not the target's: the request is
        # retried on the other exit, and after fail_after refusals the exit is marked down.
        bad = self.parent(require_auth=("up", "right"))
        good = self.parent()
        a = self.proxy({"egress": {"default": "fi", "health": {"fail_after": 2, "down_ms": 30000},
                                   "regions": {"fi": {"exits": [
                                       {"name": "badpw", "via": "http://up:wrong@%s" % bad.hostport},
                                       {"name": "good", "via": good.url}]}}}},
                       ports=[self.echo.port], front=True)
        for i in range(6):
            conn, resp = self.tunnel(a, self.echo.port)
            self.assertStatus(resp, 200, "CONNECT %d" % i)
            self.assertEchoes(conn)
            conn.close()
        self.assertIn("exit badpw (http://127.0.0.1:%d) of region fi marked down" % bad.port, a.stderr_text())
        self.assertEqual([q["answered"] for q in bad.requests], [407, 407])
        self.assertEqual(len(good.connects()), 6)

    def test_parent_refusing_the_target_is_not_the_exits_fault(self):
        # A 403 to CONNECT is about the target: a 502 for the client, no retry, no mark.
        no = self.parent(status=403)
        good = self.parent()
        a = self.proxy({"egress": {"default": "fi", "health": {"fail_after": 1, "down_ms": 30000},
                                   "regions": {"fi": {"exits": [{"name": "no", "via": no.url},
                                                                {"name": "good", "via": good.url}]}}}},
                       ports=[self.echo.port], front=True)
        statuses = []
        for i in range(4):
            conn, resp = self.tunnel(a, self.echo.port)
            statuses.append(resp.status)
            conn.close()
        self.assertEqual(statuses, [502, 200, 502, 200], "round robin, no failover")
        self.assertNotIn("marked down", a.stderr_text())
        self.assertEqual(len(no.connects()), 2)

    def test_client_proxy_authorization_never_reaches_the_parent_auth_off(self):
        fp = self.parent()
        a = self.proxy({"egress": {"default": "fi", "regions": {"fi": {"exits": [fp.url]}}}},
                       ports=[self.echo.port], front=True)
        secret = basic_token("someone", "client-secret")
        r = self.get(a, self.origin.url + "/echo/no-leak", headers=["Proxy-Authorization: Basic " + secret])
        self.assertStatus(r, 200)
        c = HttpConn(a.host, a.port)
        self.addCleanup(c.close)
        c.send(("CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic %s\r\n\r\n"
                % (self.echo.port, secret)).encode())
        self.assertStatus(c.read_response("CONNECT"), 200)
        self.assertEchoes(c)
        self.assertEqual(fp.proxy_authorizations(), [None, None])
        self.assertNotIn(secret, fp.all_heads_text())
        self.assertNotIn(secret, json.dumps(r.json()))

    def test_fake_parent_sees_only_the_exit_credentials(self):
        fp = self.parent(require_auth=("up", "parent-pw"))
        a = self.front_to("http://up:parent-pw@%s" % fp.hostport)
        client_token = basic_token(*creds("alice"))
        r = self.get(a, self.origin.url + "/echo/fake-parent", creds=creds("alice"))
        self.assertStatus(r, 200)
        conn, resp = self.tunnel(a, self.echo.port, creds=creds("alice"))
        self.assertStatus(resp, 200)
        self.assertEchoes(conn)

        self.assertEqual([q["kind"] for q in fp.requests], ["forward", "connect"])
        self.assertEqual(fp.requests[0]["target"], self.origin.url + "/echo/fake-parent",
                         "plain HTTP goes to an http parent in absolute form")
        self.assertEqual(fp.proxy_authorizations(), [basic("up", "parent-pw")] * 2)
        heads = fp.all_heads_text()
        self.assertNotIn(client_token, heads, "the client's Proxy-Authorization reached the parent")
        self.assertNotIn(PASSWORDS["alice"], heads)
        self.assertNoHeader(r.json()["headers"], "proxy-authorization", "the origin:")


# ---------------------------------------------------------------------------------------------
# 3. SOCKS5 parents

@unittest.skipUnless(microsocks_available(), "microsocks not installed")
class Socks5Parent(EgressBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.echo = self.start_tcp("echo")

    def socks(self, **kw):
        m = start_microsocks(**kw)
        self.addCleanup(m.stop)
        return m

    def front_to(self, exit_url):
        return self.proxy({"egress": {"default": "eu", "regions": {"eu": {"exits": [exit_url]}}}},
                          ports=[self.echo.port], front=True)

    def check_both(self, a, label, tag):
        r = self.get(a, self.origin.url + "/echo/socks-" + tag)
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/socks-" + tag, "origin form through a SOCKS5 tunnel")
        self.assertRoute(self.record(a, lambda x: x["path"] == "/echo/socks-" + tag), "eu", "eu-1", label)
        conn, resp = self.tunnel(a, self.echo.port)
        self.assertStatus(resp, 200)
        self.assertEchoes(conn)
        conn.close()   # a tunnel is logged when it ends
        self.assertRoute(self.record(a, lambda x: x["method"] == "CONNECT"), "eu", "eu-1", label)

    def test_without_auth(self):
        m = self.socks()
        self.check_both(self.front_to(m.url), m.url, "open")

    def test_with_user_password(self):
        m = self.socks(user="sox", password="sox-pw")
        self.check_both(self.front_to("socks5://sox:sox-pw@%s" % m.hostport), m.url, "auth")

    def test_refused_credentials_fail_over(self):
        m = self.socks(user="sox", password="sox-pw")
        a = self.proxy({"egress": {"default": "eu", "health": {"fail_after": 1, "down_ms": 30000},
                                   "regions": {"eu": {"exits": [
                                       {"name": "wrongpw", "via": "socks5://sox:wrong@%s" % m.hostport},
                                       {"name": "nopw", "via": m.url},
                                       {"name": "ok", "via": "socks5://sox:sox-pw@%s" % m.hostport}]}}}},
                       ports=[self.echo.port], front=True)
        for i in range(4):
            path = "/echo/socks-failover-%d" % i
            self.assertStatus(self.get(a, self.origin.url + path), 200, path)
            self.assertEqual(self.record(a, lambda x: x["path"] == path)["exit"], "ok")
        err = a.stderr_text()
        self.assertIn("exit wrongpw", err)
        self.assertIn("exit nopw", err)

    def test_wrong_password_502(self):
        m = self.socks(user="sox", password="sox-pw")
        a = self.front_to("socks5://sox:wrong@%s" % m.hostport)
        r = self.get(a, self.origin.url + "/echo/socks-wrong")
        self.assertStatus(r, 502)
        conn, resp = self.tunnel(a, self.echo.port)
        self.assertStatus(resp, 502)
        rec = self.record(a, lambda x: x["path"] == "/echo/socks-wrong")
        self.assertIn(m.url, rec["error"])
        self.assertEqual(self.origin.snapshot(), (0, 0))
        # no credentials at all for a parent that wants them
        a2 = self.front_to(m.url)
        self.assertStatus(self.get(a2, self.origin.url + "/echo/socks-none"), 502)


# ---------------------------------------------------------------------------------------------
# 4. regions by user name parameter

class UsernameRegions(EgressBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.pf = self.parent()
        self.pd = self.parent()
        self.front = self.proxy({"egress": {
            "default": "direct",
            "regions": {"fi": {"exits": [self.pf.url]},
                        "de": {"exits": [self.pd.url]},
                        "se": {"exits": ["direct"], "users": ["carol"]}},
            "users": {"alice": "fi"},
            "username": {"users": ["alice", "carol"]},
        }}, auth=True, front=True)

    def fetch(self, user, tag, password=None):
        r = self.get(self.front, self.origin.url + "/echo/" + tag, creds=creds(user, password))
        return r, self.record(self.front, lambda x: x["path"] == "/echo/" + tag)

    def test_region_parameter_selects_the_exit(self):
        r, rec = self.fetch("alice-region-de", "u-de")
        self.assertStatus(r, 200)
        self.assertRoute(rec, "de", "de-1", self.pd.url)
        self.assertEqual(rec["user"], "alice", "the base name is the user")
        self.assertEqual([q["target"] for q in self.pd.requests], [self.origin.url + "/echo/u-de"])
        r, rec = self.fetch("alice-region-fi", "u-fi")
        self.assertStatus(r, 200)
        self.assertRoute(rec, "fi", "fi-1", self.pf.url)
        r, rec = self.fetch("alice", "u-plain")   # the user's default region
        self.assertStatus(r, 200)
        self.assertRoute(rec, "fi", "fi-1", self.pf.url)
        self.assertEqual(len(self.pf.requests), 2)
        r, rec = self.fetch("carol", "u-carol")   # the default
        self.assertStatus(r, 200)
        self.assertRoute(rec, "direct", "direct", "direct")
        r, rec = self.fetch("alice-region-direct", "u-direct")
        self.assertStatus(r, 200)
        self.assertRoute(rec, "direct", "direct", "direct")
        self.assertEqual(len(self.pd.requests) + len(self.pf.requests), 3)

    def test_unknown_and_forbidden_regions(self):
        r, rec = self.fetch("alice-region-xx", "u-xx")
        self.assertStatus(r, 400)
        self.assertEqual(rec["rule"], "egress_region")
        self.assertIn('"xx"', rec["error"])
        self.assertIn(b"xx", r.body)
        r, rec = self.fetch("alice-region-se", "u-se")
        self.assertStatus(r, 403)
        self.assertEqual(rec["rule"], "egress_region")
        r, rec = self.fetch("carol-region-se", "u-se-carol")
        self.assertStatus(r, 200)
        self.assertRoute(rec, "se", "se-1", "direct")
        # bob may authenticate, but not use parameters
        self.assertStatus(self.fetch("bob", "u-bob")[0], 200)
        r, rec = self.fetch("bob-region-fi", "u-bob-fi")
        self.assertStatus(r, 403)
        self.assertEqual(rec["rule"], "egress_params")
        self.assertEqual(self.pf.requests, [])
        self.assertEqual(len(self.origin.requests), 2)

    def test_malformed_user_name_400_before_auth(self):
        for user, pw in (("alice-region-fi-region-de", None), ("alice-region-fi-region-de", "wrong"),
                         ("alice-region-", None), ("alice--region-fi", "wrong")):
            with self.subTest(user=user, pw=pw):
                tag = "bad-%d" % len(self.front.access_log_lines())
                r, rec = self.fetch(user, tag, pw)
                self.assertStatus(r, 400)
                self.assertEqual(rec["rule"], "username", rec)
                self.assertEqual(header_values(r.headers, "proxy-authenticate"), [])
        self.assertEqual(self.origin.snapshot(), (0, 0))
        self.assertEqual(self.pf.requests + self.pd.requests, [])


# ---------------------------------------------------------------------------------------------
# 5. rules and default regions

class RulesAndDefaults(EgressBase):
    def test_rule_user_group_default_order(self):
        o1 = self.start_origin()
        o2 = self.start_origin()
        pf, pd, ps = self.parent(), self.parent(), self.parent()
        front = self.proxy({
            "egress": {"default": "direct",
                       "regions": {"fi": {"exits": [pf.url]}, "de": {"exits": [pd.url]},
                                   "se": {"exits": [ps.url]}},
                       "users": {"alice": "de"}, "groups": {"staff": "se"}},
            "rules": [{"id": "o2-via-fi", "when": {"port": o2.port}, "action": "egress", "egress": "fi"}],
        }, auth=True, front=True)
        cases = [("alice", o1, "de", pd), ("alice", o2, "fi", pf), ("bob", o1, "se", ps),
                 ("bob", o2, "fi", pf), ("carol", o1, "direct", None), ("carol", o2, "fi", pf)]
        for i, (user, origin, region, parent) in enumerate(cases):
            with self.subTest(user=user, origin=origin.port):
                before = len(parent.requests) if parent else 0
                path = "/echo/case-%d" % i
                r = self.get(front, origin.url + path, creds=creds(user))
                self.assertStatus(r, 200)
                rec = self.record(front, lambda x: x["path"] == path)
                self.assertEqual(rec["region"], region, rec)
                if parent is not None:
                    self.assertEqual(len(parent.requests), before + 1)
                    self.assertEqual(parent.requests[-1]["target"], origin.url + path)
                if origin is o2:
                    self.assertEqual(rec["rule"], "o2-via-fi")
        # a user name parameter beats the rule
        r = self.get(front, o2.url + "/echo/param", creds=creds("alice-region-de"))
        self.assertStatus(r, 200)
        self.assertEqual(self.record(front, lambda x: x["path"] == "/echo/param")["region"], "de")


# ---------------------------------------------------------------------------------------------
# 6. sticky sessions and round robin

class StickySessions(EgressBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.front = self.proxy({"egress": {"default": "st", "regions": {"st": {"exits": [
            {"name": "a", "via": "direct", "bind": "127.0.0.2"},
            {"name": "b", "via": "direct", "bind": "127.0.0.3"}]}}}}, auth=True, front=True)
        self.n = 0

    def source(self, user):
        self.n += 1
        path = "/echo/sticky-%d" % self.n
        r = self.get(self.front, self.origin.url + path, creds=creds(user))
        self.assertStatus(r, 200)
        rec = self.record(self.front, lambda x: x["path"] == path)
        addr = r.json()["peer_addr"]
        self.assertEqual({"a": "127.0.0.2", "b": "127.0.0.3"}[rec["exit"]], addr, rec)
        return rec["exit"]

    def test_session_keeps_its_exit(self):
        for sid in ("s1", "s2", "s3"):
            seen = [self.source("alice-session-%s" % sid) for _ in range(10)]
            self.assertEqual(len(set(seen)), 1, "session %s moved: %r" % (sid, seen))
        rec = self.record(self.front, lambda x: x["session"] == "s1")
        self.assertEqual(rec["user"], "alice")

    def test_sessions_spread_over_the_exits(self):
        exits = [self.source("alice-session-id%d" % i) for i in range(20)]
        self.assertEqual(set(exits), {"a", "b"}, exits)
        # and each of them stays put
        again = [self.source("alice-session-id%d" % i) for i in range(20)]
        self.assertEqual(exits, again)

    def test_round_robin_without_session(self):
        seen = [self.source("alice") for _ in range(8)]
        for x, y in zip(seen, seen[1:]):
            self.assertNotEqual(x, y, "round robin must alternate: %r" % seen)


# ---------------------------------------------------------------------------------------------
# 7. passive health: failover, strict sessions, fallback regions

class Failover(EgressBase):
    DOWN_MS = 1500

    def setUp(self):
        self.origin = self.start_origin()

    def health(self, **kw):
        return dict({"fail_after": 1, "down_ms": self.DOWN_MS}, **kw)

    def test_kill_a_parent_then_bring_it_back(self):
        p1 = self.proxy()
        p2 = self.proxy()
        port1 = p1.port
        front = self.proxy({"egress": {"default": "fi", "health": self.health(), "regions": {"fi": {"exits": [
            {"name": "one", "via": self.hop(p1)}, {"name": "two", "via": self.hop(p2)}]}}}}, front=True)
        for i in range(4):
            self.assertStatus(self.get(front, self.origin.url + "/echo/before-%d" % i), 200)
        self.assertEqual(len(p1.access_log_records(2)), 2)
        self.assertEqual(len(p2.access_log_records(2)), 2)

        p1.kill()   # our own child, by its PID
        killed_at = time.monotonic()
        for i in range(6):
            path = "/echo/during-%d" % i
            self.assertStatus(self.get(front, self.origin.url + path), 200, "with one parent dead")
            self.assertEqual(self.record(front, lambda x: x["path"] == path)["exit"], "two")
        self.assertIn("exit one (http://127.0.0.1:%d) of region fi marked down" % port1, front.stderr_text())
        self.assertEqual(len(p2.access_log_records(8)), 8)

        wait = self.DOWN_MS / 1000.0 - (time.monotonic() - killed_at) + 0.2
        p1b = self.proxy(listen="127.0.0.1:%d" % port1)
        if wait > 0:
            time.sleep(wait)
        for i in range(4):
            self.assertStatus(self.get(front, self.origin.url + "/echo/after-%d" % i), 200)
        back = p1b.access_log_records(1, timeout=3.0)
        self.assertGreaterEqual(len(back), 1, "traffic did not return to the restarted parent")
        recs = front.access_log_records(4, predicate=lambda x: x["path"].startswith("/echo/after"))
        self.assertEqual(len(recs), 4)
        self.assertEqual(sorted(r["exit"] for r in recs), ["one", "one", "two", "two"],
                         "round robin over both exits again")

    def test_strict_session_on_a_dead_exit_is_502(self):
        live = self.parent()
        dead = "http://127.0.0.1:%d" % free_port()
        front = self.proxy({"egress": {"default": "st", "health": self.health(), "regions": {"st": {
            "on_exit_down": "strict",
            "exits": [{"name": "dead", "via": dead}, {"name": "live", "via": live.url}]}}}},
            auth=True, front=True)
        outcome = {}
        for i in range(12):
            r = self.get(front, self.origin.url + "/echo/strict-%d" % i, creds=creds("alice-session-k%d" % i))
            outcome[i] = r.status
        on_dead = [i for i, s in outcome.items() if s == 502]
        on_live = [i for i, s in outcome.items() if s == 200]
        self.assertTrue(on_dead and on_live, "12 sessions should land on both exits: %r" % outcome)
        self.assertEqual(set(on_dead) | set(on_live), set(outcome), outcome)
        # the dead exit is marked now; its sessions stay on it (strict) and fail
        i = on_dead[0]
        r = self.get(front, self.origin.url + "/echo/strict-again", creds=creds("alice-session-k%d" % i))
        self.assertStatus(r, 502)
        rec = self.record(front, lambda x: x["path"] == "/echo/strict-again")
        self.assertIn("strict", rec["error"])
        self.assertIn("k%d" % i, rec["error"])
        j = on_live[0]
        self.assertStatus(self.get(front, self.origin.url + "/echo/strict-live",
                                   creds=creds("alice-session-k%d" % j)), 200)
        # the same session in a failover region would have moved: no session -> the live exit
        self.assertStatus(self.get(front, self.origin.url + "/echo/strict-nosession", creds=creds("alice")), 200)

    def test_fallback_region_and_no_exit(self):
        dead = "http://127.0.0.1:%d" % free_port()
        front = self.proxy({"egress": {"default": "fi", "health": self.health(), "regions": {
            "fi": {"exits": [dead], "fallback": ["de"]},
            "de": {"exits": ["direct"]},
            "nf": {"exits": [dead]}}}}, auth=True, front=True)
        for i in range(3):
            path = "/echo/fallback-%d" % i
            self.assertStatus(self.get(front, self.origin.url + path, creds=creds("alice")), 200)
            rec = self.record(front, lambda x: x["path"] == path)
            self.assertRoute(rec, "de", "de-1", "direct")
        self.assertIn("exit fi-1", front.stderr_text())

        r = self.get(front, self.origin.url + "/echo/nf-1", creds=creds("alice-region-nf"))
        self.assertStatus(r, 502)
        r = self.get(front, self.origin.url + "/echo/nf-2", creds=creds("alice-region-nf"))
        self.assertStatus(r, 502)
        rec = self.record(front, lambda x: x["path"] == "/echo/nf-2")
        self.assertIn("region nf", rec["error"])
        self.assertIn("no healthy exit", rec["error"])
        self.assertEqual(len(self.origin.requests), 3)


# ---------------------------------------------------------------------------------------------
# 8. active health: probes

class Probes(EgressBase):
    FAST = {"interval_ms": 100, "timeout_ms": 1000, "fall": 2, "rise": 2}

    def setUp(self):
        self.origin = self.start_origin()

    def wait_stderr(self, p, text, timeout=5.0, count=1):
        """Waits until `text` occurs `count` times in p's stderr; fails the test otherwise."""
        deadline = time.monotonic() + timeout
        while p.stderr_text().count(text) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertGreaterEqual(p.stderr_text().count(text), count,
                                "no %r (x%d) within %.1fs%s" % (text, count, timeout, p.diag()))

    def probe_lines(self, p):
        return [l for l in p.stderr_text().splitlines() if re.match(r"^portier: (info|warning): egress exit ", l)]

    def via(self, p, tag, n, creds=None, expect=200):
        """n GETs with paths /echo/<tag>-<i>; returns the exits their records name."""
        exits = []
        for i in range(n):
            path = "/echo/%s-%d" % (tag, i)
            self.assertStatus(self.get(p, self.origin.url + path, creds=creds), expect, path)
            exits.append(self.record(p, lambda x: x["path"] == path)["exit"])
        return exits

    def reload(self, p, egress):
        before = p.stderr_text().count("portier: info: reloaded ")
        cfg = dict(p.config, egress=egress)
        write_json_atomic(p.config_path, cfg)
        p.config = cfg
        p.signal(signal.SIGHUP)
        self.wait_stderr(p, "portier: info: reloaded ", count=before + 1)

    def test_dead_parent_is_marked_down_before_any_request_and_comes_back(self):
        p1 = self.proxy()
        p2 = self.proxy()
        port1 = p1.port
        front = self.proxy({"egress": {"default": "fi", "regions": {"fi": {
            "exits": [{"name": "one", "via": self.hop(p1)}, {"name": "two", "via": self.hop(p2)}],
            "probe": self.FAST}}}}, front=True)
        self.assertEqual(sorted(self.via(front, "before", 4)), ["one", "one", "two", "two"])
        self.assertEqual(self.probe_lines(front), [], "both parents are up")

        p1.kill()   # our own child, by its PID
        # No client request is made until the probe has seen it: the mark is the probe's alone.
        self.wait_stderr(front, "portier: warning: egress exit one (region fi) down: ")
        line = self.probe_lines(front)[0]
        self.assertIn("http://127.0.0.1:%d" % port1, line)
        self.assertEqual(len(self.probe_lines(front)), 1, "one line per transition")

        # Every request goes via the healthy exit, none fails, none even tries the dead one.
        self.assertEqual(self.via(front, "during", 6), ["two"] * 6)
        self.assertNotIn("marked down", front.stderr_text(), "passive health never saw a failure")
        self.assertEqual(len(self.probe_lines(front)), 1)

        p1b = self.proxy(listen="127.0.0.1:%d" % port1)
        self.wait_stderr(front, "portier: info: egress exit one (region fi) up")
        self.assertEqual(len(self.probe_lines(front)), 2, self.probe_lines(front))
        self.assertEqual(sorted(self.via(front, "after", 4)), ["one", "one", "two", "two"],
                         "round robin over both exits again")
        self.assertEqual(len(p1b.access_log_records(2, predicate=lambda x: x["path"].startswith("/echo/after"))), 2)
        self.assertNotIn("marked down", front.stderr_text())

    def test_parent_refusing_the_probe_target_is_down(self):
        closed = free_port()
        echo = self.start_tcp("echo")
        refusing = self.parent()   # up, but its CONNECT to the closed port fails: 502
        fine = self.parent()
        front = self.proxy({"egress": {"default": "fi", "regions": {
            "fi": {"exits": [{"name": "fi-a", "via": refusing.url}],
                   "probe": dict(self.FAST, target="127.0.0.1:%d" % closed)},
            "de": {"exits": [{"name": "de-a", "via": fine.url}],
                   "probe": dict(self.FAST, target="127.0.0.1:%d" % echo.port)}}}},
            auth=True, front=True)
        self.wait_stderr(front, "portier: warning: egress exit fi-a (region fi) down: ")
        line = self.probe_lines(front)[0]
        self.assertIn("127.0.0.1:%d" % closed, line)
        self.assertIn("502", line)
        target = "127.0.0.1:%d" % closed
        self.assertTrue(refusing.connects() and set(refusing.connects()) == {target}, refusing.connects())

        # the region has no healthy exit now; the probed exit of the other region is fine
        r = self.get(front, self.origin.url + "/echo/fi-down", creds=creds("alice-region-fi"))
        self.assertStatus(r, 502)
        self.assertIn("no healthy exit", self.record(front, lambda x: x["path"] == "/echo/fi-down")["error"])
        self.assertEqual(self.via(front, "de-up", 2, creds=creds("alice-region-de")), ["de-a"] * 2)
        self.assertGreaterEqual(fine.connects().count("127.0.0.1:%d" % echo.port), 2, "de's probes went through")
        self.assertEqual([l for l in self.probe_lines(front) if "de-a" in l], [])
        self.assertEqual([q for q in refusing.requests if q["kind"] != "connect"], [],
                         "only probes reached the refusing parent")

    def test_reload_starts_and_stops_probes(self):
        closed = "127.0.0.1:%d" % free_port()
        fp = self.parent()
        plain = {"default": "fi", "regions": {"fi": {"exits": [{"name": "fi-a", "via": fp.url}]}}}
        probed = {"default": "fi", "regions": {"fi": {"exits": [{"name": "fi-a", "via": fp.url}],
                                                      "probe": dict(self.FAST, target=closed)}}}
        front = self.proxy({"egress": plain}, front=True)
        time.sleep(0.3)
        self.assertEqual(fp.connects(), [], "no probe configured, none sent")

        self.reload(front, probed)   # a new probe starts
        self.wait_stderr(front, "portier: warning: egress exit fi-a (region fi) down: ")
        self.assertStatus(self.get(front, self.origin.url + "/echo/while-down"), 502)

        self.reload(front, plain)    # the probe goes, and with it its mark
        self.wait_stderr(front, "portier: info: egress exit fi-a (region fi) up (no longer checked)")
        self.assertEqual(self.via(front, "unprobed", 2), ["fi-a"] * 2)
        time.sleep(0.2)   # a CONNECT sent just before the reload may still be on its way to the parent
        seen = len(fp.connects())
        time.sleep(0.5)
        self.assertEqual(len(fp.connects()), seen, "probes stopped with the reload")

    def test_down_state_survives_a_reload_that_keeps_the_exit(self):
        closed = "127.0.0.1:%d" % free_port()
        fp = self.parent()
        egress = {"default": "fi", "regions": {"fi": {"exits": [{"name": "fi-a", "via": fp.url}],
                                                      "probe": dict(self.FAST, target=closed, rise=1)}}}
        front = self.proxy({"egress": egress}, front=True)
        self.wait_stderr(front, "portier: warning: egress exit fi-a (region fi) down: ")
        egress["regions"]["fi"]["probe"]["interval_ms"] = 150
        self.reload(front, egress)
        time.sleep(0.5)
        self.assertEqual(len(self.probe_lines(front)), 1, "no new transition: %r" % self.probe_lines(front))
        self.assertStatus(self.get(front, self.origin.url + "/echo/still-down"), 502)

    def test_probe_timeout_and_prompt_shutdown(self):
        silent = self.parent(hold=True)   # reads the CONNECT, never answers
        front = self.proxy({"egress": {"default": "fi", "regions": {"fi": {
            "exits": [{"name": "fi-a", "via": silent.url}],
            "probe": {"interval_ms": 100, "timeout_ms": 300, "fall": 1, "target": "127.0.0.1:9"}}}}},
            front=True)
        self.wait_stderr(front, "portier: warning: egress exit fi-a (region fi) down: ")
        self.assertIn("300 ms", self.probe_lines(front)[0])
        # reconfigured to a long timeout, a probe is in flight when SIGTERM comes: it must not hold us up
        self.reload(front, {"default": "fi", "regions": {"fi": {
            "exits": [{"name": "fi-a", "via": silent.url}],
            "probe": {"interval_ms": 100, "timeout_ms": 60000, "fall": 1, "target": "127.0.0.1:9"}}}})
        time.sleep(0.3)
        started = time.monotonic()
        self.assertEqual(front.stop(timeout=10.0), 0)
        self.assertLess(time.monotonic() - started, 3.0, "shutdown waited for a probe")


# ---------------------------------------------------------------------------------------------
# 9. --check

class Check(unittest.TestCase):
    def check(self, egress, rules=None):
        cfg = {"listeners": [{"name": "t", "listen": ["127.0.0.1:0"], "mode": "forward"}],
               "access_log": {"path": "off"}, "egress": egress}
        if rules is not None:
            cfg["rules"] = rules
        with tempfile.TemporaryDirectory(prefix="portier-egress-check-") as d:
            path = os.path.join(d, "portier.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([portier_bin(), "--check", path], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def assertRejected(self, egress, pointer, words, rules=None, secret=None):
        rc, err = self.check(egress, rules)
        self.assertNotEqual(rc, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("config error: %s: " % pointer)]
        self.assertTrue(lines, "no error at %s in:\n%s" % (pointer, err))
        for w in words:
            self.assertIn(w, lines[0])
        if secret:
            self.assertNotIn(secret, err, "a proxy URL's password was echoed")

    def test_valid(self):
        rc, err = self.check({"default": "fi", "regions": {"fi": {"exits": [
            "direct", "http://u:p@127.0.0.1:3128", ["http://127.0.0.1:1", "socks5://127.0.0.1:2"],
            {"name": "x", "via": "direct", "bind": "127.0.0.2", "weight": 2}]}}})
        self.assertEqual(rc, 0, err)

    def test_bad_upstream_url(self):
        self.assertRejected({"regions": {"fi": {"exits": ["ftp://u:s3cr3t@parent:21"]}}},
                            "/egress/regions/fi/exits/0", ["bad proxy URL"], secret="s3cr3t")
        self.assertRejected({"regions": {"fi": {"exits": [["http://127.0.0.1:1", "nonsense"]]}}},
                            "/egress/regions/fi/exits/0/1", ["bad proxy URL"])
        self.assertRejected({"regions": {"fi": {"exits": [{"via": "socks5://127.0.0.1:99999"}]}}},
                            "/egress/regions/fi/exits/0/via", ["bad proxy URL"])

    def test_unknown_region_reference(self):
        self.assertRejected({"default": "mars", "regions": {"fi": {"exits": ["direct"]}}},
                            "/egress/default", ["unknown region", "mars"])
        self.assertRejected({"regions": {"fi": {"exits": ["direct"], "fallback": ["venus"]}}},
                            "/egress/regions/fi/fallback/0", ["unknown region", "venus"])
        self.assertRejected({"regions": {"fi": {"exits": ["direct"]}}, "users": {"alice": "pluto"}},
                            "/egress/users/alice", ["unknown region", "pluto"])
        self.assertRejected({"regions": {"fi": {"exits": ["direct"]}}}, "/rules/0/egress",
                            ["unknown region", "de"],
                            rules=[{"id": "r", "when": {"port": 80}, "action": "egress", "egress": "de"}])


if __name__ == "__main__":
    unittest.main()

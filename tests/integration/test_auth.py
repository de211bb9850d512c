"""Proxy authentication: 407 challenges, htpasswd hash formats, trusted and refused networks,
failure throttling, and credentials that never leak to an origin or a log."""
import base64
import os
import time
import unittest

from tests.integration.helpers import ProxyTestCase
from tests.support.origins import header_values
from tests.support.policy_files import (basic_token, hash_password,
                                        hash_unavailable_reason, proxy_auth_header, request_bytes,
                                        write_htpasswd)

LISTENER = {"name": "test", "listen": ["127.0.0.1:0"], "mode": "forward"}

# user -> (password, hash scheme)
USERS = {
    "alice": ("alice-Secret-512", "sha512"),
    "bob": ("bob-Secret-256", "sha256"),
    "carol": ("carol-Secret-bcrypt", "bcrypt"),
    "dave": ("dave-Secret-yescrypt", "yescrypt"),
}
GROUPS = {"staff": ["alice", "bob"], "interns": ["alice"]}


class AuthBase(ProxyTestCase):
    """Writes a users file with one user per available hash scheme."""
    realm = "Test Realm"

    def write_users(self):
        self.files = self.make_tmpdir()
        self.hashes = {}
        self.unavailable = {}
        for user, (pw, scheme) in USERS.items():
            h = hash_password(pw, scheme)
            if h is None:
                self.unavailable[user] = hash_unavailable_reason(scheme)
                continue
            self.hashes[user] = h
        for needed in ("alice", "bob"):
            self.assertIn(needed, self.hashes, "openssl passwd must work: %r" % self.unavailable)
        self.users_file = write_htpasswd(os.path.join(self.files, "users.htpasswd"), self.hashes)
        return self.users_file

    def auth_config(self, listener=None, **auth):
        self.write_users()
        cfg = {"realm": self.realm, "users_file": self.users_file, "groups": GROUPS}
        cfg.update(auth)
        lst = dict(LISTENER, auth="required")
        lst.update(listener or {})
        return {"listeners": [lst], "auth": cfg}

    def get(self, conn, path, creds=None, extra=()):
        headers = list(extra)
        if creds is not None:
            headers.append("Proxy-Authorization: Basic %s" % basic_token(*creds))
        conn.send(request_bytes("GET", "%s%s" % (self.origin.url, path), headers))
        return conn.read_response()

    def assertChallenge(self, resp, msg=""):
        self.assertStatus(resp, 407, msg)
        challenges = resp.header_all("Proxy-Authenticate")
        self.assertEqual(len(challenges), 1, "%s: %r" % (msg, resp.headers))
        self.assertTrue(challenges[0].startswith('Basic realm="%s"' % self.realm),
                        "%s: Proxy-Authenticate %r" % (msg, challenges[0]))


class AuthRequired(AuthBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.start_portier(self.auth_config())

    def test_no_credentials_407_then_same_connection_200(self):
        c = self.connect()
        r = self.get(c, "/echo/first")
        self.assertChallenge(r)
        self.assertNotEqual((r.header("Connection") or "").lower(), "close",
                            "a 407 must keep the connection open for the retry")
        self.assertEqual(self.origin.snapshot(), (0, 0), "nothing may reach the origin before login")
        r2 = self.get(c, "/echo/second", creds=("alice", USERS["alice"][0]))
        self.assertStatus(r2, 200)
        self.assertEqual(r2.json()["target"], "/echo/second")
        self.assertEqual(len(self.origin.requests), 1)
        rec = self.wait_record(lambda r: r["status"] == 407)
        self.assertEqual(rec["decision"], "challenge")
        self.assertEqual(rec["user"], "")
        ok = self.wait_record(lambda r: r["status"] == 200)
        self.assertEqual(ok["conn"], rec["conn"], "the retry must be on the same connection")

    def test_wrong_password_407(self):
        c = self.connect()
        r = self.get(c, "/echo/wrong", creds=("alice", "not-the-password"))
        self.assertChallenge(r, "wrong password")
        r = self.get(c, "/echo/unknown", creds=("nobody", "whatever"))
        self.assertChallenge(r, "unknown user")
        r = self.get(c, "/echo/case", creds=("ALICE", USERS["alice"][0]))
        self.assertChallenge(r, "user names are case-sensitive")
        r = self.get(c, "/echo/other", creds=("bob", USERS["alice"][0]))
        self.assertChallenge(r, "another user's password")
        self.assertEqual(self.origin.snapshot(), (0, 0))
        rec = self.wait_record(lambda r: r["path"] == "/echo/wrong")
        self.assertEqual(rec["decision"], "challenge")
        self.assertEqual(rec["user"], "")

    def test_keepalive_connection_rechecks_changed_credentials(self):
        # The connection remembers the header it proved; any other header is checked afresh.
        c = self.connect()
        self.assertStatus(self.get(c, "/echo/1", creds=("alice", USERS["alice"][0])), 200)
        self.assertStatus(self.get(c, "/echo/2", creds=("alice", USERS["alice"][0])), 200)
        self.assertChallenge(self.get(c, "/echo/3", creds=("alice", "wrong")), "changed password, same connection")
        self.assertChallenge(self.get(c, "/echo/4"), "no credentials on a connection that had proved some")
        r = self.get(c, "/echo/5", creds=("bob", USERS["bob"][0]))
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x["path"] == "/echo/5")
        self.assertEqual(rec["user"], "bob")
        self.assertEqual(rec["groups"], "staff")
        rec = self.wait_record(lambda x: x["path"] == "/echo/2")
        self.assertEqual(rec["user"], "alice")
        self.assertEqual(rec["groups"], "staff,interns")

    def test_curl_each_hash_format_get(self):
        for user, (pw, scheme) in USERS.items():
            with self.subTest(user=user, scheme=scheme):
                if user not in self.hashes:
                    self.skipTest(self.unavailable[user])
                r = self.curl(self.origin.url + "/echo/" + user, args=["-U", "%s:%s" % (user, pw)])
                self.assertStatus(r, 200, scheme)
                self.assertEqual(r.json()["target"], "/echo/" + user)
                rec = self.wait_record(lambda x: x["path"] == "/echo/" + user)
                self.assertEqual(rec["user"], user)
                bad = self.curl(self.origin.url + "/echo/bad-" + user,
                                args=["-U", "%s:%s" % (user, pw + "x")])
                self.assertStatus(bad, 407, scheme + " with a wrong password")

    def test_malformed_proxy_authorization_407_not_500(self):
        bad_values = [
            "Basic !!!not-base64!!!",
            "Basic " + base64.b64encode(b"no-colon-here").decode(),
            "Basic " + base64.b64encode(b":empty-user").decode(),
            "Basic " + basic_token("alice", USERS["alice"][0]).rstrip("="),  # padding removed
            "Basic " + basic_token("alice", USERS["alice"][0]) + "AAAA====",
            "Basic",
            "Basic ",
            "Bearer " + basic_token("alice", USERS["alice"][0]),
            "Digest username=\"alice\"",
            "Basic " + base64.b64encode(b"alice:pw\x00\x01").decode(),
            "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
            "Basic " + "QUFB" * 4000,  # long
        ]
        for v in bad_values:
            with self.subTest(value=v[:60]):
                c = self.connect()
                r = self.get(c, "/echo/malformed", extra=["Proxy-Authorization: " + v])
                self.assertChallenge(r, "Proxy-Authorization %r" % v[:60])
                # the connection is still usable for the correct login
                r2 = self.get(c, "/echo/after", creds=("alice", USERS["alice"][0]))
                self.assertStatus(r2, 200)
        self.assertEqual(len(self.origin.requests_for("/echo/malformed")), 0)
        self.assertTrue(self.portier.alive(), self.diag())

    def test_origin_never_sees_proxy_authorization(self):
        token = basic_token("alice", USERS["alice"][0])
        c = self.connect()
        r = self.get(c, "/echo/creds", creds=("alice", USERS["alice"][0]),
                     extra=["Authorization: Bearer origin-token"])
        self.assertStatus(r, 200)
        seen = self.origin.requests_for("/echo/creds")
        self.assertEqual(len(seen), 1)
        self.assertNoHeader(seen[0]["headers"], "Proxy-Authorization")
        self.assertNotIn(token, r.body.decode("latin-1"))
        self.assertNotIn(USERS["alice"][0], r.body.decode("latin-1"))
        # the origin's own Authorization header is end-to-end and passes through
        self.assertEqual(header_values(seen[0]["headers"], "Authorization"), ["Bearer origin-token"])
        # curl too
        r = self.curl(self.origin.url + "/echo/curl-creds",
                      args=["-U", "bob:%s" % USERS["bob"][0]])
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "Proxy-Authorization")

    def test_access_log_user_groups_and_no_secrets(self):
        c = self.connect()
        self.assertStatus(self.get(c, "/echo/alice", creds=("alice", USERS["alice"][0])), 200)
        self.assertStatus(self.get(c, "/echo/bob", creds=("bob", USERS["bob"][0])), 200)
        self.assertChallenge(self.get(c, "/echo/failed", creds=("alice", "Wrong-Pw-123")))
        alice = self.wait_record(lambda r: r["path"] == "/echo/alice")
        self.assertEqual(alice["user"], "alice")
        self.assertEqual(sorted(alice["groups"].split(",")), ["interns", "staff"])
        bob = self.wait_record(lambda r: r["path"] == "/echo/bob")
        self.assertEqual(bob["user"], "bob")
        self.assertEqual(bob["groups"], "staff")
        failed = self.wait_record(lambda r: r["path"] == "/echo/failed")
        self.assertEqual(failed["user"], "")
        self.assertEqual(failed["status"], 407)
        with open(self.portier.log_path, "rb") as f:
            log = f.read().decode("latin-1")
        secrets = [USERS["alice"][0], USERS["bob"][0], "Wrong-Pw-123",
                   basic_token("alice", USERS["alice"][0]), basic_token("bob", USERS["bob"][0]),
                   basic_token("alice", "Wrong-Pw-123"), "Proxy-Authorization", "Basic "]
        for s in secrets:
            self.assertNotIn(s, log, "secret %r appears in the access log" % s)
            self.assertNotIn(s, self.portier.stderr_text(), "secret %r appears on stderr" % s)

    def test_connect_407_then_retry_same_connection(self):
        srv = self.start_tcp("echo")
        # a second portier: this one's connect_ports must include the echo server
        self.start_portier(dict(self.auth_config(), forward={"connect_ports": [srv.port]}))
        c = self.connect()
        authority = "127.0.0.1:%d" % srv.port
        c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority))
        r = c.read_response("CONNECT")
        self.assertChallenge(r, "CONNECT without credentials")
        self.assertEqual(srv.accepted, 0, "no upstream connection before login")
        c.send("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            authority, authority, proxy_auth_header("bob", USERS["bob"][0])))
        r = c.read_response("CONNECT")
        self.assertStatus(r, 200)
        self.assertEqual(r.raw_head, b"HTTP/1.1 200 Connection established\r\n\r\n")
        msg = b"ping through an authenticated tunnel"
        c.send(msg)
        self.assertEqual(c.read_available(len(msg), timeout=5), msg)
        c.close()
        rec = self.wait_record(lambda x: x["method"] == "CONNECT" and x["status"] == 200)
        self.assertEqual(rec["user"], "bob")
        self.assertEqual(rec["decision"], "tunnel")


class AuthConnectTls(AuthBase):
    def setUp(self):
        self.tls = self.start_tls_origin()
        self.start_portier(dict(self.auth_config(), forward={"connect_ports": [self.tls.port]}))

    def test_curl_proxytunnel_each_hash_format(self):
        for user, (pw, scheme) in USERS.items():
            with self.subTest(user=user, scheme=scheme):
                if user not in self.hashes:
                    self.skipTest(self.unavailable[user])
                r = self.curl("https://localhost:%d/echo/tls-%s" % (self.tls.port, user),
                              args=["-p", "--cacert", self.tls.cafile, "-U", "%s:%s" % (user, pw)])
                self.assertStatus(r, 200, scheme)
                self.assertEqual(r.json()["target"], "/echo/tls-" + user)
                self.assertNoHeader(r.json()["headers"], "Proxy-Authorization")

    def test_curl_proxytunnel_without_credentials_407(self):
        r = self.curl("https://localhost:%d/echo/none" % self.tls.port,
                      args=["-p", "--cacert", self.tls.cafile])
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertTrue(r.blocks and r.blocks[0][0].startswith("HTTP/1.1 407"),
                        "CONNECT answer: %r" % [b[0] for b in r.blocks])
        self.assertEqual(self.tls.snapshot(), (0, 0))

    def test_curl_proxytunnel_wrong_password_407(self):
        r = self.curl("https://localhost:%d/echo/wrong" % self.tls.port,
                      args=["-p", "--cacert", self.tls.cafile, "-U", "alice:wrong"])
        self.assertNotEqual(r.returncode, 0, r.describe())
        self.assertTrue(r.blocks and r.blocks[0][0].startswith("HTTP/1.1 407"),
                        "CONNECT answer: %r" % [b[0] for b in r.blocks])
        self.assertEqual(self.tls.snapshot(), (0, 0))


class AuthOptional(AuthBase):
    def setUp(self):
        self.origin = self.start_origin()
        self.start_portier(self.auth_config(listener={"auth": "optional"}))

    def test_anonymous_passes_wrong_is_challenged_right_is_named(self):
        c = self.connect()
        self.assertStatus(self.get(c, "/echo/anon"), 200)
        self.assertChallenge(self.get(c, "/echo/wrong", creds=("alice", "nope")))
        self.assertStatus(self.get(c, "/echo/named", creds=("alice", USERS["alice"][0])), 200)
        self.assertEqual(self.wait_record(lambda r: r["path"] == "/echo/anon")["user"], "")
        self.assertEqual(self.wait_record(lambda r: r["path"] == "/echo/named")["user"], "alice")
        self.assertEqual(len(self.origin.requests_for("/echo/wrong")), 0)


class Networks(AuthBase):
    def setUp(self):
        self.origin = self.start_origin()

    def test_trusted_network_needs_no_credentials(self):
        self.start_portier(self.auth_config(listener={"trusted": ["127.0.0.0/8"]}))
        r = self.curl(self.origin.url + "/echo/trusted")
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x["path"] == "/echo/trusted")
        self.assertEqual(rec["user"], "")
        self.assertEqual(rec["decision"], "forward")

    def test_untrusted_network_still_challenged(self):
        self.start_portier(self.auth_config(listener={"trusted": ["10.0.0.0/8", "::1/128"]}))
        r = self.curl(self.origin.url + "/echo/untrusted")
        self.assertStatus(r, 407)

    def test_allow_clients_refuse_403(self):
        self.start_portier(self.auth_config(listener={"allow_clients": ["10.0.0.0/8"],
                                                      "refuse": "403"}))
        c = self.connect()
        r = self.get(c, "/echo/refused", creds=("alice", USERS["alice"][0]))
        self.assertStatus(r, 403)
        self.assertNothingReached(self.origin)
        rec = self.wait_record(lambda x: x["path"] == "/echo/refused")
        self.assertEqual(rec["rule"], "client_network")
        self.assertEqual(rec["decision"], "deny")
        # CONNECT too
        c, r = self.tunnel("127.0.0.1", 443)
        self.assertStatus(r, 403)

    def test_allow_clients_refuse_403_auth_off(self):
        self.start_portier({"listeners": [dict(LISTENER, allow_clients=["192.0.2.0/24"])]})
        r = self.curl(self.origin.url + "/echo/refused")
        self.assertStatus(r, 403)
        self.assertNothingReached(self.origin)

    def test_allow_clients_refuse_close(self):
        self.start_portier(self.auth_config(listener={"allow_clients": ["10.0.0.0/8"],
                                                      "refuse": "close"}))
        c = self.connect()
        c.send(request_bytes("GET", self.origin.url + "/echo/closed",
                             [proxy_auth_header("alice", USERS["alice"][0]).strip()]))
        extra = self.assertClosed(c, 3.0, "refused client's connection not closed")
        self.assertEqual(extra, b"", "refuse=close must send no answer at all")
        self.assertNothingReached(self.origin)
        rec = self.wait_record(lambda x: x["path"] == "/echo/closed")
        self.assertEqual(rec["rule"], "client_network")
        self.assertEqual(rec["status"], 0)

    def test_allow_clients_admits_listed(self):
        self.start_portier(self.auth_config(listener={"allow_clients": ["127.0.0.1/32"]}))
        r = self.curl(self.origin.url + "/echo/admitted", args=["-U", "bob:" + USERS["bob"][0]])
        self.assertStatus(r, 200)

    def test_trusted_wins_over_allow_clients(self):
        self.start_portier(self.auth_config(listener={"allow_clients": ["10.0.0.0/8"],
                                                      "trusted": ["127.0.0.1/32"]}))
        r = self.curl(self.origin.url + "/echo/trusted-admitted")
        self.assertStatus(r, 200)


class Throttle(AuthBase):
    def setUp(self):
        self.origin = self.start_origin()

    def start(self, workers=2):
        cfg = self.auth_config(max_failures=3, failure_window_ms=60000, block_ms=2000)
        cfg["workers"] = workers
        self.start_portier(cfg)

    def test_three_failures_then_429_then_unblocked_same_connection(self):
        self.start()
        good = ("alice", USERS["alice"][0])
        c = self.connect()
        for i in range(3):
            self.assertChallenge(self.get(c, "/echo/fail-%d" % i, creds=("alice", "bad-%d" % i)),
                                 "failure %d" % (i + 1))
        t_blocked = time.monotonic()
        r = self.get(c, "/echo/blocked", creds=good)
        self.assertStatus(r, 429, "the 4th attempt, even with the right password")
        self.assertEqual(r.header("Retry-After"), "2")
        self.assertEqual(len(self.origin.requests_for("/echo/blocked")), 0)
        rec = self.wait_record(lambda x: x["path"] == "/echo/blocked")
        self.assertEqual(rec["rule"], "auth_throttle")
        self.assertEqual(rec["status"], 429)
        r = self.get(c, "/echo/blocked-2", creds=good)
        self.assertStatus(r, 429, "still blocked")
        # after block_ms the right password works (same connection: the same worker thread; see
        # test_failures_on_separate_connections_are_counted_per_address for new connections)
        time.sleep(max(0.0, 2.2 - (time.monotonic() - t_blocked)))
        deadline = time.monotonic() + 5
        while True:
            r = self.get(c, "/echo/unblocked", creds=good)
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertStatus(r, 200, "block_ms is over")

    def test_failures_on_separate_connections_are_counted_per_address(self):
        # README: "After auth.max_failures failures within auth.failure_window_ms a client address
        # gets 429". curl opens a new connection per run; with 4 workers those land on different
        # worker threads (SO_REUSEPORT), so the count must not be per worker.
        self.start(workers=4)
        for i in range(3):
            r = self.curl(self.origin.url + "/echo/sep-fail-%d" % i, args=["-U", "alice:bad-%d" % i])
            self.assertStatus(r, 407)
        statuses = []
        for i in range(4):
            r = self.curl(self.origin.url + "/echo/sep-good-%d" % i,
                          args=["-U", "alice:" + USERS["alice"][0]])
            statuses.append(r.status)
        self.assertEqual(statuses, [429] * 4,
                         "after 3 failed logins from 127.0.0.1 (on separate connections), every "
                         "login within block_ms must get 429; got %r (looks like the failure "
                         "throttle is per worker thread)%s" % (statuses, self.diag()))

    def test_right_password_does_not_count(self):
        self.start()
        c = self.connect()
        for i in range(2):
            self.assertChallenge(self.get(c, "/echo/f%d" % i, creds=("bob", "bad")))
        for i in range(3):
            self.assertStatus(self.get(c, "/echo/ok%d" % i, creds=("bob", USERS["bob"][0])), 200)
        # no credentials is no failure either
        for i in range(3):
            self.assertChallenge(self.get(c, "/echo/anon%d" % i))
        self.assertStatus(self.get(c, "/echo/still-ok", creds=("alice", USERS["alice"][0])), 200)


if __name__ == "__main__":
    unittest.main()


class SharedCredentialCache(AuthBase):
    """A verified password is hashed once per process and TTL, whichever worker thread a later
    connection lands on (each connection is accepted by one of several workers)."""

    def test_costly_hash_is_paid_once_across_workers(self):
        import socket
        from tests.support.policy_files import _crypt_module
        crypt = _crypt_module()
        if crypt is None:
            self.skipTest("Python's crypt module is needed to make a costly SHA-512-crypt hash")
        # Many rounds make one check take a visible fraction of a second.
        costly = crypt.crypt("slow-Secret", "$6$rounds=900000$saltsaltsalt")
        if not costly or not costly.startswith("$6$rounds=900000$"):
            self.skipTest("this system's crypt() cannot make SHA-512-crypt hashes with rounds")
        files = self.make_tmpdir()
        users = write_htpasswd(os.path.join(files, "users.htpasswd"), {"slow": costly})
        self.origin = self.start_origin()
        self.start_portier({"workers": 4, "listeners": [dict(LISTENER, auth="required")],
                            "auth": {"users_file": users, "cache_ttl_ms": 60000}})
        times = []
        for i in range(8):
            c = self.connect()  # a fresh connection: SO_REUSEPORT spreads them over the workers
            t0 = time.monotonic()
            r = self.get(c, "/echo/%d" % i, creds=("slow", "slow-Secret"))
            times.append(time.monotonic() - t0)
            self.assertStatus(r, 200)
            c.close()
        first, rest = times[0], times[1:]
        self.assertGreater(first, 0.05, "the hash is not costly enough to observe: %r" % times)
        for t in rest:
            self.assertLess(t, first / 3, "a later login paid for the hash again: %r" % times)

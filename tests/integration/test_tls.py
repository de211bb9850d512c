"""TLS: HTTPS proxy listeners (clients speak TLS to portier) and https:// parents (portier speaks TLS
to the next hop, also inside another hop's tunnel). Certificates are made at test time with the
openssl CLI; every parent is a real portier with an HTTPS listener."""
import json
import os
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from tests.integration.helpers import ProxyTestCase, random_bytes, sha256
from tests.support.clients import HttpConn, curl, fetch
from tests.support.origins import pattern_sha256
from tests.support.policy_files import basic_token, hash_password, request_bytes, write_htpasswd, write_text
from tests.support.portier_proc import Portier, portier_bin
from tests.support.tls import make_ca, make_leaf, make_self_signed, tls_client_context, tls_connect

MB = 1 << 20
PASSWORDS = {"alice": "alice-Tls-Secret", "up": "up-Tls-Secret"}
RELOADED = "portier: info: reloaded "
FAILED = "portier: error: reload failed"


def tls_block(cert, key):
    return {"cert_file": cert, "key_file": key}


def https_url(p, userinfo=""):
    return "https://%s%s:%d" % (userinfo + "@" if userinfo else "", p.host, p.port)


class TlsBase(ProxyTestCase):
    def setUp(self):
        self.files = self.make_tmpdir(prefix="portier-tls-test-")
        self.cert, self.key = make_self_signed(self.files, "proxy")

    # -- processes ------------------------------------------------------------------------------
    def proxy(self, overrides=None, tls=None, ports=(), auth=False, front=False):
        """A portier; tls=(cert, key) makes its listener an HTTPS one; ports are its connect_ports."""
        cfg = dict(overrides or {})
        lst = {"name": "test", "listen": ["127.0.0.1:0"], "mode": "forward"}
        if tls:
            lst["tls"] = tls_block(*tls)
        if auth:
            lst["auth"] = "required"
            cfg["auth"] = {"realm": "tls", "users_file": self.users_file()}
        if ports:
            cfg["forward"] = dict(cfg.get("forward", {}), connect_ports=list(ports))
        cfg["listeners"] = [lst]
        p = Portier(cfg)
        self.addCleanup(p.close)
        p.start()
        if front:
            self.portier = p
        return p

    def users_file(self):
        if not getattr(self, "_users", None):
            hashes = {}
            for u, pw in PASSWORDS.items():
                h = hash_password(pw, "sha512")
                self.assertIsNotNone(h, "openssl passwd -6 must work")
                hashes[u] = h
            self._users = write_htpasswd(os.path.join(self.files, "users.htpasswd"), hashes)
        return self._users

    def front(self, exits, ports=(), tls=None, health=None):
        """A portier whose default region fi has these exits; a bare hop object becomes {"via": hop}."""
        exits = [{"via": e} if isinstance(e, dict) and "url" in e else e for e in exits]
        egress = {"default": "fi", "regions": {"fi": {"exits": exits}}}
        if health:
            egress["health"] = health
        return self.proxy({"egress": egress}, tls=tls, ports=ports, front=True)

    # -- clients --------------------------------------------------------------------------------
    def via_https(self, p, url, cafile=None, args=(), timeout=30.0):
        """curl through p's HTTPS listener (trusting cafile, default the test's proxy cert)."""
        return fetch(url, proxy=https_url(p), args=["--proxy-cacert", cafile or self.cert] + list(args),
                     timeout=timeout)

    def get(self, p, url, timeout=10.0):
        """One plain-HTTP GET to p (Connection: close)."""
        c = HttpConn(p.host, p.port, timeout=timeout)
        self.addCleanup(c.close)
        c.send(request_bytes("GET", url, ["Connection: close"]))
        return c.read_response()

    def tls_conn(self, p, cafile=None, **ctx_kw):
        s = tls_connect(p.host, p.port, tls_client_context(cafile or self.cert, **ctx_kw))
        c = HttpConn(None, None, sock=s)
        self.addCleanup(c.close)
        return c

    def record(self, p, predicate, what="access log record", timeout=5.0):
        rec = p.wait_record(predicate, timeout)
        self.assertIsNotNone(rec, "no %s within %.0fs; log:\n%s%s" % (
            what, timeout, "\n".join(p.access_log_lines()[-10:]), p.diag()))
        return rec

    def assertCurlOk(self, r, status=200, msg=""):
        self.assertEqual((r.returncode, r.status), (0, status), "%s: %s%s" % (msg, r.describe(), self.diag()))

    def tls_failed_record(self, p, what):
        return self.record(p, lambda x: x["decision"] == "error" and x["error"].startswith("tls_failed"),
                           "tls_failed record (%s)" % what)


# ---------------------------------------------------------------------------------------------
# 1. HTTPS proxy listener

class HttpsListener(TlsBase):
    def setUp(self):
        super().setUp()
        self.origin = self.start_origin()
        self.p = self.proxy({"timeouts": {"header_ms": 1500}}, tls=(self.cert, self.key),
                            ports=[self.origin.port], front=True)

    def test_get_absolute_form_download_and_upload(self):
        n = 4 * MB + 12345
        r = self.via_https(self.p, self.origin.url + "/bytes/%d" % n)
        self.assertCurlOk(r)
        self.assertEqual((len(r.body), sha256(r.body)), (n, pattern_sha256(n)))
        rec = self.record(self.p, lambda x: x["path"] == "/bytes/%d" % n)
        self.assertEqual((rec["decision"], rec["status"], rec["error"]), ("forward", 200, ""), rec)
        self.assertGreaterEqual(rec["bytes_down"], n)

        body = random_bytes(3 * MB + 7, b"tls-upload")
        path = os.path.join(self.files, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        r = self.via_https(self.p, self.origin.url + "/echo/upload", args=["--data-binary", "@" + path])
        self.assertCurlOk(r)
        got = r.json()
        self.assertEqual((got["method"], got["body_length"], got["body_sha256"]),
                         ("POST", len(body), sha256(body)))

    def test_connect_download(self):
        n = 5 * MB + 3
        r = self.via_https(self.p, self.origin.url + "/bytes/%d" % n, args=["-p"])
        self.assertCurlOk(r)
        self.assertEqual((len(r.body), sha256(r.body)), (n, pattern_sha256(n)))
        self.assertEqual(len(r.blocks), 2, "a CONNECT 200 then the origin's 200: %r" % r.blocks)
        rec = self.record(self.p, lambda x: x["method"] == "CONNECT")
        self.assertEqual((rec["decision"], rec["status"], rec["error"]), ("tunnel", 200, ""), rec)
        self.assertGreaterEqual(rec["bytes_down"], n)
        self.assertEqual(self.origin.requests[-1]["target"], "/bytes/%d" % n, "origin form inside the tunnel")

    def test_two_requests_on_one_tls_connection(self):
        u1, u2 = self.origin.url + "/echo/ka-1", self.origin.url + "/echo/ka-2"
        p = curl(["--proxy", https_url(self.p), "--proxy-cacert", self.cert, u1, u2])
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn('"target": "/echo/ka-1"', out)
        self.assertIn('"target": "/echo/ka-2"', out)
        r1 = self.record(self.p, lambda x: x["path"] == "/echo/ka-1")
        r2 = self.record(self.p, lambda x: x["path"] == "/echo/ka-2")
        self.assertEqual((r1["conn"], r1["client"]), (r2["conn"], r2["client"]),
                         "curl reused its TLS connection to the proxy: %r %r" % (r1, r2))
        self.assertEqual([x for x in self.p.access_log_records(3, timeout=0.3)
                          if x["decision"] == "error"], [], "no handshake failures")

    def test_raw_tls_client_keepalive_alpn_and_versions(self):
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            with self.subTest(version=version.name):
                c = self.tls_conn(self.p, alpn=("h2", "http/1.1"), max_version=version, min_version=version)
                self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
                self.assertEqual(c.sock.version(), {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name])
                for i in range(3):
                    c.send(request_bytes("GET", self.origin.url + "/echo/raw-%s-%d" % (version.name, i)))
                    r = c.read_response()
                    self.assertStatus(r, 200)
                    self.assertEqual(r.json()["target"], "/echo/raw-%s-%d" % (version.name, i))
                c.close()
        # TLS 1.1 is refused by the proxy (when this Python can still offer it)
        try:
            ctx = tls_client_context(self.cert, max_version=ssl.TLSVersion.TLSv1_1,
                                     min_version=ssl.TLSVersion.TLSv1)
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ssl.SSLError, ValueError):
            return
        with self.assertRaises((ssl.SSLError, OSError)):
            s = tls_connect(self.p.host, self.p.port, ctx)
            s.close()
        self.tls_failed_record(self.p, "TLS 1.1 ClientHello")

    def test_client_not_trusting_the_certificate(self):
        r = fetch(self.origin.url + "/echo/untrusted", proxy=https_url(self.p))
        self.assertEqual(r.returncode, 60, "curl: certificate problem: %s" % r.describe())
        rec = self.tls_failed_record(self.p, "client refused the certificate")
        self.assertIn("TLS handshake", rec["error"])
        self.assertEqual((rec["status"], rec["method"]), (0, ""), rec)
        self.assertEqual(self.origin.snapshot(), (0, 0))
        # the listener still serves trusting clients
        self.assertCurlOk(self.via_https(self.p, self.origin.url + "/echo/after"))

    def test_plain_http_client_gets_no_http_answer(self):
        s = socket.create_connection(self.p.addr, timeout=5)
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", self.origin.url + "/echo/plain"))
        got = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                break
            if not data:
                break
            got += data
        else:
            self.fail("the proxy did not close the connection within 5 s (got %r)" % got[:100])
        self.assertFalse(got.startswith(b"HTTP/"), "an HTTP answer on a TLS listener: %r" % got[:200])
        rec = self.tls_failed_record(self.p, "plain HTTP on a TLS listener")
        self.assertIn("TLS handshake", rec["error"])
        self.assertEqual(self.origin.snapshot(), (0, 0))

    def test_silent_client_times_out_in_the_handshake(self):
        s = socket.create_connection(self.p.addr, timeout=5)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        c = HttpConn(None, None, sock=s, timeout=5)
        self.assertClosed(c, timeout=4.0, msg="a client that never sends a ClientHello is dropped after "
                          "header_ms (1500)")
        self.assertLess(time.monotonic() - t0, 3.5)
        rec = self.tls_failed_record(self.p, "no ClientHello")
        self.assertIn("no ClientHello in time", rec["error"])


class HttpsListenerAuth(TlsBase):
    def test_407_then_200_on_the_same_tls_connection(self):
        origin = self.start_origin()
        p = self.proxy(tls=(self.cert, self.key), auth=True, ports=[origin.port], front=True)
        c = self.tls_conn(p)
        url = origin.url + "/echo/auth"
        c.send(request_bytes("GET", url))
        r = c.read_response()
        self.assertStatus(r, 407)
        self.assertTrue(r.header("Proxy-Authenticate").startswith('Basic realm="tls"'), r.headers)
        c.send(request_bytes("GET", url, ["Proxy-Authorization: Basic %s" % basic_token("alice", PASSWORDS["alice"])]))
        r = c.read_response()
        self.assertStatus(r, 200)
        recs = p.access_log_records(2, predicate=lambda x: x["path"] == "/echo/auth")
        self.assertEqual([(x["status"], x["user"]) for x in recs], [(407, ""), (200, "alice")], recs)
        self.assertEqual(recs[0]["conn"], recs[1]["conn"])
        # curl: CONNECT with credentials over TLS, and without
        r = self.via_https(p, origin.url + "/echo/curl-auth", args=["-p", "--proxy-user", "alice:" + PASSWORDS["alice"]])
        self.assertCurlOk(r)
        r = self.via_https(p, origin.url + "/echo/curl-noauth", args=["-p"])
        self.assertEqual(r.info.get("http_connect"), 407, r.describe())


# ---------------------------------------------------------------------------------------------
# 2. https:// parents

class HttpsParents(TlsBase):
    def setUp(self):
        super().setUp()
        self.origin = self.start_origin()

    def parent(self, cert=None, key=None, ports=None, auth=False):
        """A portier with an HTTPS listener (default: the test's proxy certificate)."""
        return self.proxy(tls=(cert or self.cert, key or self.key),
                          ports=[self.origin.port] if ports is None else ports, auth=auth)

    def hop(self, p, ca_file=None, userinfo="", **kw):
        h = {"url": https_url(p, userinfo), "ca_file": ca_file or self.cert}
        h.update(kw)
        return h

    def assertGetAndConnect(self, front, tag, n=2 * MB + 1):
        """A plain-HTTP GET (raw client) and a CONNECT (curl -p) through front; both bodies checked.
        Returns the front's record of the GET."""
        path = "/bytes/%d" % n
        r = self.get(front, self.origin.url + path + "?" + tag)
        self.assertStatus(r, 200, tag)
        self.assertEqual((len(r.body), sha256(r.body)), (n, pattern_sha256(n)), tag)
        rec = self.record(front, lambda x: x["path"] == path and x["method"] == "GET")
        self.assertEqual((rec["status"], rec["error"]), (200, ""), rec)
        r = fetch(self.origin.url + path + "?connect-" + tag, proxy=front.proxy_url, args=["-p"])
        self.assertCurlOk(r, msg=tag)
        self.assertEqual(sha256(r.body), pattern_sha256(n), tag)
        crec = self.record(front, lambda x: x["method"] == "CONNECT")
        self.assertEqual((crec["status"], crec["error"], crec["chain"]), (200, "", rec["chain"]), crec)
        return rec

    def assertParentConnect(self, parent, target=None, user=""):
        """parent logged a successful CONNECT to target (default the origin)."""
        target = target or self.origin.hostport
        rec = self.record(parent, lambda x: x["method"] == "CONNECT" and x["target"] == target,
                          "parent's CONNECT to %s" % target)
        self.assertEqual((rec["status"], rec["error"], rec["user"]), (200, "", user), rec)
        return rec

    def assertNoErrors(self, p):
        self.assertEqual([x for x in p.access_log_records(99, timeout=0.2) if x["decision"] == "error"], [])

    def test_get_and_connect_via_https_parent(self):
        parent = self.parent()
        front = self.front([{"name": "tls", "via": self.hop(parent)}], ports=[self.origin.port])
        rec = self.assertGetAndConnect(front, "one")
        self.assertEqual((rec["region"], rec["exit"], rec["chain"]), ("fi", "tls", https_url(parent)), rec)
        self.assertParentConnect(parent)
        self.assertNoErrors(parent)

    # README: an https:// parent is "the same over TLS" as an http:// one, whose plain HTTP is sent
    # in absolute form (only "http_forward": "connect" tunnels it).
    def test_plain_http_goes_to_an_https_parent_in_absolute_form(self):
        parent = self.parent()
        front = self.front([self.hop(parent)], ports=[self.origin.port])
        r = self.get(front, self.origin.url + "/echo/absolute")
        self.assertStatus(r, 200)
        rec = self.record(parent, lambda x: x["method"] == "GET" and x["path"] == "/echo/absolute",
                          "the parent's record of an absolute-form GET", timeout=3.0)
        self.assertEqual((rec["status"], rec["decision"]), (200, "forward"), rec)
        self.assertIn("1.1 portier", [v for n, v in r.json()["headers"] if n.lower() == "via"][0])

    def test_parent_certificate_signed_by_a_ca(self):
        ca = make_ca(self.files)
        leaf, leaf_key, chain = make_leaf(self.files, ca, "parent")
        parent = self.parent(chain, leaf_key)
        front = self.front([self.hop(parent, ca_file=ca[0])], ports=[self.origin.port])
        self.assertGetAndConnect(front, "ca", n=100000)
        self.assertParentConnect(parent)
        # a CA that did not sign it is refused
        other_ca = make_ca(self.files, "other-ca")
        front2 = self.front([self.hop(parent, ca_file=other_ca[0])], ports=[self.origin.port])
        self.assertStatus(self.get(front2, self.origin.url + "/echo/other-ca"), 502)

    def test_parent_requiring_auth(self):
        parent = self.parent(auth=True)
        front = self.front([self.hop(parent, userinfo="up:" + PASSWORDS["up"])], ports=[self.origin.port])
        self.assertGetAndConnect(front, "auth", n=1000)
        self.assertParentConnect(parent, user="up")
        # a wrong password is the parent's 407: a 502 for the client
        front2 = self.front([self.hop(parent, userinfo="up:Bad-Pw-x7")], ports=[self.origin.port])
        r = self.get(front2, self.origin.url + "/echo/refused")
        self.assertStatus(r, 502)
        rec = self.record(front2, lambda x: x["path"] == "/echo/refused")
        self.assertIn(https_url(parent), rec["error"])
        self.assertIn("407", rec["error"])
        self.assertNotIn("Bad-Pw-x7", json.dumps(rec) + front2.stderr_text())

    def test_tls_inside_tls_chain(self):
        cert2, key2 = make_self_signed(self.files, "second")
        p2 = self.parent(cert2, key2)
        p1 = self.parent(ports=[p2.port])
        front = self.front([{"name": "tt", "via": [self.hop(p1), self.hop(p2, ca_file=cert2)]}],
                           ports=[self.origin.port])
        rec = self.assertGetAndConnect(front, "tls-in-tls", n=3 * MB)
        self.assertEqual(rec["chain"], "%s,%s" % (https_url(p1), https_url(p2)), rec)
        self.assertParentConnect(p2)
        front.stop()   # p1 logs its tunnels to p2 when they end (the GET's may be pooled until then)
        recs = p1.access_log_records(2, timeout=5.0)
        self.assertTrue(recs and all((x["method"], x["target"], x["status"], x["error"]) ==
                                     ("CONNECT", "127.0.0.1:%d" % p2.port, 200, "") for x in recs), recs)
        self.assertNoErrors(p2)

    def test_mixed_chains_http_https(self):
        tls_last = self.parent()
        plain_first = self.proxy(ports=[tls_last.port])
        plain_last = self.proxy(ports=[self.origin.port])
        tls_first = self.parent(ports=[plain_last.port])

        front = self.front([{"name": "mix", "via": [http_url(plain_first), self.hop(tls_last)]}],
                           ports=[self.origin.port])
        rec = self.assertGetAndConnect(front, "http-https", n=MB + 5)
        self.assertEqual(rec["chain"], "%s,%s" % (http_url(plain_first), https_url(tls_last)), rec)
        self.assertParentConnect(tls_last)   # TLS to tls_last inside plain_first's tunnel
        self.assertNoErrors(tls_last)

        front = self.front([{"name": "mix", "via": [self.hop(tls_first), http_url(plain_last)]}],
                           ports=[self.origin.port])
        rec = self.assertGetAndConnect(front, "https-http", n=MB + 7)
        self.assertEqual(rec["chain"], "%s,%s" % (https_url(tls_first), http_url(plain_last)), rec)
        # the last hop is http: it gets the GET in absolute form (through tls_first's tunnel)
        self.record(plain_last, lambda x: x["method"] == "GET" and x["path"] == "/bytes/%d" % (MB + 7),
                    "the http last hop's GET")
        self.assertParentConnect(plain_last)

    def test_untrusted_parent_is_502_and_verify_false_works(self):
        parent = self.parent()
        url = https_url(parent)
        front = self.front([url], ports=[self.origin.port])   # the system CA store does not know it
        r = self.get(front, self.origin.url + "/echo/untrusted")
        self.assertStatus(r, 502)
        rec = self.record(front, lambda x: x["path"] == "/echo/untrusted")
        self.assertTrue(rec["error"].startswith("tls_failed: %s: TLS handshake: certificate verify failed" % url),
                        rec["error"])
        r = fetch(self.origin.url + "/echo/untrusted-connect", proxy=front.proxy_url, args=["-p"])
        self.assertEqual(r.info.get("http_connect"), 502, r.describe())
        self.tls_failed_record(parent, "the front refused the parent's certificate")
        self.assertEqual(self.origin.snapshot(), (0, 0))

        front2 = self.front([{"url": url, "verify": False}], ports=[self.origin.port])
        self.assertGetAndConnect(front2, "verify-false", n=1000)
        self.assertParentConnect(parent)

    def test_server_name(self):
        parent = self.parent()
        url = https_url(parent)
        cases = [("other.test", 502), ("localhost", 200)]
        for name, status in cases:
            with self.subTest(server_name=name):
                front = self.front([self.hop(parent, server_name=name)], ports=[self.origin.port])
                path = "/echo/sn-" + name
                self.assertStatus(self.get(front, self.origin.url + path), status)
                if status == 502:
                    rec = self.record(front, lambda x: x["path"] == path)
                    self.assertTrue(rec["error"].startswith("tls_failed: %s: TLS handshake: certificate verify failed"
                                                            % url), rec["error"])
        self.assertEqual(len(self.origin.requests), 1)

    def test_ip_literal_url_is_checked_against_ip_sans(self):
        dns_only, dns_key = make_self_signed(self.files, "dns-only", sans=("DNS:localhost",))
        parent = self.parent(dns_only, dns_key)
        front = self.front([self.hop(parent, ca_file=dns_only)], ports=[self.origin.port])
        r = self.get(front, self.origin.url + "/echo/ip-san")
        self.assertStatus(r, 502, "127.0.0.1 is not among the certificate's names")
        rec = self.record(front, lambda x: x["path"] == "/echo/ip-san")
        self.assertIn("certificate verify failed", rec["error"])
        front2 = self.front([self.hop(parent, ca_file=dns_only, server_name="localhost")], ports=[self.origin.port])
        self.assertStatus(self.get(front2, self.origin.url + "/echo/dns-san"), 200)

    def test_failover_from_an_untrusted_exit(self):
        parent = self.parent()
        front = self.front([{"name": "untrusted", "via": https_url(parent)},
                            {"name": "good", "via": self.hop(parent)}],
                           ports=[self.origin.port], health={"fail_after": 1, "down_ms": 30000})
        for i in range(6):
            path = "/echo/failover-%d" % i
            self.assertStatus(self.get(front, self.origin.url + path), 200, path)
            self.assertEqual(self.record(front, lambda x: x["path"] == path)["exit"], "good")
        r = fetch(self.origin.url + "/echo/failover-connect", proxy=front.proxy_url, args=["-p"])
        self.assertCurlOk(r)
        self.assertIn("exit untrusted (%s) of region fi marked down" % https_url(parent), front.stderr_text())
        self.assertEqual(len(self.origin.requests), 7)


def http_url(p):
    return "http://%s:%d" % (p.host, p.port)


# ---------------------------------------------------------------------------------------------
# 3. large tunnels through an HTTPS listener and an https parent

class LargeTunnel(TlsBase):
    def test_connect_download_and_upload(self):
        origin = self.start_origin()
        parent = self.proxy(tls=(self.cert, self.key), ports=[origin.port])
        front = self.front([{"url": https_url(parent), "ca_file": self.cert}], tls=(self.cert, self.key),
                           ports=[origin.port])
        n = 24 * MB + 17
        r = self.via_https(front, origin.url + "/bytes/%d" % n, args=["-p"], timeout=40)
        self.assertCurlOk(r, msg="download")
        self.assertEqual((len(r.body), sha256(r.body)), (n, pattern_sha256(n)))

        body = random_bytes(16 * MB + 5, b"tls-tunnel-up")
        path = os.path.join(self.files, "up.bin")
        with open(path, "wb") as f:
            f.write(body)
        r = self.via_https(front, origin.url + "/echo/big-upload", args=["-p", "-T", path], timeout=40)
        self.assertCurlOk(r, msg="upload")
        got = r.json()
        self.assertEqual((got["method"], got["body_length"], got["body_sha256"]), ("PUT", len(body), sha256(body)))

        recs = front.access_log_records(2, predicate=lambda x: x["method"] == "CONNECT")
        self.assertEqual(len(recs), 2, recs)
        self.assertEqual([(x["status"], x["error"]) for x in recs], [(200, "")] * 2, recs)
        self.assertGreaterEqual(recs[0]["bytes_down"], n)
        self.assertGreaterEqual(recs[1]["bytes_up"], len(body))
        precs = parent.access_log_records(2, predicate=lambda x: x["method"] == "CONNECT")
        self.assertEqual([(x["status"], x["error"]) for x in precs], [(200, "")] * 2, precs)

    def connect_echo(self, front, echo):
        """A TLS connection to front's HTTPS listener with a CONNECT tunnel to the echo server."""
        s = tls_connect(front.host, front.port, tls_client_context(self.cert), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % ((echo.hostport.encode(),) * 2))
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            b = s.recv(1)
            self.assertTrue(b, "no CONNECT answer: %r%s" % (head, self.diag()))
            head += b
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        return s

    def test_full_duplex_with_tls_on_both_sides_and_a_slow_reader(self):
        # Each hop's TLS stream is read and written at once (one relay direction each), and the
        # slow reader makes every writer meet a full socket buffer while its reader goes on. One
        # thread drives both directions: an ssl.SSLSocket must not be used by two threads at once.
        echo = self.start_tcp("echo")
        parent = self.proxy(tls=(self.cert, self.key), ports=[echo.port])
        front = self.front([{"url": https_url(parent), "ca_file": self.cert}], tls=(self.cert, self.key),
                           ports=[echo.port])
        s = self.connect_echo(front, echo)
        s.setblocking(False)
        body = random_bytes(24 * MB + 7, b"tls-full-duplex")
        view = memoryview(body)
        got = []
        sent = received = paused_at = 0
        resume = 0.0
        deadline = time.monotonic() + 60
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        self.addCleanup(sel.close)
        while received < len(body):
            now = time.monotonic()
            self.assertLess(now, deadline, "sent %d, received %d%s" % (sent, received, self.diag()))
            reading = now >= resume  # the reader pauses 0.1 s after every 4 MiB: slowness, no synchronisation
            mask = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if sent < len(body) else 0)
            if mask == 0:
                time.sleep(resume - now)
                continue
            sel.modify(s, mask)
            sel.select(timeout=min(1.0, max(0.0, resume - now)) if not reading else 1.0)
            if sent < len(body):
                try:
                    sent += s.send(view[sent:sent + (1 << 16)])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            while reading:
                try:
                    d = s.recv(1 << 16)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                self.assertTrue(d, "EOF after %d bytes%s" % (received, self.diag()))
                got.append(d)
                received += len(d)
                if received - paused_at >= 4 * MB:
                    paused_at = received
                    resume = time.monotonic() + 0.1
                    break
        data = b"".join(got)
        self.assertEqual((len(data), sha256(data)), (len(body), sha256(body)))
        s.close()
        recs = front.access_log_records(1, predicate=lambda x: x["method"] == "CONNECT")
        self.assertEqual([(x["status"], x["bytes_up"], x["bytes_down"]) for x in recs], [(200, len(body), len(body))],
                         recs)

    def test_key_update_requested_by_the_client_mid_tunnel(self):
        # TLS 1.3 KeyUpdate with update_requested: portier must take the client's new keys and
        # answer with its own KeyUpdate before its next record (openssl s_client's "K" command).
        echo = self.start_tcp("echo")
        front = self.proxy(tls=(self.cert, self.key), ports=[echo.port], front=True)
        p = subprocess.Popen(["openssl", "s_client", "-tls1_3", "-connect", "%s:%d" % (front.host, front.port),
                              "-CAfile", self.cert, "-crlf"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(p.kill)
        out = []

        def pump():
            for line in iter(p.stdout.readline, b""):
                out.append(line)

        t = threading.Thread(target=pump, daemon=True)
        t.start()

        def send(line):
            p.stdin.write(line + b"\n")
            p.stdin.flush()

        def wait_for(text, timeout=10.0, count=1):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if len([l for l in list(out) if text in l]) >= count:
                    return True
                time.sleep(0.02)
            return False

        send(b"CONNECT %s HTTP/1.1\nHost: %s\n" % ((echo.hostport.encode(),) * 2))
        self.assertTrue(wait_for(b"200 Connection established"), b"".join(out))
        for i, command in enumerate([b"K", b"k", b"K"]):
            send(command)
            self.assertTrue(wait_for(b"KEYUPDATE", count=i + 1), b"".join(out))
            send(b"after-update-%d" % i)
            self.assertTrue(wait_for(b"after-update-%d" % i), "no echo after key update %d: %r%s" % (
                i, b"".join(out)[-2000:], self.diag()))
        p.stdin.close()
        p.wait(10)


# ---------------------------------------------------------------------------------------------
# 4. config: --check and reload

class TlsCheck(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portier-tls-check-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def check(self, cfg):
        base = {"listeners": [{"name": "t", "listen": ["127.0.0.1:0"], "mode": "forward"}],
                "access_log": {"path": "off"}}
        base.update(cfg)
        path = os.path.join(self.dir, "portier.json")
        with open(path, "w") as f:
            json.dump(base, f)
        p = subprocess.run([portier_bin(), "--check", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def listener(self, tls):
        return {"listeners": [{"name": "t", "listen": ["127.0.0.1:0"], "mode": "forward", "tls": tls}]}

    def assertRejected(self, cfg, pointer, words):
        rc, err = self.check(cfg)
        self.assertNotEqual(rc, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("config error: %s: " % pointer)]
        self.assertTrue(lines, "no error at %s in:\n%s" % (pointer, err))
        for w in words:
            self.assertIn(w, lines[0])

    def test_listener_certificates(self):
        cert, key = make_self_signed(self.dir, "proxy")
        other_cert, other_key = make_self_signed(self.dir, "other")
        # relative paths are relative to the config file
        rc, err = self.check(self.listener({"cert_file": "proxy.crt", "key_file": "proxy.key"}))
        self.assertEqual(rc, 0, err)
        missing = os.path.join(self.dir, "missing.crt")
        self.assertRejected(self.listener({"cert_file": missing, "key_file": key}),
                            "/listeners/0/tls", ["cert_file", missing])
        self.assertRejected(self.listener({"cert_file": "missing.crt", "key_file": key}),
                            "/listeners/0/tls", ["cert_file", "missing.crt"])
        self.assertRejected(self.listener({"cert_file": cert, "key_file": other_key}),
                            "/listeners/0/tls", ["key_file", other_key])
        self.assertRejected(self.listener({"cert_file": write_text(os.path.join(self.dir, "junk.crt"), "junk\n"),
                                           "key_file": key}), "/listeners/0/tls", ["cert_file", "junk.crt"])
        self.assertRejected(self.listener({"cert_file": cert}), "/listeners/0/tls", ["key_file"])

    def test_tls_options_only_on_https_hops(self):
        cert, _ = make_self_signed(self.dir, "ca")

        def exits(hop):
            return {"egress": {"default": "fi", "regions": {"fi": {"exits": [{"via": hop}]}}}}

        rc, err = self.check(exits({"url": "https://127.0.0.1:1", "ca_file": "ca.crt", "verify": True,
                                    "server_name": "proxy.test"}))
        self.assertEqual(rc, 0, err)
        rc, err = self.check(exits(["http://127.0.0.1:1", {"url": "https://127.0.0.1:2", "verify": False},
                                    "socks5://127.0.0.1:3"]))
        self.assertEqual(rc, 0, err)
        via = "/egress/regions/fi/exits/0/via"
        self.assertRejected(exits({"url": "http://127.0.0.1:1", "ca_file": cert}), via + "/ca_file", ["https"])
        self.assertRejected(exits(["http://127.0.0.1:1", {"url": "socks5://127.0.0.1:2", "verify": False}]),
                            via + "/1/verify", ["https"])
        self.assertRejected(exits({"url": "http://127.0.0.1:1", "server_name": "x.test"}), via + "/server_name",
                            ["https"])
        missing = os.path.join(self.dir, "no-ca.pem")
        self.assertRejected(exits({"url": "https://127.0.0.1:1", "ca_file": missing}), via, ["ca_file", missing])


class TlsReload(TlsBase):
    def test_reload_rereads_certificates_and_keeps_the_old_one_on_error(self):
        origin = self.start_origin()
        d = self.make_tmpdir()
        cert, key = os.path.join(d, "live.crt"), os.path.join(d, "live.key")
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        p = self.proxy(tls=(cert, key), front=True)
        self.assertCurlOk(self.via_https(p, origin.url + "/echo/before"))

        # a broken certificate file: the reload is refused, the old certificate keeps serving
        write_text(cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        self.sighup(p, FAILED)
        self.assertIn("/listeners/0/tls: cert_file %s" % cert, p.stderr_text())
        self.assertCurlOk(self.via_https(p, origin.url + "/echo/after-broken"))
        self.assertNotIn(RELOADED, p.stderr_text())

        # a new certificate and key: new handshakes use them
        new_cert, new_key = make_self_signed(self.files, "renewed")
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        self.sighup(p, RELOADED)
        r = self.via_https(p, origin.url + "/echo/old-trust")
        self.assertEqual(r.returncode, 60, "the old certificate is gone: %s" % r.describe())
        self.assertCurlOk(self.via_https(p, origin.url + "/echo/new-trust", cafile=new_cert))

    def sighup(self, p, marker, timeout=5.0):
        before = p.stderr_text().count(marker)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while p.stderr_text().count(marker) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertGreater(p.stderr_text().count(marker), before, "no %r after SIGHUP%s" % (marker, p.diag()))


if __name__ == "__main__":
    unittest.main()

"""The PAC script for browsers: GET /proxy.pac from the admin endpoint (no token needed) and, when
pac.listeners says so, from forward listeners (origin-form, no proxy credentials, allow_clients
respected, access-logged as "answer"). Each script is evaluated with node for sample URLs, with
helper functions where dnsResolve() throws: the script must never make a browser wait on DNS."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from tests.integration.helpers import ProxyTestCase
from tests.support.clients import admin_request, fetch
from tests.support.policy_files import hash_password, write_htpasswd, write_json_atomic
from tests.support.portier_proc import REPO
from tests.support.tls import make_self_signed

TOKEN = "pac-test-admin-token-0123456789"
PAC_TYPE = "application/x-ns-proxy-autoconfig"
HARNESS = str(REPO / "tests" / "support" / "pac_harness.js")
NODE = shutil.which("node")
needs_node = unittest.skipUnless(NODE, "node is not installed: the PAC script cannot be evaluated")


def host_of(url):
    """The host a browser passes to FindProxyForURL: lowercase, IPv6 without brackets."""
    rest = url.split("://", 1)[1].split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:rest.index("]")]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def evaluate(script, urls):
    """{url: FindProxyForURL(url, host)} as node computes it."""
    with tempfile.NamedTemporaryFile("w", suffix=".pac", delete=False) as f:
        f.write(script)
    try:
        cases = [[u, host_of(u)] for u in urls]
        p = subprocess.run([NODE, HARNESS, f.name], input=json.dumps(cases).encode(), capture_output=True,
                           timeout=30)
        if p.returncode != 0:
            raise AssertionError("node failed on the PAC script: %s\nscript:\n%s" % (p.stderr.decode(), script))
        return dict(zip(urls, json.loads(p.stdout)))
    finally:
        os.unlink(f.name)


class PacBase(ProxyTestCase):
    token = None

    def start(self, overrides=None, admin=True):
        cfg = dict(overrides or {})
        if admin:
            cfg["admin"] = {"listen": "127.0.0.1:0"}
            if self.token:
                cfg["admin"]["token"] = self.token
        p = self.start_portier(cfg)
        if admin:
            self.admin = p.admin_addr
            self.assertIsNotNone(self.admin, p.diag())
        return p

    def admin_get(self, path, method="GET", token=None):
        return admin_request(self.admin, path, method, token)

    def listener_get(self, path="/proxy.pac", args=(), index=0, scheme="http"):
        """An origin-form request straight to a proxy listener (curl without -x), as a browser
        fetches a PAC URL."""
        _, host, port = self.portier.listeners[index]
        return fetch("%s://%s:%d%s" % (scheme, host, port, path), args=list(args))

    def proxy_addr(self, index=0):
        _, host, port = self.portier.listeners[index]
        return "%s:%d" % (host, port)

    def assertPac(self, status, content_type, body):
        self.assertEqual(status, 200, body + self.diag())
        self.assertEqual(content_type, PAC_TYPE)
        self.assertIn("function FindProxyForURL(url, host)", body)
        self.assertNotIn("dnsResolve(", body)

    def check_cases(self, script, expected):
        got = evaluate(script, list(expected))
        wrong = {u: (got[u], want) for u, want in expected.items() if got[u] != want}
        self.assertEqual(wrong, {}, "url: (got, expected)\nscript:\n%s" % script)


class PacOnAdmin(PacBase):
    token = TOKEN

    def test_served_without_the_token_and_other_paths_still_need_it(self):
        self.start()
        status, headers, body = self.admin_get("/proxy.pac")
        self.assertPac(status, headers["Content-Type"], body)
        self.assertEqual(headers["Cache-Control"], "max-age=300")
        self.assertIn('var PROXY = "PROXY %s";' % self.proxy_addr(), body)
        status, headers, body = self.admin_get("/proxy.pac", method="HEAD")
        self.assertEqual((status, headers["Content-Type"], body), (200, PAC_TYPE, ""))
        self.assertGreater(int(headers["Content-Length"]), 500)
        self.assertEqual(self.admin_get("/metrics")[0], 401, "the token still guards the rest")
        self.assertEqual(self.admin_get("/proxy.pac", method="POST")[0], 401)
        self.assertEqual(self.admin_get("/metrics", token=TOKEN)[0], 200)

    @needs_node
    def test_default_script_sends_local_names_and_private_addresses_direct(self):
        self.start()
        status, headers, body = self.admin_get("/proxy.pac")
        self.assertPac(status, headers["Content-Type"], body)
        proxy = "PROXY " + self.proxy_addr()
        self.check_cases(body, {
            "http://example.com/": proxy,
            "https://www.example.com/login": proxy,
            "http://EXAMPLE.org./": proxy,
            "http://localhost:8080/": "DIRECT",
            "http://app.localhost/": "DIRECT",
            "http://127.0.0.1/": "DIRECT",
            "http://127.8.9.10:5000/": "DIRECT",
            "http://[::1]:8080/": "DIRECT",
            "http://intranet/": "DIRECT",
            "http://printer:631/": "DIRECT",
            "http://10.1.2.3/": "DIRECT",
            "http://172.16.0.1/": "DIRECT",
            "http://172.31.255.254/": "DIRECT",
            "http://172.32.0.1/": proxy,
            "http://192.168.1.1/": "DIRECT",
            "http://169.254.169.254/latest/": "DIRECT",
            "http://100.64.0.1/": "DIRECT",
            "http://8.8.8.8/": proxy,
            "http://[2001:db8::1]/": proxy,
            "ftp://files.example.net/": proxy,
        })

    @needs_node
    def test_configured_section(self):
        self.start({
            "listeners": [{"name": "a", "listen": ["127.0.0.1:0"]}, {"name": "b", "listen": ["127.0.0.1:0"]},
                          {"name": "site", "listen": ["127.0.0.1:0"], "mode": "reverse"}],
            "reverse": {"routes": [{"pool": "p"}], "pools": {"p": {"backends": ["127.0.0.1:9"]}}},
            "ssrf": {"allow": ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]},
            "pac": {"direct": ["corp.example", "*.lab.example", "203.0.113.0/24", "198.51.100.7"],
                    "direct_plain_hosts": False, "fallback_direct": True},
        })
        status, headers, body = self.admin_get("/proxy.pac")
        self.assertPac(status, headers["Content-Type"], body)
        # Both forward listeners, in order, then DIRECT; never the reverse listener.
        proxy = "PROXY %s; PROXY %s; DIRECT" % (self.proxy_addr(0), self.proxy_addr(1))
        self.assertNotIn(self.proxy_addr(2), body)
        self.check_cases(body, {
            "http://corp.example/": "DIRECT",
            "http://www.corp.example/": "DIRECT",
            "https://a.b.corp.example:8443/": "DIRECT",
            "http://WWW.Corp.Example./": "DIRECT",
            "http://notcorp.example/": proxy,
            "http://corp.example.evil.net/": proxy,
            "http://lab.example/": proxy,
            "http://ci.lab.example/": "DIRECT",
            "http://203.0.113.9/": "DIRECT",
            "http://198.51.100.7/": "DIRECT",
            "http://198.51.100.8/": proxy,
            "http://intranet/": proxy,       # direct_plain_hosts: false
            "http://localhost/": "DIRECT",   # always
            "http://10.20.1.1/": proxy,      # opened in ssrf.allow: portier reaches it
            "http://10.21.0.1/": "DIRECT",   # private, refused by the SSRF guard: DIRECT
            "http://example.com/": proxy,
        })

    def test_reload_changes_the_script(self):
        p = self.start({"pac": {"direct": ["old.example"]}})
        body = self.admin_get("/proxy.pac")[2]
        self.assertIn('"old.example"', body)
        with open(p.config_path) as f:
            cfg = json.load(f)
        cfg["pac"] = {"direct": ["new.example"], "proxy": "proxy.corp.example:3128"}
        write_json_atomic(p.config_path, cfg)
        status, _, out = self.admin_get("/reload", method="POST", token=TOKEN)
        self.assertEqual((status, out), (200, "reloaded\n"), p.diag())
        body = self.admin_get("/proxy.pac")[2]
        self.assertIn('"new.example"', body)
        self.assertNotIn('"old.example"', body)
        self.assertIn('var PROXY = "PROXY proxy.corp.example:3128";', body)

    def test_configured_path(self):
        self.start({"pac": {"path": "/wpad.dat"}})
        status, headers, body = self.admin_get("/wpad.dat")
        self.assertPac(status, headers["Content-Type"], body)
        self.assertEqual(self.admin_get("/proxy.pac")[0], 401, "the old path is nothing special any more")


class PacOnListener(PacBase):
    def test_not_served_unless_enabled(self):
        self.start(admin=False)
        r = self.listener_get()
        self.assertEqual(r.status, 400, r.describe())
        self.assertIn(b"this is a forward proxy", r.body)
        rec = self.wait_record(lambda x: x.get("status") == 400)
        self.assertEqual(rec["decision"], "error")

    @needs_node
    def test_served_and_logged_when_enabled(self):
        origin = self.start_origin()
        self.start({"pac": {"listeners": True, "direct": ["corp.example"]}}, admin=False)
        r = self.listener_get("/proxy.pac?v=1")
        self.assertEqual(r.status, 200, r.describe())
        self.assertEqual(r.header("Content-Type"), PAC_TYPE)
        self.assertEqual(r.header("Cache-Control"), "max-age=300")
        script = r.body.decode()
        proxy = "PROXY " + self.proxy_addr()  # the Host curl sent
        self.check_cases(script, {"http://example.com/": proxy, "http://www.corp.example/": "DIRECT",
                                  "http://intranet/": "DIRECT", "http://127.0.0.1:8080/": "DIRECT"})
        rec = self.wait_record(lambda x: x.get("decision") == "answer")
        self.assertEqual((rec["method"], rec["path"], rec["status"]), ("GET", "/proxy.pac", 200))
        # HEAD, and the connection stays usable for the PAC and for proxying.
        c = self.connect()
        c.send(b"HEAD /proxy.pac HTTP/1.1\r\nHost: x\r\n\r\n")
        resp = c.read_response("HEAD")
        self.assertStatus(resp, 200)
        self.assertEqual((resp.header("Content-Type"), resp.body), (PAC_TYPE, b""))
        self.assertEqual(int(resp.header("Content-Length")), len(script) - len(self.proxy_addr()) + len("x:80"))
        c.send(b"GET /proxy.pac HTTP/1.1\r\nHost: proxy.corp.example:3128\r\n\r\n")
        resp = c.read_response()
        self.assertStatus(resp, 200)
        self.assertIn(b'var PROXY = "PROXY proxy.corp.example:3128";', resp.body)
        c.send(b"GET %s/x HTTP/1.1\r\nHost: %s\r\n\r\n" % (origin.url.encode(), origin.url.split("//")[1].encode()))
        self.assertStatus(c.read_response(), 200, "proxying on the same connection")

    def test_other_methods_and_paths_keep_the_old_answer(self):
        self.start({"pac": {"listeners": ["test"]}}, admin=False)
        self.assertEqual(self.listener_get("/other.pac").status, 400)
        self.assertEqual(self.listener_get(args=["-X", "POST", "-d", "x"]).status, 400)

    def test_no_proxy_credentials_but_allow_clients_holds(self):
        files = self.make_tmpdir()
        users = write_htpasswd(os.path.join(files, "users"), {"alice": hash_password("alice-secret-1", "sha512")})
        self.start({"auth": {"users_file": users},
                    "listeners": [{"name": "test", "listen": ["127.0.0.1:0"], "auth": "required"},
                                  {"name": "closed", "listen": ["127.0.0.1:0"], "allow_clients": ["192.0.2.0/24"]}],
                    "pac": {"listeners": True}}, admin=False)
        r = self.listener_get()
        self.assertEqual(r.status, 200, "a browser fetches the PAC before it has proxy credentials: " + r.describe())
        r = self.listener_get(index=1)
        self.assertEqual(r.status, 403, r.describe())
        rec = self.wait_record(lambda x: x.get("listener") == "closed")
        self.assertEqual((rec["decision"], rec["rule"]), ("deny", "client_network"))

    def test_https_proxy_listener_is_named_https(self):
        files = self.make_tmpdir()
        cert, key = make_self_signed(files, "proxy")
        self.start({"listeners": [{"name": "test", "listen": ["127.0.0.1:0"],
                                   "tls": {"cert_file": cert, "key_file": key}}],
                    "pac": {"listeners": True}}, admin=False)
        r = self.listener_get(scheme="https", args=["--cacert", cert])
        self.assertEqual(r.status, 200, r.describe())
        self.assertIn('var PROXY = "HTTPS %s";' % self.proxy_addr(), r.body.decode())

    def test_sighup_applies_a_changed_section(self):
        p = self.start({"pac": {"listeners": True, "direct": ["before.example"]}}, admin=False)
        self.assertIn(b'"before.example"', self.listener_get().body)
        with open(p.config_path) as f:
            cfg = json.load(f)
        cfg["pac"] = {"listeners": False}
        write_json_atomic(p.config_path, cfg)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "portier: info: reloaded " not in p.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("portier: info: reloaded ", p.stderr_text(), p.diag())
        self.assertEqual(self.listener_get().status, 400, "no longer served on the listener")

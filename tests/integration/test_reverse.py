"""Reverse mode (the contract is /work/notes/reverse_spec.md): routing by host and path, prefix stripping,
the Host sent to backends, path normalization, forwarded headers, hop-by-hop headers, WebSocket,
rules, TLS termination with SNI, TLS to backends, redirect listeners, access log fields, CONNECT and
config errors. Balancing, health checks, retries and reloads are in test_reverse_lb.py.

Every backend is a tests.support.backends.Backend on 127.0.0.1:0 that answers with a JSON echo of
what it received and an `X-Backend: <name>` header, so each test asserts on what came back over the
wire (and on what the backend saw)."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import unittest

from tests.integration.helpers import ProxyTestCase, skip_unless_ipv6
from tests.support.backends import Backend, DeadPort, ws_connect, ws_accept_value
from tests.support.clients import HttpConn, fetch
from tests.support.origins import header_values, header_tokens
from tests.support.policy_files import hash_password, write_htpasswd, write_json_atomic
from tests.support.portier_proc import portier_bin
from tests.support.tls import make_ca, make_leaf, tls_client_context, tls_connect

RELOADED = "portier: info: reloaded "
RELOAD_FAILED = "portier: error: reload failed"


def req_bytes(method, target, host="app.test", headers=(), body=b"", version="HTTP/1.1"):
    """A request as a reverse proxy gets it (origin-form unless target is a URL). host=None: no Host.
    headers: 'Name: value' strings."""
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    lines += list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def joined(headers, name):
    """All values of a header joined with ", " (None when absent)."""
    vals = header_values(headers, name)
    return ", ".join(vals) if vals else None


def site_listener(name="site", listen="127.0.0.1:0", **kw):
    d = {"name": name, "listen": [listen], "mode": "reverse"}
    d.update(kw)
    return d


def pool(*backends, balance=None, **kw):
    """A pool of Backend objects (or address strings / backend dicts)."""
    out = {"backends": [b.address if isinstance(b, (Backend, DeadPort)) else b for b in backends]}
    if balance:
        out["balance"] = balance
    out.update(kw)
    return out


class ReverseBase(ProxyTestCase):
    """Fixtures for reverse-mode tests. No test methods here (test_reverse_lb imports it)."""

    def setUp(self):
        self.files = self.make_tmpdir(prefix="portier-reverse-")

    # -- fixtures --------------------------------------------------------------------------------
    def backend(self, name, **kw):
        b = Backend(name, **kw)
        self.addCleanup(b.stop)
        return b

    def dead_port(self):
        d = DeadPort()
        self.addCleanup(d.release)
        return d

    def reverse_config(self, routes, pools, listeners=None, reverse=None, **top):
        cfg = {"listeners": listeners or [site_listener()],
               "reverse": dict({"routes": routes, "pools": pools}, **(reverse or {}))}
        cfg.update(top)
        return cfg

    def start_reverse(self, routes, pools, listeners=None, reverse=None, **top):
        return self.start_portier(self.reverse_config(routes, pools, listeners, reverse, **top))

    def listener_addr(self, name, p=None):
        p = p or self.portier
        for n, host, port in p.listeners:
            if n == name:
                return host, port
        self.fail("no listener %r in %r" % (name, p.listeners))

    # -- clients ---------------------------------------------------------------------------------
    def conn(self, listener=None, source=None, p=None, timeout=10.0):
        """A client connection to a listener (default the first), optionally from a source address
        such as 127.0.0.5."""
        p = p or self.portier
        host, port = self.listener_addr(listener, p) if listener else (p.host, p.port)
        sock = None
        if source:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.bind((source, 0))
            sock.connect((host, port))
        c = HttpConn(host, port, timeout=timeout, sock=sock)
        self.addCleanup(c.close)
        return c

    def request(self, target, host="app.test", method="GET", headers=(), body=b"", conn=None,
                listener=None, source=None):
        c = conn or self.conn(listener, source)
        c.send(req_bytes(method, target, host, headers, body))
        return c.read_response(method)

    def get_ok(self, target, host="app.test", backend=None, **kw):
        """A request that must be answered 200 by a backend (by `backend` when given); returns the
        backend's JSON echo."""
        r = self.request(target, host, **kw)
        self.assertStatus(r, 200, "%s %s (Host %s)" % (kw.get("method", "GET"), target, host))
        if backend is not None:
            self.assertEqual(r.header("X-Backend"), backend, "%s (Host %s) went to the wrong backend: %r"
                             % (target, host, r))
        self.assertIsNotNone(r.header("X-Backend"), "answer not from a backend: %r" % r)
        return r.json()

    # -- reload ----------------------------------------------------------------------------------
    def reload_with(self, config, timeout=5.0):
        """Write a full config and SIGHUP; returns once portier says it reloaded."""
        p = self.portier
        before = p.stderr_text().count(RELOADED)
        failed = p.stderr_text().count(RELOAD_FAILED)
        write_json_atomic(p.config_path, config)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while p.stderr_text().count(RELOADED) <= before and time.monotonic() < deadline:
            if p.stderr_text().count(RELOAD_FAILED) > failed:
                self.fail("reload failed:%s" % self.diag())
            time.sleep(0.02)
        self.assertGreater(p.stderr_text().count(RELOADED), before, "no %r after SIGHUP%s" % (RELOADED, self.diag()))

    def assertBackendSaw(self, b, path, msg=""):
        self.assertIn(path, b.paths(), "%s: backend %s did not see %r; it saw %r" % (msg, b.name, path,
                                                                                     b.paths()[-10:]))

    def assertUntouched(self, *backends, msg=""):
        for b in backends:
            self.assertEqual(b.count(), 0, "%s: backend %s got requests: %r%s" % (
                msg, b.name, b.paths()[-10:], self.diag()))


# ---------------------------------------------------------------------------------------------
# routing

class Routing(ReverseBase):
    def test_host_routing_exact_wildcard_default(self):
        exact, wild, dflt = self.backend("exact"), self.backend("wild"), self.backend("dflt")
        self.start_reverse(
            [{"name": "exact", "host": "app.test", "pool": "exact"},
             {"name": "wild", "host": "*.app.test", "pool": "wild"},
             {"name": "default", "pool": "dflt"}],
            {"exact": pool(exact), "wild": pool(wild), "dflt": pool(dflt)})
        cases = [("app.test", "exact"), ("APP.Test:8080", "exact"), ("www.app.test", "wild"),
                 ("api.app.test:443", "wild"), ("other.test", "dflt"), ("xapp.test", "dflt"),
                 ("app.test.example", "dflt")]
        for host, want in cases:
            with self.subTest(host=host):
                got = self.get_ok("/h/%s" % host.replace(":", "_"), host=host, backend=want)
                self.assertEqual(got["path"], "/h/%s" % host.replace(":", "_"))
        # absolute-form: the host comes from the URL; the backend gets origin-form
        r = self.request("http://www.app.test/abs?q=1", host="app.test")
        self.assertStatus(r, 200, "absolute-form request")
        self.assertEqual(r.header("X-Backend"), "wild", "absolute-form routes by the URL's host: %r" % r)
        self.assertEqual(r.json()["path"], "/abs?q=1", "the backend gets origin-form")

    def test_no_route_is_404_and_route_listeners(self):
        a = self.backend("a")
        self.start_reverse(
            [{"name": "only-site", "host": "app.test", "pool": "a", "listeners": ["site"]}],
            {"a": pool(a)},
            listeners=[site_listener("site"), site_listener("other")])
        self.get_ok("/x", host="app.test", backend="a", listener="site")
        r = self.request("/x", host="unknown.test", listener="site")
        self.assertStatus(r, 404, "no route for the host unknown.test")
        r = self.request("/x", host="app.test", listener="other")
        self.assertStatus(r, 404, "the only route is limited to listener site; request came to other")
        self.assertEqual(a.paths(), ["/x"], "the backend saw only the routed request")

    def test_path_routing_longest_prefix_and_regex(self):
        bs = {n: self.backend(n) for n in ("api", "users", "v", "web")}
        self.start_reverse(
            [{"name": "api", "host": "app.test", "path": "/api/", "pool": "api"},
             {"name": "users", "host": "app.test", "path": "/api/users/", "pool": "users"},
             {"name": "vre", "host": "app.test", "path": "/api/", "path_regex": "^/api/v[0-9]+/", "pool": "v"},
             {"name": "root", "host": "app.test", "pool": "web"}],
            {n: pool(b) for n, b in bs.items()})
        cases = [("/api/x", "api"), ("/api/", "api"), ("/api/users/7", "users"), ("/api/users", "api"),
                 ("/api/v2/x", "v"), ("/api/v10/", "v"), ("/api/v2", "api"), ("/api/vx/y", "api"),
                 ("/apix", "web"), ("/api", "web"), ("/", "web"), ("/other/api/v2/", "web"),
                 ("/api/x?next=/api/users/", "api")]
        for path, want in cases:
            with self.subTest(path=path):
                got = self.get_ok(path, backend=want)
                self.assertEqual(got["path"], path, "no strip_prefix: the backend gets the path as sent")


class Rewriting(ReverseBase):
    def test_strip_prefix_on_and_off(self):
        s, k, v = self.backend("strip"), self.backend("keep"), self.backend("v1")
        self.start_reverse(
            [{"host": "app.test", "path": "/api/", "pool": "s", "strip_prefix": True},
             {"host": "app.test", "path": "/raw/", "pool": "k", "strip_prefix": False},
             {"host": "app.test", "path": "/v1", "pool": "v", "strip_prefix": True}],
            {"s": pool(s), "k": pool(k), "v": pool(v)})
        cases = [("/api/users", "strip", "/users"), ("/api/users?x=1&y=/api/", "strip", "/users?x=1&y=/api/"),
                 ("/api/", "strip", "/"), ("/raw/users", "keep", "/raw/users"),
                 ("/v1/users", "v1", "/users"), ("/v1", "v1", "/")]
        for path, want, seen in cases:
            with self.subTest(path=path):
                got = self.get_ok(path, backend=want)
                self.assertEqual(got["path"], seen, "path at the backend for %s" % path)

    def test_host_header_preserve_backend_literal(self):
        b = self.backend("b")
        self.start_reverse(
            [{"host": "keep.test", "pool": "p"},
             {"host": "keep2.test", "pool": "p", "host_header": "preserve"},
             {"host": "be.test", "pool": "p", "host_header": "backend"},
             {"host": "lit.test", "pool": "p", "host_header": "internal.example"}],
            {"p": pool(b)})
        cases = [("keep.test", "keep.test"), ("keep.test:8080", "keep.test:8080"), ("keep2.test", "keep2.test"),
                 ("be.test", b.address), ("lit.test", "internal.example")]
        for sent, seen in cases:
            with self.subTest(host=sent):
                got = self.get_ok("/host", host=sent, backend="b")
                self.assertEqual(header_values(got["headers"], "host"), [seen],
                                 "Host at the backend for Host: %s" % sent)

    def test_path_normalization(self):
        api, admin, web = self.backend("api"), self.backend("admin"), self.backend("web")
        self.start_reverse(
            [{"name": "api", "host": "app.test", "path": "/api/", "pool": "api"},
             {"name": "admin", "host": "app.test", "path": "/admin", "pool": "admin"},
             {"name": "root", "host": "app.test", "pool": "web"}],
            {"api": pool(api), "admin": pool(admin), "web": pool(web)})
        cases = [
            ("/api/../admin", "admin", "/admin"),
            ("/api/%2e%2e/admin", "admin", "/admin"),
            ("/api/%2E%2E/admin/x", "admin", "/admin/x"),
            ("/api/./x/../y?q=/../%2e%2e", "api", "/api/y?q=/../%2e%2e"),
            ("/%61pi/x", "api", "/api/x"),
            ("/api/a%2Fb", "api", "/api/a%2Fb"),
            ("/api/x%2F..%2Fadmin", "api", "/api/x%2F..%2Fadmin"),
        ]
        for path, want, seen in cases:
            with self.subTest(path=path):
                got = self.get_ok(path, backend=want)
                self.assertEqual(got["path"], seen, "normalized path at the backend for %s" % path)
        for path in ("/../x", "/api/../../x", "/%2e%2e/x", "/api/%2e%2e/%2E%2E/admin"):
            with self.subTest(path=path):
                r = self.request(path)
                self.assertStatus(r, 400, "a path above the root: %s" % path)
        self.assertFalse([p for b in (api, admin, web) for p in b.paths()
                          if set(p.split("?")[0].split("/")) & {".", ".."}],
                         "a backend saw a dot segment: %r" % [b.paths() for b in (api, admin, web)])


class Passthrough(ReverseBase):
    def test_keepalive_bodies_statuses_and_pooled_backend_connection(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)})
        c = self.conn()
        for i in range(5):
            got = self.get_ok("/ka/%d" % i, conn=c, backend="b")
            self.assertEqual(got["path"], "/ka/%d" % i)
        body = os.urandom(100000)
        r = self.request("/upload", method="POST", body=body, conn=c)
        self.assertStatus(r, 200, "POST with a body")
        self.assertEqual((r.json()["body_length"], r.json()["body_sha256"]),
                         (len(body), hashlib.sha256(body).hexdigest()), "request body at the backend")
        c.send(b"POST /chunked HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        r = c.read_response()
        self.assertStatus(r, 200, "chunked POST")
        self.assertEqual(r.json()["body_length"], 11)
        r = self.request("/status/500", conn=c)
        self.assertStatus(r, 500, "a backend's 500 is relayed")
        self.assertEqual(r.header("X-Backend"), "b")
        r = self.request("/status/404", conn=c)
        self.assertStatus(r, 404, "a backend's 404 is relayed")
        self.assertEqual(r.header("X-Backend"), "b", "the 404 comes from the backend, not from routing")
        conns = {h["conn_id"] for h in b.heads}
        self.assertLessEqual(len(conns), 2, "9 sequential requests on one client connection should reuse "
                             "pooled backend connections; the backend saw %d connections" % len(conns))

    def test_connect_is_405(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)})
        r = self.request("app.test:443", host="app.test:443", method="CONNECT")
        self.assertStatus(r, 405, "CONNECT to a reverse listener")
        self.assertUntouched(b)


# ---------------------------------------------------------------------------------------------
# headers to the backend

class ForwardedHeaders(ReverseBase):
    def test_untrusted_client_headers_replaced(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)}, reverse={"trusted_proxies": ["127.0.0.2/32"]})
        got = self.get_ok("/plain", host="app.test")
        h = got["headers"]
        self.assertEqual(joined(h, "x-forwarded-for"), "127.0.0.1")
        self.assertEqual(joined(h, "x-forwarded-proto"), "http")
        self.assertEqual(joined(h, "x-forwarded-host"), "app.test")
        self.assertEqual(joined(h, "forwarded"), "for=127.0.0.1;proto=http;host=app.test")
        self.assertNoHeader(h, "via", "reverse mode adds no Via:")
        # forged headers from a client that is not a trusted proxy are replaced
        got = self.get_ok("/forged", host="app.test", headers=[
            "X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.test",
            "Forwarded: for=1.2.3.4;proto=https;host=evil.test"])
        h = got["headers"]
        self.assertEqual(joined(h, "x-forwarded-for"), "127.0.0.1", "untrusted X-Forwarded-For is replaced")
        self.assertEqual(joined(h, "x-forwarded-proto"), "http", "untrusted X-Forwarded-Proto is replaced")
        self.assertEqual(joined(h, "x-forwarded-host"), "app.test", "untrusted X-Forwarded-Host is replaced")
        self.assertEqual(joined(h, "forwarded"), "for=127.0.0.1;proto=http;host=app.test",
                         "untrusted Forwarded is replaced")

    def test_trusted_proxy_headers_appended(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)}, reverse={"trusted_proxies": ["127.0.0.1/32"]})
        forged = ["X-Forwarded-For: 1.2.3.4", "X-Forwarded-Proto: https", "X-Forwarded-Host: orig.test",
                  "Forwarded: for=1.2.3.4;proto=https;host=orig.test"]
        h = self.get_ok("/trusted", host="app.test", headers=forged)["headers"]
        self.assertEqual(joined(h, "x-forwarded-for"), "1.2.3.4, 127.0.0.1", "trusted: client appended")
        self.assertEqual(joined(h, "x-forwarded-proto"), "https", "trusted: incoming X-Forwarded-Proto kept")
        self.assertEqual(joined(h, "x-forwarded-host"), "orig.test", "trusted: incoming X-Forwarded-Host kept")
        self.assertEqual(joined(h, "forwarded"),
                         "for=1.2.3.4;proto=https;host=orig.test, for=127.0.0.1;proto=http;host=app.test",
                         "trusted: our Forwarded element appended")
        # the same portier, a client outside trusted_proxies
        h = self.get_ok("/untrusted", host="app.test", headers=forged, source="127.0.0.3")["headers"]
        self.assertEqual(joined(h, "x-forwarded-for"), "127.0.0.3", "untrusted 127.0.0.3: replaced")
        self.assertEqual(joined(h, "x-forwarded-proto"), "http")
        self.assertEqual(joined(h, "x-forwarded-host"), "app.test")
        self.assertEqual(joined(h, "forwarded"), "for=127.0.0.3;proto=http;host=app.test")

    @skip_unless_ipv6
    def test_ipv6_client_quoted_in_forwarded(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)}, listeners=[site_listener(listen="[::1]:0")])
        h = self.get_ok("/v6", host="app.test")["headers"]
        self.assertEqual(joined(h, "x-forwarded-for"), "::1")
        self.assertEqual(joined(h, "forwarded"), 'for="[::1]";proto=http;host=app.test')

    def test_hop_by_hop_headers_not_passed(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)})
        got = self.get_ok("/hop", headers=["Connection: keep-alive, X-Foo", "X-Foo: bar", "Keep-Alive: timeout=5",
                                           "TE: trailers", "Proxy-Connection: keep-alive", "X-End: kept"])
        h = got["headers"]
        for name in ("x-foo", "keep-alive", "te", "proxy-connection"):
            self.assertNoHeader(h, name, "request to the backend:")
        self.assertEqual(header_values(h, "x-end"), ["kept"], "end-to-end header kept")
        self.assertFalse(set(header_tokens(h, "connection")) - {"keep-alive", "close"},
                         "Connection tokens at the backend: %r" % header_values(h, "connection"))
        r = self.request("/hop-response")
        self.assertStatus(r, 200)
        for name in ("x-resp-hop", "keep-alive", "proxy-connection"):
            self.assertNoHeader(r.headers, name, "response to the client:")
        self.assertEqual(r.header("X-End-To-End"), "kept")
        self.assertFalse(set(r.tokens("connection")) - {"keep-alive", "close"},
                         "Connection tokens at the client: %r" % r.header_all("connection"))

    def test_no_via_in_reverse_mode(self):
        # spec: "No Via in reverse mode"; README: "Hop-by-hop fields are removed as in forward mode;
        # no `Via` is added" -- neither on the request to the backend nor on the response.
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)})
        r = self.request("/via")
        self.assertStatus(r, 200)
        self.assertNoHeader(r.json()["headers"], "via", "request to the backend:")
        self.assertNoHeader(r.headers, "via", "response to the client (reverse mode adds no Via):")


# ---------------------------------------------------------------------------------------------
# WebSocket

class WebSocket(ReverseBase):
    def exchange(self, ws, b):
        self.assertEqual(ws.status, 101, "WebSocket upgrade through portier: %r%s" % (ws.response, self.diag()))
        self.assertTrue(ws.accept_ok, "Sec-WebSocket-Accept %r for key %r (want %r)" % (
            ws.response.header("sec-websocket-accept"), ws.key, ws_accept_value(ws.key)))
        ws.send_text("hello")
        self.assertEqual(ws.recv_text(timeout=5), "hello")
        blob = os.urandom(70000)
        ws.send_binary(blob)
        self.assertEqual(ws.recv(timeout=5), (2, blob), "binary echo of 70000 bytes")
        for i in range(3):
            ws.send_text("msg-%d" % i)
            self.assertEqual(ws.recv_text(timeout=5), "msg-%d" % i)
        self.assertEqual(ws.close(), 1000, "close frame answered through the proxy")
        head = b.heads[-1]
        self.assertIn("websocket", header_tokens(head["headers"], "upgrade"), "Upgrade reached the backend")
        self.assertIn("upgrade", header_tokens(head["headers"], "connection"), "Connection: Upgrade reached it")
        self.assertEqual(len(header_values(head["headers"], "sec-websocket-key")), 1)
        self.assertEqual(b.ws_messages, 5)

    def test_websocket_echo(self):
        b = self.backend("ws")
        self.start_reverse([{"host": "app.test", "pool": "p"}], {"p": pool(b)})
        ws = ws_connect(self.portier.host, self.portier.port, "/chat?room=1", "app.test")
        self.addCleanup(ws.abort)
        self.exchange(ws, b)
        self.assertEqual(b.heads[-1]["path"], "/chat?room=1")

    def test_websocket_echo_over_tls_listener(self):
        ca = make_ca(self.files)
        cert, key, chain = make_leaf(self.files, ca, "site", cn="app.test", sans=("DNS:app.test",))
        b = self.backend("ws")
        self.start_reverse([{"host": "app.test", "pool": "p"}], {"p": pool(b)},
                           listeners=[site_listener(tls={"certificates": [{"cert_file": chain, "key_file": key}]})])
        ws = ws_connect(self.portier.host, self.portier.port, "/chat", "app.test",
                        tls_context=tls_client_context(ca[0]), server_name="app.test")
        self.addCleanup(ws.abort)
        self.exchange(ws, b)
        self.assertEqual(joined(b.heads[-1]["headers"], "x-forwarded-proto"), "https")

    def test_refused_upgrade_is_relayed_and_connection_closes(self):
        b = self.backend("ws")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)})
        ws = ws_connect(self.portier.host, self.portier.port, "/ws-deny", "app.test")
        self.addCleanup(ws.abort)
        self.assertEqual(ws.status, 403, "the backend's non-101 answer is relayed: %r" % ws.response)
        self.assertEqual(ws.response.body, b"no websocket here\n")
        self.assertClosed(ws.conn, timeout=3.0, msg="after a refused upgrade the connection closes")


# ---------------------------------------------------------------------------------------------
# rules

class Rules(ReverseBase):
    def test_deny_rules_path_method_client(self):
        b = self.backend("b")
        self.start_reverse([{"pool": "p"}], {"p": pool(b)}, rules=[
            {"id": "no-admin", "when": {"url": "^https?://[^/]+/admin"}, "action": "deny"},
            {"id": "no-delete", "when": {"method": ["DELETE"]}, "action": "deny"},
            {"id": "no-nine", "when": {"client": "127.0.0.9/32"}, "action": "deny"}])
        allowed = 0
        for path in ("/admin", "/admin/users?x=1", "/public/../admin/x", "/%61dmin/x"):
            with self.subTest(path=path):
                r = self.request(path)
                self.assertStatus(r, 403, "rule no-admin for %s" % path)
                self.assertIn(b"no-admin", r.body, "block page names the rule")
        rec = self.wait_record(lambda x: x["status"] == 403 and x["rule"] == "no-admin")
        self.assertEqual(rec["decision"], "deny", rec)
        self.assertStatus(self.request("/thing", method="DELETE"), 403, "rule no-delete")
        self.get_ok("/thing", backend="b")
        allowed += 1
        self.get_ok("/administrator-guide/../ok", backend="b")   # normalized to /ok
        allowed += 1
        r = self.request("/thing", source="127.0.0.9")
        self.assertStatus(r, 403, "rule no-nine for client 127.0.0.9")
        self.assertIn(b"no-nine", r.body)
        self.get_ok("/thing", backend="b", source="127.0.0.8")
        allowed += 1
        self.assertEqual(b.count(), allowed, "denied requests must not reach the backend: %r" % b.paths())
        self.assertFalse([p for p in b.paths() if "admin" in p], b.paths())


# ---------------------------------------------------------------------------------------------
# TLS

class TlsTermination(ReverseBase):
    def test_tls_listener_sni_certificates_and_forwarded_proto(self):
        ca = make_ca(self.files)
        a_cert, a_key, a_chain = make_leaf(self.files, ca, "a", cn="a.test", sans=("DNS:a.test",))
        b_cert, b_key, b_chain = make_leaf(self.files, ca, "b", cn="b.test", sans=("DNS:b.test", "DNS:*.b.test"))
        be = self.backend("be")
        tls = {"certificates": [{"cert_file": a_chain, "key_file": a_key},
                                {"cert_file": b_chain, "key_file": b_key}],
               "ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
               "ciphersuites": "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"}
        p = self.start_reverse([{"pool": "p"}], {"p": pool(be)}, listeners=[site_listener(tls=tls)])
        ctx = tls_client_context(ca[0], alpn=("h2", "http/1.1"))
        ctx.check_hostname = False       # verify the chain, look at the names ourselves
        cases = [("a.test", "a.test"), ("b.test", "b.test"), ("x.b.test", "b.test"), ("y.x.b.test", "a.test"),
                 ("zzz.test", "a.test"), (None, "a.test")]
        for sni, want in cases:
            with self.subTest(sni=sni):
                s = tls_connect(p.host, p.port, ctx, server_name=sni)
                c = HttpConn(None, None, sock=s)
                self.addCleanup(c.close)
                names = [v for k, v in s.getpeercert().get("subjectAltName", ()) if k == "DNS"]
                self.assertIn(want, names, "SNI %r got the certificate for %r" % (sni, names))
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                if s.version() == "TLSv1.3":
                    self.assertIn(s.cipher()[0], ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"),
                                  "ciphersuites restricts TLS 1.3 suites")
                host = sni or "app.test"
                c.send(req_bytes("GET", "/tls", host=host))
                r = c.read_response()
                self.assertStatus(r, 200, "request over TLS (SNI %r)" % sni)
                h = r.json()["headers"]
                self.assertEqual(joined(h, "x-forwarded-proto"), "https")
                self.assertEqual(joined(h, "forwarded"), "for=127.0.0.1;proto=https;host=%s" % host)
        # curl with real name resolution to the listener and certificate verification
        r = fetch("https://a.test:%d/curl?x=1" % p.port,
                  args=["--resolve", "a.test:%d:127.0.0.1" % p.port, "--cacert", ca[0]])
        self.assertEqual((r.returncode, r.status), (0, 200), r.describe())
        self.assertEqual(r.json()["path"], "/curl?x=1")
        r = fetch("https://b.test:%d/curl-b" % p.port,
                  args=["--resolve", "b.test:%d:127.0.0.1" % p.port, "--cacert", ca[0]])
        self.assertEqual((r.returncode, r.status), (0, 200), "curl verifies b.test by SNI: " + r.describe())


class TlsBackend(ReverseBase):
    def make_certs(self):
        ca = make_ca(self.files, "ca")
        other_ca = make_ca(self.files, "other-ca", cn="other CA")
        cert, key, chain = make_leaf(self.files, ca, "web", cn="web.internal", sans=("DNS:web.internal",))
        return ca, other_ca, (chain, key)

    def test_tls_to_backend_verify_and_wrong_ca(self):
        ca, other_ca, served = self.make_certs()
        be = self.backend("tlsbe", tls=served)
        self.start_reverse(
            [{"host": "good.test", "pool": "good", "host_header": "backend"},
             {"host": "nv.test", "pool": "noverify"},
             {"host": "bad.test", "pool": "bad"}],
            {"good": pool({"address": be.address, "tls": {"ca_file": ca[0], "server_name": "web.internal"}}),
             "noverify": pool({"address": be.address, "tls": {"verify": False}}),
             "bad": pool({"address": be.address, "tls": {"ca_file": other_ca[0], "server_name": "web.internal"}})})
        # first, before any connection to the backend exists
        r = self.request("/tls-bad", host="bad.test")
        self.assertStatus(r, 502, "backend certificate from a CA the pool does not trust")
        self.assertUntouched(be, msg="no request over an unverified connection")
        rec = self.wait_record(lambda x: x.get("path") == "/tls-bad")
        self.assertIn("tls", rec["error"].lower(), rec)
        got = self.get_ok("/tls-good", host="good.test", backend="tlsbe")
        self.assertTrue(got["tls"], "the backend got the request over TLS")
        self.assertEqual(header_values(got["headers"], "host"), ["web.internal"],
                         "host_header backend = the backend's tls.server_name")
        got = self.get_ok("/tls-noverify", host="nv.test", backend="tlsbe")
        self.assertTrue(got["tls"])

    def test_pooled_backend_connection_not_shared_across_tls_settings(self):
        # Pools name the same backend address and server_name with different trust settings. An idle
        # connection opened for a pool must not serve a pool that would have refused the certificate.
        ca, other_ca, served = self.make_certs()
        be1, be2 = self.backend("be1", tls=served), self.backend("be2", tls=served)
        strict = {"ca_file": other_ca[0], "server_name": "web.internal"}
        self.start_reverse(
            [{"host": "nv.test", "pool": "noverify"}, {"host": "strict1.test", "pool": "strict1"},
             {"host": "good.test", "pool": "good"}, {"host": "strict2.test", "pool": "strict2"}],
            {"noverify": pool({"address": be1.address, "tls": {"verify": False, "server_name": "web.internal"}}),
             "strict1": pool({"address": be1.address, "tls": strict}),
             "good": pool({"address": be2.address, "tls": {"ca_file": ca[0], "server_name": "web.internal"}}),
             "strict2": pool({"address": be2.address, "tls": strict})})
        cases = [("verify false", "nv.test", "strict1.test", be1), ("ca_file ca", "good.test", "strict2.test", be2)]
        for what, first, second, be in cases:
            with self.subTest(first_pool=what):
                c = self.conn()
                self.get_ok("/first", host=first, backend=be.name, conn=c)   # leaves an idle pooled connection
                before = be.count()
                r = self.request("/second", host=second, conn=c)
                self.assertStatus(r, 502, "the pool for %s trusts only other-ca, which did not sign the backend's "
                                  "certificate; an idle connection opened for the pool with %s must not serve it"
                                  % (second, what))
                self.assertEqual(be.count(), before, "the request for %s reached the backend: %r" % (second, be.paths()))


# ---------------------------------------------------------------------------------------------
# redirect listener

class Redirect(ReverseBase):
    def test_redirect_listener(self):
        self.start_portier({"listeners": [
            {"name": "r8443", "listen": ["127.0.0.1:0"], "mode": "redirect",
             "redirect": {"https_port": 8443, "status": 308}},
            {"name": "r443", "listen": ["127.0.0.1:0"], "mode": "redirect",
             "redirect": {"https_port": 443, "status": 301}},
            {"name": "rdef", "listen": ["127.0.0.1:0"], "mode": "redirect"}]})
        cases = [("r8443", "host.test:8080", 308, "https://host.test:8443/a?b=1"),
                 ("r8443", "host.test", 308, "https://host.test:8443/a?b=1"),
                 ("r443", "host.test:8080", 301, "https://host.test/a?b=1"),
                 ("rdef", "host.test", 308, "https://host.test/a?b=1")]
        for listener, host, status, location in cases:
            with self.subTest(listener=listener, host=host):
                r = self.request("/a?b=1", host=host, listener=listener)
                self.assertStatus(r, status, "redirect from %s" % listener)
                self.assertEqual(r.header("Location"), location)
        c = self.conn("r8443")
        c.send(req_bytes("GET", "/a", host=None, version="HTTP/1.0"))
        self.assertStatus(c.read_response(), 400, "no Host on a redirect listener")


# ---------------------------------------------------------------------------------------------
# access log

class AccessLog(ReverseBase):
    def test_records_have_route_and_backend(self):
        a, w = self.backend("a"), self.backend("w")
        self.start_reverse([{"name": "api", "host": "app.test", "path": "/api/", "pool": "api"},
                            {"pool": "web"}],
                           {"api": pool(a), "web": pool(w)})
        self.get_ok("/api/logged", backend="a")
        self.get_ok("/web/logged", backend="w")
        rec = self.wait_record(lambda x: x.get("path", "").startswith("/api/logged"), what="record of /api/logged")
        self.assertEqual((rec.get("route"), rec.get("backend"), rec["decision"], rec["status"]),
                         ("api", a.address, "forward", 200), rec)
        rec = self.wait_record(lambda x: x.get("path", "").startswith("/web/logged"), what="record of /web/logged")
        self.assertEqual((rec.get("route"), rec.get("backend"), rec["decision"], rec["status"]),
                         ("/reverse/routes/1", w.address, "forward", 200), rec)


# ---------------------------------------------------------------------------------------------
# config errors

class ConfigCheck(ReverseBase):
    def check(self, cfg):
        path = os.path.join(self.files, "check.json")
        base = {"workers": 1, "access_log": {"path": "off"}}
        base.update(cfg)
        with open(path, "w") as f:
            json.dump(base, f)
        p = subprocess.run([portier_bin(), "--check", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return p.returncode, p.stderr.decode("utf-8", "replace") + p.stdout.decode("utf-8", "replace")

    def valid(self):
        return {"listeners": [site_listener()],
                "reverse": {"trusted_proxies": ["127.0.0.2/32"],
                            "routes": [{"name": "api", "host": "app.test", "path": "/api/", "pool": "api"},
                                       {"pool": "h"}],
                            "pools": {"api": {"balance": "round_robin", "backends": ["127.0.0.1:9001"],
                                              "health": {"path": "/healthz"}, "passive": {"fail_after": 1}},
                                      "h": {"balance": "hash_header", "hash_header": "X-User",
                                            "backends": ["127.0.0.1:9005", {"address": "127.0.0.1:9006",
                                                                            "weight": 2}]}}}}

    def assertRejected(self, cfg, pointer, words=()):
        rc, err = self.check(cfg)
        self.assertNotEqual(rc, 0, "portier --check accepted it:\n%s\nconfig: %s" % (err, json.dumps(cfg)))
        lines = [l for l in err.splitlines() if l.startswith("config error: %s" % pointer)]
        self.assertTrue(lines, "no error at %s in:\n%s" % (pointer, err))
        for w in words:
            self.assertIn(w, " ".join(lines), "error text at %s" % pointer)

    def test_check_reverse_config_errors(self):
        rc, err = self.check(self.valid())
        self.assertEqual(rc, 0, "the valid reverse config must pass --check:\n%s" % err)

        cfg = self.valid()
        cfg["reverse"]["routes"][0]["pool"] = "nope"
        with self.subTest("unknown pool"):
            self.assertRejected(cfg, "/reverse/routes/0/pool", ["nope"])

        cfg = self.valid()
        del cfg["reverse"]["pools"]["h"]["hash_header"]
        with self.subTest("hash_header without a header name"):
            self.assertRejected(cfg, "/reverse/pools/h", ["hash_header"])

        users = write_htpasswd(os.path.join(self.files, "users"), {"alice": hash_password("pw", "sha512")})
        cfg = self.valid()
        cfg["listeners"][0]["auth"] = "required"
        cfg["auth"] = {"users_file": users}
        with self.subTest("auth on a reverse listener"):
            self.assertRejected(cfg, "/listeners/0/auth")

        cfg = self.valid()
        cfg["reverse"]["pools"]["api"]["backends"] = []
        with self.subTest("empty backends"):
            self.assertRejected(cfg, "/reverse/pools/api/backends")

        cfg = self.valid()
        cfg["reverse"]["pools"]["api"]["health"]["path"] = "healthz"
        with self.subTest("health path without /"):
            self.assertRejected(cfg, "/reverse/pools/api/health/path")

        cfg = self.valid()
        cfg["reverse"]["pools"]["h"]["backends"][1]["weight"] = 1001
        with self.subTest("weight above 1000"):
            self.assertRejected(cfg, "/reverse/pools/h/backends/1/weight")

        cfg = self.valid()
        cfg["reverse"]["pools"]["api"]["balance"] = "random"
        with self.subTest("unknown balance"):
            self.assertRejected(cfg, "/reverse/pools/api/balance")

        cfg = self.valid()
        cfg["listeners"].append({"name": "r", "listen": ["127.0.0.1:0"], "mode": "redirect",
                                 "redirect": {"status": 305}})
        with self.subTest("redirect status 305"):
            self.assertRejected(cfg, "/listeners/1/redirect/status")


if __name__ == "__main__":
    unittest.main()

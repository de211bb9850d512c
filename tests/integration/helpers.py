"""Shared base class for portier's integration tests."""
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

from tests.support.clients import HttpConn, fetch, open_tunnel, ConnectionClosed
from tests.support.origins import EchoOrigin, TlsOrigin, TcpServer, header_values, ipv6_available
from tests.support.portier_proc import Portier

SPEC_LOG_KEYS = {"ts", "req", "conn", "listener", "client", "method", "target", "path", "status",
                 "decision", "bytes_up", "bytes_down", "ms", "upstream", "error", "rule"}

HOP_BY_HOP = ["connection", "proxy-connection", "keep-alive", "te", "trailer", "upgrade",
              "proxy-authorization"]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def random_bytes(n, seed=b"seed"):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha512(seed + b"-%d" % i).digest()
        i += 1
    return bytes(out[:n])


class ProxyTestCase(unittest.TestCase):
    maxDiff = None

    # -- fixtures (all stopped by cleanups, in reverse order) ----------------------------------
    def start_portier(self, overrides=None, **kw):
        p = Portier(overrides, **kw)
        self.addCleanup(p.close)
        p.start()
        self.portier = p
        return p

    def start_origin(self, host="127.0.0.1", **kw):
        o = EchoOrigin(host=host, **kw)
        self.addCleanup(o.stop)
        return o

    def start_tls_origin(self, host="127.0.0.1", **kw):
        o = TlsOrigin(host=host, **kw)
        self.addCleanup(o.stop)
        return o

    def start_tcp(self, mode="echo", host="127.0.0.1", **kw):
        s = TcpServer(mode=mode, host=host, **kw)
        self.addCleanup(s.stop)
        return s

    def make_tmpdir(self, prefix="portier-files-"):
        """A temporary directory removed by a cleanup (kept with PORTIER_KEEP_TMP)."""
        d = tempfile.mkdtemp(prefix=prefix)
        if not os.environ.get("PORTIER_KEEP_TMP"):
            self.addCleanup(shutil.rmtree, d, True)
        return d

    def connect(self, p=None, timeout=10.0):
        p = p or self.portier
        c = HttpConn(p.host, p.port, timeout=timeout)
        self.addCleanup(c.close)
        return c

    def raw(self, data, method="GET", p=None, timeout=10.0):
        """Send raw bytes on a new proxy connection, read one response: (conn, response)."""
        c = self.connect(p, timeout)
        c.send(data)
        return c, c.read_response(method)

    def tunnel(self, host, port, extra=b"", p=None, timeout=10.0):
        p = p or self.portier
        c, r = open_tunnel(p.host, p.port, host, port, extra=extra, timeout=timeout)
        self.addCleanup(c.close)
        return c, r

    def curl(self, url, args=(), p=None, timeout=30.0):
        p = p or self.portier
        return fetch(url, proxy=p.proxy_url, args=args, timeout=timeout)

    # -- assertions -------------------------------------------------------------------------
    def diag(self):
        p = getattr(self, "portier", None)
        return p.diag() if p is not None else ""

    def assertStatus(self, resp, status, msg=""):
        got = resp.status
        self.assertEqual(got, status, "%s\nresponse: %r%s" % (
            msg, getattr(resp, "describe", lambda: resp)(), self.diag()))

    def assertClosed(self, conn, timeout=3.0, msg="connection not closed by the proxy"):
        closed, extra = conn.wait_closed(timeout)
        self.assertTrue(closed, "%s within %.1fs (extra bytes %r)%s" % (msg, timeout, extra[:200],
                                                                       self.diag()))
        return extra

    def assertNothingReached(self, origin, before=(0, 0), msg=""):
        now = origin.snapshot()
        self.assertEqual(now, before, "%s: the origin saw traffic (connections, requests) %r -> %r; "
                         "requests: %r%s" % (msg, before, now, origin.requests[-3:], self.diag()))

    def assertNoHeader(self, headers, name, msg=""):
        vals = header_values(headers, name)
        self.assertEqual(vals, [], "%s header %r reached the other side: %r" % (msg, name, vals))

    def wait_record(self, predicate, timeout=5.0, what="access log record"):
        rec = self.portier.wait_record(predicate, timeout)
        self.assertIsNotNone(rec, "no %s within %.0fs; log:\n%s%s" % (
            what, timeout, "\n".join(self.portier.access_log_lines()[-10:]), self.diag()))
        return rec


def skip_unless_ipv6(cls_or_fn):
    return unittest.skipUnless(ipv6_available(), "IPv6 loopback ::1 not available")(cls_or_fn)

"""TLS listeners with several certificates chosen by SNI, and configurable cipher lists.

A forward HTTPS proxy listener gets "tls": {"certificates": [...]} with three certificates made at
test time (default.test, alpha.test, *.beta.test). Python ssl clients check which certificate they
were served by comparing its DER bytes with the PEM file (they do not trust it, so the choice is
seen directly), then send one request through the proxy on that connection."""
import json
import os
import signal
import ssl
import subprocess
import time

from tests.integration.helpers import ProxyTestCase
from tests.support.clients import HttpConn
from tests.support.policy_files import request_bytes
from tests.support.portier_proc import Portier, portier_bin
from tests.support.tls import make_self_signed, openssl, tls_client_context, tls_connect

RELOADED = "portier: info: reloaded "
FAILED = "portier: error: reload failed"


def der_of(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class SniBase(ProxyTestCase):
    def setUp(self):
        self.files = self.make_tmpdir(prefix="portier-sni-test-")
        self.certs = {
            "default": make_self_signed(self.files, "default", cn="default.test", sans=("DNS:default.test",)),
            "alpha": make_self_signed(self.files, "alpha", cn="alpha.test", sans=("DNS:alpha.test",)),
            "beta": make_self_signed(self.files, "beta", cn="beta.test", sans=("DNS:*.beta.test",)),
        }
        self.ders = {name: der_of(cert) for name, (cert, _) in self.certs.items()}
        self.origin = self.start_origin()

    def tls_block(self, order=("default", "alpha", "beta"), **extra):
        block = {"certificates": [{"cert_file": self.certs[n][0], "key_file": self.certs[n][1]} for n in order]}
        block.update(extra)
        return block

    def proxy(self, tls):
        lst = {"name": "sni", "listen": ["127.0.0.1:0"], "mode": "forward", "tls": tls}
        return self.start_portier({"listeners": [lst], "forward": {"connect_ports": [self.origin.port]}})

    def handshake(self, p, server_name, **ctx_kw):
        """A TLS connection to p's listener that trusts nothing; server_name None sends no SNI."""
        ctx = tls_client_context(verify=False, **ctx_kw)
        s = tls_connect(p.host, p.port, ctx, server_name=server_name)
        self.addCleanup(s.close)
        return s

    def served(self, s):
        """Which of the test's certificates the server presented on s."""
        der = s.getpeercert(binary_form=True)
        names = [n for n, d in self.ders.items() if d == der]
        self.assertEqual(len(names), 1, "the server's certificate is none of the test's")
        return names[0]

    def assertProxies(self, s, tag):
        """One request through the proxy on the TLS connection s works."""
        c = HttpConn(None, None, sock=s)
        c.send(request_bytes("GET", self.origin.url + "/echo/" + tag))
        r = c.read_response()
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/" + tag)

    def check(self, tls):
        """portier --check on a config with one listener with this tls block: (rc, stderr)."""
        path = os.path.join(self.files, "check.json")
        with open(path, "w") as f:
            json.dump({"listeners": [{"listen": ["127.0.0.1:0"], "tls": tls}]}, f)
        p = subprocess.run([portier_bin(), "--check", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return p.returncode, p.stderr.decode("utf-8", "replace")


class SniSelection(SniBase):
    def setUp(self):
        super().setUp()
        self.p = self.proxy(self.tls_block())

    def test_server_name_picks_the_certificate(self):
        cases = [
            ("alpha.test", "alpha"),
            ("ALPHA.test", "alpha"),
            ("x.beta.test", "beta"),
            ("unknown.test", "default"),
            ("default.test", "default"),
            ("a.b.beta.test", "default"),   # a wildcard covers one label only
            ("beta.test", "default"),       # ... and not the parent name
            (None, "default"),              # no SNI at all
        ]
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            for name, want in cases:
                with self.subTest(version=version.name, server_name=name):
                    s = self.handshake(self.p, name, max_version=version, min_version=version)
                    self.assertEqual(self.served(s), want)
                    self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                    self.assertProxies(s, "%s-%s" % (version.name, name))
                    s.close()

    def test_a_client_that_checks_the_name_accepts_the_chosen_certificate(self):
        for name, cert in (("alpha.test", "alpha"), ("www.beta.test", "beta"), ("default.test", "default")):
            with self.subTest(server_name=name):
                ctx = tls_client_context(cafile=self.certs[cert][0])  # verifies the chain and the host name
                s = tls_connect(self.p.host, self.p.port, ctx, server_name=name)
                self.addCleanup(s.close)
                self.assertEqual(self.served(s), cert)
                self.assertProxies(s, "verified-" + name)

    def test_tls_1_1_is_refused(self):
        try:
            ctx = tls_client_context(verify=False, max_version=ssl.TLSVersion.TLSv1_1,
                                     min_version=ssl.TLSVersion.TLSv1)
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ssl.SSLError, ValueError):
            self.skipTest("this Python cannot offer TLS 1.1")
        for name in ("alpha.test", None):
            with self.subTest(server_name=name):
                with self.assertRaises((ssl.SSLError, OSError)):
                    s = tls_connect(self.p.host, self.p.port, ctx, server_name=name)
                    s.close()


class CipherLists(SniBase):
    def test_ciphersuites_restrict_tls_1_3(self):
        p = self.proxy(self.tls_block(ciphersuites="TLS_AES_256_GCM_SHA384"))
        for name in ("alpha.test", None):
            with self.subTest(server_name=name):
                s = self.handshake(p, name, min_version=ssl.TLSVersion.TLSv1_3)
                self.assertEqual((s.version(), s.cipher()[0]), ("TLSv1.3", "TLS_AES_256_GCM_SHA384"))
                self.assertProxies(s, "tls13-%s" % name)
        # a client that offers only other TLS 1.3 suites is refused (Python cannot choose them)
        self.assertIn(b"TLS_AES_256_GCM_SHA384", self.s_client(p, "TLS_AES_256_GCM_SHA384"))
        with self.assertRaises(RuntimeError):
            self.s_client(p, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256")

    def s_client(self, p, suites):
        return openssl("s_client", "-connect", "%s:%d" % (p.host, p.port), "-servername", "alpha.test",
                       "-tls1_3", "-ciphersuites", suites, timeout=10)

    def test_ciphers_restrict_tls_1_2(self):
        # the certificates are EC; a client would pick AES-256 first
        p = self.proxy(self.tls_block(ciphers="ECDHE-ECDSA-AES128-GCM-SHA256"))
        for name in ("x.beta.test", None):
            with self.subTest(server_name=name):
                s = self.handshake(p, name, max_version=ssl.TLSVersion.TLSv1_2)
                self.assertEqual((s.version(), s.cipher()[0]), ("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256"))
                self.assertProxies(s, "tls12-%s" % name)
        ctx = tls_client_context(verify=False, max_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305")
        with self.assertRaises((ssl.SSLError, OSError)):
            s = tls_connect(p.host, p.port, ctx, server_name="alpha.test")
            s.close()
        # TLS 1.3 keeps OpenSSL's default suites
        s = self.handshake(p, "alpha.test")
        self.assertEqual((s.version(), self.served(s)), ("TLSv1.3", "alpha"))


class SniConfigErrors(SniBase):
    def assertRejected(self, tls, line):
        rc, err = self.check(tls)
        self.assertEqual(rc, 1, err)
        self.assertIn("config error: " + line + "\n", err)

    def test_check_accepts_both_forms(self):
        for tls in (self.tls_block(), self.tls_block(ciphers="ECDHE+AESGCM", ciphersuites="TLS_AES_256_GCM_SHA384"),
                    {"cert_file": self.certs["alpha"][0], "key_file": self.certs["alpha"][1]}):
            rc, err = self.check(tls)
            self.assertEqual(rc, 0, err)

    def test_check_refuses_bad_cipher_lists_files_and_forms(self):
        self.assertRejected(self.tls_block(ciphers="FOO"),
                            '/listeners/0/tls/ciphers: no cipher in "FOO" is known to OpenSSL')
        self.assertRejected(self.tls_block(ciphersuites="ECDHE-ECDSA-AES128-GCM-SHA256"),
                            '/listeners/0/tls/ciphersuites: no TLS 1.3 cipher suite in '
                            '"ECDHE-ECDSA-AES128-GCM-SHA256" is known to OpenSSL')
        missing = os.path.join(self.files, "missing.crt")
        block = self.tls_block()
        block["certificates"][1]["cert_file"] = missing
        self.assertRejected(block, "/listeners/0/tls/certificates/1/cert_file: %s: No such file or directory" % missing)
        block = self.tls_block()
        block["certificates"][2]["key_file"] = self.certs["alpha"][1]
        self.assertRejected(block, "/listeners/0/tls/certificates/2/key_file: %s does not match the certificate in %s"
                            % (self.certs["alpha"][1], self.certs["beta"][0]))
        block = self.tls_block()
        block["cert_file"], block["key_file"] = self.certs["alpha"]
        self.assertRejected(block, '/listeners/0/tls: expected either "certificates" or "cert_file" and "key_file", '
                                   'not both')
        self.assertRejected({"certificates": []}, "/listeners/0/tls/certificates: expected at least one certificate, "
                                                  "got []")


class SniReload(SniBase):
    def test_reload_with_another_order_changes_the_default_certificate(self):
        p = self.proxy(self.tls_block())
        before = self.handshake(p, None)
        self.assertEqual(self.served(before), "default")

        cfg = dict(p.config)
        cfg["listeners"] = [dict(cfg["listeners"][0], tls=self.tls_block(order=("alpha", "default", "beta")))]
        self.reload(p, cfg, RELOADED)
        for name, want in ((None, "alpha"), ("unknown.test", "alpha"), ("default.test", "default"),
                           ("alpha.test", "alpha"), ("x.beta.test", "beta")):
            with self.subTest(server_name=name):
                s = self.handshake(p, name)
                self.assertEqual(self.served(s), want)
                self.assertProxies(s, "after-%s" % name)
        # the connection made before the reload keeps working
        self.assertProxies(before, "before")

        # a bad cipher list refuses the reload; the last good certificates keep serving
        cfg["listeners"] = [dict(cfg["listeners"][0], tls=self.tls_block(ciphers="FOO"))]
        self.reload(p, cfg, FAILED)
        self.assertIn('/listeners/0/tls/ciphers: no cipher in "FOO" is known to OpenSSL', p.stderr_text())
        self.assertEqual(self.served(self.handshake(p, None)), "alpha")

    def reload(self, p, cfg, marker, timeout=5.0):
        tmp = p.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f)
        os.replace(tmp, p.config_path)
        count = p.stderr_text().count(marker)
        p.signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while p.stderr_text().count(marker) <= count and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertGreater(p.stderr_text().count(marker), count, "no %r after SIGHUP%s" % (marker, p.diag()))

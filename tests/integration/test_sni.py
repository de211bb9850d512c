"""The TLS server name of CONNECT tunnels: logged, checked against the CONNECT host (domain
fronting), and subject to host rules and lists; non-TLS tunnels still work."""
import os
import time
import unittest

from tests.integration.helpers import ProxyTestCase
from tests.support.policy_files import client_hello, write_text


class SniBase(ProxyTestCase):
    def record_server_and_portier(self, **overrides):
        self.srv = self.start_tcp("record")
        cfg = {"forward": {"connect_ports": [self.srv.port]}}
        cfg.update(overrides)
        self.start_portier(cfg)
        return self.srv

    def send_hello(self, sni, host="localhost", pieces=1, delay=0.0):
        """CONNECT host:srv.port, expect 200, send a ClientHello for sni. Returns (conn, hello)."""
        c, r = self.tunnel(host, self.srv.port)
        self.assertStatus(r, 200)
        hello = client_hello(sni)
        step = max(1, -(-len(hello) // pieces))
        for i in range(0, len(hello), step):
            c.send(hello[i:i + step])
            if delay:
                time.sleep(delay)
        return c, hello

    def wait_received(self, expected, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.srv.total_received() != expected:
            time.sleep(0.02)
        return self.srv.total_received()

    def assertNothingRelayed(self, settle=0.3):
        time.sleep(settle)  # give bytes that should not be relayed a chance to arrive
        got = self.srv.total_received()
        self.assertEqual(got, b"", "the upstream received %d tunnel bytes (%r...)%s" % (
            len(got), got[:40], self.diag()))

    def assertRelayed(self, c, hello):
        got = self.wait_received(hello)
        self.assertEqual(got, hello, "the ClientHello must reach the upstream unchanged" + self.diag())
        c.send(b"more")
        self.assertEqual(self.wait_received(hello + b"more"), hello + b"more")

    def tunnel_record(self, sni):
        return self.wait_record(lambda r: r["method"] == "CONNECT" and r["sni"] == sni,
                                what="CONNECT record with sni %r" % sni)


class SniLogged(ProxyTestCase):
    def setUp(self):
        self.tls = self.start_tls_origin()
        self.start_portier({"forward": {"connect_ports": [self.tls.port]}})

    def test_curl_tunnel_logs_sni(self):
        r = self.curl("https://localhost:%d/echo/sni" % self.tls.port,
                      args=["-p", "--cacert", self.tls.cafile])
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["target"], "/echo/sni")
        rec = self.wait_record(lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["sni"], "localhost")
        self.assertEqual(rec["decision"], "tunnel")
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["target"], "localhost:%d" % self.tls.port)
        self.assertGreater(rec["bytes_up"], 0)
        self.assertGreater(rec["bytes_down"], 0)

    def test_curl_ip_literal_has_no_sni(self):
        r = self.curl("https://127.0.0.1:%d/echo/ip" % self.tls.port, args=["--cacert", self.tls.cafile])
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["sni"], "")
        self.assertEqual(rec["decision"], "tunnel")

    def test_fronted_tls_handshake_fails_and_origin_sees_no_request(self):
        import ssl
        c, r = self.tunnel("localhost", self.tls.port)
        self.assertStatus(r, 200)
        ctx = ssl.create_default_context(cafile=self.tls.cafile)
        ctx.check_hostname = False
        with self.assertRaises((ssl.SSLError, OSError)):
            s = ctx.wrap_socket(c.sock, server_hostname="other.example")
            s.sendall(b"GET /echo/fronted HTTP/1.1\r\nHost: other.example\r\n\r\n")
            s.recv(100)
        self.assertEqual(self.tls.requests, [])
        rec = self.wait_record(lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["rule"], "sni_mismatch")


class DomainFronting(SniBase):
    def test_mismatched_sni_closes_tunnel_without_forwarding(self):
        self.record_server_and_portier()
        c, hello = self.send_hello("other.example")
        self.assertClosed(c, 3.0, "a fronted tunnel must be closed")
        self.assertNothingRelayed()
        rec = self.tunnel_record("other.example")
        self.assertEqual(rec["decision"], "deny")
        self.assertEqual(rec["rule"], "sni_mismatch")
        self.assertEqual(rec["target"], "localhost:%d" % self.srv.port)
        self.assertEqual(rec["bytes_up"], 0)
        self.assertIn("other.example", rec["error"])

    def test_matching_sni_passes(self):
        self.record_server_and_portier()
        c, hello = self.send_hello("localhost")
        self.assertRelayed(c, hello)
        c.close()
        rec = self.tunnel_record("localhost")
        self.assertEqual(rec["decision"], "tunnel")

    def test_sni_case_insensitive(self):
        # DNS names are case-insensitive: "LOCALHOST" names the same host as the CONNECT authority
        self.record_server_and_portier()
        c, hello = self.send_hello("LocalHost")
        self.assertRelayed(c, hello)

    def test_fragmented_hello_is_reassembled(self):
        self.record_server_and_portier()
        c, hello = self.send_hello("other.example", pieces=40, delay=0.005)
        self.assertClosed(c, 3.0, "a fronted tunnel must be closed, however the hello is cut")
        self.assertNothingRelayed()
        self.assertEqual(self.tunnel_record("other.example")["rule"], "sni_mismatch")

    def test_fragmented_matching_hello_passes(self):
        self.record_server_and_portier()
        c, hello = self.send_hello("localhost", pieces=40, delay=0.005)
        self.assertRelayed(c, hello)

    def test_slow_hello_is_not_relayed_unchecked(self):
        # A client that starts a ClientHello and completes it after the 1 s wait must not get
        # a fronted name through unchecked.
        self.record_server_and_portier()
        c, r = self.tunnel("localhost", self.srv.port)
        self.assertStatus(r, 200)
        hello = client_hello("other.example")
        c.send(hello[:10])
        time.sleep(1.6)
        try:
            c.send(hello[10:])
        except OSError:
            pass
        time.sleep(0.5)
        got = self.srv.total_received()
        self.assertFalse(b"other.example" in got,
                         "a ClientHello for other.example completed after 1.6 s was relayed to "
                         "the CONNECT host localhost without the SNI check (%d bytes relayed)%s"
                         % (len(got), self.diag()))

    def test_no_sni_passes(self):
        self.record_server_and_portier()
        c, hello = self.send_hello(None)
        self.assertRelayed(c, hello)
        c.close()
        rec = self.wait_record(lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["sni"], "")
        self.assertEqual(rec["decision"], "tunnel")

    def test_require_match_false_passes(self):
        self.record_server_and_portier(sni={"require_match": False})
        c, hello = self.send_hello("other.example")
        self.assertRelayed(c, hello)
        c.close()
        rec = self.tunnel_record("other.example")
        self.assertEqual(rec["decision"], "tunnel")

    def test_ip_literal_connect_is_not_fronting(self):
        # an IP-literal CONNECT has no name to compare with
        self.record_server_and_portier()
        c, hello = self.send_hello("localhost", host="127.0.0.1")
        self.assertRelayed(c, hello)


class SniRules(SniBase):
    def test_deny_rule_matches_sni_with_other_authority(self):
        self.record_server_and_portier(sni={"require_match": False}, rules=[
            {"id": "no-blocked", "when": {"host": "(^|\\.)blocked\\.example$"}, "action": "deny",
             "reason": "blocked site"}])
        c, hello = self.send_hello("www.blocked.example")
        self.assertClosed(c, 3.0, "a tunnel whose SNI a deny rule matches must be closed")
        self.assertNothingRelayed()
        rec = self.tunnel_record("www.blocked.example")
        self.assertEqual(rec["decision"], "deny")
        self.assertEqual(rec["rule"], "no-blocked")
        # the same tunnel with an innocent SNI passes
        c, hello = self.send_hello("innocent.example")
        self.assertRelayed(c, hello)

    def test_deny_rule_matches_sni_of_ip_literal_connect(self):
        self.record_server_and_portier(rules=[
            {"id": "no-blocked", "when": {"host": "^blocked\\.example$"}, "action": "deny"}])
        c, hello = self.send_hello("blocked.example", host="127.0.0.1")
        self.assertClosed(c, 3.0)
        self.assertNothingRelayed()
        self.assertEqual(self.tunnel_record("blocked.example")["rule"], "no-blocked")

    def test_domain_list_matches_sni(self):
        files = self.make_tmpdir()
        lst = write_text(os.path.join(files, "bad.txt"), "# bad\n\n||bad.example^\n")
        self.record_server_and_portier(
            sni={"require_match": False}, lists={"bad": {"file": lst}},
            rules=[{"id": "bad-list", "when": {"list": "bad"}, "action": "deny"}])
        c, hello = self.send_hello("cdn.bad.example")
        self.assertClosed(c, 3.0)
        self.assertNothingRelayed()
        rec = self.tunnel_record("cdn.bad.example")
        self.assertEqual(rec["rule"], "bad-list")
        self.assertTrue(rec["entry"].endswith("bad.txt:3"), rec)

    def test_forged_sni_does_not_widen_an_allow(self):
        self.record_server_and_portier(sni={"require_match": False}, default_action="deny", rules=[
            {"id": "only-localhost", "when": {"host": "^localhost$"}, "action": "allow"},
            {"id": "only-other", "when": {"host": "^allowed\\.example$"}, "action": "allow"}])
        c, hello = self.send_hello("allowed.example")
        self.assertClosed(c, 3.0, "an allow must hold for both the CONNECT host and the SNI")
        self.assertNothingRelayed()
        self.assertEqual(self.tunnel_record("allowed.example")["rule"], "default")
        c, hello = self.send_hello("localhost")
        self.assertRelayed(c, hello)


class NonTlsTunnels(ProxyTestCase):
    def test_server_speaks_first(self):
        banner = b"SSH-2.0-OpenSSH_9.2 test\r\n"
        srv = self.start_tcp("banner", banner=banner)
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("localhost", srv.port)
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        self.assertEqual(c.read_available(len(banner), timeout=5.0), banner)
        self.assertLess(time.monotonic() - t0, 3.0)
        c.send(b"SSH-2.0-client\r\n")
        self.assertEqual(c.read_available(16, timeout=5.0), b"SSH-2.0-client\r\n")
        c.close()
        rec = self.wait_record(lambda x: x["method"] == "CONNECT")
        self.assertEqual(rec["decision"], "tunnel")
        self.assertEqual(rec["sni"], "")

    def banner_delay(self, wait_ms):
        banner = b"SSH-2.0-OpenSSH_9.2 test\r\n"
        srv = self.start_tcp("banner", banner=banner)
        self.start_portier({"forward": {"connect_ports": [srv.port]}, "sni": {"wait_ms": wait_ms}})
        c, r = self.tunnel("localhost", srv.port)
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        self.assertEqual(c.read_available(len(banner), timeout=10.0), banner)
        elapsed = time.monotonic() - t0
        c.close()
        return elapsed

    def test_sni_wait_ms_bounds_the_wait_for_a_silent_client(self):
        # The server's banner is held back while portier waits for a ClientHello that never comes.
        self.assertGreaterEqual(self.banner_delay(2500), 2.0)

    def test_sni_wait_ms_zero_relays_a_silent_client_at_once(self):
        self.assertLess(self.banner_delay(0), 0.5)

    def test_client_speaks_first_plain_bytes_relayed_at_once(self):
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("localhost", srv.port)
        self.assertStatus(r, 200)
        t0 = time.monotonic()
        c.send(b"EHLO client.example\r\n")
        self.assertEqual(c.read_available(21, timeout=5.0), b"EHLO client.example\r\n")
        self.assertLess(time.monotonic() - t0, 0.9, "non-TLS first bytes must not wait for the "
                        "ClientHello timeout")

    def test_tls_looking_garbage_relayed(self):
        # a record header claiming TLS but not a handshake: not a ClientHello, relayed as it is
        srv = self.start_tcp("echo")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("localhost", srv.port)
        self.assertStatus(r, 200)
        data = b"\x17\x03\x03\x00\x05hello"
        c.send(data)
        self.assertEqual(c.read_available(len(data), timeout=5.0), data)


if __name__ == "__main__":
    unittest.main()

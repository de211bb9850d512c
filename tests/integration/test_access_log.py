"""The JSON access log: one record per request or tunnel, with the spec's keys and values."""
import re
import tempfile
import time
import unittest

from tests.support.clients import curl
from tests.integration.helpers import ProxyTestCase, SPEC_LOG_KEYS, random_bytes

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
REQ_RE = re.compile(r"^[0-9a-f]{16}$")
CLIENT_RE = re.compile(r"^127\.0\.0\.1:\d+$")


def get(url, hostport, extra=(), body=b""):
    lines = ["GET %s HTTP/1.1" % url, "Host: %s" % hostport] + list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class AccessLog(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()

    def check_common(self, rec):
        missing = SPEC_LOG_KEYS - set(rec)
        self.assertEqual(missing, set(), "record lacks keys: %r" % rec)
        self.assertRegex(rec["ts"], TS_RE)
        self.assertRegex(rec["req"], REQ_RE)
        self.assertIsInstance(rec["conn"], int)
        self.assertEqual(rec["listener"], "test")
        self.assertRegex(rec["client"], CLIENT_RE)
        for k in ("status", "bytes_up", "bytes_down", "ms"):
            self.assertIsInstance(rec[k], int, "%s must be an int: %r" % (k, rec))
            self.assertNotIsInstance(rec[k], bool)
        for k in ("method", "target", "path", "decision", "upstream", "error", "rule"):
            self.assertIsInstance(rec[k], str, "%s must be a string: %r" % (k, rec))
        self.assertIn(rec["decision"], ("forward", "tunnel", "deny", "error"))

    def test_one_record_per_request(self):
        self.start_portier()
        u1 = self.origin.url + "/echo/one"
        u2 = self.origin.url + "/bytes/7777"
        p = curl(["-x", self.portier.proxy_url, "-o", "/dev/null", u1, "-o", "/dev/null", u2])
        self.assertEqual(p.returncode, 0, p.stderr)
        recs = self.portier.access_log_records(2)
        time.sleep(0.3)  # no extra records may follow
        recs = self.portier.access_log_records(2)
        self.assertEqual(len(recs), 2, "records: %r" % recs)
        for rec in recs:
            self.check_common(rec)
            self.assertEqual(rec["method"], "GET")
            self.assertEqual(rec["target"], self.origin.hostport)
            self.assertEqual(rec["status"], 200)
            self.assertEqual(rec["decision"], "forward")
            self.assertEqual(rec["upstream"], self.origin.hostport)
            self.assertEqual(rec["error"], "")
            self.assertEqual(rec["rule"], "")
            self.assertEqual(rec["bytes_up"], 0)
            self.assertGreaterEqual(rec["ms"], 0)
        by_path = {r["path"]: r for r in recs}
        self.assertEqual(set(by_path), {"/echo/one", "/bytes/7777"})
        self.assertEqual(by_path["/bytes/7777"]["bytes_down"], 7777,
                         "bytes_down should count the response body")
        self.assertEqual(recs[0]["conn"], recs[1]["conn"], "same client connection")
        self.assertNotEqual(recs[0]["req"], recs[1]["req"], "request ids must differ")
        self.assertEqual(recs[0]["client"], recs[1]["client"])

    def test_bytes_up_counts_request_body(self):
        self.start_portier()
        data = random_bytes(5000, b"log")
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            r = self.curl(self.origin.url + "/echo/post", args=["--data-binary", "@" + f.name])
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x.get("method") == "POST")
        self.check_common(rec)
        self.assertEqual(rec["bytes_up"], 5000)
        self.assertEqual(rec["bytes_down"], len(r.body))

    def test_query_string_absent_by_default(self):
        self.start_portier()
        r = self.curl(self.origin.url + "/echo/q?token=secret&x=1")
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x.get("method") == "GET")
        self.assertEqual(rec["path"], "/echo/q")
        self.assertNotIn("secret", open(self.portier.log_path).read())

    def test_query_string_with_log_query(self):
        self.start_portier({"access_log": {"log_query": True}})
        r = self.curl(self.origin.url + "/echo/q?token=secret&x=1")
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x.get("method") == "GET")
        self.assertEqual(rec["path"], "/echo/q?token=secret&x=1")

    def test_ms_is_the_duration(self):
        self.start_portier()
        c, r = self.raw(get(self.origin.url + "/slow-head/1", self.origin.hostport))
        self.assertStatus(r, 200)
        rec = self.wait_record(lambda x: x.get("method") == "GET")
        self.assertGreaterEqual(rec["ms"], 900)
        self.assertLess(rec["ms"], 5000)

    def test_distinct_connections_have_distinct_conn(self):
        self.start_portier()
        for i in range(3):
            c, r = self.raw(get(self.origin.url + "/echo/%d" % i, self.origin.hostport))
            self.assertStatus(r, 200)
            c.close()
        recs = self.portier.access_log_records(3)
        self.assertEqual(len({r["conn"] for r in recs}), 3, recs)
        self.assertEqual(len({r["client"] for r in recs}), 3, recs)

    def test_log_to_stdout(self):
        p = self.start_portier({"access_log": {"path": "-"}})
        c, r = self.raw(get(self.origin.url + "/echo/stdout", self.origin.hostport))
        self.assertStatus(r, 200)
        deadline = time.monotonic() + 5
        lines = []
        while time.monotonic() < deadline:
            lines = [l for l in p.stdout_text().splitlines() if l.startswith("{")]
            if lines:
                break
            time.sleep(0.05)
        self.assertEqual(len(lines), 1, "stdout: %r" % p.stdout_text())
        import json
        self.assertEqual(json.loads(lines[0])["path"], "/echo/stdout")

    def test_log_off(self):
        p = self.start_portier({"access_log": {"path": "off"}})
        c, r = self.raw(get(self.origin.url + "/echo/off", self.origin.hostport))
        self.assertStatus(r, 200)
        time.sleep(0.3)
        self.assertEqual(p.stdout_text().strip(), "")
        self.assertEqual(p.access_log_lines(), [])

    def test_tunnel_record(self):
        srv = self.start_tcp("count")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port)
        self.assertStatus(r, 200)
        payload = random_bytes(12345, b"tunnel-log")
        c.send(payload)
        c.shutdown_write()
        reply = c.read_until_eof(10.0)
        self.assertEqual(reply, b"12345\n")
        c.close()
        rec = self.wait_record(lambda x: x.get("method") == "CONNECT")
        self.check_common(rec)
        self.assertEqual(rec["decision"], "tunnel")
        self.assertEqual(rec["status"], 200)
        self.assertEqual(rec["path"], "")
        self.assertEqual(rec["target"], "127.0.0.1:%d" % srv.port)
        self.assertEqual(rec["upstream"], "127.0.0.1:%d" % srv.port)
        self.assertEqual(rec["bytes_up"], 12345)
        self.assertEqual(rec["bytes_down"], len(reply))
        self.assertEqual(rec["error"], "")

    def test_tunnel_record_counts_leftover_bytes(self):
        srv = self.start_tcp("count")
        self.start_portier({"forward": {"connect_ports": [srv.port]}})
        c, r = self.tunnel("127.0.0.1", srv.port, extra=b"0123456789")
        self.assertStatus(r, 200)
        c.send(b"abcde")
        c.shutdown_write()
        self.assertEqual(c.read_until_eof(10.0), b"15\n")
        rec = self.wait_record(lambda x: x.get("method") == "CONNECT")
        self.assertEqual(rec["bytes_up"], 15)
        self.assertEqual(rec["bytes_down"], 3)

    def test_deny_record(self):
        self.start_portier()  # connect_ports [443]
        c, r = self.tunnel("127.0.0.1", self.origin.port)
        self.assertStatus(r, 403)
        rec = self.wait_record(lambda x: x.get("method") == "CONNECT")
        self.check_common(rec)
        self.assertEqual(rec["status"], 403)
        self.assertEqual(rec["decision"], "deny")
        self.assertEqual(rec["upstream"], "")
        self.assertEqual(rec["target"], self.origin.hostport)
        self.assertEqual(rec["bytes_up"], 0)
        self.assertEqual(rec["bytes_down"], 0)

    def test_malformed_request_is_logged(self):
        self.start_portier()
        raw = ("POST %s/echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (self.origin.url,
                                                                self.origin.hostport)).encode()
        c, r = self.raw(raw)
        self.assertStatus(r, 400)
        rec = self.wait_record(lambda x: x.get("status") == 400)
        self.check_common(rec)
        self.assertTrue(rec["error"], "no reason for the 400 in the log: %r" % rec)
        self.assertEqual(rec["upstream"], "")

    def test_records_from_concurrent_clients_are_whole_lines(self):
        self.start_portier()
        import threading
        errors = []

        def worker(i):
            try:
                urls = []
                for j in range(10):
                    urls += ["-o", "/dev/null", self.origin.url + "/echo/c%d-%d" % (i, j)]
                p = curl(["-x", self.portier.proxy_url] + urls, timeout=30)
                if p.returncode != 0:
                    errors.append(p.stderr)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        recs = self.portier.access_log_records(60, timeout=10.0)
        self.assertEqual(len(recs), 60)
        self.assertEqual(len({r["req"] for r in recs}), 60, "request ids must be unique")
        self.assertEqual(sorted(r["path"] for r in recs),
                         sorted("/echo/c%d-%d" % (i, j) for i in range(6) for j in range(10)))


if __name__ == "__main__":
    unittest.main()


class Reopen(ProxyTestCase):
    """logrotate renames the file, then sends SIGUSR1: later lines go to a new file of the same name."""

    def setUp(self):
        self.origin = self.start_origin()

    def fetch(self, path):
        p = curl(["-x", self.portier.proxy_url, "-s", "-o", "/dev/null", "-w", "%{http_code}", self.origin.url + path])
        self.assertEqual(p.stdout.strip(), b"200", p.stderr)

    def test_sigusr1_reopens_the_access_log(self):
        import os
        import signal
        self.start_portier()
        log = self.portier.log_path
        self.fetch("/echo/before")
        self.assertEqual(len(self.portier.access_log_records(1)), 1, self.portier.diag())
        os.rename(log, log + ".1")
        self.fetch("/echo/renamed")  # still the old file until the signal
        self.portier.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while "access log reopened" not in self.portier.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("portier: info: SIGUSR1: access log reopened", self.portier.stderr_text())
        self.fetch("/echo/after")
        recs = self.portier.access_log_records(1)
        self.assertEqual([r["path"] for r in recs], ["/echo/after"], "the new file gets only later lines")
        with open(log + ".1") as f:
            old = [l for l in f.read().splitlines() if l.strip()]
        self.assertEqual(len(old), 2, "the renamed file keeps the lines written before the signal: %r" % old)
        self.assertIn("/echo/renamed", old[1])
        self.assertTrue(self.portier.alive())

    def test_sigusr1_with_an_unwritable_path_keeps_the_old_file(self):
        import os
        import signal
        self.start_portier()
        log = self.portier.log_path
        self.fetch("/echo/one")
        self.portier.access_log_records(1)
        os.rename(log, log + ".1")
        os.mkdir(log)  # the path is now a directory: open(2) fails
        self.addCleanup(os.rmdir, log)
        self.portier.signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while "SIGUSR1" not in self.portier.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn("still writing to the old file", self.portier.stderr_text())
        self.fetch("/echo/two")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(log + ".1") as f:
                if "/echo/two" in f.read():
                    break
            time.sleep(0.05)
        with open(log + ".1") as f:
            self.assertIn("/echo/two", f.read(), "lines keep going to the old file")


class ErrorLog(ProxyTestCase):
    """stderr lines carry a level, and the access log's request id when they are about a request."""
    LINE_RE = re.compile(r"^portier: (debug|info|warning|error): (?:\[req ([0-9a-f]{16})\] )?\S")

    def failing_request(self):
        from tests.support.origins import free_port
        port = free_port()  # nothing listens there: 502
        c, r = self.raw(get("http://127.0.0.1:%d/gone" % port, "127.0.0.1:%d" % port))
        self.assertStatus(r, 502)
        return self.wait_record(lambda x: x.get("status") == 502), port

    def test_every_line_has_a_level_and_a_failed_request_its_id(self):
        p = self.start_portier()
        rec, port = self.failing_request()
        deadline = time.monotonic() + 5
        while rec["req"] not in p.stderr_text():
            self.assertLess(time.monotonic(), deadline, "no error-log line with the request id" + p.diag())
            time.sleep(0.02)
        lines = p.stderr_text().splitlines()
        for line in lines:
            self.assertRegex(line, self.LINE_RE)
        line = [l for l in lines if rec["req"] in l][0]
        self.assertTrue(line.startswith("portier: info: [req %s] 502 GET 127.0.0.1:%d/gone from 127.0.0.1:" % (rec["req"], port)), line)
        self.assertIn(" on test: ", line)
        self.assertIn(rec["error"], line)

    def test_level_leaves_out_lower_lines(self):
        p = self.start_portier({"error_log": {"level": "warning"}})
        rec, _ = self.failing_request()
        time.sleep(0.3)
        self.assertNotIn(rec["req"], p.stderr_text())
        # Only the start-up lines that tools wait for are written below the level.
        info = [l for l in p.stderr_text().splitlines() if l.startswith("portier: info:")]
        self.assertEqual([l.split(" listening on ")[0] for l in info],
                         ["portier: info: listener test", "portier: info: ready"])

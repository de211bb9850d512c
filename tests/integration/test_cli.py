"""The command line: --version, --check, bad configs."""
import json
import os
import re
import subprocess
import tempfile
import unittest

from tests.support.portier_proc import portier_bin

ERR_RE = re.compile(r"^config error: (\S+): (.+)$")


def run(args, timeout=10.0):
    return subprocess.run([portier_bin()] + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="portier-cli-")
        self.addCleanup(self.dir.cleanup)

    def write(self, cfg, name="portier.json"):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
        return path

    def config_errors(self, p):
        lines = p.stderr.decode("utf-8", "replace").splitlines()
        return [ERR_RE.match(l).groups() for l in lines if ERR_RE.match(l)], lines

    def test_version(self):
        p = run(["--version"])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout.decode().strip(), "portier 0.1.0")

    def test_check_valid(self):
        path = self.write({"workers": 2,
                           "listeners": [{"name": "office", "mode": "forward",
                                          "listen": ["127.0.0.1:3128", "[::1]:3128"]}],
                           "access_log": {"path": "off"}})
        p = run(["--check", path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().strip(),
                         "portier: config %s is valid: 1 listener(s), 2 address(es), 2 worker(s), "
                         "1 rule(s), 0 list(s), 0 region(s), 0 exit(s), 0 route(s), 0 pool(s)" % path)

    def test_check_full_example_config(self):
        cfg = {
            "workers": 0,
            "listeners": [{"name": "office", "listen": ["127.0.0.1:3128", "[::1]:3128"],
                           "mode": "forward"}],
            "access_log": {"path": "-", "log_query": False},
            "forward": {"via": "1.1 portier", "x_forwarded_for": False,
                        "connect_ports": [443, "8000-8100"]},
            "ssrf": {"allow": ["127.0.0.0/8", "::1/128"]},
            "timeouts": {"header_ms": 10000, "keepalive_ms": 60000, "connect_ms": 5000,
                         "response_ms": 60000, "tunnel_idle_ms": 300000,
                         "shutdown_grace_ms": 10000},
            "limits": {"max_header_bytes": 65536, "max_url_bytes": 8192, "max_headers": 100},
            "origin_pool": {"max_idle_per_host": 16, "max_idle_total": 1024, "idle_ms": 30000},
        }
        path = self.write(cfg)
        p = run(["--check", path])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout.decode().strip(),
                         r"^portier: config .* is valid: 1 listener\(s\), 2 address\(es\), "
                         r"\d+ worker\(s\), 1 rule\(s\), 0 list\(s\), 0 region\(s\), 0 exit\(s\), "
                         r"0 route\(s\), 0 pool\(s\)$")

    def test_check_three_errors(self):
        path = self.write({"workers": -1,
                           "listeners": [{"name": "office", "mode": "forward",
                                          "listen": ["127.0.0.1:3128", "not-an-address"]}],
                           "forward": {"connect_ports": [443, "9000-80000"]}})
        p = run(["--check", path])
        self.assertEqual(p.returncode, 1, p.stderr)
        errors, lines = self.config_errors(p)
        self.assertEqual(len(errors), 3, "stderr: %r" % lines)
        self.assertEqual([e[0] for e in errors],
                         ["/workers", "/listeners/0/listen/1", "/forward/connect_ports/1"],
                         "stderr: %r" % lines)
        for ptr, msg in errors:
            self.assertTrue(msg.strip())
        self.assertEqual(p.stdout.decode().strip(), "")

    def test_check_unknown_key(self):
        path = self.write({"listeners": [{"name": "a", "listen": ["127.0.0.1:3128"],
                                          "mode": "forward"}],
                           "timeouts": {"header_ms": 1000, "bogus_ms": 5}})
        p = run(["--check", path])
        self.assertEqual(p.returncode, 1)
        errors, lines = self.config_errors(p)
        self.assertEqual(len(errors), 1, lines)
        ptr, msg = errors[0]
        self.assertTrue(ptr == "/timeouts/bogus_ms" or (ptr == "/timeouts" and "bogus_ms" in msg),
                        lines)

    def test_check_missing_listeners(self):
        path = self.write({"workers": 1})
        p = run(["--check", path])
        self.assertEqual(p.returncode, 1)
        errors, lines = self.config_errors(p)
        self.assertGreaterEqual(len(errors), 1, lines)

    def test_check_invalid_json(self):
        path = self.write('{"listeners": [')
        p = run(["--check", path])
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.strip())

    def test_check_missing_file(self):
        p = run(["--check", os.path.join(self.dir.name, "nope.json")])
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.strip())

    def test_config_with_errors_does_not_start(self):
        path = self.write({"listeners": [{"name": "a", "listen": ["127.0.0.1:0"],
                                          "mode": "forward"}], "bogus": 1})
        p = run(["--config", path])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("config error: ", p.stderr.decode())
        self.assertNotIn("portier: info: ready", p.stderr.decode())

    def test_no_arguments_is_usage_error(self):
        p = run([])
        self.assertNotEqual(p.returncode, 0)
        self.assertTrue(p.stderr.strip())


if __name__ == "__main__":
    unittest.main()

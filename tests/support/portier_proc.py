"""Start build/portier for a test and talk about it.

    with Portier({"timeouts": {"header_ms": 1000}}) as p:
        p.port, p.proxy_url, p.access_log_records(2), p.stop(signal.SIGTERM)

The binary is $PORTIER_BIN, default <repo>/build/portier. The config is the test default (one forward
listener on 127.0.0.1:0, 2 workers, access log to a temp file, ssrf.allow for loopback) deep-merged
with the overrides (dicts merge, everything else replaces). Stderr is drained in a thread into a
buffer; start() waits for `portier: info: ready` with a deadline and records the
`portier: info: listener <name> listening on <ip:port>` lines. The child gets PR_SET_PDEATHSIG=SIGKILL so
it never outlives the test process.
"""
import copy
import ctypes
import json
import os
import re
import shutil
import signal
import signal as _signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

__all__ = ["Portier", "PortierError", "portier_bin", "base_config", "deep_merge", "REPO"]

LISTEN_RE = re.compile(r"^portier: info: listener (\S+) listening on (\S+)\s*$")
ADMIN_RE = re.compile(r"^portier: info: admin listening on (\S+)$", re.M)
READY_RE = re.compile(r"^portier: info: ready\b")  # exact line checked by test_lifecycle


class PortierError(Exception):
    pass


def portier_bin():
    return os.environ.get("PORTIER_BIN") or str(REPO / "build" / "portier")


def base_config(log_path):
    return {
        "workers": 2,
        "listeners": [{"name": "test", "listen": ["127.0.0.1:0"], "mode": "forward"}],
        "access_log": {"path": log_path},
        "ssrf": {"allow": ["127.0.0.0/8", "::1/128"]},
    }


def deep_merge(base, overrides):
    out = copy.deepcopy(base)
    for k, v in (overrides or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        elif v is None:
            out.pop(k, None)       # None removes a default key
        else:
            out[k] = copy.deepcopy(v)
    return out


def split_hostport(s):
    """'127.0.0.1:80' / '[::1]:80' -> (host, port)"""
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return host, int(port)
    host, _, port = s.rpartition(":")
    return host, int(port)


def _pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Portier:
    def __init__(self, overrides=None, ready_timeout=10.0, args=None, config=None):
        self.overrides = overrides or {}
        self.ready_timeout = ready_timeout
        self.extra_args = list(args or [])
        self.full_config = config
        self.proc = None
        self.dir = None
        self.config = None
        self.config_path = None
        self.log_path = None
        self.listeners = []        # [(name, host, port)] in the order printed
        self._stderr = []
        self._stdout = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ready = False
        self._eof = False
        self._threads = []

    # -- lifecycle --------------------------------------------------------------------------
    def start(self):
        binary = portier_bin()
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise PortierError("portier binary not found or not executable: %s" % binary)
        self.dir = tempfile.mkdtemp(prefix="portier-test-")
        self.log_path = os.path.join(self.dir, "access.log")
        if self.full_config is not None:
            self.config = copy.deepcopy(self.full_config)
        else:
            self.config = deep_merge(base_config(self.log_path), self.overrides)
        self.config_path = os.path.join(self.dir, "portier.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        argv = [binary, "--config", self.config_path] + self.extra_args
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=_pdeathsig, cwd=self.dir)
        t1 = threading.Thread(target=self._drain, args=(self.proc.stderr, self._stderr, True),
                              daemon=True, name="portier-stderr")
        t2 = threading.Thread(target=self._drain, args=(self.proc.stdout, self._stdout, False),
                              daemon=True, name="portier-stdout")
        self._threads = [t1, t2]
        t1.start()
        t2.start()
        deadline = time.monotonic() + self.ready_timeout
        with self._cond:
            while not self._ready and not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            ready, eof = self._ready, self._eof
        if not ready:
            self.kill()
            why = "exited (rc=%s)" % self.proc.returncode if eof else \
                "not ready within %.0fs" % self.ready_timeout
            raise PortierError("portier %s; config:\n%s\nstderr:\n%s" % (
                why, json.dumps(self.config, indent=2), self.stderr_text()))
        if not self.listeners:
            self.kill()
            raise PortierError("portier printed no listener lines; stderr:\n%s" % self.stderr_text())
        return self

    def _drain(self, stream, sink, parse):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._cond:
                sink.append(line)
                if parse and not self._ready:
                    m = LISTEN_RE.match(line.rstrip("\n"))
                    if m:
                        host, port = split_hostport(m.group(2))
                        self.listeners.append((m.group(1), host, port))
                    elif READY_RE.match(line.rstrip("\n")):
                        self._ready = True
                self._cond.notify_all()
        with self._cond:
            if parse:
                self._eof = True
            self._cond.notify_all()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        """Exit code, or None if it did not exit within timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=_signal.SIGTERM, timeout=10.0):
        """Send sig and wait for exit; returns the exit code (negative = killed by a signal).
        If it does not exit within timeout it is killed and PortierError is raised."""
        if self.proc is None:
            raise PortierError("not started")
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            raise PortierError("portier did not exit within %.1fs after signal %d; stderr:\n%s"
                               % (timeout, sig, self.stderr_text()))
        self._join_drains()
        return rc

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait(5.0) is None:
                self.proc.kill()
                self.wait(5.0)
        self._join_drains()

    def _join_drains(self):
        for t in self._threads:
            t.join(2.0)

    def close(self):
        self.kill()
        for s in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                s.close()
            except OSError:
                pass
        if self.dir and not os.environ.get("PORTIER_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- addresses ----------------------------------------------------------------------------
    @property
    def host(self):
        return self.listeners[0][1]

    @property
    def port(self):
        return self.listeners[0][2]

    @property
    def addr(self):
        return (self.host, self.port)

    @property
    def proxy_url(self):
        return self.url_for(0)

    def url_for(self, index):
        _, host, port = self.listeners[index]
        return "http://[%s]:%d" % (host, port) if ":" in host else "http://%s:%d" % (host, port)

    @property
    def admin_addr(self):
        """The admin endpoint's "ip:port" as printed at start, or None without one."""
        m = ADMIN_RE.search(self.stderr_text())
        return m.group(1) if m else None

    # -- output ----------------------------------------------------------------------------------
    def stderr_text(self):
        with self._lock:
            return "".join(self._stderr)

    def stdout_text(self):
        with self._lock:
            return "".join(self._stdout)

    def diag(self):
        """Text to append to assertion messages."""
        rc = self.proc.poll() if self.proc else None
        return "\n--- portier %s; stderr tail:\n%s" % (
            "running" if rc is None else "exited rc=%s" % rc, self.stderr_text()[-3000:])

    def access_log_lines(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        # only complete lines
        return [l for l in data.split("\n")[:-1] if l.strip()]

    def access_log_records(self, n=1, timeout=5.0, predicate=None):
        """Parsed JSON records once at least n (matching predicate, if given) are there, or all
        there are when the deadline passes. Raises ValueError on a line that is not JSON."""
        deadline = time.monotonic() + timeout
        while True:
            recs = [json.loads(l) for l in self.access_log_lines()]
            sel = [r for r in recs if predicate is None or predicate(r)]
            if len(sel) >= n or time.monotonic() >= deadline:
                return sel
            time.sleep(0.05)

    def wait_record(self, predicate, timeout=5.0):
        """First record matching predicate, or None after the deadline."""
        recs = self.access_log_records(1, timeout, predicate)
        return recs[0] if recs else None

"""Parent proxies for portier's chain tests (Python 3 standard library only).

start_microsocks(port=0, user=None, password=None, bind=None)
    Debian's /usr/bin/microsocks (a real SOCKS5 server, RFC 1928 + RFC 1929) on 127.0.0.1; port 0
    picks a free port. Returns a MicroSocks with .host, .port, .pid, .url ("socks5://127.0.0.1:N",
    never with credentials) and .stop(). Use it as a context manager or stop() it in a cleanup.
    Note: microsocks resolves names itself and dials from `bind` (or the default source).

FakeParent(...)
    A recording HTTP parent proxy on 127.0.0.1:0 (threaded, like origins.EchoOrigin):
      CONNECT host:port       dials the target, answers "200 Connection established" (plus `extra`
                              bytes in the same send, to exercise leftover handling), then relays
                              both ways with half-close until both sides are done.
      GET http://host:port/p  (when allow_get) forwards the request in origin form to the origin
                              with "Connection: close", relays the answer, then closes: one request
                              per connection. Bodies: Content-Length only.
    Knobs (all keyword arguments):
      require_auth=(user, password)  answer 407 + Proxy-Authenticate unless Proxy-Authorization is
                                     exactly "Basic base64(user:password)"
      status=403                     answer every request with this status (and close)
      garbage=b"..."                 answer with these bytes instead of HTTP (and close)
      hold=True                      read the head, never answer (for timeouts)
      close=True                     read the head, close without answering
      extra=b"SSH-2.0-x\\r\\n"         bytes sent right behind the 200 to a CONNECT
      response_headers=[(n, v)]      extra fields in the 200 to a CONNECT (e.g. Content-Length)
      allow_get=True                 accept absolute-form requests (else 405)
    Records: .requests, one dict per request head: method, target, version, headers ([[n, v]]),
    raw (the head bytes, latin-1 str), conn_id, peer_port, answered (status or None), kind
    ("connect" / "forward"). Helpers: .proxy_authorizations(), .all_heads_text(), .connects(),
    .snapshot() -> (connections accepted, requests seen).
    .url is "http://127.0.0.1:N"; basic(user, password) builds the header value it expects.

Every wait has a deadline; stop() shuts our own sockets down and joins threads with a timeout, and
processes are stopped only by the PID we started.
"""
import base64
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time

from .origins import _Server, ConnReader, ProtocolError, parse_head, header_values, free_port, fmt_hostport

__all__ = ["start_microsocks", "MicroSocks", "MicroSocksError", "FakeParent", "basic",
           "MICROSOCKS_BIN", "microsocks_available"]

MICROSOCKS_BIN = os.environ.get("MICROSOCKS_BIN", "/usr/bin/microsocks")


def microsocks_available():
    return os.path.isfile(MICROSOCKS_BIN) and os.access(MICROSOCKS_BIN, os.X_OK)


def basic(user, password):
    """The Proxy-Authorization value for user/password (str or bytes; str is UTF-8)."""
    if isinstance(user, str):
        user = user.encode("utf-8")
    if isinstance(password, str):
        password = password.encode("utf-8")
    return "Basic " + base64.b64encode(user + b":" + password).decode("ascii")


def _pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: never outlive the test process
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# microsocks

class MicroSocksError(Exception):
    pass


class MicroSocks:
    def __init__(self, proc, host, port, argv):
        self.proc = proc
        self.host = host
        self.port = port
        self.argv = argv

    @property
    def pid(self):
        return self.proc.pid

    @property
    def hostport(self):
        return fmt_hostport(self.host, self.port)

    @property
    def url(self):
        return "socks5://%s" % self.hostport

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=5.0):
        """Terminate our own process (by its PID, through Popen) and reap it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                if s:
                    s.close()
            except OSError:
                pass
        return self.proc.returncode

    def output(self):
        """What microsocks printed (only after stop())."""
        if self.proc.poll() is None or self.proc.stderr is None or self.proc.stderr.closed:
            return ""
        try:
            return self.proc.stderr.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _wait_accepting(proc, host, port, deadline):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            time.sleep(0.02)
        finally:
            s.close()
    return False


def start_microsocks(port=0, user=None, password=None, bind=None, host="127.0.0.1", timeout=5.0):
    """Start microsocks and wait until it accepts; see the module docstring."""
    if not microsocks_available():
        raise MicroSocksError("%s not found: install the Debian package microsocks" % MICROSOCKS_BIN)
    if (user is None) != (password is None):
        raise ValueError("microsocks needs both user and password, or neither")
    attempts = 3 if port == 0 else 1   # a picked free port can be taken in between: try again
    last = ""
    for _ in range(attempts):
        p = port or free_port(host)
        argv = [MICROSOCKS_BIN, "-i", host, "-p", str(p)]
        if user is not None:
            argv += ["-u", user, "-P", password]
        if bind is not None:
            argv += ["-b", bind]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=_pdeathsig)
        if _wait_accepting(proc, host, p, time.monotonic() + timeout):
            return MicroSocks(proc, host, p, argv)
        m = MicroSocks(proc, host, p, argv)
        m.stop()
        last = "microsocks %s (rc=%s): %s" % (" ".join(a if a != password else "***" for a in argv),
                                             proc.returncode, m.output().strip())
    raise MicroSocksError("microsocks did not accept within %.1fs: %s" % (timeout, last))


# ---------------------------------------------------------------------------------------------
# fake HTTP parent

REASONS = {200: "Connection established", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed",
           407: "Proxy Authentication Required", 500: "Internal Server Error", 501: "Not Implemented",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _split_authority(authority):
    """'h:1' / '[::1]:1' -> (host, port); ValueError otherwise."""
    if authority.startswith("["):
        host, sep, port = authority[1:].partition("]:")
        if not sep:
            raise ValueError(authority)
    else:
        host, sep, port = authority.rpartition(":")
        if not sep:
            raise ValueError(authority)
    return host, int(port)


class FakeParent(_Server):
    MAX_HEAD = 65536

    def __init__(self, host="127.0.0.1", io_timeout=30.0, require_auth=None, status=None, garbage=None,
                 hold=False, close=False, extra=b"", response_headers=(), allow_get=True,
                 realm="fake-parent", dial_timeout=5.0):
        self.require_auth = require_auth
        self.status = status
        self.garbage = garbage
        self.hold = hold
        self.close_without_answer = close
        self.extra = extra
        self.response_headers = list(response_headers)
        self.allow_get = allow_get
        self.realm = realm
        self.dial_timeout = dial_timeout
        self.requests = []
        super().__init__(host=host, io_timeout=io_timeout)

    # -- records ----------------------------------------------------------------------------------
    def snapshot(self):
        with self.lock:
            return self.accepted, len(self.requests)

    def proxy_authorizations(self):
        """Every Proxy-Authorization value received, in order (None for a request without one)."""
        with self.lock:
            out = []
            for r in self.requests:
                vals = header_values(r["headers"], "proxy-authorization")
                out.append(vals[0] if vals else None)
            return out

    def all_heads_text(self):
        """Every head received, concatenated: to assert that a secret never reached this parent."""
        with self.lock:
            return "".join(r["raw"] for r in self.requests)

    def connects(self):
        with self.lock:
            return [r["target"] for r in self.requests if r["method"] == "CONNECT"]

    # -- serving ----------------------------------------------------------------------------------
    def _answer(self, sock, status, headers=(), body=b"", close=True):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        if status != 200 or body:
            lines.append("Content-Length: %d" % len(body))
        if close:
            lines.append("Connection: close")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _track(self, s):
        with self.lock:
            self._conns.add(s)

    def _untrack(self, s):
        with self.lock:
            self._conns.discard(s)
        try:
            s.close()
        except OSError:
            pass

    def handle(self, sock, peer, conn_id):
        reader = ConnReader(sock)
        raw = reader.read_until(b"\r\n\r\n", self.MAX_HEAD)
        if raw is None:
            return
        start, headers = parse_head(raw)
        if len(start) != 3:
            raise ProtocolError("bad request line %r" % (start,))
        method, target, version = start
        record = {"method": method, "target": target, "version": version, "headers": headers,
                  "raw": raw.decode("latin-1"), "conn_id": conn_id, "peer_port": peer[1], "answered": None,
                  "kind": "connect" if method == "CONNECT" else "forward", "time": time.monotonic()}
        with self.lock:
            self.requests.append(record)

        def answered(status):
            with self.lock:
                record["answered"] = status

        if self.hold:
            # never answer: wait for the peer to give up (or stop())
            while not self._stopping.is_set():
                try:
                    if not sock.recv(65536):
                        return
                except socket.timeout:
                    continue
            return
        if self.close_without_answer:
            return
        if self.garbage is not None:
            sock.sendall(self.garbage)
            return
        if self.require_auth is not None:
            got = header_values(headers, "proxy-authorization")
            if not got or got[0] != basic(*self.require_auth):
                answered(407)
                self._answer(sock, 407, [("Proxy-Authenticate", 'Basic realm="%s"' % self.realm)],
                             b"credentials required\n")
                return
        if self.status is not None:
            answered(self.status)
            self._answer(sock, self.status, body=b"fake parent says %d\n" % self.status)
            return
        if method == "CONNECT":
            self._connect(sock, reader, target, answered)
        elif self.allow_get and "://" in target:
            self._forward(sock, reader, method, target, version, headers, answered)
        else:
            answered(405)
            self._answer(sock, 405, [("Allow", "CONNECT" + (", GET" if self.allow_get else ""))])

    def _dial(self, host, port):
        up = socket.create_connection((host, port), timeout=self.dial_timeout)
        up.settimeout(self.io_timeout)
        self._track(up)
        return up

    def _connect(self, sock, reader, target, answered):
        try:
            host, port = _split_authority(target)
        except ValueError:
            answered(400)
            self._answer(sock, 400)
            return
        try:
            up = self._dial(host, port)
        except OSError:
            answered(502)
            self._answer(sock, 502, body=b"cannot reach %s\n" % target.encode("latin-1"))
            return
        try:
            answered(200)
            head = "HTTP/1.1 200 Connection established\r\n"
            head += "".join("%s: %s\r\n" % (n, v) for n, v in self.response_headers)
            sock.sendall(head.encode("latin-1") + b"\r\n" + self.extra)
            if reader.buf:  # bytes the client sent right behind its CONNECT
                up.sendall(bytes(reader.buf))
                reader.buf.clear()
            self._relay(sock, up)
        finally:
            self._untrack(up)

    def _relay(self, a, b):
        def pump(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(b, a), daemon=True, name="FakeParent-relay")
        t.start()
        pump(a, b)
        t.join(self.io_timeout)

    def _forward(self, sock, reader, method, target, version, headers, answered):
        scheme, _, rest = target.partition("://")
        if scheme.lower() != "http":
            answered(501)
            self._answer(sock, 501)
            return
        authority, slash, path = rest.partition("/")
        path = "/" + path if slash else "/"
        try:
            if authority.startswith("[") and "]:" not in authority:
                host, port = authority[1:].rstrip("]"), 80
            elif not authority.startswith("[") and ":" not in authority:
                host, port = authority, 80
            else:
                host, port = _split_authority(authority)
        except ValueError:
            answered(400)
            self._answer(sock, 400)
            return
        length = header_values(headers, "content-length")
        if header_values(headers, "transfer-encoding"):
            answered(501)
            self._answer(sock, 501, body=b"chunked request bodies are not supported here\n")
            return
        body = reader.read_exact(int(length[0])) if length else b""
        drop = {"proxy-authorization", "proxy-connection", "connection", "keep-alive"}
        lines = ["%s %s HTTP/1.1" % (method, path)]
        lines += ["%s: %s" % (n, v) for n, v in headers if n.lower() not in drop]
        lines.append("Connection: close")
        try:
            up = self._dial(host, port)
        except OSError:
            answered(502)
            self._answer(sock, 502)
            return
        try:
            up.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            answered(0)  # relayed: the origin's status is in the bytes
            while True:
                data = up.recv(65536)
                if not data:
                    break
                sock.sendall(data)
        finally:
            self._untrack(up)

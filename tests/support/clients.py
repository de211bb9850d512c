"""Clients for portier's integration tests: curl in a subprocess and raw HTTP over sockets.

Every call has a deadline: curl runs with --max-time and a subprocess timeout, sockets have timeouts.
"""
import json
import os
import select
import socket
import subprocess
import tempfile
import time

from .origins import ConnReader, ProtocolError, parse_head, header_values, header_tokens, fmt_hostport

__all__ = ["curl", "fetch", "CurlResult", "HttpConn", "Response", "open_tunnel", "one_request",
           "curl_env", "ConnectionClosed", "admin_request"]


# ---------------------------------------------------------------------------------------------
# curl

def curl_env():
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "curl_home")}
    return env


def curl(args, timeout=30.0, stdin_data=None):
    """Run `curl -q -sS <args>` with a deadline; returns subprocess.CompletedProcess (bytes)."""
    cmd = ["curl", "-q", "-sS", "--max-time", "%g" % timeout] + [str(a) for a in args]
    return subprocess.run(cmd, input=stdin_data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=curl_env(), timeout=timeout + 10)


class CurlResult:
    def __init__(self, returncode, info, blocks, body, stderr, argv):
        self.returncode = returncode
        self.info = info              # curl -w '%{json}'
        self.blocks = blocks          # header blocks from -D, each [(status line), [[n, v], ...]]
        self.body = body
        self.stderr = stderr
        self.argv = argv

    @property
    def status(self):
        return int(self.info.get("http_code", 0) or 0)

    @property
    def headers(self):
        """Headers of the final response (last header block)."""
        return self.blocks[-1][1] if self.blocks else []

    def header(self, name):
        vals = header_values(self.headers, name)
        return vals[0] if vals else None

    def json(self):
        return json.loads(self.body)

    def describe(self):
        return "curl rc=%d status=%s stderr=%r argv=%r" % (self.returncode, self.status,
                                                           self.stderr.strip()[-500:], self.argv)


def _parse_dump(text):
    blocks = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        lines = [l for l in chunk.split("\n") if l]
        if not lines or not lines[0].startswith("HTTP/"):
            continue
        hdrs = []
        for l in lines[1:]:
            if ":" in l:
                n, v = l.split(":", 1)
                hdrs.append([n, v.strip()])
        blocks.append((lines[0], hdrs))
    return blocks


def fetch(url, proxy=None, args=(), timeout=30.0):
    """One curl transfer; returns CurlResult with status, final headers, body and -w json info."""
    with tempfile.TemporaryDirectory(prefix="portier-curl-") as d:
        hdr = os.path.join(d, "headers")
        body = os.path.join(d, "body")
        argv = []
        if proxy:
            argv += ["-x", proxy]
        argv += ["-D", hdr, "-o", body, "-w", "%{json}"] + list(args) + [url]
        p = curl(argv, timeout=timeout)
        try:
            info = json.loads(p.stdout.decode("utf-8", "replace") or "{}")
        except ValueError:
            info = {}
        blocks = _parse_dump(open(hdr, encoding="latin-1").read()) if os.path.exists(hdr) else []
        data = open(body, "rb").read() if os.path.exists(body) else b""
        return CurlResult(p.returncode, info, blocks, data, p.stderr.decode("utf-8", "replace"), argv)


# ---------------------------------------------------------------------------------------------
# raw HTTP

class ConnectionClosed(Exception):
    pass


class Response:
    def __init__(self, version, status, reason, headers, body=b"", interim=(), raw_head=b""):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.interim = list(interim)
        self.raw_head = raw_head

    def header(self, name):
        vals = header_values(self.headers, name)
        return vals[0] if vals else None

    def header_all(self, name):
        return header_values(self.headers, name)

    def tokens(self, name):
        return header_tokens(self.headers, name)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %d %s headers=%r body=%r>" % (self.version, self.status, self.reason,
                                                          self.headers, self.body[:200])


class HttpConn:
    """A raw client connection (to the proxy). Keeps leftover bytes between responses."""

    def __init__(self, host, port, timeout=10.0, sock=None):
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
        sock.settimeout(timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.sock = sock
        self.timeout = timeout
        self.reader = ConnReader(sock)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def settimeout(self, t):
        self.sock.settimeout(t)

    def read_head(self, limit=1 << 20):
        raw = self.reader.read_until(b"\r\n\r\n", limit)
        if raw is None:
            raise ConnectionClosed("connection closed before a response head")
        start, headers = parse_head(raw)
        if len(start) < 2 or not start[0].startswith("HTTP/"):
            raise ProtocolError("bad status line %r" % (start,))
        return Response(start[0], int(start[1]), start[2] if len(start) > 2 else "", headers,
                        raw_head=raw)

    def read_response(self, method="GET", sink=None):
        """Read one response (skipping 1xx interim responses, kept in .interim). The body is
        collected unless sink(bytes) is given. A CONNECT 2xx has no body."""
        interim = []
        while True:
            resp = self.read_head()
            if 100 <= resp.status < 200 and resp.status != 101:
                interim.append(resp)
                continue
            break
        resp.interim = interim
        parts = []
        out = sink or parts.append
        no_body = (method == "HEAD" or resp.status in (204, 304) or resp.status < 200
                   or (method == "CONNECT" and 200 <= resp.status < 300))
        if not no_body:
            if "chunked" in resp.tokens("transfer-encoding"):
                while True:
                    line = self.reader.read_line(4096).rstrip(b"\r\n")
                    size = int(line.split(b";", 1)[0].strip(), 16)
                    if size == 0:
                        while self.reader.read_line(65536) not in (b"\r\n", b"\n"):
                            pass
                        break
                    self.reader.read_exact_into(size, out)
                    if self.reader.read_exact(2) != b"\r\n":
                        raise ProtocolError("chunk not followed by CRLF")
            elif resp.header("content-length") is not None:
                self.reader.read_exact_into(int(resp.header("content-length")), out)
            else:
                self.reader.read_to_eof(out)
        resp.body = b"".join(parts)
        return resp

    def read_available(self, n, timeout=None):
        """Read exactly n bytes (leftover buffer first), with the socket timeout."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            return self.reader.read_exact(n)
        finally:
            self.sock.settimeout(self.timeout)

    def read_until_eof(self, timeout=10.0):
        """All bytes until EOF. Raises socket.timeout if EOF does not come in time."""
        deadline = time.monotonic() + timeout
        parts = [bytes(self.reader.buf)]
        self.reader.buf.clear()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no EOF within %.1fs" % timeout)
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            if not data:
                self.sock.settimeout(self.timeout)
                return b"".join(parts)
            parts.append(data)

    def wait_closed(self, timeout=3.0):
        """True if the peer closes (EOF or reset) within timeout and sends nothing more before.
        Returns (closed, extra_bytes)."""
        extra = bytes(self.reader.buf)
        self.reader.buf.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False, extra
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return False, extra
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return True, extra
            except OSError:
                return True, extra
            if not data:
                return True, extra
            extra += data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def one_request(host, port, raw, method="GET", timeout=10.0):
    """Send raw bytes on a new connection and read one response. Returns (conn, response)."""
    conn = HttpConn(host, port, timeout=timeout)
    conn.send(raw)
    return conn, conn.read_response(method)


def open_tunnel(proxy_host, proxy_port, target_host, target_port, extra=b"", timeout=10.0):
    """CONNECT through the proxy; `extra` is sent in the same write as the CONNECT head.
    Returns (conn, response)."""
    authority = fmt_hostport(target_host, target_port)
    conn = HttpConn(proxy_host, proxy_port, timeout=timeout)
    conn.send(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (authority, authority)).encode() + extra)
    resp = conn.read_response("CONNECT")
    return conn, resp


def admin_request(addr, path, method="GET", token=None, timeout=30):
    """One request to portier's admin endpoint at addr ("ip:port"): (status, headers, body text)."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request("http://%s%s" % (addr, path), method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()

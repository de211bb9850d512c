"""Test origins for portier's integration tests (Python 3 standard library only).

EchoOrigin   a threaded HTTP/1.1 origin on a raw socket: keep-alive, pipelining, chunked request
             bodies with trailers, Expect: 100-continue, HEAD. It answers with a JSON description of
             what it received and records every request (and every accepted connection).
TlsOrigin    the same over TLS, with a self-signed certificate for "localhost" and 127.0.0.1 made at
             test time with the openssl CLI.
TcpServer    tiny raw TCP servers for tunnel tests: "echo", "count" (read until EOF, reply with the
             byte count, close), "record" (store everything received), "hold" (accept, never answer).

Routes of EchoOrigin (the query string is ignored for routing):
  /echo...        JSON description of the request (default for any unknown path)
  /bytes/N        N bytes of deterministic content (see pattern_bytes), Content-Length
  /chunked/N      the same N bytes, chunked
  /close/N        the same N bytes, no length, delimited by closing the connection
  /slow-head/S    waits S seconds (float) before the response head, then the JSON echo
  /status/N       status N; no body for 1xx/204/304, a short text body otherwise
  /hop-response   a response carrying hop-by-hop headers (Connection: X-Resp-Hop, Keep-Alive, ...)
  /close-after    answers with Connection: close, then closes
  /truncate/N     promises Content-Length N, sends N/2 bytes, closes
  /truncate-chunked/N  starts a chunk of N bytes, sends N/2, closes
  /stall-body/S   Content-Length 10: 5 bytes, a pause of S seconds, 5 bytes
  /garbage        answers "THIS IS NOT HTTP"
  /early-hints    a 103 interim response, then 200
HEAD is answered with the headers GET would have (Content-Length included) and no body.

Every wait has a deadline: connection sockets time out after `io_timeout` seconds, stop() shuts
listening and connection sockets down and joins threads with a timeout.
"""
import hashlib
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

__all__ = ["EchoOrigin", "TlsOrigin", "TcpServer", "pattern_bytes", "pattern_sha256",
           "make_self_signed_cert", "free_port", "ipv6_available"]

# ---------------------------------------------------------------------------------------------
# deterministic content

_BLOCK_SIZE = 1 << 20
_block = None
_block_lock = threading.Lock()
_sha_cache = {}


def _pattern_block():
    """1 MiB of pseudo-random bytes: sha256(b"portier-%d" % i) for i = 0, 1, ..."""
    global _block
    with _block_lock:
        if _block is None:
            parts = [hashlib.sha256(b"portier-%d" % i).digest() for i in range(_BLOCK_SIZE // 32)]
            _block = memoryview(b"".join(parts))
        return _block


def iter_pattern(n, piece=_BLOCK_SIZE):
    """Yield memoryviews that together are the first n bytes of the pattern (repeated 1 MiB block)."""
    block = _pattern_block()
    remaining = n
    offset = 0
    while remaining > 0:
        k = min(remaining, piece, _BLOCK_SIZE - offset)
        yield block[offset:offset + k]
        offset = (offset + k) % _BLOCK_SIZE
        remaining -= k


def pattern_bytes(n):
    return b"".join(bytes(p) for p in iter_pattern(n))


def pattern_sha256(n):
    """sha256 hex of the first n bytes of the pattern (what /bytes/N, /chunked/N and /close/N send)."""
    if n not in _sha_cache:
        h = hashlib.sha256()
        for p in iter_pattern(n):
            h.update(p)
        _sha_cache[n] = h.hexdigest()
    return _sha_cache[n]


# ---------------------------------------------------------------------------------------------
# small helpers

def ipv6_available():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(host="127.0.0.1"):
    """A port that nothing listens on right now (bound then closed): connecting to it is refused."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def fmt_hostport(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


class ProtocolError(Exception):
    pass


class ConnReader:
    """Buffered reads over a socket, keeping leftover bytes (pipelining)."""

    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = bytearray(buf)

    def _fill(self, bufsize=262144):
        data = self.sock.recv(bufsize)
        if not data:
            return False
        self.buf += data
        return True

    def read_until(self, sep, limit):
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (sep, limit))
            start = max(0, len(self.buf) - len(sep) + 1)
            if not self._fill():
                if self.buf:
                    raise ProtocolError("EOF in the middle of a message")
                return None

    def read_line(self, limit=65536):
        line = self.read_until(b"\n", limit)
        if line is None:
            raise ProtocolError("EOF while reading a line")
        return line

    def read_exact_into(self, n, sink):
        """Read n bytes, passing them to sink(bytes) piece by piece."""
        remaining = n
        while remaining > 0:
            if not self.buf:
                if not self._fill(min(max(remaining, 65536), 1 << 20)):
                    raise ProtocolError("EOF with %d body bytes missing" % remaining)
            k = min(remaining, len(self.buf))
            sink(bytes(self.buf[:k]))
            del self.buf[:k]
            remaining -= k

    def read_exact(self, n):
        parts = []
        self.read_exact_into(n, parts.append)
        return b"".join(parts)

    def read_to_eof(self, sink):
        if self.buf:
            sink(bytes(self.buf))
            self.buf.clear()
        while True:
            data = self.sock.recv(1 << 20)
            if not data:
                return
            sink(data)


def parse_head(raw):
    """raw head bytes (through CRLFCRLF) -> (start line parts, [[name, value], ...])."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ProtocolError("empty head")
    start = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if ":" not in line:
            raise ProtocolError("header line without colon: %r" % line)
        name, value = line.split(":", 1)
        headers.append([name, value.strip(" \t")])
    return start, headers


def header_values(headers, name):
    name = name.lower()
    return [v for n, v in headers if n.lower() == name]


def header_tokens(headers, name):
    out = []
    for v in header_values(headers, name):
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


# ---------------------------------------------------------------------------------------------
# HTTP origin

STATUS_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
                  302: "Found", 304: "Not Modified", 400: "Bad Request", 403: "Forbidden",
                  404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway",
                  503: "Service Unavailable"}


def stop_server(server, timeout=5.0):
    """Close a threaded test server's listener (`lsock`) and every open connection (`_conns`), then
    join its accept thread and connection threads, all within `timeout`; returns the connections.
    Used by _Server and by backends.Backend, which share these attribute names."""
    server._stopping.set()
    for sock in [server.lsock]:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
    with server.lock:
        conns = list(server._conns)
        threads = list(server._threads)
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    server._accept_thread.join(max(0.1, deadline - time.monotonic()))
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    return conns


class _Server:
    """Accept loop in a thread; one thread per connection. Subclasses implement handle(conn, info)."""

    def __init__(self, host="127.0.0.1", io_timeout=30.0, backlog=128):
        self.host = host
        self.io_timeout = io_timeout
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.lock = threading.Lock()
        self.accepted = 0          # connections accepted
        self.errors = []           # protocol errors seen on connections
        self._conns = set()
        self._threads = []
        self._stopping = threading.Event()
        self.lsock = socket.socket(self.family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(backlog)
        self.port = self.lsock.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name="%s-accept" % type(self).__name__)
        self._accept_thread.start()

    @property
    def hostport(self):
        return fmt_hostport(self.host, self.port)

    @property
    def url(self):
        return "http://%s" % self.hostport

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                sock, peer = self.lsock.accept()
            except OSError:
                return
            if self._stopping.is_set():
                sock.close()
                return
            sock.settimeout(self.io_timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with self.lock:
                self.accepted += 1
                conn_id = self.accepted
                self._conns.add(sock)
            t = threading.Thread(target=self._run_conn, args=(sock, peer, conn_id), daemon=True,
                                 name="%s-conn-%d" % (type(self).__name__, conn_id))
            with self.lock:
                self._threads = [x for x in self._threads if x.is_alive()]
                self._threads.append(t)
            t.start()

    def _run_conn(self, sock, peer, conn_id):
        try:
            self.handle(sock, peer, conn_id)
        except (OSError, ProtocolError, ssl.SSLError, ValueError) as e:
            if not self._stopping.is_set():
                with self.lock:
                    self.errors.append("conn %d: %s: %s" % (conn_id, type(e).__name__, e))
        finally:
            with self.lock:
                self._conns.discard(sock)
            try:
                sock.close()
            except OSError:
                pass

    def handle(self, sock, peer, conn_id):  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self, timeout=5.0):
        stop_server(self, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class EchoOrigin(_Server):
    """HTTP/1.1 origin; see the module docstring. `requests` holds one dict per complete request."""

    MAX_HEAD = 1 << 20

    def __init__(self, host="127.0.0.1", io_timeout=30.0, ssl_context=None, idle_close=None):
        self.requests = []
        self.ssl_context = ssl_context
        self.idle_close = idle_close   # close a keep-alive connection idle this long (seconds)
        self.idle_closed = 0           # connections closed that way
        super().__init__(host=host, io_timeout=io_timeout)

    @property
    def url(self):
        return "%s://%s" % ("https" if self.ssl_context else "http", self.hostport)

    def requests_for(self, path_prefix):
        with self.lock:
            return [r for r in self.requests if r["target"].startswith(path_prefix)]

    def snapshot(self):
        """(connections accepted, requests seen) — to prove that nothing reached the origin."""
        with self.lock:
            return self.accepted, len(self.requests)

    def handle(self, sock, peer, conn_id):
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True)
            sock.settimeout(self.io_timeout)
        local = sock.getsockname()
        reader = ConnReader(sock)
        index = 0
        while not self._stopping.is_set():
            if index > 0 and self.idle_close is not None and not reader.buf and not (
                    self.ssl_context is not None and sock.pending()):
                r, _, _ = select.select([sock], [], [], self.idle_close)
                if not r:
                    with self.lock:
                        self.idle_closed += 1
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
            raw = reader.read_until(b"\r\n\r\n", self.MAX_HEAD)
            if raw is None:
                return  # clean EOF between requests
            # tolerate empty lines before a request (RFC 9112 2.2)
            while raw.startswith(b"\r\n"):
                raw = raw[2:]
            if not raw:
                continue
            index += 1
            keep = self._one_request(sock, reader, raw, peer, local, conn_id, index)
            if not keep:
                if self.ssl_context is None:
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return

    def _one_request(self, sock, reader, raw, peer, local, conn_id, index):
        start, headers = parse_head(raw)
        if len(start) != 3 or not start[2].startswith("HTTP/"):
            raise ProtocolError("bad request line %r" % (start,))
        method, target, version = start
        te = header_tokens(headers, "transfer-encoding")
        cls = header_values(headers, "content-length")
        expect = [v.lower() for v in header_values(headers, "expect")]
        conn_tokens = header_tokens(headers, "connection")
        if version == "HTTP/1.1":
            keep_alive = "close" not in conn_tokens
        else:
            keep_alive = "keep-alive" in conn_tokens

        body_hash = hashlib.sha256()
        body_len = [0]
        body_prefix = bytearray()

        def sink(data):
            body_hash.update(data)
            body_len[0] += len(data)
            if len(body_prefix) < 4096:
                body_prefix.extend(data[:4096 - len(body_prefix)])

        has_body = bool(te) or (cls and int(cls[0]) > 0)
        sent_100 = False
        if "100-continue" in expect and version == "HTTP/1.1" and has_body:
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            sent_100 = True

        trailers = []
        chunk_sizes = []
        if te:
            if te[-1] != "chunked":
                raise ProtocolError("unsupported transfer-encoding %r" % te)
            while True:
                line = reader.read_line(4096).rstrip(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                chunk_sizes.append(size)
                if size == 0:
                    break
                reader.read_exact_into(size, sink)
                if reader.read_exact(2) != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
            while True:
                line = reader.read_line(65536)
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
                trailers.append([name, value.strip()])
        elif cls:
            if len(set(c.strip() for c in cls)) != 1:
                raise ProtocolError("conflicting Content-Length %r" % cls)
            reader.read_exact_into(int(cls[0]), sink)

        record = {
            "method": method,
            "target": target,
            "version": version,
            "headers": headers,
            "body_length": body_len[0],
            "body_sha256": body_hash.hexdigest(),
            "body_prefix": body_prefix.decode("latin-1"),
            "chunk_sizes": chunk_sizes,
            "trailers": trailers,
            "expect_100_sent": sent_100,
            "local_port": local[1],
            "peer_addr": peer[0],
            "peer_port": peer[1],
            "conn_id": conn_id,
            "conn_request_index": index,
            "tls": self.ssl_context is not None,
            "time": time.monotonic(),
        }
        with self.lock:
            self.requests.append(record)
        return self._respond(sock, method, target, record, keep_alive)

    # -- responses ------------------------------------------------------------------------------
    def _head(self, status, headers, keep_alive):
        reason = STATUS_REASONS.get(status, "Status")
        lines = ["HTTP/1.1 %d %s" % (status, reason)]
        for n, v in headers:
            lines.append("%s: %s" % (n, v))
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _respond(self, sock, method, target, record, keep_alive):
        path = target.split("?", 1)[0]
        if "://" in path:  # absolute-form reached the origin: route on its path
            rest = path.split("://", 1)[1]
            path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        parts = path.strip("/").split("/")
        route = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else ""
        is_head = method == "HEAD"

        if route in ("bytes", "chunked", "close") and arg.isdigit():
            n = int(arg)
            if route == "bytes":
                hdrs = [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
                sock.sendall(self._head(200, hdrs, keep_alive))
                if not is_head:
                    for piece in iter_pattern(n):
                        sock.sendall(piece)
                return keep_alive
            if route == "chunked":
                hdrs = [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")]
                sock.sendall(self._head(200, hdrs, keep_alive))
                if not is_head:
                    for piece in iter_pattern(n, piece=65536):
                        sock.sendall(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                    sock.sendall(b"0\r\n\r\n")
                return keep_alive
            # close-delimited
            hdrs = [("Content-Type", "application/octet-stream")]
            sock.sendall(self._head(200, hdrs, False))
            if not is_head:
                for piece in iter_pattern(n):
                    sock.sendall(piece)
            return False

        if route == "hop-response":
            body = b"hop\n"
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                    ("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=5"),
                    ("Proxy-Connection", "keep-alive"), ("Upgrade", "h2c"), ("X-End-To-End", "kept")]
            sock.sendall(self._head(200, hdrs, True) + (b"" if is_head else body))
            return keep_alive

        if route == "close-after":  # answers with Connection: close and closes
            body = b"closing\n"
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            sock.sendall(self._head(200, hdrs, False) + (b"" if is_head else body))
            return False

        if route in ("truncate", "truncate-chunked") and arg.isdigit():
            # promise N bytes, send half, close
            n = int(arg)
            if route == "truncate":
                hdrs = [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))]
                sock.sendall(self._head(200, hdrs, True) + pattern_bytes(n // 2))
            else:
                hdrs = [("Content-Type", "application/octet-stream"),
                        ("Transfer-Encoding", "chunked")]
                half = pattern_bytes(n // 2)
                sock.sendall(self._head(200, hdrs, True) + b"%x\r\n" % n + half)
            return False

        if route == "stall-body":
            # head with Content-Length 10, 5 bytes, a pause of S seconds, the other 5 bytes
            try:
                delay = float(arg or "1")
            except ValueError:
                delay = 1.0
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", "10")]
            sock.sendall(self._head(200, hdrs, keep_alive) + b"01234")
            if self._stopping.wait(delay):
                return False
            sock.sendall(b"56789")
            return keep_alive

        if route == "garbage":
            sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
            return False

        if route == "early-hints":
            body = b"final\n"
            sock.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            sock.sendall(self._head(200, hdrs, keep_alive) + (b"" if is_head else body))
            return keep_alive

        if route == "status" and arg.isdigit():
            status = int(arg)
            if status < 200 or status in (204, 304):
                sock.sendall(self._head(status, [("X-Origin", "status")], keep_alive))
                return keep_alive
            body = b"status %d\n" % status
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            sock.sendall(self._head(status, hdrs, keep_alive) + (b"" if is_head else body))
            return keep_alive

        if route == "slow-head":
            try:
                delay = float(arg or "1")
            except ValueError:
                delay = 1.0
            if self._stopping.wait(delay):
                return False

        body = json.dumps({k: v for k, v in record.items() if k not in ("time", "body_prefix")},
                          indent=None).encode() + b"\n"
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                ("X-Origin-Conn", str(record["conn_id"])),
                ("X-Origin-Request-Index", str(record["conn_request_index"]))]
        sock.sendall(self._head(200, hdrs, keep_alive) + (b"" if is_head else body))
        return keep_alive


# ---------------------------------------------------------------------------------------------
# TLS

def make_self_signed_cert(directory, key_type="ec"):
    """Create cert.pem/key.pem for CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1.
    Returns (cert_path, key_path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if key_type == "ec":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    else:
        newkey = ["-newkey", "rsa:2048"]
    cmd = ["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert,
           "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:0:0:0:0:0:0:0:1",
           "-addext", "basicConstraints=critical,CA:TRUE"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    return cert, key


class TlsOrigin(EchoOrigin):
    """EchoOrigin over TLS. `cafile` is the self-signed certificate to pass to curl --cacert."""

    def __init__(self, host="127.0.0.1", io_timeout=30.0, key_type="ec"):
        self._dir = tempfile.mkdtemp(prefix="portier-tls-")
        self.cafile, self.keyfile = make_self_signed_cert(self._dir, key_type)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cafile, self.keyfile)
        super().__init__(host=host, io_timeout=io_timeout, ssl_context=ctx)

    def stop(self, timeout=5.0):
        super().stop(timeout)
        shutil.rmtree(self._dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# raw TCP servers for tunnels

class TcpServer(_Server):
    """mode: "echo"   echo every byte back; on EOF shut down writing and close.
             "count"  read until EOF, then send b"%d\\n" % count and close.
             "record" store everything received (self.received[conn_id]) until EOF.
             "hold"   accept and read without answering until EOF.
             "greet-close" send `banner` on accept, then close at once.
             "banner" send `banner` on accept, then behave like "echo"."""

    def __init__(self, mode="echo", host="127.0.0.1", io_timeout=30.0, banner=b"hello\n", backlog=128):
        self.mode = mode
        self.banner = banner
        self.received = {}
        self.eof_seen = {}
        super().__init__(host=host, io_timeout=io_timeout, backlog=backlog)

    def total_received(self):
        with self.lock:
            return b"".join(self.received[k] for k in sorted(self.received))

    def handle(self, sock, peer, conn_id):
        with self.lock:
            self.received[conn_id] = b""
            self.eof_seen[conn_id] = False
        if self.mode in ("banner", "greet-close"):
            sock.sendall(self.banner)
        if self.mode == "greet-close":
            sock.shutdown(socket.SHUT_WR)
            with self.lock:
                self.eof_seen[conn_id] = True
            return
        count = 0
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            count += len(data)
            with self.lock:
                if self.mode in ("record", "hold") or len(self.received[conn_id]) < (1 << 20):
                    self.received[conn_id] += data
            if self.mode in ("echo", "banner"):
                sock.sendall(data)
        with self.lock:
            self.eof_seen[conn_id] = True
        if self.mode == "count":
            sock.sendall(b"%d\n" % count)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

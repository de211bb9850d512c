"""Backends for portier's reverse-mode integration tests (Python 3 standard library only).

Backend(name, host="127.0.0.1", port=0, tls=None, delay_ms=0)
    A threaded HTTP/1.1 keep-alive server on a raw socket, one thread per connection. Every answer
    carries `X-Backend: <name>`; the default answer is 200 with a JSON body
        {"backend", "method", "path" (the request target exactly as received), "headers": [[k, v], ...],
         "body_length", "body_sha256", "conn_id", "conn_request_index", "peer": [ip, port], "tls"}
    Request bodies are read by Content-Length or chunked. Paths (the query is ignored for routing):
      /healthz        200 "ok" while `backend.healthy` is True, else 503; counted in `health_hits`
                      (and its heads in `health_heads`), not in `requests`
      /slow?ms=N      the JSON answer after N milliseconds (on top of `delay_ms`)
      /status/N       status N with a short text body (no body for 204/304)
      /hop-response   an answer carrying hop-by-hop headers (Connection: X-Resp-Hop, Keep-Alive, ...)
      /ws-deny...     a WebSocket upgrade here is refused with 403 (any other GET with
                      `Upgrade: websocket` gets a proper 101 and an echo session)
    `tls` is None, an ssl.SSLContext (server side) or (cert_chain_file, key_file).
    Counters (under `lock`): `requests` (non-health requests, WebSocket upgrades included), `heads`
    (their records, newest last), `last`, `accepted` (connections), `active` / `max_active`
    (requests being handled), `ws_sessions`, `ws_messages`, `errors`.
    stop() closes the listener AND every open connection (portier sees the backend gone); start()
    brings it back on the same port (SO_REUSEADDR).

ws_connect(host, port, path, host_header, tls_context=None, server_name=None)
    A minimal WebSocket client: WsClient with `.response` (the handshake answer: 101 or not),
    accept_ok, send_text / send_binary (masked client frames), recv() -> (opcode, payload),
    recv_text(), close().

DeadPort()
    A TCP port bound without listen(): connecting to it is refused, and nothing else can take it
    while it is held. release() frees it (e.g. to start a Backend there).

Every socket has a timeout; stop() joins threads with a deadline.
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time

from .origins import ConnReader, ProtocolError, parse_head, header_values, header_tokens, fmt_hostport, stop_server
from .clients import HttpConn

__all__ = ["Backend", "DeadPort", "WsClient", "ws_connect", "ws_accept_value", "WS_GUID"]

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
REASONS = {101: "Switching Protocols", 200: "OK", 204: "No Content", 304: "Not Modified",
           403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def ws_accept_value(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode("ascii")).digest()).decode("ascii")


# ---------------------------------------------------------------------------------------------
# WebSocket frames (RFC 6455)

def ws_frame(opcode, payload, mask, fin=True):
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    head = bytearray([(0x80 if fin else 0) | (opcode & 0x0F)])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += struct.pack("!H", n)
    else:
        head.append(mbit | 127)
        head += struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + payload


def ws_read_frame(reader, max_len=1 << 24):
    """-> (fin, opcode, payload, was_masked); None on a clean EOF before a frame."""
    if not reader.buf and not reader._fill():
        return None
    b0, b1 = reader.read_exact(2)
    fin, opcode = bool(b0 & 0x80), b0 & 0x0F
    masked, n = bool(b1 & 0x80), b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader.read_exact(8))[0]
    if n > max_len:
        raise ProtocolError("WebSocket frame of %d bytes" % n)
    key = reader.read_exact(4) if masked else None
    payload = reader.read_exact(n) if n else b""
    if masked:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return fin, opcode, payload, masked


# ---------------------------------------------------------------------------------------------
# Backend

class Backend:
    MAX_HEAD = 1 << 20
    HEALTH_PATH = "/healthz"

    def __init__(self, name, host="127.0.0.1", port=0, tls=None, delay_ms=0, io_timeout=30.0,
                 start=True):
        self.name = name
        self.host = host
        self.port = port
        self.delay_ms = delay_ms
        self.io_timeout = io_timeout
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        if isinstance(tls, (tuple, list)):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            tls = ctx
        self.ssl_context = tls
        self.healthy = True
        self.lock = threading.Lock()
        self.requests = 0
        self.heads = []
        self.last = None
        self.health_hits = 0
        self.health_heads = []
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        self.ws_sessions = 0
        self.ws_messages = 0
        self.errors = []
        self.lsock = None
        self._conns = set()
        self._threads = []
        self._accept_thread = None
        self._stopping = threading.Event()
        self.running = False
        if start:
            self.start()

    # -- addresses -------------------------------------------------------------------------------
    @property
    def address(self):
        """"127.0.0.1:9001": what goes into a pool's backends and what portier logs."""
        return fmt_hostport(self.host, self.port)

    hostport = address

    @property
    def url(self):
        return "%s://%s" % ("https" if self.ssl_context else "http", self.address)

    # -- counters --------------------------------------------------------------------------------
    def count(self):
        with self.lock:
            return self.requests

    def counts(self):
        """(requests, health hits, connections accepted)"""
        with self.lock:
            return self.requests, self.health_hits, self.accepted

    def paths(self):
        with self.lock:
            return [h["path"] for h in self.heads]

    def reset_counts(self):
        with self.lock:
            self.requests = 0
            self.heads = []
            self.last = None
            self.health_hits = 0
            self.health_heads = []
            self.max_active = self.active

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self):
        if self.running:
            return self
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                s.bind((self.host, self.port))
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    s.close()
                    raise
                time.sleep(0.05)
        s.listen(128)
        self.port = s.getsockname()[1]
        self.lsock = s
        self._stopping = threading.Event()
        self.running = True
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(s, self._stopping),
                                               daemon=True, name="backend-%s-accept" % self.name)
        self._accept_thread.start()
        return self

    def stop(self, timeout=5.0):
        """Close the listener and every open connection; join the threads (bounded)."""
        if not self.running:
            return
        self.running = False
        conns = stop_server(self, timeout)
        for c in conns:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- connections -----------------------------------------------------------------------------
    def _accept_loop(self, lsock, stopping):
        while not stopping.is_set():
            try:
                sock, peer = lsock.accept()
            except OSError:
                return
            if stopping.is_set():
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
                self._threads = [t for t in self._threads if t.is_alive()]
            t = threading.Thread(target=self._run_conn, args=(sock, peer, conn_id, stopping), daemon=True,
                                 name="backend-%s-conn-%d" % (self.name, conn_id))
            with self.lock:
                self._threads.append(t)
            t.start()

    def _run_conn(self, sock, peer, conn_id, stopping):
        raw_sock = sock
        try:
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                sock.settimeout(self.io_timeout)
            self._serve(sock, peer, conn_id, stopping)
        except (OSError, ProtocolError, ssl.SSLError, ValueError) as e:
            if not stopping.is_set():
                with self.lock:
                    self.errors.append("conn %d: %s: %s" % (conn_id, type(e).__name__, e))
        finally:
            with self.lock:
                self._conns.discard(raw_sock)
            for s in (sock, raw_sock):
                try:
                    s.close()
                except OSError:
                    pass

    def _serve(self, sock, peer, conn_id, stopping):
        reader = ConnReader(sock)
        index = 0
        while not stopping.is_set():
            raw = reader.read_until(b"\r\n\r\n", self.MAX_HEAD)
            if raw is None:
                return
            while raw.startswith(b"\r\n"):
                raw = raw[2:]
            if not raw:
                continue
            index += 1
            start, headers = parse_head(raw)
            if len(start) != 3 or not start[2].startswith("HTTP/"):
                raise ProtocolError("bad request line %r" % (start,))
            method, target, version = start
            body = self._read_body(reader, headers)
            conn_tokens = header_tokens(headers, "connection")
            keep = ("close" not in conn_tokens) if version == "HTTP/1.1" else ("keep-alive" in conn_tokens)
            path = target.split("?", 1)[0]
            if "://" in path:
                rest = path.split("://", 1)[1]
                path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
            record = {
                "backend": self.name, "method": method, "path": target, "version": version,
                "headers": headers, "body_length": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
                "conn_id": conn_id, "conn_request_index": index, "peer": [peer[0], peer[1]],
                "tls": self.ssl_context is not None,
            }
            if path == self.HEALTH_PATH:
                with self.lock:
                    self.health_hits += 1
                    self.health_heads.append(record)
                    if len(self.health_heads) > 200:
                        del self.health_heads[:100]
                    ok = self.healthy
                text = b"ok\n" if ok else b"unhealthy\n"
                sock.sendall(self._head(200 if ok else 503, [("Content-Type", "text/plain"),
                                                             ("Content-Length", str(len(text)))], keep) + text)
                if not keep:
                    return
                continue
            with self.lock:
                self.requests += 1
                self.heads.append(record)
                if len(self.heads) > 5000:
                    del self.heads[:1000]
                self.last = record
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                upgrade = "websocket" in header_tokens(headers, "upgrade") and method == "GET"
                if upgrade and not path.startswith("/ws-deny"):
                    self._websocket(sock, reader, headers, stopping)
                    return
                keep = self._respond(sock, method, target, path, record, keep, stopping)
            finally:
                with self.lock:
                    self.active -= 1
            if not keep:
                if self.ssl_context is None:
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return

    def _read_body(self, reader, headers):
        te = header_tokens(headers, "transfer-encoding")
        if te:
            if te[-1] != "chunked":
                raise ProtocolError("unsupported transfer-encoding %r" % te)
            parts = []
            while True:
                line = reader.read_line(4096).rstrip(b"\r\n")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                parts.append(reader.read_exact(size))
                if reader.read_exact(2) != b"\r\n":
                    raise ProtocolError("chunk not followed by CRLF")
            while reader.read_line(65536) not in (b"\r\n", b"\n"):
                pass
            return b"".join(parts)
        cls = header_values(headers, "content-length")
        if cls:
            return reader.read_exact(int(cls[0]))
        return b""

    def _head(self, status, headers, keep_alive):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status")), "X-Backend: %s" % self.name]
        lines += ["%s: %s" % (n, v) for n, v in headers]
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _respond(self, sock, method, target, path, record, keep, stopping):
        delay = self.delay_ms / 1000.0
        query = target.split("?", 1)[1] if "?" in target else ""
        if path.startswith("/slow"):
            for kv in query.split("&"):
                if kv.startswith("ms="):
                    try:
                        delay += int(kv[3:]) / 1000.0
                    except ValueError:
                        pass
        if delay > 0 and stopping.wait(delay):
            return False
        is_head = method == "HEAD"
        parts = path.strip("/").split("/")
        if parts[0] == "status" and len(parts) > 1 and parts[1].isdigit():
            status = int(parts[1])
            if status in (204, 304):
                sock.sendall(self._head(status, [], keep))
                return keep
            body = b"status %d\n" % status
            sock.sendall(self._head(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                                    keep) + (b"" if is_head else body))
            return keep
        if path == "/hop-response":
            body = b"hop\n"
            hdrs = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                    ("Connection", "X-Resp-Hop"), ("X-Resp-Hop", "1"), ("Keep-Alive", "timeout=5"),
                    ("Proxy-Connection", "keep-alive"), ("X-End-To-End", "kept")]
            sock.sendall(self._head(200, hdrs, True) + (b"" if is_head else body))
            return keep
        if path.startswith("/ws-deny"):
            body = b"no websocket here\n"
            sock.sendall(self._head(403, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
                                    keep) + body)
            return keep
        body = json.dumps({k: v for k, v in record.items() if k != "version"}).encode() + b"\n"
        hdrs = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        sock.sendall(self._head(200, hdrs, keep) + (b"" if is_head else body))
        return keep

    # -- WebSocket echo --------------------------------------------------------------------------
    def _websocket(self, sock, reader, headers, stopping):
        keys = header_values(headers, "sec-websocket-key")
        if not keys:
            body = b"missing Sec-WebSocket-Key\n"
            sock.sendall(self._head(400, [("Content-Length", str(len(body)))], False) + body)
            return
        sock.sendall(self._head(101, [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                      ("Sec-WebSocket-Accept", ws_accept_value(keys[0]))], True))
        with self.lock:
            self.ws_sessions += 1
        while not stopping.is_set():
            frame = ws_read_frame(reader)
            if frame is None:
                return
            fin, opcode, payload, masked = frame
            if not masked:
                raise ProtocolError("unmasked client frame")
            if opcode == 0x8:  # close: answer with the same status, then close
                sock.sendall(ws_frame(0x8, payload[:2], mask=False))
                return
            if opcode == 0x9:  # ping
                sock.sendall(ws_frame(0xA, payload, mask=False))
                continue
            if opcode == 0xA:
                continue
            with self.lock:
                self.ws_messages += 1
            sock.sendall(ws_frame(opcode, payload, mask=False, fin=fin))


# ---------------------------------------------------------------------------------------------
# WebSocket client

class WsClient:
    def __init__(self, conn, response, key):
        self.conn = conn
        self.response = response
        self.key = key

    @property
    def status(self):
        return self.response.status

    @property
    def accept_ok(self):
        return self.response.header("sec-websocket-accept") == ws_accept_value(self.key)

    def send_text(self, s):
        self.conn.send(ws_frame(0x1, s, mask=True))

    def send_binary(self, b):
        self.conn.send(ws_frame(0x2, b, mask=True))

    def send_ping(self, b=b""):
        self.conn.send(ws_frame(0x9, b, mask=True))

    def recv(self, timeout=None):
        """-> (opcode, payload) of the next frame; raises ProtocolError on EOF."""
        if timeout is not None:
            self.conn.settimeout(timeout)
        try:
            frame = ws_read_frame(self.conn.reader)
        finally:
            if timeout is not None:
                self.conn.settimeout(self.conn.timeout)
        if frame is None:
            raise ProtocolError("connection closed while waiting for a WebSocket frame")
        fin, opcode, payload, masked = frame
        if masked:
            raise ProtocolError("masked server frame")
        return opcode, payload

    def recv_text(self, timeout=None):
        opcode, payload = self.recv(timeout)
        if opcode != 0x1:
            raise ProtocolError("expected a text frame, got opcode %d (%r)" % (opcode, payload[:100]))
        return payload.decode("utf-8")

    def close(self, code=1000, timeout=5.0):
        """Send a close frame and wait (bounded) for the peer's close frame; returns its status code
        (None if none came). The socket is closed in any case."""
        got = None
        try:
            self.conn.send(ws_frame(0x8, struct.pack("!H", code), mask=True))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                opcode, payload = self.recv(timeout=max(0.05, deadline - time.monotonic()))
                if opcode == 0x8:
                    got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    break
        except (OSError, ProtocolError):
            pass
        finally:
            self.conn.close()
        return got

    def abort(self):
        self.conn.close()


def ws_connect(host, port, path="/", host_header="localhost", tls_context=None, server_name=None,
               timeout=10.0, extra_headers=()):
    """Open a WebSocket (through portier or directly). Returns a WsClient whatever the answer; check
    .status (101) and .accept_ok. For a non-101 answer the body has been read."""
    raw = socket.create_connection((host, port), timeout=timeout)
    sock = raw
    if tls_context is not None:
        try:
            sock = tls_context.wrap_socket(raw, server_hostname=server_name or host_header.split(":")[0])
        except BaseException:
            raw.close()
            raise
    conn = HttpConn(None, None, sock=sock, timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = ["GET %s HTTP/1.1" % path, "Host: %s" % host_header, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    lines += list(extra_headers)
    try:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        resp = conn.read_response("GET")
    except BaseException:
        conn.close()
        raise
    return WsClient(conn, resp, key)


# ---------------------------------------------------------------------------------------------
# a port nothing listens on

class DeadPort:
    """A loopback TCP port bound without listen(): connections to it are refused (RST) and no
    other socket can take it while it is held."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]

    @property
    def address(self):
        return fmt_hostport(self.host, self.port)

    def release(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    close = release

"""A peer whose last bytes and FIN arrive in one segment: an origin after its answer, a client after
its request; in forward and reverse mode.

portier's draining reads (include/portier/net/drain_read.hpp) tell Asio when a read left the socket
empty, so that the next read waits for epoll without trying recv(2) first. A mark that is wrong
waits for a readiness edge that never comes, and the way to get it wrong is a FIN that came with
the last bytes read. These tests make the peer send its bytes and FIN as one TCP segment (TCP_CORK,
then shutdown) and check that nothing waits. Each client waits at most 5 s; the proxy's response
and keep-alive timeouts are 60 s, so a hang shows as a client timeout."""
import hashlib
import socket
import ssl

from tests.integration.helpers import ProxyTestCase
from tests.support.clients import HttpConn
from tests.support.origins import ConnReader, _Server, pattern_bytes, pattern_sha256
from tests.support.tls import make_self_signed, tls_client_context

CLIENT_TIMEOUT = 5.0
TIMEOUTS = {"timeouts": {"response_ms": 60000, "keepalive_ms": 60000}}


class OneAnswerOrigin(_Server):
    """Answers one request per connection with `answer(path)` and closes: the answer's last bytes
    and the FIN leave as one segment."""

    def __init__(self, answer):
        self.answer = answer
        self.paths = []
        super().__init__()

    def handle(self, sock, peer, conn_id):
        head = ConnReader(sock).read_until(b"\r\n\r\n", 65536)
        path = head.split(b" ", 2)[1].decode("latin-1")
        with self.lock:
            self.paths.append(path)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.sendall(self.answer(path))
        sock.shutdown(socket.SHUT_WR)  # flushes the corked bytes with the FIN in the last segment


def keep_alive_answer(path):
    """Says nothing of closing (a keep-alive answer), then closes anyway."""
    body = ("answer for %s\n" % path).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def close_delimited_answer(size):
    def answer(path):
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n" + \
            pattern_bytes(size)
    return answer


class PeerCloseCases:
    """The origin side. Mixed into a forward and a reverse test case; they provide start(origin)
    and target(origin, path): the request target the proxy gets."""

    def origin(self, answer):
        o = OneAnswerOrigin(answer)
        self.addCleanup(o.stop)
        return o

    def client(self):
        c = HttpConn(self.portier.host, self.portier.port, timeout=CLIENT_TIMEOUT)
        self.addCleanup(c.close)
        return c

    def get(self, c, origin, path):
        c.send(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.target(origin, path), origin.hostport)).encode())
        return c.read_response()

    def test_keep_alive_answer_then_close_next_request_goes_to_a_new_connection(self):
        # The first answer's FIN comes with its last bytes. The second request must not be lost to
        # the closed connection: it goes to a new one (found closed, or retried after the RST).
        o = self.origin(keep_alive_answer)
        self.start(o)
        c = self.client()
        r1 = self.get(c, o, "/one")
        self.assertStatus(r1, 200)
        self.assertEqual(r1.body, b"answer for /one\n")
        r2 = self.get(c, o, "/two")
        self.assertStatus(r2, 200, "second request after the origin closed with its answer")
        self.assertEqual(r2.body, b"answer for /two\n")
        self.assertEqual(o.accepted, 2)
        self.assertEqual(o.paths, ["/one", "/two"])

    def test_close_delimited_answer_in_one_segment_ends_at_once(self):
        o = self.origin(close_delimited_answer(3000))
        self.start(o)
        r = self.get(self.client(), o, "/small")
        self.assertStatus(r, 200)
        self.assertEqual(r.body, pattern_bytes(3000))

    def test_large_close_delimited_answer_ends_at_once(self):
        # Several reads: the ones after the first must still see the FIN behind the last bytes.
        size = 700_000
        o = self.origin(close_delimited_answer(size))
        self.start(o)
        r = self.get(self.client(), o, "/large")
        self.assertStatus(r, 200)
        self.assertEqual(len(r.body), size)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), pattern_sha256(size))

    def test_many_keep_alive_answers_then_close(self):
        # Every answer closes its connection: each request after the first meets a dead pooled one.
        o = self.origin(keep_alive_answer)
        self.start(o)
        c = self.client()
        for i in range(20):
            r = self.get(c, o, "/n%d" % i)
            self.assertStatus(r, 200, "request %d" % i)
            self.assertEqual(r.body, ("answer for /n%d\n" % i).encode())


class ClientCloseCases:
    """The client side: a request and the client's FIN in one segment. Mixed into test cases that
    provide start(origin), target(origin, path) and client()."""

    def corked_client_send(self, c, data):
        """Sends `data` and the FIN as one segment."""
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)  # the TCP FIN; over TLS without close_notify

    def request(self, origin, path):
        return ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (self.target(origin, path), origin.hostport)).encode()

    def client_after(self, requests):
        """An origin, and a client connection that has made `requests` keep-alive requests."""
        o = self.start_origin()
        self.start(o)
        c = self.client()
        for i in range(requests):
            c.send(self.request(o, "/k%d" % i))
            self.assertStatus(c.read_response(), 200, "keep-alive request %d" % i)
        return o, c

    def test_request_and_fin_in_one_segment_answered_then_closed(self):
        o, c = self.client_after(0)
        self.corked_client_send(c, self.request(o, "/only"))
        self.assertStatus(c.read_response(), 200)
        self.assertClosed(c, timeout=CLIENT_TIMEOUT, msg="a client that sent its FIN with the request")

    def test_second_request_and_fin_in_one_segment_after_a_drained_read(self):
        # The last request's read left the socket empty (a drained mark): the next request and the
        # FIN arrive together on the next readiness edge, and the FIN must still be seen.
        o, c = self.client_after(3)
        self.corked_client_send(c, self.request(o, "/last"))
        self.assertStatus(c.read_response(), 200)
        self.assertClosed(c, timeout=CLIENT_TIMEOUT, msg="a client that sent its FIN with its last request")

    def test_pipelined_requests_and_fin_in_one_segment(self):
        o, c = self.client_after(1)
        self.corked_client_send(c, self.request(o, "/p1") + self.request(o, "/p2"))
        for path in ("/p1", "/p2"):
            self.assertStatus(c.read_response(), 200, path)
        self.assertClosed(c, timeout=CLIENT_TIMEOUT, msg="a client that sent its FIN with two pipelined requests")


class ForwardPeerClose(PeerCloseCases, ClientCloseCases, ProxyTestCase):
    def start(self, origin):
        self.start_portier(TIMEOUTS)

    def target(self, origin, path):
        return "http://%s%s" % (origin.hostport, path)


def reverse_config(origin, tls=None):
    """One reverse listener (HTTPS with tls=(cert, key)) sending everything to `origin`."""
    listener = {"name": "site", "listen": ["127.0.0.1:0"], "mode": "reverse"}
    if tls:
        listener["tls"] = {"cert_file": tls[0], "key_file": tls[1]}
    cfg = {"listeners": [listener],
           "reverse": {"routes": [{"name": "all", "pool": "app"}], "pools": {"app": {"backends": [origin.hostport]}}}}
    cfg.update(TIMEOUTS)
    return cfg


class ReversePeerClose(PeerCloseCases, ClientCloseCases, ProxyTestCase):
    def start(self, origin):
        self.start_portier(reverse_config(origin))

    def target(self, origin, path):
        return path


class TlsOverSocket:
    """A TLS client over a plain socket through memory BIOs, so that the test decides what goes on
    the wire and when: setsockopt and shutdown reach the TCP socket, and shutdown(SHUT_WR) sends a
    FIN without a close_notify. Socket-like enough for HttpConn."""

    def __init__(self, raw, context, server_name="localhost"):
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._pull()
        self._flush()

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def _pull(self):
        data = self.raw.recv(65536)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    def recv(self, n):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                self._pull()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def sendall(self, data):
        self.tls.write(data)
        self._flush()

    def settimeout(self, t):
        self.raw.settimeout(t)

    def setsockopt(self, *args):
        self.raw.setsockopt(*args)

    def shutdown(self, how):
        self.raw.shutdown(how)

    def fileno(self):
        return self.raw.fileno()

    def close(self):
        self.raw.close()


class ReverseTlsClientClose(ClientCloseCases, ProxyTestCase):
    """The client cases on an HTTPS reverse listener: OpenSSL reads the socket through portier's
    BIO, a draining read (include/portier/net/tls_socket.hpp)."""

    def start(self, origin):
        self.cert, self.key = make_self_signed(self.make_tmpdir(), "site")
        self.start_portier(reverse_config(origin, tls=(self.cert, self.key)))

    def target(self, origin, path):
        return path

    def client(self):
        raw = socket.create_connection((self.portier.host, self.portier.port), timeout=CLIENT_TIMEOUT)
        self.addCleanup(raw.close)
        c = HttpConn(None, None, timeout=CLIENT_TIMEOUT, sock=TlsOverSocket(raw, tls_client_context(self.cert)))
        self.addCleanup(c.close)
        return c

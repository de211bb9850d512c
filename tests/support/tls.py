"""Certificates and TLS clients for portier's TLS tests (openssl CLI + Python's ssl module).

make_self_signed(directory, name="proxy", cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"))
    A self-signed EC P-256 certificate (CA:TRUE, so it can be its own trust anchor). Returns
    (cert_path, key_path): <directory>/<name>.crt and <directory>/<name>.key.
make_ca(directory, name="ca") / make_leaf(directory, ca, name, cn, sans)
    A small CA, and a leaf certificate signed by it. make_leaf returns (cert_path, key_path, chain_path)
    where chain_path holds the leaf followed by the CA (what a server sends).
tls_client_context(cafile=None, verify=True, alpn=("http/1.1",), max_version=None)
    An ssl.SSLContext for a client of an HTTPS proxy listener.
tls_connect(host, port, context, server_name="localhost", timeout=10.0)
    A TCP connection plus TLS handshake; returns the ssl.SSLSocket (use it as HttpConn(sock=...)).

Every openssl run has a timeout; every socket has one.
"""
import os
import socket
import ssl
import subprocess

__all__ = ["make_self_signed", "make_ca", "make_leaf", "tls_client_context", "tls_connect",
           "openssl"]

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]


def openssl(*args, timeout=30):
    p = subprocess.run(["openssl"] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (rc=%d): %s" % (
            " ".join(str(a) for a in args), p.returncode, p.stderr.decode("utf-8", "replace")[-1000:]))
    return p.stdout


def _san(sans):
    return "subjectAltName=" + ",".join(sans)


def make_self_signed(directory, name="proxy", cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"),
                     days=2):
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    args = ["req", "-x509", *_EC, "-nodes", "-keyout", key, "-out", cert, "-days", days,
            "-subj", "/CN=%s" % cn, "-addext", "basicConstraints=critical,CA:TRUE"]
    if sans:
        args += ["-addext", _san(sans)]
    openssl(*args)
    return cert, key


def make_ca(directory, name="ca", cn="portier test CA"):
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    openssl("req", "-x509", *_EC, "-nodes", "-keyout", key, "-out", cert, "-days", 2,
            "-subj", "/CN=%s" % cn, "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_leaf(directory, ca, name="leaf", cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1")):
    ca_cert, ca_key = ca
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    openssl("req", "-new", *_EC, "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n")
        f.write("keyUsage=critical,digitalSignature\n")
        f.write("extendedKeyUsage=serverAuth\n")
        f.write(_san(sans) + "\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", 2, "-extfile", ext)
    chain = os.path.join(directory, name + "-chain.crt")
    with open(chain, "w") as out:
        for part in (cert, ca_cert):
            with open(part) as f:
                out.write(f.read())
    return cert, key, chain


def tls_client_context(cafile=None, verify=True, alpn=("http/1.1",), max_version=None,
                       min_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if max_version is not None:
        ctx.maximum_version = max_version
    if min_version is not None:
        ctx.minimum_version = min_version
    return ctx


def tls_connect(host, port, context, server_name="localhost", timeout=10.0):
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        s = context.wrap_socket(raw, server_hostname=server_name)
    except BaseException:
        raw.close()
        raise
    s.settimeout(timeout)
    return s

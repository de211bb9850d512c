"""Files for policy tests (users, lists, block pages, configs) and small request builders.

Password hashes are made at test time:
  sha512, sha256   `openssl passwd -6` / `openssl passwd -5` (SHA-512-crypt / SHA-256-crypt)
  bcrypt, yescrypt Python's `crypt` module over libxcrypt, when it has them (hash_password returns
                   None otherwise; callers skip with the reason from hash_unavailable_reason)
"""
import base64
import json
import os
import secrets
import subprocess
import warnings

__all__ = ["hash_password", "hash_unavailable_reason", "basic_token", "proxy_auth_header",
           "write_text", "write_htpasswd", "write_json_atomic", "request_bytes", "client_hello",
           "HASH_SCHEMES"]

HASH_SCHEMES = ("sha512", "sha256", "bcrypt", "yescrypt")
_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_unavailable = {}


def _salt(n):
    return "".join(secrets.choice(_CRYPT64) for _ in range(n))


def _crypt_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import crypt  # deprecated in 3.11, removed in 3.13
        except ImportError:
            return None
    return crypt


def hash_password(password, scheme):
    """A crypt(3) hash of password, or None when this system cannot make one of that scheme."""
    if scheme in ("sha512", "sha256"):
        flag = "-6" if scheme == "sha512" else "-5"
        p = subprocess.run(["openssl", "passwd", flag, "-salt", _salt(16), "-stdin"],
                           input=password.encode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        out = p.stdout.decode().strip()
        if p.returncode != 0 or not out.startswith("$%s$" % flag[1]):
            _unavailable[scheme] = "openssl passwd %s failed: %s" % (flag, p.stderr.decode()[-200:])
            return None
        return out
    crypt = _crypt_module()
    if crypt is None:
        _unavailable[scheme] = "Python's crypt module is not available (needed for %s)" % scheme
        return None
    if scheme == "bcrypt":
        salt = "$2b$04$" + _salt(22)  # cost 4: fast tests; the proxy accepts any cost
        # bcrypt salts must end in one of ".Oeu" (the last 2 bits are unused)
        salt = salt[:-1] + secrets.choice(".Oeu")
    elif scheme == "yescrypt":
        salt = "$y$j9T$" + _salt(16)
    else:
        raise ValueError("unknown scheme %r" % scheme)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = crypt.crypt(password, salt)
    except OSError as e:
        out = None
        _unavailable[scheme] = "crypt(%s) failed: %s" % (scheme, e)
    if not out or out.startswith("*") or not out.startswith(salt[:4]):
        _unavailable.setdefault(scheme, "this system's crypt() cannot make %s hashes" % scheme)
        return None
    return out


def hash_unavailable_reason(scheme):
    return _unavailable.get(scheme, "%s hashes unavailable" % scheme)


def basic_token(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def proxy_auth_header(user, password):
    return "Proxy-Authorization: Basic %s\r\n" % basic_token(user, password)


def write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def write_htpasswd(path, users):
    """users: {name: hash} (or a list of (name, hash))."""
    items = users.items() if isinstance(users, dict) else users
    return write_text(path, "".join("%s:%s\n" % (u, h) for u, h in items))


def write_json_atomic(path, obj):
    """Write JSON so a reader never sees half a file (rename over the old one)."""
    tmp = path + ".tmp-%s" % secrets.token_hex(4)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def request_bytes(method, url, headers=(), body=b"", host=None):
    """An absolute-form proxy request. headers: list of 'Name: value' strings (no CRLF)."""
    if host is None:
        rest = url.split("://", 1)[-1]
        host = rest.split("/", 1)[0]
    lines = ["%s %s HTTP/1.1" % (method, url), "Host: %s" % host]
    lines += list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def client_hello(server_name):
    """The bytes of a real TLS ClientHello (Python's ssl) carrying server_name as SNI (None: no SNI)."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    if not data or data[0] != 0x16:
        raise RuntimeError("could not build a ClientHello: %r" % data[:16])
    return data

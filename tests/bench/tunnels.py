#!/usr/bin/env python3
"""Tunnel helpers for tests/bench/run.sh (standard library only).

  tunnels.py rate --proxy HOST:PORT --target HOST:PORT [--direct] [--concurrency 20] [--seconds 10]
      Fresh CONNECT tunnels per second, each carrying one GET /1k with Connection: close,
      read to EOF, then closed. --direct skips CONNECT (--proxy is then the origin).
      asyncio, one process; prints the same line as tunnel_rate.c. Used by run.sh only
      when no C compiler is available (Python is the bottleneck on small machines).

  tunnels.py idle --proxy HOST:PORT --target HOST:PORT --pid PID [--count 1000]
      Opens COUNT CONNECT tunnels through the proxy and keeps them idle; reads VmRSS of
      PID before and after (after a short settle), then sends one GET through every tunnel
      (keep-alive, tunnel stays open) and reads VmRSS again. Prints one line:
      opened=N rss_before_kib=A rss_idle_kib=B rss_used_kib=C per_tunnel_idle_kib=X per_tunnel_used_kib=Y
"""
import argparse
import asyncio
import os
import resource
import socket
import sys
import time


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_head(sock, deadline):
    """Read up to the end of an HTTP head; return (head, extra bytes)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("EOF before end of head")
        buf += chunk
        if len(buf) > 65536:
            raise ConnectionError("head too big")
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


# ---------------------------------------------------------------- idle tunnels
def cmd_idle(args):
    raise_nofile()
    phost, pport = split_hostport(args.proxy)
    target = args.target
    socks = []
    failures = {}
    rss_before = vmrss_kib(args.pid)
    t_end = time.monotonic() + args.timeout
    for _ in range(args.count):
        if time.monotonic() > t_end:
            failures["overall timeout"] = failures.get("overall timeout", 0) + 1
            break
        s = None
        try:
            s = socket.create_connection((phost, pport), timeout=5)
            s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head, rest = read_head(s, time.monotonic() + 5)
            status = head.split(b"\r\n", 1)[0]
            if b" 200" not in status[:13] or rest:
                raise ConnectionError(f"CONNECT answered {status!r}")
            socks.append(s)
        except (OSError, ConnectionError, ValueError) as e:
            key = type(e).__name__ + ": " + str(e)[:80]
            failures[key] = failures.get(key, 0) + 1
            if s is not None:
                s.close()
    time.sleep(args.settle)
    rss_idle = vmrss_kib(args.pid)

    # one request through every tunnel; the tunnel stays open (keep-alive)
    used = 0
    for s in socks:
        try:
            s.sendall(f"GET {args.path} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            deadline = time.monotonic() + 5
            head, body = read_head(s, deadline)
            n = content_length(head)
            while n is not None and len(body) < n:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("EOF in body")
                body += chunk
            used += 1
        except (OSError, ConnectionError, ValueError) as e:
            key = "after GET: " + type(e).__name__ + ": " + str(e)[:80]
            failures[key] = failures.get(key, 0) + 1
    time.sleep(args.settle)
    rss_used = vmrss_kib(args.pid)
    opened = len(socks)
    for s in socks:
        s.close()
    per_idle = (rss_idle - rss_before) / opened if opened else float("nan")
    per_used = (rss_used - rss_before) / opened if opened else float("nan")
    print(f"opened={opened} used={used} rss_before_kib={rss_before} rss_idle_kib={rss_idle} "
          f"rss_used_kib={rss_used} per_tunnel_idle_kib={per_idle:.2f} per_tunnel_used_kib={per_used:.2f}")
    for k, v in failures.items():
        print(f"failure {v}x {k}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- rate
async def one_tunnel(phost, pport, target, path, direct, stats):
    reader, writer = await asyncio.open_connection(phost, pport)
    try:
        if not direct:
            writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not (head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200")):
                stats["err_proxy"] += 1
                return
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()  # to EOF
        if data.startswith(b"HTTP/1.1 200") and len(data) >= 1024:
            stats["ok"] += 1
        else:
            stats["err_response"] += 1
    finally:
        writer.close()


async def rate_worker(end, phost, pport, target, path, direct, stats):
    while time.monotonic() < end:
        try:
            await asyncio.wait_for(one_tunnel(phost, pport, target, path, direct, stats),
                                   timeout=max(0.01, min(5.0, end - time.monotonic())))
        except asyncio.TimeoutError:
            if time.monotonic() < end:
                stats["err_timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            stats["err_connect"] += 1


async def rate_main(args):
    phost, pport = split_hostport(args.proxy)
    stats = {"ok": 0, "err_connect": 0, "err_proxy": 0, "err_response": 0, "err_timeout": 0}
    start = time.monotonic()
    end = start + args.seconds
    await asyncio.gather(*(rate_worker(end, phost, pport, args.target, args.path, args.direct, stats)
                           for _ in range(args.concurrency)))
    elapsed = min(time.monotonic() - start, args.seconds)
    errors = sum(v for k, v in stats.items() if k != "ok")
    print(f"ok={stats['ok']} errors={errors} err_connect={stats['err_connect']} err_proxy={stats['err_proxy']} "
          f"err_response={stats['err_response']} err_timeout={stats['err_timeout']} "
          f"seconds={elapsed:.3f} rate={stats['ok'] / elapsed:.1f}")


def cmd_rate(args):
    raise_nofile()
    asyncio.run(rate_main(args))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rate")
    r.add_argument("--proxy", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--path", default="/1k")
    r.add_argument("--direct", action="store_true")
    r.add_argument("--concurrency", type=int, default=20)
    r.add_argument("--seconds", type=float, default=10)
    i = sub.add_parser("idle")
    i.add_argument("--proxy", required=True)
    i.add_argument("--target", required=True)
    i.add_argument("--path", default="/1k")
    i.add_argument("--pid", type=int, required=True)
    i.add_argument("--count", type=int, default=1000)
    i.add_argument("--settle", type=float, default=1.0)
    i.add_argument("--timeout", type=float, default=60.0)
    args = p.parse_args()
    return cmd_rate(args) if args.cmd == "rate" else cmd_idle(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Health-check latency of an HTTP server with and without hostile connections held open.

Usage (bench/hostile/run.sh drives it; it also runs alone against any server):

  hostile.py --label NAME --check http://127.0.0.1:P/liveness [--check https://...]
             --hostile 127.0.0.1:P[,tls] ... [--idle 100] [--slow 100] [--checks 500]
             [--ca FILE] [--out results.json]

For each --check URL: --checks health checks one after another, each on a new connection
from 127.0.0.1 (connect, TLS handshake for https, "GET path HTTP/1.1", read the whole
answer), first with no other client ("quiet"), then while --idle idle and --slow slow
connections are held open against every --hostile port ("hostile"). An idle connection
sends nothing; a slow one sends its request one byte every 100 ms (a TLS ClientHello
first on a port marked tls, so the server sits in its handshake). Whenever the server
closes a hostile connection another one is opened at once, so the load is held for the
whole phase: this is what an attacker with a script does. The hostile connections come
from 127.0.<k>.x (10 per address: under Tandem's cap of 16 per address, so the cap does
not make the load lighter), the checks from 127.0.0.1.

A check that gets no complete answer within --check-timeout (10 s) counts as failed with
that latency. Prints and writes p50/p90/p99/max per URL and phase, the failures, and how
many hostile connections the server closed (and how many were open on average).
"""
import argparse
import json
import os
import selectors
import socket
import ssl
import statistics
import sys
import threading
import time
import urllib.parse

TICK_S = 0.1  # a slow connection's byte interval


def percentile(xs, p):
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def client_hello(host):
    """The bytes of a TLS ClientHello (for a slow connection to trickle)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def check_once(url, ctx, timeout):
    """(latency ms, HTTP status or 0) of one check on a new connection."""
    u = urllib.parse.urlsplit(url)
    t0 = time.monotonic()
    status = 0
    try:
        s = socket.create_connection((u.hostname, u.port), timeout=timeout,
                                     source_address=("127.0.0.1", 0))
        try:
            if u.scheme == "https":
                s = ctx.wrap_socket(s, server_hostname=u.hostname)
            path = u.path + ("?" + u.query if u.query else "")
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                       (path or "/", u.netloc)).encode())
            data = b""
            deadline = t0 + timeout
            while True:
                s.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                head, sep, body = data.partition(b"\r\n\r\n")
                if sep:
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if cl and len(body) >= int(cl[0].split(b":")[1]):
                        break
            if data.startswith(b"HTTP/1."):
                status = int(data[9:12])
        finally:
            s.close()
    except (OSError, ValueError):
        status = 0
    return (time.monotonic() - t0) * 1000.0, status


class Hostile:
    """Holds idle and slow connections open against the ports, reopening what the server closes."""

    def __init__(self, targets, idle, slow, host):
        self.targets = targets  # [(host, port, tls)]
        self.idle, self.slow = idle, slow
        self.hello = client_hello(host)
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.closed_by_server = 0
        self.failed_connects = 0
        self.open_samples = []   # connected hostile connections, each tick while measuring
        self.socks = {}
        self.measuring = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _slot_source(self, t, i):
        return "127.0.%d.%d" % (1 + t, 1 + i // 10)

    def _open(self, slot):
        """A non-blocking connect for slot (its state says when it completes)."""
        t, i, kind = slot
        host, port, tls = self.targets[t]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.bind((self._slot_source(t, i), 0))
            s.connect_ex((host, port))
        except OSError:
            s.close()
            self.failed_connects += 1
            return None
        preface = (self.hello if tls else b"GET /health HTTP/1.1\r\nHost: x\r\n") + b"X-Slow: "
        st = {"slot": slot, "sent": 0, "preface": preface, "connected": False}
        self.sel.register(s, selectors.EVENT_WRITE, st)
        return s

    def open_now(self):
        return sum(1 for s in self.socks.values()
                   if s is not None and self.sel.get_key(s).data["connected"])

    def _event(self, key, mask):
        s, st = key.fileobj, key.data
        if not st["connected"]:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                st["connected"] = True
                self.sel.modify(s, selectors.EVENT_READ, st)
                return
            data = b""
        else:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
        if not data:  # the server closed it (or refused it): open another at once
            slot = st["slot"]
            self.sel.unregister(s)
            s.close()
            if st["connected"]:
                self.closed_by_server += 1
            else:
                self.failed_connects += 1
            self.socks[slot] = self._open(slot)

    def run(self):
        slots = []
        for t in range(len(self.targets)):
            slots += [(t, i, "idle") for i in range(self.idle)]
            slots += [(t, self.idle + i, "slow") for i in range(self.slow)]
        self.socks = {}
        for slot in slots:
            self.socks[slot] = self._open(slot)
        next_tick = time.monotonic()
        while not self.stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            for key, mask in self.sel.select(timeout):
                self._event(key, mask)
            now = time.monotonic()
            if now < next_tick:
                continue
            next_tick = now + TICK_S
            for slot, s in list(self.socks.items()):
                if s is None:
                    self.socks[slot] = self._open(slot)
                    continue
                st = self.sel.get_key(s).data
                if slot[2] != "slow" or not st["connected"]:
                    continue
                p = st["preface"]
                b = p[st["sent"]:st["sent"] + 1] if st["sent"] < len(p) else b"a"
                try:
                    s.send(b)
                    st["sent"] += 1
                except OSError:
                    pass
            if self.measuring.is_set():
                self.open_samples.append(self.open_now())
        for s in self.socks.values():
            if s is not None:
                s.close()


def measure(url, n, ctx, timeout, phase_limit):
    lat, fails, statuses = [], 0, {}
    t_end = time.monotonic() + phase_limit
    for _ in range(n):
        if time.monotonic() > t_end:
            break
        ms, st = check_once(url, ctx, timeout)
        lat.append(ms)
        statuses[st] = statuses.get(st, 0) + 1
        if st == 0:
            fails += 1
        time.sleep(0.01)
    return {
        "checks": len(lat), "failed": fails, "statuses": statuses,
        "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else None,
        "mean_ms": statistics.mean(lat) if lat else None,
    }


def fmt(x):
    return "-" if x is None else ("%.1f" % x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", required=True)
    ap.add_argument("--check", action="append", required=True)
    ap.add_argument("--hostile", action="append", default=[], help="HOST:PORT[,tls]")
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--checks", type=int, default=500)
    ap.add_argument("--check-timeout", type=float, default=10.0)
    ap.add_argument("--phase-limit", type=float, default=150.0, help="seconds per URL and phase")
    ap.add_argument("--ca")
    ap.add_argument("--out")
    a = ap.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca) if a.ca else ssl.create_default_context()
    if not a.ca:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    targets = []
    for h in a.hostile:
        hp, _, flag = h.partition(",")
        host, port = hp.rsplit(":", 1)
        targets.append((host, int(port), flag == "tls"))
    res = {"label": a.label, "idle": a.idle, "slow": a.slow, "hostile": a.hostile, "urls": {}}
    for url in a.check:
        res["urls"][url] = {"quiet": measure(url, a.checks, ctx, a.check_timeout, a.phase_limit)}
    if targets:
        h = Hostile(targets, a.idle, a.slow, targets[0][0])
        h.thread.start()
        want = len(targets) * (a.idle + a.slow)
        t_end = time.monotonic() + 20.0  # let every hostile connection open
        while time.monotonic() < t_end and h.open_now() < want:
            time.sleep(0.2)
        res["hostile_open_at_start"] = h.open_now()
        h.measuring.set()
        for url in a.check:
            res["urls"][url]["hostile"] = measure(url, a.checks, ctx, a.check_timeout,
                                                  a.phase_limit)
        h.stop.set()
        h.thread.join()
        res["hostile_closed_by_server"] = h.closed_by_server
        res["hostile_failed_connects"] = h.failed_connects
        res["hostile_open_mean"] = statistics.mean(h.open_samples) if h.open_samples else 0
    print("%s (hostile: %d idle + %d slow on each of %s)" % (a.label, a.idle, a.slow,
                                                             ", ".join(a.hostile) or "none"))
    print("| check | phase | checks | failed | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|---|")
    for url, phases in res["urls"].items():
        for ph, r in phases.items():
            print("| %s | %s | %d | %d | %s | %s | %s | %s |" % (
                url, ph, r["checks"], r["failed"], fmt(r["p50_ms"]), fmt(r["p90_ms"]),
                fmt(r["p99_ms"]), fmt(r["max_ms"])))
    if targets:
        print("hostile connections: %d of %d open when the checks began, %.0f on average "
              "during them; closed by the server: %d; failed connects: %d" % (
                  res["hostile_open_at_start"], len(targets) * (a.idle + a.slow),
                  res["hostile_open_mean"], res["hostile_closed_by_server"],
                  res["hostile_failed_connects"]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The benchmark's client: one small INSERT every 50 ms, reconnecting on any error.

It connects with a libpq multi-host connection string (target_session_attrs=read-write)
and logs one line per event to --out (flushed at once):
    ok   <unix time the commit returned> <server port> <latency ms>
    warn <unix time> <port> <message>   a commit whose wait for synchronous replication
                                        was cancelled (statement_timeout): not counted
    err  <unix time> <message>          the first error of a run of identical errors
The write gap is computed afterwards from the `ok` lines (bench.py).
"""
import argparse
import os
import signal
import sys
import time

import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.05)
    a = ap.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    out = open(a.out, "a", buffering=1)
    conn = None
    port = "?"
    last_err = None
    next_t = time.monotonic()
    while not stop:
        now = time.monotonic()
        if now < next_t:
            time.sleep(next_t - now)
        now = time.monotonic()
        next_t = max(next_t + a.interval, now)
        try:
            if conn is None:
                conn = psycopg2.connect(a.dsn)
                conn.autocommit = True
                port = conn.info.port
            del conn.notices[:]
            with conn.cursor() as cur:
                cur.execute("INSERT INTO bench_writes (note) VALUES ('w')")
            t = time.time()
            cancelled = [n for n in conn.notices if "synchronous replication" in n]
            if cancelled:
                out.write("warn %.3f %s %s\n" % (t, port, cancelled[0].strip().replace("\n", " ")))
                last_err = None
                continue
            out.write("ok %.3f %s %.1f\n" % (t, port, (time.monotonic() - now) * 1000))
            last_err = None
        except Exception as e:  # any error: drop the connection, try again next tick
            msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            if msg != last_err:
                out.write("err %.3f %s\n" % (time.time(), msg))
                last_err = msg
            if conn is not None:
                try:
                    conn.close()
                except Exception:
                    pass
            conn = None
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

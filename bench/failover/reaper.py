#!/usr/bin/env python3
"""Runs a command as a child subreaper: every orphan below it is reparented here and reaped.

PID 1 on the benchmark machine does not reap orphans, so a killed daemonized process
(PostgreSQL's postmaster, started through pg_ctl or Patroni's double fork) would stay a
zombie, and psutil-style "is it running?" checks (Patroni's among them) would still see
it. Under this reaper both Tandem and Patroni see what they would see under a normal init.

Usage: reaper.py COMMAND [ARGS...]; exits with COMMAND's exit status. SIGINT/SIGTERM/SIGHUP
are forwarded to COMMAND.
"""
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36


def main():
    if len(sys.argv) < 2:
        print("usage: reaper.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: errno %d" % ctypes.get_errno(),
              file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        try:
            os.execvp(sys.argv[1], sys.argv[1:])
        finally:
            os._exit(127)

    def forward(sig, _frame):
        try:
            os.kill(child, sig)
        except ProcessLookupError:
            pass

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)
    status = 0
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            status = os.waitstatus_to_exitcode(st)
            if status < 0:
                status = 128 - status
            break
    # The command has cleaned up what it started; reap what is still exiting (at most
    # 30 s), then leave.
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.1)
    return status


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Hostile-connections benchmark: health-check latency of a real Tandem agent with and without
100 idle + 100 slow connections held open on its API port and its health port.

Run through bench/hostile/run.sh (as root; it runs this under bench/failover/reaper.py). For
each config in --configs:

  tandem          build/tandem (this tree: the event-driven server, src/api/http_server.cc)
  tandem-httplib  the same agent at commit 68c92dc (cpp-httplib 0.11 servers), built from
                  `git archive 68c92dc` into /tmp/tandem-bench-hostile-68c92dc if missing
  patroni         Patroni 3.0.2's REST API (Python's threading HTTP server) on the primary of
                  a 3-node Patroni cluster set up exactly as bench/failover does
                  (bench/failover/bench.py's PatroniCluster, ttl 5 / loop_wait 1 / retry 2)

for a Tandem config it starts a one-node sandbox (`tandem sandbox up --nodes 1`: TLS on, so the API is HTTPS
and the health port plain HTTP; PostgreSQL and etcd running, so /health is 200), runs
hostile.py against it (checks of GET /health on the health port and on the API port, 500
each, quiet then hostile), and stops the sandbox (`sandbox down --purge`). Writes
results.json and summary.md under bench/hostile/results/<UTC time>/ (or --out).
"""
import argparse
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OLD_COMMIT = "68c92dc"
OLD_DIR = "/tmp/tandem-bench-hostile-" + OLD_COMMIT
TARGET_P99_MS = 50.0


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run(argv, timeout, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    return p.returncode, p.stdout


def old_binary():
    binary = os.path.join(OLD_DIR, "build", "tandem")
    if os.path.exists(binary):
        return binary
    log("building tandem at %s into %s (once)" % (OLD_COMMIT, OLD_DIR))
    os.makedirs(OLD_DIR, exist_ok=True)
    subprocess.run("git -C %s archive %s | tar -x -C %s" % (ROOT, OLD_COMMIT, OLD_DIR),
                   shell=True, check=True)
    subprocess.run(["cmake", "-S", OLD_DIR, "-B", os.path.join(OLD_DIR, "build"), "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=RelWithDebInfo"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", os.path.join(OLD_DIR, "build"), "--target", "tandem"],
                   check=True, stdout=subprocess.DEVNULL)
    return binary


def failover_bench():
    """bench/failover/bench.py as a module (its PatroniCluster and helpers)."""
    spec = importlib.util.spec_from_file_location(
        "failover_bench", os.path.join(ROOT, "bench", "failover", "bench.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def measure(label, checks, hostile, ca, base, args):
    out_json = os.path.join(base, label + ".json")
    cmd = [sys.executable, os.path.join(HERE, "hostile.py"), "--label", label]
    for c in checks:
        cmd += ["--check", c]
    for h in hostile:
        cmd += ["--hostile", h]
    if ca:
        cmd += ["--ca", ca]
    cmd += ["--idle", str(args.idle), "--slow", str(args.slow), "--checks", str(args.checks),
            "--out", out_json]
    log("measuring %s: %s" % (label, " ".join(cmd[1:])))
    rc, out = run(cmd, 3600)
    print(out, flush=True)
    if rc != 0:
        raise RuntimeError("%s: hostile.py failed (rc %d)" % (label, rc))
    with open(out_json) as f:
        return json.load(f)


def patroni_config(base, base_port, args):
    fb = failover_bench()
    logs = os.path.join(base, "logs")
    os.makedirs(logs, exist_ok=True)
    c = fb.PatroniCluster(base, logs, "patroni", "Patroni ttl5/lw1/rt2", base_port, 5, 1, 2)
    try:
        c.setup()
        ok, detail = fb.wait_until(c.healthy, fb.HEALTHY_TIMEOUT_S, "patroni healthy")
        if not ok:
            raise RuntimeError("patroni: not healthy: %s" % detail)
        rest = c.rest_port(c.primary())
        return measure("patroni", ["http://127.0.0.1:%d/health" % rest],
                       ["127.0.0.1:%d" % rest], None, base, args)
    finally:
        c.teardown()


def one_config(label, binary, base, base_port, args):
    d = os.path.join(base, label)
    rc, out = run([binary, "sandbox", "up", "--nodes", "1", "--dir", d, "--base-port",
                   str(base_port)], 300)
    try:
        if rc != 0:
            raise RuntimeError("%s: sandbox up failed (rc %d): %s" % (label, rc, out[-2000:]))
        api, health = base_port + 11, base_port + 16
        ca = os.path.join(d, "node1", "certs", "ca.crt")
        return measure(label, ["http://127.0.0.1:%d/health" % health,
                               "https://127.0.0.1:%d/health" % api],
                       ["127.0.0.1:%d" % health, "127.0.0.1:%d,tls" % api], ca, base, args)
    finally:
        for name in ("agent.log",):
            src = os.path.join(d, "node1", name)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(base, "%s-%s" % (label, name)))
        run([binary, "sandbox", "down", "--dir", d, "--purge"], 300)


def summarize(results, meta):
    lines = ["# Hostile connections: health-check latency", "",
             "Command: `%s`  " % meta["command"],
             "Date: %s, commit %s, load average before: %s" % (meta["date"], meta["commit"],
                                                               meta["loadavg"]),
             "",
             "Each row: %d checks (`GET /health`, a new connection each, from 127.0.0.1) "
             "one after another; hostile = %d idle + %d slow connections held open on the "
             "health port and on the API port at once (reopened whenever the server closes "
             "them), from 127.0.k.x, 10 per address." % (meta["checks"], meta["idle"],
                                                          meta["slow"]),
             "",
             "| config | check | phase | checks | failed | p50 ms | p90 ms | p99 ms | max ms |",
             "|---|---|---|---|---|---|---|---|---|"]

    def f(x):
        return "-" if x is None else "%.1f" % x
    for label, r in results.items():
        for url, phases in r["urls"].items():
            port = ("REST API (http)" if label == "patroni" else
                    "health port (http)" if url.startswith("http:") else "API port (https)")
            for ph, m in phases.items():
                lines.append("| %s | %s | %s | %d | %d | %s | %s | %s | %s |" % (
                    label, port, ph, m["checks"], m["failed"], f(m["p50_ms"]), f(m["p90_ms"]),
                    f(m["p99_ms"]), f(m["max_ms"])))
        lines.append("")
    for label, r in results.items():
        lines.append("- %s: hostile connections open when the checks began: %d, on average "
                     "during them: %.0f; closed by the server: %d; failed connects: %d" % (
                         label, r.get("hostile_open_at_start", 0), r.get("hostile_open_mean", 0),
                         r.get("hostile_closed_by_server", 0), r.get("hostile_failed_connects", 0)))
    if "tandem" in results:
        for url, phases in results["tandem"]["urls"].items():
            p99 = phases.get("hostile", {}).get("p99_ms")
            lines.append("- target p99 < %.0f ms under hostile load, %s: %s (%s ms)" % (
                TARGET_P99_MS, url, "met" if p99 is not None and p99 < TARGET_P99_MS
                else "MISSED", f(p99)))
    if "tandem" in results and "tandem-httplib" in results:
        for url, phases in results["tandem"]["urls"].items():
            old_url = [u for u in results["tandem-httplib"]["urls"] if u.split(":")[0] ==
                       url.split(":")[0]][0]
            new, old = phases["hostile"], results["tandem-httplib"]["urls"][old_url]["hostile"]
            if new["p99_ms"] and old["p99_ms"]:
                lines.append("- %s, hostile p99: httplib / event loop = %.0fx%s" % (
                    url.split(":")[0], old["p99_ms"] / new["p99_ms"],
                    " (at least: %d of httplib's %d checks got no answer within the timeout)"
                    % (old["failed"], old["checks"]) if old["failed"] else ""))
    if "tandem" in results and "patroni" in results:
        new = list(results["tandem"]["urls"].values())[0]["hostile"]
        pat = list(results["patroni"]["urls"].values())[0]["hostile"]
        if new["p99_ms"] and pat["p99_ms"]:
            lines.append("- health port (http) vs Patroni's REST API, hostile p99: Patroni / "
                         "Tandem = %.1fx" % (pat["p99_ms"] / new["p99_ms"]))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="tandem,tandem-httplib,patroni")
    ap.add_argument("--checks", type=int, default=500)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--slow", type=int, default=100)
    ap.add_argument("--base-port", type=int, default=25400)
    ap.add_argument("--command", default="bench/hostile/run.sh")
    ap.add_argument("--out")
    args = ap.parse_args()
    stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join(HERE, "results", stamp)
    base = "/tmp/tandem-bench-hostile-" + stamp
    os.makedirs(out, exist_ok=True)
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    _, commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], 30)
    meta = {"command": args.command, "date": stamp, "commit": commit.strip(),
            "loadavg": open("/proc/loadavg").read().split()[:3], "checks": args.checks,
            "idle": args.idle, "slow": args.slow}
    results = {}
    for i, label in enumerate(args.configs.split(",")):
        port = args.base_port + 100 * i
        if label == "patroni":
            results[label] = patroni_config(base, port, args)
            continue
        binary = os.path.join(ROOT, "build", "tandem") if label == "tandem" else old_binary()
        results[label] = one_config(label, binary, base, port, args)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    summary = summarize(results, meta)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    log("results in %s; logs in %s" % (out, base))
    return 0


if __name__ == "__main__":
    sys.exit(main())

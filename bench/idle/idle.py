#!/usr/bin/env python3
"""Idle cost benchmark: CPU, memory and threads of an idle 3-node cluster, Tandem vs Patroni.

Run through bench/idle/run.sh (which installs the packages and runs this under
bench/failover/reaper.py). The clusters are started and stopped by bench/failover/bench.py's
TandemCluster and PatroniCluster (the same setup as the failover benchmark). For each of
Tandem at its defaults and Patroni at ttl 5 / loop_wait 1 / retry_timeout 2:

  1. start the 3-node cluster, wait until it is healthy (3 members, one leader, two
     streaming replicas), then let it settle for --settle seconds (10);
  2. sample --seconds (60) of idle: for each node's agent (Tandem agent / Patroni), its
     etcd member and its PostgreSQL (the postmaster and all its children), the CPU used
     in the window from /proc/PID/stat (utime+stime+cutime+cstime of every process of the
     tree at the end minus the same at the start; the trees are walked once at the start
     and once at the end, so a process that exits in the window is counted through its
     parent's cutime/cstime); RSS (VmRSS) and threads (/proc/PID/status) of the agent and
     etcd every 5 s (median and max kept);
  3. with --strace, `timeout 20 strace -f -c -p PID` on the primary's agent (after the
     window, so the tracing does not disturb the measurement): syscall counts, connect/s;
  4. stop the cluster.

Writes results.json and summary.md under bench/idle/results/<UTC time>/ (or --out).
Only processes this script started are signalled (by pid; see bench/failover/bench.py).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "failover"))
import bench as fb  # noqa: E402  (bench/failover/bench.py: the clusters and helpers)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KINDS = ("agent", "etcd", "postgres")
# Issue #11's targets for Tandem.
TARGET_AGENT_CPU = 0.5     # % of one core, each agent
TARGET_ETCD_CPU = 2.0      # % of one core, each embedded etcd
TARGET_AGENT_RSS = 15.0    # MiB, each agent
RSS_EVERY_S = 5.0
log = fb.log


# ---------------------------------------------------------------- /proc

def stat_fields(pid):
    """(state, ppid, ticks, starttime, comm) of pid, or None; ticks = utime+stime+cutime+cstime."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    name = s[s.index("(") + 1:s.rindex(")")]
    rest = s[s.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); utime is field 14 -> rest[11].
    ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
    return rest[0], int(rest[1]), ticks, int(rest[19]), name


def children_map():
    """ppid -> [pid] over all processes now."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = stat_fields(int(d))
        if st:
            kids.setdefault(st[1], []).append(int(d))
    return kids


def tree_snapshot(root, exclude, kids):
    """{(pid, starttime): (ticks, comm)} for root and its descendants, minus the subtrees in exclude."""
    out = {}
    todo = [root]
    while todo:
        p = todo.pop()
        if p in exclude:
            continue
        st = stat_fields(p)
        if st is None or st[0] in ("Z", "X"):
            continue
        out[(p, st[3])] = (st[2], st[4])
        todo.extend(kids.get(p, []))
    return out


def status_fields(pid):
    """(VmRSS in MiB, Threads) of pid, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    thr = re.search(r"^Threads:\s+(\d+)", text, re.M)
    if not rss or not thr:
        return None
    return int(rss.group(1)) / 1024.0, int(thr.group(1))


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


# ---------------------------------------------------------------- measuring

def measure(procs, seconds):
    """procs: [{node, role, kind, pid}]; samples `seconds` of idle. Returns the rows."""
    roots = {p["pid"] for p in procs}
    excl = {}
    for p in procs:
        # An agent's tree is the agent and its children except the etcd and PostgreSQL
        # measured on their own (the Tandem agent may be their parent).
        excl[p["pid"]] = roots - {p["pid"]}
    kids = children_map()
    t0 = time.monotonic()
    start = {p["pid"]: tree_snapshot(p["pid"], excl[p["pid"]], kids) for p in procs}
    mem = {p["pid"]: [] for p in procs}
    next_mem = t0
    while True:
        now = time.monotonic()
        if now >= next_mem:
            for p in procs:
                if p["kind"] == "postgres":
                    continue   # RSS of a postmaster alone says little (shared memory)
                s = status_fields(p["pid"])
                if s:
                    mem[p["pid"]].append(s)
            next_mem += RSS_EVERY_S
        if now - t0 >= seconds:
            break
        time.sleep(min(0.5, max(0.0, t0 + seconds - now)))
    kids = children_map()
    end = {p["pid"]: tree_snapshot(p["pid"], excl[p["pid"]], kids) for p in procs}
    elapsed = time.monotonic() - t0
    rows = []
    for p in procs:
        s, e = start[p["pid"]], end[p["pid"]]
        ticks = sum(v[0] for v in e.values()) - sum(v[0] for v in s.values())
        seen = dict(s)
        seen.update(e)
        m = mem[p["pid"]]
        row = dict(p)
        row.update({
            "comm": comm(p["pid"]),
            "alive_at_end": (p["pid"], next(iter(s))[1] if s else 0) in e,
            "cpu_pct": round(100.0 * ticks / CLK_TCK / elapsed, 3),
            "ticks": ticks,
            "processes_start": len(s),
            "processes_end": len(e),
            "processes_seen": len(seen),
            # Per process: its own share (end - start; a process that exited in the window
            # shows its start value negated, its time is in its parent's cutime/cstime).
            "tree": [{"pid": k[0], "comm": v[1], "cpu_pct": round(100.0 * (
                e.get(k, (0,))[0] - s.get(k, (0,))[0]) / CLK_TCK / elapsed, 3)}
                for k, v in sorted(seen.items())],
            "rss_mib_median": round(statistics.median(x[0] for x in m), 2) if m else None,
            "rss_mib_max": round(max(x[0] for x in m), 2) if m else None,
            "threads_median": statistics.median(x[1] for x in m) if m else None,
            "threads_max": max(x[1] for x in m) if m else None,
        })
        rows.append(row)
    return rows, round(elapsed, 2)


def strace_summary(pid, seconds, out_file):
    """Runs `timeout S strace -f -c -p PID`; returns {calls, connect_per_s, syscalls} or an error."""
    argv = ["timeout", str(seconds), "strace", "-f", "-c", "-p", str(pid), "-o", out_file]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=seconds + 30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    try:
        with open(out_file) as f:
            text = f.read()
    except OSError:
        return {"error": "no strace output (rc %d): %s" % (p.returncode, p.stdout[-300:])}
    sys_rows = []
    for line in text.splitlines():
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
            try:
                calls = int(f[3])
            except ValueError:
                continue
            errors = int(f[4]) if len(f) == 6 else 0
            sys_rows.append({"syscall": f[-1], "calls": calls, "errors": errors,
                             "time_pct": float(f[0])})
    sys_rows.sort(key=lambda r: -r["calls"])
    total = sum(r["calls"] for r in sys_rows)
    def per_s(*names):
        return round(sum(r["calls"] for r in sys_rows if r["syscall"] in names) / seconds, 2)

    return {"pid": pid, "seconds": seconds, "calls": total,
            "calls_per_s": round(total / seconds, 1), "connect_per_s": per_s("connect"),
            "execve_per_s": per_s("execve"), "fork_per_s": per_s("clone", "clone3", "fork", "vfork"),
            "syscalls": sys_rows, "raw": text}


def strace_detail(pid, seconds, out_file):
    """`timeout S strace -f -e trace=openat,connect,kill,readlink -p PID`: the most frequent
    targets (paths with numbers as N, ports, signals), per second."""
    argv = ["timeout", str(seconds), "strace", "-f", "-qq", "-s", "200",
            "-e", "trace=openat,connect,kill,readlink", "-p", str(pid), "-o", out_file]
    try:
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=seconds + 30)
        with open(out_file) as f:
            lines = f.read().splitlines()
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    counts = {}
    for line in lines:
        m = re.search(r"\b(openat|readlink)\((?:AT_FDCWD, )?\"([^\"]*)\"", line)
        if m:
            key = "%s %s" % (m.group(1), re.sub(r"\d+", "N", m.group(2)))
        elif "connect(" in line:
            m = re.search(r"sin6?_port=htons\((\d+)\)", line) or re.search(r"sun_path=\"([^\"]*)\"", line)
            key = "connect %s" % (m.group(1) if m else "?")
        elif "kill(" in line:
            m = re.search(r"kill\(\d+, (\w+)\)", line)
            key = "kill %s" % (m.group(1) if m else "?")
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:15]
    return {"seconds": seconds, "top": [{"what": k, "per_s": round(v / seconds, 1)} for k, v in top]}


# ---------------------------------------------------------------- clusters

def tandem_procs(c):
    rc, out = fb.run([fb.TANDEM, "sandbox", "status", "--dir", c.dir, "--json"], 30)
    prim = c.primary()
    procs = []
    for n in json.loads(out):
        role = "primary" if n["name"] == prim else "replica"
        for kind in PAGE_KINDS:
            pid = int(n["pids"].get(kind) or 0)
            if not pid:
                raise RuntimeError("tandem %s: no %s pid in sandbox status" % (n["name"], kind))
            procs.append({"node": n["name"], "role": role, "kind": kind, "pid": pid})
    return procs


def patroni_procs(c):
    prim = c.primary()
    procs = []
    for n in c.nodes:
        role = "primary" if n == prim else "replica"
        pm = fb.postmaster_pid(c.data_dir(n))
        if not pm:
            raise RuntimeError("patroni %s: no live postmaster" % n)
        procs += [{"node": n, "role": role, "kind": "agent", "pid": c.patroni[n].pid},
                  {"node": n, "role": role, "kind": "etcd", "pid": c.etcd[n].pid},
                  {"node": n, "role": role, "kind": "postgres", "pid": pm}]
    return procs


def run_config(cluster, get_procs, a, outdir, logs):
    log("== %s: starting (%s)" % (cluster.title, cluster.settings()))
    t = time.time()
    cluster.setup()
    log("   up in %.0f s" % (time.time() - t))
    ok, detail = fb.wait_until(cluster.healthy, fb.HEALTHY_TIMEOUT_S, "%s healthy" % cluster.label)
    if not ok:
        raise RuntimeError("%s did not become healthy: %s" % (cluster.label, detail))
    log("   healthy; settling %d s" % a.settle)
    time.sleep(a.settle)
    procs = get_procs(cluster)
    log("   sampling %d s of idle (%s)" % (a.seconds, ", ".join(
        "%s %s %d" % (p["node"], p["kind"], p["pid"]) for p in procs)))
    load_before = loadavg()
    rows, elapsed = measure(procs, a.seconds)
    res = {"title": cluster.title, "settings": cluster.settings(), "window_s": elapsed,
           "loadavg_before": load_before, "loadavg_after": loadavg(), "rows": rows}
    ok, detail = cluster.healthy()
    res["healthy_after"] = ok
    if not ok:
        log("   warning: not healthy after the window: %s" % detail)
    dead = [r for r in rows if not r["alive_at_end"]]
    if dead:
        res["warning"] = "process(es) gone during the window: %s" % dead
        log("   warning: %s" % res["warning"])
    if a.strace:
        agents = [p for p in procs if p["kind"] == "agent"]
        prim = ([p for p in agents if p["role"] == "primary"] or agents)[0]
        log("   strace -f -c of the primary's agent (%s, pid %d) for %d s"
            % (prim["node"], prim["pid"], a.strace_seconds))
        st = strace_summary(prim["pid"], a.strace_seconds,
                            os.path.join(outdir, "%s-strace.txt" % cluster.label))
        st["node"] = st.get("node", prim["node"])
        st["detail"] = strace_detail(prim["pid"], 5, os.path.join(   # large: kept in logs
            logs, "%s-strace-detail.txt" % cluster.label))
        res["strace"] = st
    return res


# ---------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f2(x, unit=""):
    return "–" if x is None else ("%.2f%s" % (x, unit))


def kind_stats(res, kind):
    rows = [r for r in res["rows"] if r["kind"] == kind]
    cpu = [r["cpu_pct"] for r in rows]
    return {
        "cpu_median": med(cpu), "cpu_max": max(cpu) if cpu else None,
        "cpu_min": min(cpu) if cpu else None,
        "cpu_primary": med(r["cpu_pct"] for r in rows if r["role"] == "primary"),
        "cpu_replicas_median": med(r["cpu_pct"] for r in rows if r["role"] == "replica"),
        "rss_median": med(r["rss_mib_median"] for r in rows),
        "rss_max": max((r["rss_mib_max"] for r in rows if r["rss_mib_max"] is not None), default=None),
        "threads_median": med(r["threads_median"] for r in rows),
    }


def verdict(ok):
    return "met" if ok else "MISSED"


def summarize(results, meta):
    L = []
    L.append("Run: `%s`, %s UTC, git %s; window %d s after %d s of settling; %d cores; "
             "total %.1f min" % (meta["command"], meta["started"], meta["git"], meta["seconds"],
                                 meta["settle"], os.cpu_count(), meta["elapsed_s"] / 60))
    L.append("")
    for label, res in results.items():
        L.append("- %s: %s; load average before / after the window: %s / %s" % (
            res["title"], res["settings"], res["loadavg_before"], res["loadavg_after"]))
    L.append("")
    L.append("CPU is % of one core over the window (process tree: a PostgreSQL instance is its "
             "postmaster and all its children; an agent excludes the etcd and PostgreSQL "
             "measured on their own lines); RSS and threads (agents and etcd only) are the "
             "median of the 5 s samples; processes = how many the tree had over the window.")
    L.append("")
    L.append("| system | node | role | process | pid | CPU % | RSS MiB | threads | processes |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for label, res in results.items():
        for r in res["rows"]:
            L.append("| %s | %s | %s | %s (%s) | %d | %.2f | %s | %s | %d |" % (
                label, r["node"], r["role"], r["kind"], r["comm"], r["pid"], r["cpu_pct"],
                f2(r["rss_mib_median"]), "–" if r["threads_median"] is None else
                "%g" % r["threads_median"], r["processes_seen"]))
    L.append("")
    for label, res in results.items():
        kids = ["%s %s %.2f %%" % (r["node"], t["comm"], t["cpu_pct"]) for r in res["rows"]
                if r["kind"] == "agent" for t in r["tree"] if t["pid"] != r["pid"]]
        if kids:
            L.append("%s agents' own child processes (in the agent's CPU above): %s" % (
                label, ", ".join(kids)))
            L.append("")
    L.append("Medians across the 3 nodes (max in brackets):")
    L.append("")
    L.append("| system | agent CPU % | agent CPU % primary / replicas | etcd CPU % | PostgreSQL CPU % "
             "| agent RSS MiB | etcd RSS MiB | agent threads | etcd threads |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    stats = {}
    for label, res in results.items():
        s = {k: kind_stats(res, k) for k in PAGE_KINDS}
        stats[label] = s
        L.append("| %s | %s (%s) | %s / %s | %s (%s) | %s (%s) | %s (%s) | %s (%s) | %s | %s |" % (
            label, f2(s["agent"]["cpu_median"]), f2(s["agent"]["cpu_max"]),
            f2(s["agent"]["cpu_primary"]), f2(s["agent"]["cpu_replicas_median"]),
            f2(s["etcd"]["cpu_median"]), f2(s["etcd"]["cpu_max"]),
            f2(s["postgres"]["cpu_median"]), f2(s["postgres"]["cpu_max"]),
            f2(s["agent"]["rss_median"]), f2(s["agent"]["rss_max"]),
            f2(s["etcd"]["rss_median"]), f2(s["etcd"]["rss_max"]),
            "%g" % s["agent"]["threads_median"] if s["agent"]["threads_median"] is not None else "–",
            "%g" % s["etcd"]["threads_median"] if s["etcd"]["threads_median"] is not None else "–"))
    L.append("")
    ratios = {}
    if "tandem" in stats and "patroni-fast" in stats:
        t, p = stats["tandem"], stats["patroni-fast"]
        for k in PAGE_KINDS:
            if t[k]["cpu_median"] is not None and p[k]["cpu_median"]:
                ratios["%s_cpu" % k] = round(t[k]["cpu_median"] / p[k]["cpu_median"], 3)
        if t["agent"]["rss_median"] and p["agent"]["rss_median"]:
            ratios["agent_rss"] = round(t["agent"]["rss_median"] / p["agent"]["rss_median"], 3)
        L.append("Ratios Tandem / Patroni ttl5/lw1 (medians): agent CPU %s, agent RSS %s; "
                 "etcd CPU %s; PostgreSQL CPU %s" % (
                     ratios.get("agent_cpu", "–"), ratios.get("agent_rss", "–"),
                     ratios.get("etcd_cpu", "–"), ratios.get("postgres_cpu", "–")))
        L.append("")
    targets = {}
    if "tandem" in stats:
        t = stats["tandem"]
        targets["agent_cpu"] = t["agent"]["cpu_max"] <= TARGET_AGENT_CPU
        targets["etcd_cpu"] = t["etcd"]["cpu_max"] <= TARGET_ETCD_CPU
        targets["agent_rss"] = t["agent"]["rss_max"] is not None and t["agent"]["rss_max"] <= TARGET_AGENT_RSS
        L.append("Targets (issue #11), each Tandem node:")
        L.append("")
        L.append("- agent CPU <= %.1f %% of a core: %s (max %.2f %%)" % (
            TARGET_AGENT_CPU, verdict(targets["agent_cpu"]), t["agent"]["cpu_max"]))
        if "patroni-fast" in stats:
            p = stats["patroni-fast"]
            targets["agent_below_patroni"] = t["agent"]["cpu_max"] < p["agent"]["cpu_min"]
            L.append("- agent CPU below Patroni's agent in the same run: %s (Tandem max %.2f %%, "
                     "Patroni min %.2f %%)" % (verdict(targets["agent_below_patroni"]),
                                              t["agent"]["cpu_max"], p["agent"]["cpu_min"]))
        L.append("- embedded etcd CPU <= %.1f %%: %s (max %.2f %%)" % (
            TARGET_ETCD_CPU, verdict(targets["etcd_cpu"]), t["etcd"]["cpu_max"]))
        L.append("- agent RSS <= %.0f MiB: %s (max %s MiB)" % (
            TARGET_AGENT_RSS, verdict(targets["agent_rss"]), f2(t["agent"]["rss_max"])))
        L.append("")
    for label, res in results.items():
        st = res.get("strace")
        if not st:
            continue
        if "error" in st:
            L.append("strace of %s's primary agent: failed: %s" % (label, st["error"]))
            continue
        top = ", ".join("%s %d" % (r["syscall"], r["calls"]) for r in st["syscalls"][:10])
        L.append("strace -f -c of %s's primary agent (%s, pid %d, %d s): %d syscalls (%.0f/s), "
                 "connect %.2f/s, clone %.2f/s, execve %.2f/s; top: %s" % (
                     label, st["node"], st["pid"], st["seconds"], st["calls"], st["calls_per_s"],
                     st["connect_per_s"], st["fork_per_s"], st["execve_per_s"], top))
        det = st.get("detail", {})
        if det.get("top"):
            L.append("")
            L.append("  most frequent openat/readlink paths, connect ports, kill signals (per s, "
                     "%d s of `strace -e trace=openat,connect,kill,readlink`): %s" % (
                         det["seconds"], "; ".join("%s %.1f" % (t["what"], t["per_s"])
                                                    for t in det["top"])))
        L.append("")
    return "\n".join(L) + "\n", stats, ratios, targets


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def on_signal(sig, _frame):
    # The first signal interrupts the run; the ones that follow (Ctrl-C reaches the whole
    # process group, then run.sh's trap sends SIGTERM) must not interrupt the cleanup.
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    raise fb.Interrupted("signal %d" % sig)


def git_commit():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--settle", type=int, default=10)
    ap.add_argument("--configs", default="tandem,patroni-fast")
    ap.add_argument("--tandem-port", type=int, default=24400)
    ap.add_argument("--patroni-port", type=int, default=24500)
    ap.add_argument("--strace", action="store_true")
    ap.add_argument("--strace-seconds", type=int, default=20)
    ap.add_argument("--out", default=None)
    ap.add_argument("--command", default="bench/idle/run.sh")
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    if os.geteuid() != 0:
        print("idle: run as root (PostgreSQL and etcd run as postgres)", file=sys.stderr)
        return 1
    if "tandem" in a.configs.split(",") and not os.access(fb.TANDEM, os.X_OK):
        print("idle: %s is missing; run scripts/build.sh" % fb.TANDEM, file=sys.stderr)
        return 1
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    outdir = a.out or os.path.join(HERE, "results", stamp)
    os.makedirs(outdir, exist_ok=True)
    base = "/tmp/tandem-bench-idle-" + stamp
    logs = os.path.join(base, "logs")
    os.makedirs(logs)
    os.chmod(base, 0o755)
    log("idle: work and logs in %s; results in %s" % (base, outdir))
    configs = []
    for c in a.configs.split(","):
        if c == "tandem":
            configs.append((fb.TandemCluster(base, logs, a.tandem_port), tandem_procs))
        elif c == "patroni-fast":
            configs.append((fb.PatroniCluster(base, logs, "patroni-fast", "Patroni ttl5/lw1/rt2",
                                              a.patroni_port, 5, 1, 2), patroni_procs))
        else:
            print("idle: unknown config %s (tandem, patroni-fast)" % c, file=sys.stderr)
            return 2
    results = {}
    t_start = time.time()
    rc = 0
    current = None
    try:
        for c, get_procs in configs:
            current = c
            results[c.label] = run_config(c, get_procs, a, outdir, logs)
            c.teardown()
            current = None
    except fb.Interrupted as e:
        log("idle: interrupted (%s); cleaning up" % e)
        rc = 130
    except Exception as e:
        log("idle: error: %s" % e)
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for c, _ in configs:
            try:
                c.teardown()
            except Exception as e:
                log("idle: teardown of %s: %s" % (c.label, e))
    meta = {"command": a.command, "started": started, "git": git_commit(), "seconds": a.seconds,
            "settle": a.settle, "cores": os.cpu_count(), "elapsed_s": round(time.time() - t_start, 1),
            "rc": rc, "logs": logs}
    if not results:
        log("idle: no results (logs in %s)" % logs)
        try:
            os.rmdir(outdir)   # only when empty
        except OSError:
            pass
        return rc or 1
    text, stats, ratios, targets = summarize(results, meta)
    for res in results.values():
        if res.get("strace"):
            res["strace"].pop("raw", None)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results, "medians": stats, "ratios": ratios,
                   "targets": targets}, f, indent=1)
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    log("idle: results in %s (logs in %s)" % (outdir, logs))
    return rc


if __name__ == "__main__":
    sys.exit(main())

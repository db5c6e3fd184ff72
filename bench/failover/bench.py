#!/usr/bin/env python3
"""Failover benchmark: the client-visible write gap, Tandem vs Patroni, in one run.

Run through bench/failover/run.sh (which installs the packages and runs this under
reaper.py). For each configuration (Tandem at its defaults; Patroni at its defaults;
Patroni with ttl 5 / loop_wait 1 / retry_timeout 2) it starts a 3-node cluster on
127.0.0.1, starts the client (client.py: one INSERT every 50 ms over a multi-host
connection string with target_session_attrs=read-write), and for each fault and round:

  1. waits until the cluster is healthy (3 members, one leader, two streaming
     replicas) and the client has written without a pause for 3 s;
  2. waits a random time in [0, the manager's loop period) (so the fault does not land
     at the same phase of Patroni's 10 s loop every round), then injects the fault at
     t0 (node crash, postmaster crash, planned switchover);
  3. waits until the fault's command has returned and the client has written without
     a pause (no interval over 0.5 s) for the last 5 s, at least 5 s after the return;
  4. write gap = the longest interval between two consecutive successful writes in
     [t0 - 1 s, end of step 3];
  5. after a node crash, brings the node back (the next round's step 1 waits for it).

Only processes this script started (or that run from its own directories, checked by
pid and command line) are ever signalled; everything is stopped on exit.
"""
import argparse
import json
import os
import pwd
import random
import shutil
import ssl
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TANDEM = os.path.join(ROOT, "build", "tandem")
PGBIN = "/usr/lib/postgresql/15/bin"
CLIENT = os.path.join(HERE, "client.py")

FAULTS = ["node-crash", "postmaster-crash", "switchover", "agent-restart"]
# Not a fault: a round with nothing injected, so the longest pause of the client at this
# machine's load is known (the floor under every gap; run it with --faults none,...).
BASELINE = "none"
FAULT_TITLES = {
    "node-crash": "primary node crash (kill -9 agent/patroni + postgres + etcd member)",
    "postmaster-crash": "postmaster crash, agent alive (kill -9 postmaster)",
    "switchover": "planned switchover",
    "none": "no fault: the same round with nothing injected (the measurement's floor)",
    "agent-restart": "primary's agent restarted, as by a package upgrade (Tandem: tandem agent "
                     "reload; Patroni: SIGTERM and start again)",
}
# agent-restart: no gap longer than the client's own probe interval (50 ms) plus one
# write's round trip: 0.1 s.
TARGETS = {"node-crash": 2.0, "postmaster-crash": 0.5, "switchover": 0.5, "agent-restart": 0.1,
           "none": None}

RESUMED_QUIET_S = 5.0     # step 3: this long without a pause ...
PAUSE_S = 0.5             # ... where a pause is an interval longer than this
NO_RECOVERY_S = 180.0     # give up on a round after this long without a write
HEALTHY_TIMEOUT_S = 300.0


def log(msg):
    print("%s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Interrupted(Exception):
    pass


def _on_signal(sig, _frame):
    raise Interrupted("signal %d" % sig)


# ---------------------------------------------------------------- processes

def proc_state(pid):
    """The state letter of /proc/PID/stat, or None when there is no such process."""
    if not pid or pid <= 0:
        return None
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_dead(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def kill_group(pid, sig=signal.SIGKILL):
    """Signal pid's process group (when it is not ours) and pid itself."""
    if not alive(pid):
        return
    try:
        pgid = os.getpgid(pid)
        if pgid > 1 and pgid != os.getpgrp():
            os.killpg(pgid, sig)
    except OSError:
        pass
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return 0


def postmaster_pid(data_dir):
    """The live postmaster of data_dir (first line of postmaster.pid), or 0."""
    pid = read_pid(os.path.join(data_dir, "postmaster.pid"))
    if pid and alive(pid) and "postgres" in cmdline(pid) and data_dir in cmdline(pid):
        return pid
    return 0


def run(argv, timeout, log_file=None):
    """Runs argv to completion; returns (rc, output)."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = -1
        out += "\n(timed out after %ds)" % timeout
    if log_file:
        with open(log_file, "a") as f:
            f.write("$ %s\n%s\n(rc %d)\n" % (" ".join(argv), out, rc))
    return rc, out


def http_json(url, timeout=2.0, data=None, context=None):
    try:
        req = urllib.request.Request(url, data=data)
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:
            return json.loads(r.read().decode())
    except Exception:
        return None


def pg_query(port, password, sql, timeout=2):
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                                password=password, connect_timeout=timeout,
                                options="-c statement_timeout=2000",
                                application_name="bench_health")
    except Exception:
        return None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    except Exception:
        return None
    finally:
        conn.close()


def sql_health(ports, password):
    """(ok, primary port, detail): exactly one writable node, streaming to the other two."""
    writable = []
    for p in ports:
        r = pg_query(p, password, "SELECT pg_is_in_recovery()")
        if r is None:
            return False, None, "port %d: no answer" % p
        if not r[0][0]:
            writable.append(p)
    if len(writable) != 1:
        return False, None, "%d writable nodes" % len(writable)
    r = pg_query(writable[0], password,
                 "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    if r is None or r[0][0] != len(ports) - 1:
        return False, writable[0], "primary %d: %s streaming replicas" % (
            writable[0], None if r is None else r[0][0])
    return True, writable[0], "ok"


# ---------------------------------------------------------------- the client

class Client:
    def __init__(self, dsn, pgpass, out):
        self.dsn, self.pgpass, self.out = dsn, pgpass, out
        self.proc = None
        self.oks = []       # unix times of successful writes, in order
        self.ports = []     # the server port of each
        self.warns = []     # cancelled synchronous-replication waits
        self._pos = 0
        self._partial = ""

    def start(self):
        env = dict(os.environ, PGPASSFILE=self.pgpass)
        self.proc = subprocess.Popen([sys.executable, CLIENT, "--dsn", self.dsn, "--out", self.out],
                                     env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.out + ".stderr", "w"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def poll(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("the client exited (rc %s); see %s.stderr" % (self.proc.returncode, self.out))
        try:
            with open(self.out) as f:
                f.seek(self._pos)
                data = f.read()
                self._pos = f.tell()
        except OSError:
            return
        data = self._partial + data
        lines = data.split("\n")
        self._partial = lines.pop()
        for line in lines:
            parts = line.split(" ")
            if parts[0] == "ok" and len(parts) >= 3:
                self.oks.append(float(parts[1]))
                self.ports.append(parts[2])
            elif parts[0] == "warn":
                self.warns.append(float(parts[1]))

    def last_ok(self):
        self.poll()
        return self.oks[-1] if self.oks else 0.0

    def flowing_since(self, now):
        """How long the writes have gone on without a pause longer than PAUSE_S (up to now)."""
        self.poll()
        if not self.oks or now - self.oks[-1] > PAUSE_S:
            return 0.0
        i = len(self.oks) - 1
        while i > 0 and self.oks[i] - self.oks[i - 1] <= PAUSE_S:
            i -= 1
        return now - self.oks[i]

    def gap(self, t_from, t_to):
        """(longest interval between consecutive writes in [t_from, t_to], its end's port)."""
        self.poll()
        best, port = 0.0, None
        prev = None
        for t, p in zip(self.oks, self.ports):
            if t < t_from:
                continue
            if t > t_to:
                break
            if prev is not None and t - prev > best:
                best, port = t - prev, p
            prev = t
        return best, port

    def warns_between(self, a, b):
        return sum(1 for t in self.warns if a <= t <= b)


def dsn_for(ports):
    return ("host=%s port=%s dbname=postgres user=postgres target_session_attrs=read-write "
            "connect_timeout=1 options='-c statement_timeout=1000' application_name=bench_client"
            % (",".join(["127.0.0.1"] * len(ports)), ",".join(str(p) for p in ports)))


# ---------------------------------------------------------------- Tandem

class TandemCluster:
    def __init__(self, base, logs, base_port):
        self.label = "tandem"
        self.title = "Tandem (defaults)"
        self.dir = os.path.join(base, "tandem")
        self.logs = logs
        self.base_port = base_port
        self.nodes = ["node1", "node2", "node3"]
        self.password = None
        self.cmdlog = os.path.join(logs, "tandem-commands.log")
        self.loop_period = 0.25   # loop_interval (lease renewal period)
        self.seen_pids = set()

    def idx(self, n):
        return self.nodes.index(n) + 1

    def pg_port(self, n):
        return self.base_port + 10 * self.idx(n)

    def api_port(self, n):
        return self.pg_port(n) + 1

    def cfg(self, n):
        return os.path.join(self.dir, n, "tandem.yaml")

    def data_dir(self, n):
        return os.path.join(self.dir, n, "pgdata")

    def ports(self):
        return [self.pg_port(n) for n in self.nodes]

    @property
    def pgpass(self):
        return os.path.join(self.dir, "pgpass")

    def setup(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(os.path.dirname(self.dir), 0o755)
        rc, out = run([TANDEM, "sandbox", "up", "--nodes", "3", "--dir", self.dir,
                       "--base-port", str(self.base_port)], 600, self.cmdlog)
        self._remember_pids()
        if rc != 0:
            raise RuntimeError("tandem sandbox up failed (rc %d); see %s" % (rc, self.cmdlog))
        with open(self.pgpass) as f:
            self.password = f.readline().strip().split(":", 4)[4]

    def _remember_pids(self):
        rc, out = run([TANDEM, "sandbox", "status", "--dir", self.dir, "--json"], 30)
        try:
            for n in json.loads(out):
                for p in n["pids"].values():
                    if p:
                        self.seen_pids.add(int(p))
        except Exception:
            pass

    def teardown(self):
        if not os.path.isdir(self.dir):
            return
        self._remember_pids()
        for n in self.nodes:
            for name in ("agent.log",):
                src = os.path.join(self.dir, n, name)
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(self.logs, "tandem-%s-%s" % (n, name)))
            for name in ("postgresql.log", "etcd.log"):
                src = os.path.join(self.dir, n, "log", name)
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(self.logs, "tandem-%s-%s" % (n, name)))
        run([TANDEM, "sandbox", "down", "--dir", self.dir, "--purge"], 300, self.cmdlog)
        # Anything left that runs from our directory (a crash mid-run): by pid, checked.
        left = [p for p in self.seen_pids if alive(p) and self.dir in cmdline(p)]
        for p in left:
            kill_group(p)
        wait_dead(left, 10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def status(self, n, timeout=2.0):
        # The sandbox runs TLS by default: its API is HTTPS (reads need no client certificate).
        ca = os.path.join(self.dir, n, "certs", "ca.crt")
        if os.path.exists(ca):
            ctx = ssl.create_default_context(cafile=ca)
            return http_json("https://127.0.0.1:%d/v1/status" % self.api_port(n), timeout,
                             context=ctx)
        return http_json("http://127.0.0.1:%d/v1/status" % self.api_port(n), timeout)

    def agent_alive(self, n):
        pid = read_pid(os.path.join(self.dir, n, "agent.pid"))
        return pid and alive(pid) and self.cfg(n) in cmdline(pid)

    def healthy(self):
        for n in self.nodes:
            if not self.agent_alive(n):
                return False, "%s: agent not running" % n
        ok, port, detail = sql_health(self.ports(), self.password)
        if not ok:
            return False, detail
        prim = [n for n in self.nodes if self.pg_port(n) == port][0]
        st = self.status(prim)
        if not st:
            return False, "%s: no status" % prim
        if st.get("primary") != prim or st.get("intent") or st.get("status") != "Enabled":
            return False, "status: primary %s, intent %s, status %s" % (
                st.get("primary"), st.get("intent"), st.get("status"))
        ms = st.get("members", [])
        reps = [m for m in ms if m.get("role") == "replica" and m.get("connected") and m.get("in_sync")]
        if len(ms) != 3 or len(reps) != 2:
            return False, "status: %d members, %d replicas connected and in sync" % (len(ms), len(reps))
        return True, "ok"

    def primary(self):
        ok, port, _ = sql_health(self.ports(), self.password)
        for n in self.nodes:
            if self.pg_port(n) == port:
                return n
        return None

    def kill_node(self, n):
        rc, out = run([TANDEM, "sandbox", "kill", n, "--dir", self.dir], 60, self.cmdlog)
        return rc == 0, out.strip()

    def start_node(self, n):
        rc, out = run([TANDEM, "sandbox", "start", n, "--dir", self.dir], 60, self.cmdlog)
        self._remember_pids()
        return rc == 0, out.strip()

    def switchover(self, primary):
        rc, out = run([TANDEM, "-c", self.cfg(primary), "cluster", "switchover"], 120, self.cmdlog)
        return rc == 0, out.strip().replace("\n", " | ")[-300:]

    def restart_agent(self, n):
        # What a package upgrade does (the postinst): the agent executes its binary again
        # as the same process; PostgreSQL, etcd and the leader key's lease are kept.
        rc, out = run([TANDEM, "agent", "reload", "-c", self.cfg(n)], 180, self.cmdlog)
        return rc == 0, out.strip().replace("\n", " | ")[-300:]

    def settings(self):
        return "Tandem defaults: ttl 2s, loop_interval 250ms, safety_margin 500ms, sync_mode quorum (ANY 1)"


# ---------------------------------------------------------------- Patroni

class PatroniCluster:
    def __init__(self, base, logs, label, title, base_port, ttl, loop_wait, retry_timeout):
        self.label, self.title = label, title
        self.dir = os.path.join(base, label)
        self.logs = logs
        self.base_port = base_port
        self.ttl, self.loop_wait, self.retry_timeout = ttl, loop_wait, retry_timeout
        self.loop_period = float(loop_wait)
        self.nodes = ["pnode1", "pnode2", "pnode3"]
        self.password = "bench-super-pw"
        self.etcd = {}      # node -> Popen
        self.patroni = {}   # node -> Popen
        self.seen_pids = set()
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, pw.pw_dir

    def idx(self, n):
        return self.nodes.index(n) + 1

    def pg_port(self, n):
        return self.base_port + 10 * self.idx(n)

    def rest_port(self, n):
        return self.pg_port(n) + 1

    def etcd_client(self, n):
        return self.pg_port(n) + 4

    def etcd_peer(self, n):
        return self.pg_port(n) + 5

    def ndir(self, n):
        return os.path.join(self.dir, n)

    def data_dir(self, n):
        return os.path.join(self.ndir(n), "data")

    def conf(self, n):
        return os.path.join(self.ndir(n), "patroni.yml")

    def ports(self):
        return [self.pg_port(n) for n in self.nodes]

    @property
    def pgpass(self):
        return os.path.join(self.dir, "pgpass")

    def _chown(self, path):
        os.chown(path, self.uid, self.gid)

    def setup(self):
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        with open(self.pgpass, "w") as f:
            f.write("127.0.0.1:*:*:postgres:%s\n" % self.password)
        os.chmod(self.pgpass, 0o600)
        hosts = ["127.0.0.1:%d" % self.etcd_client(n) for n in self.nodes]
        for n in self.nodes:
            d = self.ndir(n)
            os.makedirs(os.path.join(d, "etcd"), exist_ok=True)
            self._chown(d)
            os.chmod(d, 0o755)
            self._chown(os.path.join(d, "etcd"))
            os.chmod(os.path.join(d, "etcd"), 0o700)
            conf = {
                "scope": "bench-" + self.label,
                "namespace": "/service/",
                "name": n,
                "log": {"level": "INFO"},
                "restapi": {"listen": "127.0.0.1:%d" % self.rest_port(n),
                            "connect_address": "127.0.0.1:%d" % self.rest_port(n)},
                "etcd3": {"hosts": hosts},
                "bootstrap": {
                    "dcs": {
                        "ttl": self.ttl, "loop_wait": self.loop_wait,
                        "retry_timeout": self.retry_timeout,
                        "maximum_lag_on_failover": 1048576,
                        "synchronous_mode": False,
                        "postgresql": {
                            "use_pg_rewind": True,
                            "remove_data_directory_on_rewind_failure": True,
                            "remove_data_directory_on_diverged_timelines": True,
                            "use_slots": True,
                            "parameters": {"wal_log_hints": "on", "max_wal_senders": 10,
                                           "max_replication_slots": 10},
                        },
                    },
                    "initdb": [{"encoding": "UTF8"}, {"auth-local": "trust"},
                               {"auth-host": "scram-sha-256"}],
                },
                "postgresql": {
                    "listen": "127.0.0.1:%d" % self.pg_port(n),
                    "connect_address": "127.0.0.1:%d" % self.pg_port(n),
                    "data_dir": self.data_dir(n),
                    "bin_dir": PGBIN,
                    "pgpass": os.path.join(d, "pgpass.patroni"),
                    "authentication": {
                        "superuser": {"username": "postgres", "password": self.password},
                        "replication": {"username": "replicator", "password": "bench-repl-pw"},
                    },
                    "parameters": {"unix_socket_directories": d},
                    "pg_hba": [
                        "local all all trust",
                        "host replication replicator 127.0.0.1/32 scram-sha-256",
                        "host all all 127.0.0.1/32 scram-sha-256",
                    ],
                },
                "watchdog": {"mode": "off"},
                "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False,
                         "nosync": False},
            }
            with open(self.conf(n), "w") as f:
                json.dump(conf, f, indent=1)   # JSON is YAML
            os.chmod(self.conf(n), 0o644)
        for n in self.nodes:
            self.start_etcd(n)
        deadline = time.time() + 60
        while not all(self.etcd_healthy(n) for n in self.nodes):
            if time.time() > deadline:
                raise RuntimeError("%s: etcd did not become healthy; see %s" % (self.label, self.logs))
            time.sleep(0.5)
        # Bootstrap from pnode1, then the replicas.
        self.start_patroni(self.nodes[0])
        deadline = time.time() + 120
        while True:
            r = pg_query(self.pg_port(self.nodes[0]), self.password, "SELECT pg_is_in_recovery()")
            if r is not None and not r[0][0]:
                break
            if time.time() > deadline:
                raise RuntimeError("%s: pnode1 did not bootstrap; see the logs" % self.label)
            time.sleep(0.5)
        for n in self.nodes[1:]:
            self.start_patroni(n)

    def _spawn(self, argv, logname, cwd):
        env = {"PATH": "/usr/bin:/bin:" + PGBIN, "HOME": self.home, "LANG": "C.UTF-8",
               "USER": "postgres", "LOGNAME": "postgres"}
        out = open(os.path.join(self.logs, logname), "a")
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, user=self.uid, group=self.gid,
                             extra_groups=[], start_new_session=True)
        out.close()
        self.seen_pids.add(p.pid)
        return p

    def start_etcd(self, n):
        cluster = ",".join("e%d=http://127.0.0.1:%d" % (self.idx(m), self.etcd_peer(m))
                           for m in self.nodes)
        argv = ["etcd", "--name", "e%d" % self.idx(n),
                "--data-dir", os.path.join(self.ndir(n), "etcd"),
                "--listen-client-urls", "http://127.0.0.1:%d" % self.etcd_client(n),
                "--advertise-client-urls", "http://127.0.0.1:%d" % self.etcd_client(n),
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer(n),
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.etcd_peer(n),
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", "bench-" + self.label,
                "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "10m",
                "--logger", "zap", "--log-level", "warn"]
        self.etcd[n] = self._spawn(argv, "%s-%s-etcd.log" % (self.label, n), self.ndir(n))

    def start_patroni(self, n):
        self.patroni[n] = self._spawn(["patroni", self.conf(n)],
                                      "%s-%s-patroni.log" % (self.label, n), self.ndir(n))

    def etcd_healthy(self, n):
        r = http_json("http://127.0.0.1:%d/health" % self.etcd_client(n), 2)
        return bool(r) and str(r.get("health")) == "true"

    def cluster_view(self):
        for n in self.nodes:
            r = http_json("http://127.0.0.1:%d/cluster" % self.rest_port(n), 2)
            if r:
                return r
        return None

    def healthy(self):
        for n in self.nodes:
            p = self.patroni.get(n)
            if p is None or p.poll() is not None:
                return False, "%s: patroni not running" % n
            if not self.etcd_healthy(n):
                return False, "%s: etcd member not healthy" % n
        ok, port, detail = sql_health(self.ports(), self.password)
        if not ok:
            return False, detail
        view = self.cluster_view()
        if not view:
            return False, "no /cluster answer"
        ms = view.get("members", [])
        leaders = [m for m in ms if m.get("role") == "leader" and m.get("state") == "running"]
        reps = [m for m in ms if m.get("role") in ("replica", "sync_standby")
                and m.get("state") in ("running", "streaming")]
        if len(ms) != 3 or len(leaders) != 1 or len(reps) != 2 or view.get("pause"):
            return False, "/cluster: %d members, %d leaders, %d replicas" % (len(ms), len(leaders), len(reps))
        if leaders[0].get("port") != port:
            return False, "/cluster leader is not the writable node"
        return True, "ok"

    def primary(self):
        ok, port, _ = sql_health(self.ports(), self.password)
        for n in self.nodes:
            if self.pg_port(n) == port:
                return n
        return None

    def kill_node(self, n):
        pids = []
        pat = self.patroni.get(n)
        pm = postmaster_pid(self.data_dir(n))
        et = self.etcd.get(n)
        # All three at once (process groups: Patroni, PostgreSQL's postmaster and
        # children, etcd), then check.
        for pid in (pat.pid if pat else 0, pm, et.pid if et else 0):
            if pid and alive(pid):
                kill_group(pid)
                pids.append(pid)
        for p in (pat, et):
            if p is not None:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        ok = wait_dead(pids, 10)
        return ok, "killed patroni %s, postmaster %s, etcd %s" % (
            pat.pid if pat else None, pm or None, et.pid if et else None)

    def start_node(self, n):
        self.start_etcd(n)
        self.start_patroni(n)
        return True, "started etcd %d, patroni %d" % (self.etcd[n].pid, self.patroni[n].pid)

    def restart_agent(self, n):
        # What `systemctl restart patroni` (and a package upgrade's restart) does: SIGTERM,
        # which makes Patroni stop PostgreSQL and give up the leader key, then a new Patroni.
        p = self.patroni.get(n)
        if p is None or p.poll() is not None:
            return False, "no running patroni for %s" % n
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(90)
        except subprocess.TimeoutExpired:
            return False, "patroni %d did not exit within 90 s of SIGTERM" % p.pid
        old = p.pid
        self.start_patroni(n)
        return True, "patroni %d stopped (SIGTERM), patroni %d started" % (old, self.patroni[n].pid)

    def switchover(self, primary):
        view = self.cluster_view() or {}
        cands = sorted((m.get("lag", 0) if isinstance(m.get("lag"), int) else 1 << 40, m["name"])
                       for m in view.get("members", []) if m.get("role") in ("replica", "sync_standby"))
        if not cands:
            return False, "no candidate"
        cand = cands[0][1]
        rc, out = run(["patronictl", "-c", self.conf(primary), "switchover", "--leader", primary,
                       "--candidate", cand, "--force"], 120,
                      os.path.join(self.logs, "%s-commands.log" % self.label))
        said = [l for l in out.splitlines() if l.strip() and l[0] not in "+|"
                and not l.startswith("Current cluster topology")]
        return rc == 0, ("to %s: " % cand) + " | ".join(said)[-300:]

    def teardown(self):
        for n in self.nodes:
            p = self.patroni.get(n)
            if p is not None and p.poll() is None:
                p.terminate()   # Patroni stops its PostgreSQL (fast shutdown)
        for n in self.nodes:
            p = self.patroni.get(n)
            if p is not None:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    kill_group(p.pid)
                    p.wait()
        for n in self.nodes:
            pm = postmaster_pid(self.data_dir(n))
            if pm:
                kill_group(pm)
                wait_dead([pm], 10)
        for n in self.nodes:
            p = self.etcd.get(n)
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    kill_group(p.pid)
                    p.wait()
        left = [p for p in self.seen_pids if alive(p) and self.dir in cmdline(p)]
        for p in left:
            kill_group(p)
        wait_dead(left, 10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def settings(self):
        return ("Patroni 3.0.2: ttl %d, loop_wait %d, retry_timeout %d, synchronous_mode off, "
                "use_pg_rewind, etcd3 API" % (self.ttl, self.loop_wait, self.retry_timeout))


# ---------------------------------------------------------------- rounds

def wait_until(cond, timeout, what, every=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, detail = cond()
        if ok:
            return True, detail
        if detail != last:
            log("  waiting: %s (%s)" % (what, detail))
            last = detail
        time.sleep(every)
    return cond()


def one_round(cluster, client, fault):
    t_start = time.time()
    ok, detail = wait_until(cluster.healthy, HEALTHY_TIMEOUT_S, "%s healthy" % cluster.label)
    if not ok:
        return {"gap": None, "error": "cluster not healthy within %ds before the fault: %s"
                % (HEALTHY_TIMEOUT_S, detail)}
    ok, _ = wait_until(lambda: (client.flowing_since(time.time()) >= 3.0, "client"), 60,
                       "client writing steadily", every=0.2)
    if not ok:
        return {"gap": None, "error": "the client did not write steadily for 3 s before the fault"}
    # Inject the fault at a random point of the manager's loop: the rounds follow the
    # same routine, so without this the fault would land at about the same phase of a
    # 10 s loop every time (and every round would see the same detection delay).
    dephase = random.uniform(0, cluster.loop_period)
    time.sleep(dephase)
    primary = cluster.primary()
    if primary is None:
        return {"gap": None, "error": "no primary"}
    rec = {"primary": primary, "dephase_s": round(dephase, 3)}
    # The longest pause while the cluster healed before this round (e.g. the previous
    # round's node rejoining): not part of the write gap, recorded to see side effects.
    rec["healing_gap"] = round(client.gap(t_start, time.time())[0], 3)
    if fault == "postmaster-crash":
        pm = postmaster_pid(cluster.data_dir(primary))
        if not pm:
            return {"gap": None, "error": "no live postmaster for %s" % primary}
    t0 = time.time()
    if fault == "node-crash":
        ok, out = cluster.kill_node(primary)
    elif fault == "postmaster-crash":
        os.kill(pm, signal.SIGKILL)
        ok, out = True, "kill -9 postmaster %d" % pm
    elif fault == "agent-restart":
        ok, out = cluster.restart_agent(primary)
    elif fault == BASELINE:
        ok, out = True, "nothing injected"
    else:
        ok, out = cluster.switchover(primary)
    t_cmd = time.time()
    rec.update({"t0": t0, "command_s": round(t_cmd - t0, 3), "command_ok": ok, "command": out})
    if not ok:
        log("  fault command failed: %s" % out)
    # The round ends once the command has returned and the client has written without a
    # pause (an interval over PAUSE_S) for the last RESUMED_QUIET_S seconds, counted from
    # the command's return at the earliest.
    while True:
        now = time.time()
        if now - t_cmd >= RESUMED_QUIET_S and client.flowing_since(now) >= RESUMED_QUIET_S:
            break
        if now - max(client.last_ok(), t0) > NO_RECOVERY_S:
            rec.update({"gap": None, "error": "no write for %ds after the fault" % NO_RECOVERY_S})
            return rec
        time.sleep(0.1)
    t_end = time.time()
    gap, port = client.gap(t0 - 1.0, t_end)
    rec.update({"gap": round(gap, 3), "resumed_on_port": port, "t_end": t_end,
                "sync_wait_cancelled": client.warns_between(t0 - 1.0, t_end)})
    if fault == "node-crash":
        ok2, out2 = cluster.start_node(primary)
        rec["restart"] = out2
    return rec


def run_config(cluster, faults, rounds, logs, results):
    log("== %s: starting (%s)" % (cluster.title, cluster.settings()))
    t = time.time()
    cluster.setup()
    log("   up in %.0f s" % (time.time() - t))
    ok, detail = wait_until(cluster.healthy, HEALTHY_TIMEOUT_S, "%s healthy" % cluster.label)
    if not ok:
        raise RuntimeError("%s did not become healthy: %s" % (cluster.label, detail))
    prim = cluster.primary()
    pg_query(cluster.pg_port(prim), cluster.password,
             "CREATE TABLE IF NOT EXISTS bench_writes (id bigserial PRIMARY KEY, "
             "t timestamptz NOT NULL DEFAULT clock_timestamp(), note text)")
    client = Client(dsn_for(cluster.ports()), cluster.pgpass,
                    os.path.join(logs, "%s-client.log" % cluster.label))
    client.start()
    res = results.setdefault(cluster.label, {"title": cluster.title, "settings": cluster.settings(),
                                             "faults": {}})
    try:
        for fault in faults:
            rows = res["faults"].setdefault(fault, [])
            for i in range(rounds):
                rec = one_round(cluster, client, fault)
                rec["round"] = i + 1
                rows.append(rec)
                if rec.get("gap") is not None:
                    log("   %s %s round %d: write gap %.3f s (primary %s; %s; resumed on port %s)"
                        % (cluster.label, fault, i + 1, rec["gap"], rec["primary"],
                           rec["command"][:160], rec["resumed_on_port"]))
                else:
                    log("   %s %s round %d: FAILED: %s" % (cluster.label, fault, i + 1, rec["error"]))
                    if rec.get("primary") and fault == "node-crash" and "restart" not in rec:
                        cluster.start_node(rec["primary"])
                save(results, logs)
        res["client_ok_writes"] = len(client.oks)
    finally:
        client.stop()
        cluster.teardown()
    log("== %s: done" % cluster.title)


def save(results, logs):
    with open(os.path.join(logs, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


def median(xs):
    return statistics.median(xs) if xs else None


def fmt(x):
    return "–" if x is None else "%.2f" % x


def summarize(results, faults, meta):
    lines = []
    lines.append("Run: %s, %s UTC, %d rounds per fault; total %.1f min" % (
        meta["command"], meta["started"], meta["rounds"], meta["elapsed_s"] / 60))
    lines.append("")
    for label, res in results.items():
        lines.append("%s: %s" % (res["title"], res["settings"]))
    lines.append("")
    pat = [l for l in results if l != "tandem"]
    hdr = "| fault | " + " | ".join("%s median / max (s)" % results[l]["title"] for l in results)
    hdr += "".join(" | Tandem/%s median" % results[l]["title"] for l in pat if "tandem" in results)
    hdr += " | Tandem target (median) |" if "tandem" in results else " |"
    lines.append(hdr)
    lines.append("|" + "---|" * (hdr.count("|") - 1))
    for fault in faults:
        row = "| %s |" % FAULT_TITLES[fault]
        meds = {}
        for l in results:
            rows = results[l]["faults"].get(fault, [])
            gaps = [r["gap"] for r in rows if r.get("gap") is not None]
            failed = len(rows) - len(gaps)
            meds[l] = median(gaps)
            cell = " %s / %s (n=%d%s)" % (fmt(meds[l]), fmt(max(gaps) if gaps else None), len(gaps),
                                         ", %d failed" % failed if failed else "")
            row += cell + " |"
        if "tandem" in results:
            for l in pat:
                if meds.get("tandem") is not None and meds.get(l):
                    row += " %.2f |" % (meds["tandem"] / meds[l])
                else:
                    row += " – |"
            tgt = TARGETS[fault]
            m = meds.get("tandem")
            if tgt is None:
                row += " – |"
            elif m is None:
                row += " <= %.1f s: not measured |" % tgt
            elif m <= tgt:
                row += " <= %.1f s: met |" % tgt
            else:
                row += " <= %.1f s: missed by %.2f s |" % (tgt, m - tgt)
        lines.append(row)
    lines.append("")
    lines.append("Per-round write gaps (s):")
    lines.append("")
    for l, res in results.items():
        for fault in faults:
            rows = res["faults"].get(fault, [])
            lines.append("- %s, %s: %s" % (res["title"], fault, ", ".join(
                fmt(r["gap"]) if r.get("gap") is not None else "FAILED (%s)" % r.get("error")
                for r in rows)))
    lines.append("")
    lines.append("Longest write pause while the cluster healed before each round (s; not part of the gaps above):")
    lines.append("")
    for l, res in results.items():
        for fault in faults:
            rows = res["faults"].get(fault, [])
            lines.append("- %s, %s: %s" % (res["title"], fault, ", ".join(
                fmt(r.get("healing_gap")) for r in rows)))
    cancelled = sum(r.get("sync_wait_cancelled", 0) for res in results.values()
                    for rows in res["faults"].values() for r in rows)
    lines.append("")
    lines.append("Commits whose wait for synchronous replication was cancelled by statement_timeout "
                 "(not counted as successful writes): %d" % cancelled)
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--configs", default="tandem,patroni-fast,patroni-default")
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--tandem-port", type=int, default=27400)
    ap.add_argument("--patroni-port", type=int, default=28400)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--command", default="bench/failover/run.sh")
    a = ap.parse_args()
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)
    if os.geteuid() != 0:
        print("bench: run as root (PostgreSQL and etcd run as postgres)", file=sys.stderr)
        return 1
    if not os.access(TANDEM, os.X_OK):
        print("bench: %s is missing; run scripts/build.sh" % TANDEM, file=sys.stderr)
        return 1
    faults = [f for f in a.faults.split(",") if f]
    for f in faults:
        if f not in FAULTS and f != BASELINE:
            print("bench: unknown fault %s (%s, or %s)" % (f, ", ".join(FAULTS), BASELINE),
                  file=sys.stderr)
            return 2
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    base = "/tmp/tandem-bench-failover-" + stamp
    logs = os.path.join(base, "logs")
    os.makedirs(logs)
    os.chmod(base, 0o755)
    log("bench: work and logs in %s" % base)
    configs = []
    for c in a.configs.split(","):
        if c == "tandem":
            configs.append(TandemCluster(base, logs, a.tandem_port))
        elif c == "patroni-fast":
            configs.append(PatroniCluster(base, logs, "patroni-fast", "Patroni ttl5/lw1/rt2",
                                          a.patroni_port + 100, 5, 1, 2))
        elif c == "patroni-default":
            configs.append(PatroniCluster(base, logs, "patroni-default", "Patroni defaults",
                                          a.patroni_port, 30, 10, 10))
        else:
            print("bench: unknown config %s" % c, file=sys.stderr)
            return 2
    results = {}
    t_start = time.time()
    rc = 0
    try:
        for c in configs:
            run_config(c, faults, a.rounds, logs, results)
    except Interrupted as e:
        log("bench: interrupted (%s); cleaning up" % e)
        rc = 130
    except Exception as e:
        log("bench: error: %s" % e)
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for c in configs:
            try:
                c.teardown()
            except Exception as e:
                log("bench: teardown of %s: %s" % (c.label, e))
    meta = {"command": a.command, "started": started, "rounds": a.rounds,
            "elapsed_s": time.time() - t_start}
    results["_meta"] = meta
    save(results, logs)
    del results["_meta"]
    text = summarize(results, faults, meta)
    with open(os.path.join(logs, "summary.md"), "w") as f:
        f.write(text)
    os.makedirs(a.out, exist_ok=True)
    for name in ("results.json", "summary.md"):
        shutil.copy(os.path.join(logs, name), os.path.join(a.out, name))
    print()
    print(text)
    log("bench: results in %s (logs in %s)" % (a.out, logs))
    return rc


if __name__ == "__main__":
    sys.exit(main())

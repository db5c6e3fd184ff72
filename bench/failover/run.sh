#!/usr/bin/env bash
# Failover benchmark: the client-visible write gap, Tandem vs Patroni, in one run.
#
#   bench/failover/run.sh [--rounds N]      (default 5; run as root)
#
# Installs what is missing (patroni, python3-psycopg2, etcd-server, etcd-client,
# postgresql-15), builds build/tandem if it is missing, then runs bench.py under a child
# subreaper (reaper.py) so that killed daemons are reaped as under a normal init.
# Ports: Tandem 27410-27435, Patroni defaults 28410-28435, Patroni ttl 5 28510-28535,
# all on 127.0.0.1. Results: bench/failover/results/{summary.md,results.json};
# logs in /tmp/tandem-bench-failover-<time>/logs. Extra options are passed to bench.py
# (--configs tandem,patroni-fast,patroni-default  --faults node-crash,postmaster-crash,switchover).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (PostgreSQL, etcd and Patroni run as the postgres user)" >&2
  exit 1
fi

PACKAGES=(patroni python3-psycopg2 etcd-server etcd-client postgresql-15)
./scripts/install-packages.sh "${PACKAGES[@]}"
# Debian's patroni package enables a systemd unit; nothing here uses it.

if [ ! -x build/tandem ]; then
  ./scripts/setup.sh
  ./scripts/build.sh
fi

ARGS=("$@")
CMD="bench/failover/run.sh${ARGS[*]:+ ${ARGS[*]}}"
BENCH_PID=""
cleanup() {
  # bench.py stops what it started on SIGTERM; wait for it to finish doing so.
  if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
    kill -TERM "$BENCH_PID" 2>/dev/null || true
    wait "$BENCH_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

PY=/usr/bin/python3   # Debian's, with python3-psycopg2 (not a pyenv/venv python)
"$PY" "$HERE/reaper.py" "$PY" "$HERE/bench.py" --command "$CMD" "${ARGS[@]}" &
BENCH_PID=$!
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=""
exit "$rc"

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

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
PACKAGES=(patroni python3-psycopg2 etcd-server etcd-client postgresql-15)
bench_prepare "${PACKAGES[@]}"
ARGS=("$@")
BENCH_CMD="bench/failover/run.sh${ARGS[*]:+ ${ARGS[*]}}"
bench_run_python "$HERE/bench.py" "${ARGS[@]}"

#!/usr/bin/env bash
# Idle cost benchmark: CPU, RSS and threads of an idle 3-node cluster, Tandem vs Patroni.
#
#   bench/idle/run.sh [--strace] [--seconds 60] [--settle 10]     (run as root; ~4 min)
#
# Installs what is missing and builds build/tandem if it is missing (as bench/failover/run.sh
# does), then runs idle.py under bench/failover/reaper.py (a child subreaper, so daemons
# that double-fork are reaped as under a normal init). One run measures Tandem at its
# defaults (sandbox, base port 24400: ports 24410-24436) and Patroni ttl 5 / loop_wait 1 /
# retry_timeout 2 with its etcd (ports 24510-24535), all on 127.0.0.1.
# Results: bench/idle/results/<UTC time>/{summary.md,results.json}; logs in
# /tmp/tandem-bench-idle-<time>/logs. Other options go to idle.py (--configs tandem,patroni-fast
# --tandem-port P --patroni-port P --strace-seconds S --out DIR).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
PACKAGES=(patroni python3-psycopg2 etcd-server etcd-client postgresql-15)
for a in "$@"; do [ "$a" = --strace ] && PACKAGES+=(strace); done
bench_prepare "${PACKAGES[@]}"
ARGS=("$@")
BENCH_CMD="bench/idle/run.sh${ARGS[*]:+ ${ARGS[*]}}"
bench_run_python "$HERE/idle.py" "${ARGS[@]}"

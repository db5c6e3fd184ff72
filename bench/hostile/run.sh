#!/usr/bin/env bash
# Hostile-connections benchmark: health-check latency of a real agent with and without 100 idle
# + 100 slow connections held open on its API port and its health port (issue 19).
#
#   bench/hostile/run.sh [--configs tandem,tandem-httplib,patroni] [--checks 500]   (as root; ~6 min)
#
# Installs what is missing and builds build/tandem if it is missing (bench/lib.sh), then runs
# bench.py under bench/failover/reaper.py: per config a one-node sandbox (base port 25400, the
# next config +100), hostile.py against it, the sandbox stopped; patroni: a 3-node Patroni cluster
# as bench/failover sets it up, measured on its primary's REST port. tandem-httplib is the agent at
# commit 68c92dc (cpp-httplib servers), built once into /tmp/tandem-bench-hostile-68c92dc.
# Results: bench/hostile/results/<UTC time>/{summary.md,results.json}.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
bench_prepare patroni python3-psycopg2 etcd-server etcd-client postgresql-15
ARGS=("$@")
BENCH_CMD="bench/hostile/run.sh${ARGS[*]:+ ${ARGS[*]}}"
bench_run_python "$HERE/bench.py" "${ARGS[@]}"

# Shared by the benchmarks' run.sh scripts (source it, then call):
#   bench_prepare PACKAGE...        as root: install what is missing, build build/tandem if missing
#   bench_run_python SCRIPT ARG...  run SCRIPT under bench/failover/reaper.py (a child
#                                   subreaper: PID 1 here does not reap), stop it cleanly on
#                                   Ctrl-C/TERM (it stops what it started), exit with its code
# The caller sets BENCH_CMD (the command line recorded in the results) and is in the
# repository root.

bench_prepare() {
  if [ "$(id -u)" != 0 ]; then
    echo "run.sh: run as root (PostgreSQL, etcd and Patroni run as the postgres user)" >&2
    exit 1
  fi
  ./scripts/install-packages.sh "$@"
  # Debian's patroni package enables a systemd unit; nothing here uses it.
  if [ ! -x build/tandem ]; then
    ./scripts/setup.sh
    ./scripts/build.sh
  fi
}

bench_run_python() {
  local script="$1"
  shift
  BENCH_PID=""
  bench_cleanup() {
    # The script stops what it started on SIGTERM; wait for it to finish doing so.
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
      kill -TERM "$BENCH_PID" 2>/dev/null || true
      wait "$BENCH_PID" 2>/dev/null || true
    fi
  }
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM HUP
  local py=/usr/bin/python3   # Debian's, with python3-psycopg2 (not a pyenv/venv python)
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  "$py" "$here/failover/reaper.py" "$py" "$script" --command "$BENCH_CMD" "$@" &
  BENCH_PID=$!
  local rc=0
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  exit "$rc"
}

#!/usr/bin/env bash
# Proxy benchmark: pgbench against the primary directly, through Tandem's read-write
# proxy port (of a replica's node and of the primary's node) and through HAProxy, in one run.
#
#   bench/proxy/run.sh [--duration S] [--quick]      (run as root, from anywhere)
#
# --duration S   seconds per measurement (pgbench -T; default 10)
# --quick        3 s per measurement (for development; not for published figures)
#
# Installs what is missing (postgresql-15, postgresql-contrib, haproxy, curl, jq),
# builds build/tandem if it is missing, starts a 3-node sandbox on 127.0.0.1 (base port
# 30400: node i has PostgreSQL on 30400+10i, proxy read-write 30400+10i+2) and HAProxy
# (TCP mode, port 30490, stats 30492), initializes pgbench at scale 10 once through the
# primary directly, then measures every workload on the four targets one after another,
# 3 times each:
#   workloads: select-only (-S) and TPC-B-like at 1, 16, 64 clients (-j 2), and
#              connect-per-transaction (-C, select-only, 16 clients)
#   targets:   direct (the primary's PostgreSQL), tandem-replica-node (the read-write
#              proxy port of a node that is not the primary), tandem-primary-node (that of
#              the primary's node), haproxy
# tps is pgbench's (without initial connection time); p50/p99 come from pgbench's
# per-transaction logs (-l, latency column in microseconds). Each cell reports the median
# of the 3 runs. Results: bench/proxy/results/{summary.md,runs.csv,proxy-log.txt};
# raw logs in /tmp/tandem-bench-proxy-<time>/ (kept).
# Stops only what it started, by pid (the sandbox with `tandem sandbox down`).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

DURATION=10
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="${2:?--duration needs seconds}"; shift 2 ;;
    --duration=*) DURATION="${1#--duration=}"; shift ;;
    --quick) DURATION=3; shift ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$DURATION" in ''|*[!0-9]*) echo "run.sh: --duration takes whole seconds" >&2; exit 2 ;; esac
[ "$DURATION" -ge 1 ] || { echo "run.sh: --duration must be at least 1" >&2; exit 2; }

if [ "$(id -u)" != 0 ]; then
  echo "run.sh: run as root (PostgreSQL and etcd run as the postgres user)" >&2
  exit 1
fi

PACKAGES=(postgresql-15 postgresql-contrib haproxy curl jq)
./scripts/install-packages.sh "${PACKAGES[@]}"
# Debian's haproxy package enables a systemd unit with its own config; nothing here uses it.

if [ ! -x build/tandem ]; then
  ./scripts/setup.sh
  ./scripts/build.sh
fi

TANDEM="$ROOT/build/tandem"
PGBIN=/usr/lib/postgresql/15/bin
PGBENCH="$PGBIN/pgbench"
PSQL="$PGBIN/psql"
BASE_PORT=30400
HAPROXY_PORT=30490
HAPROXY_STATS_PORT=30492
REPS=3
SCALE=10
CMD="bench/proxy/run.sh${ARGS[*]:+ ${ARGS[*]}}"

WORK="/tmp/tandem-bench-proxy-$(date -u +%Y%m%dT%H%M%SZ)"
SANDBOX="$WORK/sandbox"
LOGS="$WORK/pgbench"
RESULTS="$HERE/results"
mkdir -p "$WORK" "$LOGS"
chmod 755 "$WORK"
RUNS_CSV="$WORK/runs.csv"
SANDBOX_UP=0
HAPROXY_PID=""
T_START=$(date +%s)
LOAD0=$(cut -d" " -f1-3 /proc/loadavg)

log() { echo "$(date -u +%H:%M:%S) $*"; }

# The state letter of /proc/PID/stat ("" when there is no such process).
proc_state() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo ""; return; }
  s=${s##*) }
  echo "${s%% *}"
}
alive() {
  local st
  [ -n "${1:-}" ] || return 1
  st=$(proc_state "$1")
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

cleanup() {
  set +e
  if [ -n "$HAPROXY_PID" ] && alive "$HAPROXY_PID" &&
     tr '\0' ' ' <"/proc/$HAPROXY_PID/cmdline" 2>/dev/null | grep -q "$WORK/haproxy.cfg"; then
    kill -TERM "$HAPROXY_PID" 2>/dev/null
    for _ in $(seq 50); do alive "$HAPROXY_PID" || break; sleep 0.1; done
    alive "$HAPROXY_PID" && kill -KILL "$HAPROXY_PID" 2>/dev/null
    wait "$HAPROXY_PID" 2>/dev/null
  fi
  if [ "$SANDBOX_UP" = 1 ] && [ -d "$SANDBOX" ]; then
    for n in node1 node2 node3; do
      [ -f "$SANDBOX/$n/agent.log" ] && cp "$SANDBOX/$n/agent.log" "$WORK/$n-agent.log"
      [ -f "$SANDBOX/$n/log/postgresql.log" ] && cp "$SANDBOX/$n/log/postgresql.log" "$WORK/$n-postgresql.log"
    done
    "$TANDEM" sandbox down --dir "$SANDBOX" --purge >>"$WORK/sandbox.log" 2>&1 ||
      echo "run.sh: tandem sandbox down failed; see $WORK/sandbox.log" >&2
  fi
  echo "run.sh: logs in $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------------ sandbox
log "sandbox: 3 nodes in $SANDBOX, base port $BASE_PORT"
SANDBOX_UP=1
if ! "$TANDEM" sandbox up --nodes 3 --dir "$SANDBOX" --base-port "$BASE_PORT" >"$WORK/sandbox.log" 2>&1; then
  echo "run.sh: tandem sandbox up failed; see $WORK/sandbox.log" >&2
  exit 1
fi
export PGPASSFILE="$SANDBOX/pgpass"
[ -s "$PGPASSFILE" ] || { echo "run.sh: no $PGPASSFILE" >&2; exit 1; }

# The primary and a replica, as node1's agent sees them, confirmed in SQL.
# The sandbox runs TLS by default: its API is HTTPS (reads need no client certificate).
api_status() {
  if [ -f "$SANDBOX/node1/certs/ca.crt" ]; then
    curl -sf --max-time 5 --cacert "$SANDBOX/node1/certs/ca.crt" "https://127.0.0.1:$((BASE_PORT + 11))/v1/status"
  else
    curl -sf --max-time 5 "http://127.0.0.1:$((BASE_PORT + 11))/v1/status"
  fi
}
STATUS=$(api_status)
PRIMARY=$(jq -r '.primary' <<<"$STATUS")
[ -n "$PRIMARY" ] && [ "$PRIMARY" != null ] || { echo "run.sh: no primary in node1's status" >&2; exit 1; }
node_index() { echo "${1#node}"; }
PRIMARY_I=$(node_index "$PRIMARY")
REPLICA=""
for i in 1 2 3; do [ "$i" != "$PRIMARY_I" ] && { REPLICA="node$i"; break; }; done
REPLICA_I=$(node_index "$REPLICA")
PRIMARY_PG=$((BASE_PORT + 10 * PRIMARY_I))
REPLICA_PG=$((BASE_PORT + 10 * REPLICA_I))
q() { "$PSQL" -h 127.0.0.1 -p "$1" -U postgres -d postgres -XAtqc "$2"; }
[ "$(q "$PRIMARY_PG" 'select pg_is_in_recovery()')" = f ] || { echo "run.sh: $PRIMARY is not writable" >&2; exit 1; }
[ "$(q "$REPLICA_PG" 'select pg_is_in_recovery()')" = t ] || { echo "run.sh: $REPLICA is not a replica" >&2; exit 1; }

# target name -> port
declare -A PORT=(
  [direct]=$PRIMARY_PG
  [tandem-replica-node]=$((REPLICA_PG + 2))
  [tandem-primary-node]=$((PRIMARY_PG + 2))
  [haproxy]=$HAPROXY_PORT
)
TARGETS=(direct tandem-replica-node tandem-primary-node haproxy)
for t in tandem-replica-node tandem-primary-node; do
  [ "$(q "${PORT[$t]}" 'select pg_is_in_recovery()')" = f ] ||
    { echo "run.sh: $t (port ${PORT[$t]}) does not reach the primary" >&2; exit 1; }
done
log "primary $PRIMARY (PostgreSQL $PRIMARY_PG); replica node $REPLICA (proxy ${PORT[tandem-replica-node]})"
SYNC=$(q "$PRIMARY_PG" 'show synchronous_standby_names')
MAXCONN=$(q "$PRIMARY_PG" 'show max_connections')
PGVER=$(q "$PRIMARY_PG" 'show server_version')

# ------------------------------------------------------------------ HAProxy
# examples/haproxy.cfg's `primary` listener, pointed at the sandbox's ports, with maxconn
# high enough that 64+ clients never queue in HAProxy.
{
  cat <<EOF
# Generated by bench/proxy/run.sh: examples/haproxy.cfg's primary listener on the sandbox.
global
    maxconn 4000

defaults
    log global
    mode tcp
    retries 2
    timeout client 30m
    timeout connect 4s
    timeout server 30m
    timeout check 5s

listen stats
    mode http
    bind 127.0.0.1:$HAPROXY_STATS_PORT
    stats enable
    stats uri /

listen primary
    bind 127.0.0.1:$HAPROXY_PORT
    maxconn 1000
    option httpchk OPTIONS /primary
    http-check expect status 200
    default-server inter 1s fall 3 rise 2 on-marked-down shutdown-sessions
EOF
  for i in 1 2 3; do
    echo "    server node$i 127.0.0.1:$((BASE_PORT + 10 * i)) maxconn 500 check port $((BASE_PORT + 10 * i + 6))"
  done
} >"$WORK/haproxy.cfg"
haproxy -c -f "$WORK/haproxy.cfg" >"$WORK/haproxy-check.log" 2>&1 ||
  { echo "run.sh: haproxy rejected $WORK/haproxy.cfg:"; cat "$WORK/haproxy-check.log"; exit 1; } >&2
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
HAPROXY_PID=$!
log "haproxy: pid $HAPROXY_PID, port $HAPROXY_PORT, stats http://127.0.0.1:$HAPROXY_STATS_PORT/;csv"
# Wait until the stats show exactly the primary UP in the primary listener.
up=""
for _ in $(seq 60); do
  alive "$HAPROXY_PID" || { echo "run.sh: haproxy exited; see $WORK/haproxy.log" >&2; exit 1; }
  up=$(curl -sf --max-time 2 "http://127.0.0.1:$HAPROXY_STATS_PORT/;csv" |
       awk -F, '$1 == "primary" && $2 != "FRONTEND" && $2 != "BACKEND" && $18 == "UP" {print $2}' |
       tr '\n' ' ' || true)
  [ "$up" = "$PRIMARY " ] && break
  sleep 0.5
done
[ "$up" = "$PRIMARY " ] || { echo "run.sh: haproxy never showed exactly $PRIMARY up (saw: '${up}')" >&2; exit 1; }
[ "$(q "$HAPROXY_PORT" 'select pg_is_in_recovery()')" = f ] || { echo "run.sh: haproxy does not reach the primary" >&2; exit 1; }
log "haproxy: exactly $PRIMARY up"

# ------------------------------------------------------------------ pgbench
log "pgbench -i -s $SCALE through the primary directly"
"$PGBENCH" -i -s "$SCALE" -q -h 127.0.0.1 -p "$PRIMARY_PG" -U postgres postgres >"$WORK/pgbench-init.log" 2>&1 ||
  { echo "run.sh: pgbench -i failed:"; cat "$WORK/pgbench-init.log"; exit 1; } >&2

# workload name -> pgbench options
WORKLOADS=(select-c1 select-c16 select-c64 tpcb-c1 tpcb-c16 tpcb-c64 connect-select-c16)
declare -A WOPTS=(
  [select-c1]="-S -c 1"
  [select-c16]="-S -c 16"
  [select-c64]="-S -c 64"
  [tpcb-c1]="-c 1"
  [tpcb-c16]="-c 16"
  [tpcb-c64]="-c 64"
  [connect-select-c16]="-C -S -c 16"
)
declare -A WDESC=(
  [select-c1]="select-only, 1 client"
  [select-c16]="select-only, 16 clients"
  [select-c64]="select-only, 64 clients"
  [tpcb-c1]="TPC-B-like, 1 client"
  [tpcb-c16]="TPC-B-like, 16 clients"
  [tpcb-c64]="TPC-B-like, 64 clients"
  [connect-select-c16]="connect per transaction (-C), select-only, 16 clients"
)

# Nearest-rank percentiles (p50, p99) of the latency column (3rd, microseconds) of
# pgbench per-transaction log files; prints "p50_ms p99_ms count".
percentiles() {
  cat "$@" | awk '{print $3}' | sort -n | awk '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "nan nan 0"; exit }
      i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++; if (i50 < 1) i50 = 1
      i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++; if (i99 < 1) i99 = 1
      printf "%.3f %.3f %d\n", v[i50] / 1000, v[i99] / 1000, NR
    }'
}

echo "workload,target,rep,tps,lat_avg_ms,p50_ms,p99_ms,transactions,failed,conn_ms,rc" >"$RUNS_CSV"
FAILURES=0
run_one() {  # workload target rep
  local w=$1 t=$2 r=$3 port=${PORT[$2]} prefix="$LOGS/$1.$2.$3" out rc=0
  out="$prefix.out"
  # shellcheck disable=SC2086
  timeout -k 10 $((DURATION + 120)) "$PGBENCH" ${WOPTS[$w]} -j 2 -T "$DURATION" \
    -l --log-prefix "$prefix.txlog" -h 127.0.0.1 -p "$port" -U postgres postgres >"$out" 2>&1 || rc=$?
  local tps lat failed p50 p99 n conn
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -1)
  # "initial connection time" (-C: "average connection time", per connection)
  conn=$(sed -n 's/^.*connection time = \([0-9.]*\) ms.*/\1/p' "$out" | head -1)
  read -r p50 p99 n < <(percentiles "$prefix".txlog.* 2>/dev/null || echo "nan nan 0")
  rm -f "$prefix".txlog.*   # large; the percentiles are kept in runs.csv
  if [ "$rc" != 0 ] || [ -z "$tps" ] || grep -qiE 'error|abort|fatal' "$out"; then
    FAILURES=$((FAILURES + 1))
    log "  $w $t #$r: PROBLEM (rc $rc); pgbench said:"
    sed 's/^/      /' "$out" | tail -15
  fi
  echo "$w,$t,$r,${tps:-nan},${lat:-nan},$p50,$p99,$n,${failed:-0},${conn:-nan},$rc" >>"$RUNS_CSV"
  log "  $w $t #$r: tps ${tps:-?}  avg ${lat:-?} ms  p50 $p50 ms  p99 $p99 ms  (rc $rc)"
}

TOTAL=$(( ${#WORKLOADS[@]} * ${#TARGETS[@]} * REPS ))
log "measuring: ${#WORKLOADS[@]} workloads x ${#TARGETS[@]} targets x $REPS runs of ${DURATION} s ($TOTAL runs)"
# CPU time (utime+stime, s) of a live process and its threads; "nan" when it is gone.
cpu_s() {
  local s
  alive "$1" || { echo nan; return; }
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo nan; return; }
  s=${s##*) }
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }' <<<"$s"
}
SB_JSON=$("$TANDEM" sandbox status --dir "$SANDBOX" --json)
AGENT_P=$(jq -r --arg n "$PRIMARY" '.[] | select(.name == $n) | .pids.agent' <<<"$SB_JSON")
AGENT_R=$(jq -r --arg n "$REPLICA" '.[] | select(.name == $n) | .pids.agent' <<<"$SB_JSON")
alive "$AGENT_P" && alive "$AGENT_R" || { echo "run.sh: agent pids $AGENT_P/$AGENT_R not alive" >&2; exit 1; }
CPU0_P=$(cpu_s "$AGENT_P"); CPU0_R=$(cpu_s "$AGENT_R"); CPU0_H=$(cpu_s "$HAPROXY_PID")
MEASURE_START=$(date -u +%H:%M)
for w in "${WORKLOADS[@]}"; do
  log "workload $w: pgbench ${WOPTS[$w]} -j 2 -T $DURATION"
  for r in $(seq "$REPS"); do
    for t in "${TARGETS[@]}"; do
      alive "$HAPROXY_PID" || { echo "run.sh: haproxy (pid $HAPROXY_PID) died" >&2; exit 1; }
      run_one "$w" "$t" "$r"
    done
  done
done
MEASURE_END=$(date -u +%H:%M)
cpu_used() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan") print "nan"; else printf "%.1f", b - a }'; }
CPU_P=$(cpu_used "$CPU0_P" "$(cpu_s "$AGENT_P")")
CPU_R=$(cpu_used "$CPU0_R" "$(cpu_s "$AGENT_R")")
CPU_H=$(cpu_used "$CPU0_H" "$(cpu_s "$HAPROXY_PID")")

# The primary did not change during the run (a failover would spoil the comparison).
STATUS2=$(api_status || true)
PRIMARY2=$(jq -r '.primary' <<<"$STATUS2" 2>/dev/null || echo "?")
HISTORY_N=$(jq -r '.history | length' <<<"$STATUS2" 2>/dev/null || echo "?")

# ------------------------------------------------------------------ summary
T_END=$(date +%s)
mkdir -p "$RESULTS"
cp "$RUNS_CSV" "$RESULTS/runs.csv"
: >"$RESULTS/proxy-log.txt"
for n in node1 node2 node3; do
  grep 'module=proxy' "$SANDBOX/$n/agent.log" 2>/dev/null | sed "s/^/$n: /" >>"$RESULTS/proxy-log.txt" || true
done
PROXY_LINES=$(wc -l <"$RESULTS/proxy-log.txt")
PROXY_WARN=$(grep -cE 'level=(warn|error)' "$RESULTS/proxy-log.txt" || true)

median3() { printf '%s\n' "$@" | awk '$1 != "" && $1 != "nan"' | sort -g | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }
cell() {  # workload target column -> median
  local col=$3
  median3 $(awk -F, -v w="$1" -v t="$2" -v c="$col" '$1 == w && $2 == t {print $c}' "$RUNS_CSV")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || b == "nan" || b == 0) print "nan"; else printf "%.3f", a / b }'; }
fmt_tps() { awk -v x="$1" 'BEGIN { if (x == "nan") print "nan"; else printf "%.0f", x }'; }
verdict_direct() {  # ratio tandem/direct vs 0.95
  awk -v r="$1" 'BEGIN { if (r == "nan") print "n/a";
    else if (r >= 0.95) printf "met (%.1f%%)", r * 100;
    else printf "**missed (%.1f%%, %.1f points short)**", r * 100, (0.95 - r) * 100 }'
}
verdict_haproxy() {  # ratio tandem/haproxy vs 1.00
  awk -v r="$1" 'BEGIN { if (r == "nan") print "n/a";
    else if (r >= 1.0) printf "met (%+.1f%%)", (r - 1) * 100;
    else printf "**missed (%+.1f%%)**", (r - 1) * 100 }'
}

S="$RESULTS/summary.md"
{
  echo "# Proxy benchmark: one run"
  echo
  echo "Command: \`$CMD\` (as root), $(date -u -d "@$T_START" '+%Y-%m-%d %H:%M')–$(date -u -d "@$T_END" '+%H:%M') UTC, total $(awk -v s=$((T_END - T_START)) 'BEGIN{printf "%.1f", s/60}') min (measurements $MEASURE_START–$MEASURE_END UTC)."
  echo "Machine: $(nproc) cores, load average at the start $LOAD0, at the end $(cut -d" " -f1-3 /proc/loadavg)."
  echo "PostgreSQL $PGVER, pgbench $("$PGBENCH" --version | awk '{print $3}'), $(haproxy -v | head -1 | awk '{print "HAProxy " $3}'), scale $SCALE, -T $DURATION, -j 2, $REPS runs per cell (median)."
  echo "Primary $PRIMARY (PostgreSQL 127.0.0.1:$PRIMARY_PG, max_connections $MAXCONN, synchronous_standby_names '$SYNC');"
  echo "tandem-replica-node = $REPLICA's read-write proxy port ${PORT[tandem-replica-node]}, tandem-primary-node = $PRIMARY's ${PORT[tandem-primary-node]}, haproxy = 127.0.0.1:$HAPROXY_PORT."
  echo "Primary after the run: $PRIMARY2 (leader changes in history: $HISTORY_N, 1 = the initial election). Runs with a problem: $FAILURES. Proxy log lines: $PROXY_LINES ($PROXY_WARN warn/error)."
  echo
  echo "CPU used during the measurements: $PRIMARY's agent (proxy of tandem-primary-node, plus its HA loop) ${CPU_P} s, $REPLICA's agent (tandem-replica-node) ${CPU_R} s, HAProxy ${CPU_H} s."
  echo
  echo "Targets (issue 4): Tandem >= 95% of direct throughput, and not behind HAProxy (medians of $REPS runs)."
  echo
  echo "| workload | target | tps | tps runs | avg ms | p50 ms | p99 ms | / direct | / HAProxy | >= 95% of direct | not behind HAProxy |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  for w in "${WORKLOADS[@]}"; do
    d=$(cell "$w" direct 4); h=$(cell "$w" haproxy 4)
    for t in "${TARGETS[@]}"; do
      m=$(cell "$w" "$t" 4)
      runs=$(awk -F, -v w="$w" -v t="$t" '$1 == w && $2 == t {printf "%s%.0f", sep, $4; sep=", "}' "$RUNS_CSV")
      rd=$(ratio "$m" "$d"); rh=$(ratio "$m" "$h"); vd="—"; vh="—"
      case "$t" in tandem-*) vd=$(verdict_direct "$rd"); vh=$(verdict_haproxy "$rh") ;; esac
      echo "| ${WDESC[$w]} | $t | $(fmt_tps "$m") | $runs | $(cell "$w" "$t" 5) | $(cell "$w" "$t" 6) | $(cell "$w" "$t" 7) | $rd | $rh | $vd | $vh |"
    done
  done
  echo
  echo "-C rows: pgbench's average connection time per connection (ms, median of runs): $(for t in "${TARGETS[@]}"; do printf '%s %s; ' "$t" "$(cell connect-select-c16 "$t" 10)"; done)"
} >"$S"
cat "$S"
log "results: $S, $RESULTS/runs.csv, $RESULTS/proxy-log.txt"
[ "$FAILURES" = 0 ] || { echo "run.sh: $FAILURES runs had a problem (see above and $LOGS)" >&2; exit 3; }

#!/usr/bin/env bash
# What one GET /metrics costs the agent in CPU: N scrapes over HTTPS (a new
# TLS handshake each: the API closes every connection) of the primary of a
# 3-node sandbox, the agent's utime+stime (/proc/PID/stat) before and after,
# less what the same agent used idle over the same wall time just before.
# Run as root from the repository (the sandbox runs PostgreSQL as postgres):
#   N=1000 bench/metrics/scrape_cost.sh
# Environment: N (scrapes, 1000), NODES (3), BASE_PORT (28600), TANDEM (build/tandem).
set -euo pipefail
cd "$(dirname "$0")/../.."
"./scripts/install-packages.sh" curl bc >/dev/null
N="${N:-1000}"
NODES="${NODES:-3}"
BASE="${BASE_PORT:-28600}"
BIN="${TANDEM:-build/tandem}"
DIR="$(mktemp -d /tmp/tandem-scrape-XXXXXX)"
chmod 755 "$DIR"
cleanup() {
  "$BIN" sandbox down --dir "$DIR/sb" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$BIN" sandbox up --nodes "$NODES" --dir "$DIR/sb" --base-port "$BASE" >/dev/null
PID="$(cat "$DIR/sb/node1/agent.pid")"
URL="https://127.0.0.1:$((BASE + 11))/metrics"
HZ="$(getconf CLK_TCK)"
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
now() { date +%s.%N; }
scrape() { curl -sf --cacert "$DIR/sb/ca/ca.crt" -o /dev/null "$URL"; }
scrape  # one to warm the connection pool the query uses
# Agent CPU ticks over N requests of $1, less the same wall time idle; sets PER_MS.
measure() {
  local url="$1" t0 t1 w0 w1 wall i0 i1
  t0="$(ticks)"; w0="$(now)"
  for _ in $(seq "$N"); do curl -sf --cacert "$DIR/sb/ca/ca.crt" -o /dev/null "$url"; done
  t1="$(ticks)"; w1="$(now)"
  wall="$(echo "$w1 - $w0" | bc -l)"
  i0="$(ticks)"; sleep "$wall"; i1="$(ticks)"
  PER_MS="$(echo "scale=3; (($t1 - $t0) - ($i1 - $i0)) * 1000 / $HZ / $N" | bc -l)"
  echo "$url: $N requests in ${wall}s; agent CPU $((t1 - t0)) ticks, idle over the same time $((i1 - i0)) ticks (1 tick = $((1000 / HZ)) ms): ${PER_MS} ms each"
}
measure "$URL"
metrics="$PER_MS"
# The same handshake and request for a route that does nothing (GET /liveness).
measure "https://127.0.0.1:$((BASE + 11))/liveness"
size="$(curl -sf --cacert "$DIR/sb/ca/ca.crt" "$URL" | wc -c)"
echo "per scrape: ${metrics} ms of agent CPU (TLS connection included; /liveness on the same connection path: ${PER_MS} ms); $size bytes"

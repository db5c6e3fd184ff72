#!/usr/bin/env bash
# What an open dashboard costs the agent that serves it, at idle: a 3-node
# sandbox (TLS) on ports 31700+, then RUNS pairs of 60-second windows on the
# agent of node1: one with no browser, one with headless Chromium showing
# https://127.0.0.1:<api>/ui/ (polling every 2 s). CPU is utime+stime from
# /proc/PID/stat (clock ticks) over each window; the result is each pair's
# difference and the median, in % of one core. Run as root, under the
# integration lock: flock /work/.integ.lock bench/ui/dashboard_cost.sh
# Env: TANDEM_BIN (default build/tandem), RUNS (3), WINDOW (60 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
TANDEM="${TANDEM_BIN:-$PWD/build/tandem}"
RUNS="${RUNS:-3}"
WINDOW="${WINDOW:-60}"
BASE=31700
DIR="$(mktemp -d /tmp/tandem-ui-bench-XXXXXX)"
chmod 755 "$DIR"
BROWSER_PID=""
cleanup() {
  [ -n "$BROWSER_PID" ] && kill "$BROWSER_PID" 2>/dev/null || true
  "$TANDEM" sandbox down --dir "$DIR/sb" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT

"$TANDEM" sandbox up --nodes 3 --dir "$DIR/sb" --base-port "$BASE" >/dev/null
PID="$("$TANDEM" sandbox status --dir "$DIR/sb" --json |
  python3 -c 'import json,sys; print([n for n in json.load(sys.stdin) if n["name"]=="node1"][0]["pids"]["agent"])')"
API=$((BASE + 11))
HZ="$(getconf CLK_TCK)"
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
window() {  # CPU of the agent over WINDOW seconds, in % of one core
  local a b
  a="$(ticks)"; sleep "$WINDOW"; b="$(ticks)"
  python3 -c "print('%.3f' % (100.0 * ($b - $a) / $HZ / $WINDOW))"
}
sleep 20  # let the new cluster settle (first backups, registrations)
echo "agent pid $PID (node1), API $API, $RUNS pairs of ${WINDOW}s windows"
diffs=()
for i in $(seq "$RUNS"); do
  closed="$(window)"
  /usr/bin/python3 - "$API" "$DIR" <<'PY' &
import signal, sys, time
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for f in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--user-data-dir=" + sys.argv[2] + "/chromium"):
    o.add_argument(f)
o.accept_insecure_certs = True
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
signal.signal(signal.SIGTERM, lambda *_: (d.quit(), sys.exit(0)))
d.get("https://127.0.0.1:%s/ui/" % sys.argv[1])
while True:
    time.sleep(1)
PY
  BROWSER_PID=$!
  sleep 8  # the page loaded and polling
  open_="$(window)"
  kill "$BROWSER_PID" 2>/dev/null || true
  wait "$BROWSER_PID" 2>/dev/null || true
  BROWSER_PID=""
  sleep 3
  d="$(python3 -c "print('%.3f' % ($open_ - $closed))")"
  diffs+=("$d")
  echo "pair $i: closed ${closed} %, open ${open_} %, difference ${d} % of a core"
done
printf '%s\n' "${diffs[@]}" | sort -g | python3 -c 'import sys,statistics; v=[float(x) for x in sys.stdin]; print("median difference: %.3f %% of a core (%s)" % (statistics.median(v), ", ".join("%.3f" % x for x in v)))'

#!/usr/bin/env bash
# The package test (issue #17, items 1-3): builds the .deb (scripts/package.sh),
# runs lintian, installs it with dpkg -i, checks the installed files, the unit
# (systemd-analyze verify), --version, --help, the man pages and the bash
# completion, brings up a 1-node sandbox with the INSTALLED binary, and the
# bad input that fits: the unit's command without its config, a second agent
# for one node, removing the package on the primary (refused), an upgrade over
# a hand-edited /etc/tandem/tandem.yaml. Then
# dpkg --purge. A trap undoes everything on failure too.
#
# Needs root (dpkg -i, the sandbox runs PostgreSQL as postgres). Ports
# 28800-28899 (TANDEM_PACKAGE_BASE_PORT moves them). There is no systemd as
# PID 1 on the test machines: the unit is verified offline and its failure
# modes are checked through the command it runs (what the journal and
# `systemctl status` would show is that command's stderr and exit status).
#
# Refuses to run when a tandem package is already installed (it would purge
# it); PACKAGE_DEB=FILE tests a .deb built earlier instead of building one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BASE_PORT="${TANDEM_PACKAGE_BASE_PORT:-28800}"
START=$(date +%s)
WORK=$(mktemp -d /tmp/tandem-package-test.XXXXXX)
chmod 755 "$WORK"  # the sandbox's PostgreSQL runs as postgres and must reach it
SANDBOX="$WORK/sandbox"
INSTALLED=0
SECOND_AGENT=""
LISTENERS=()
FAILS=0

step() { echo "-- package: $* ($(($(date +%s) - START)) s)"; }
ok() { echo "   ok: $*"; }
fail() {
  echo "   FAIL: $*" >&2
  FAILS=$((FAILS + 1))
}
# expect_contains TEXT NEEDLE WHAT
expect_contains() {
  if [[ "$1" == *"$2"* ]]; then ok "$3"; else fail "$3: '$2' not in: $1"; fi
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$SECOND_AGENT" ] && kill -0 "$SECOND_AGENT" 2>/dev/null; then
    kill "$SECOND_AGENT"
    wait "$SECOND_AGENT" 2>/dev/null
  fi
  for p in "${LISTENERS[@]}"; do kill "$p" 2>/dev/null; done
  if [ -d "$SANDBOX" ] && [ -x /usr/bin/tandem ]; then
    /usr/bin/tandem sandbox down --dir "$SANDBOX" --purge >/dev/null 2>&1
  fi
  if [ "$INSTALLED" = 1 ]; then dpkg --purge tandem >/dev/null 2>&1; fi
  rm -rf "$WORK"
  echo "-- package: done in $(($(date +%s) - START)) s"
  exit "$rc"
}
trap cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "tests/package/run.sh needs root (dpkg -i)" >&2; exit 2; }
if dpkg-query -W -f='${Status}' tandem 2>/dev/null | grep -q "ok installed"; then
  echo "a tandem package is installed already; this test would purge it. Remove it first" \
       "(dpkg --purge tandem) or run the test on another machine" >&2
  exit 2
fi

# ---- 1. build and lint
if [ -n "${PACKAGE_DEB:-}" ]; then
  DEB="$PACKAGE_DEB"
  step "testing $DEB (PACKAGE_DEB)"
else
  step "building the package (scripts/package.sh)"
  PACKAGE_OUT="$WORK/out" ./scripts/package.sh >"$WORK/package.log" 2>&1 ||
    { tail -40 "$WORK/package.log"; echo "scripts/package.sh failed" >&2; exit 1; }
  DEB=$(sed -n 's/^package: //p' "$WORK/package.log")
fi
VERSION=$(dpkg-deb -f "$DEB" Version)
step "lintian $DEB"
if lintian --fail-on error,warning "$DEB" >"$WORK/lintian.log" 2>&1; then
  ok "lintian: no errors and no warnings (none needs an override)"
else
  cat "$WORK/lintian.log"
  fail "lintian"
fi

# ---- 2. install
step "dpkg -i (dependencies through scripts/install-packages.sh first)"
# shellcheck disable=SC2046
./scripts/install-packages.sh $(dpkg-deb -f "$DEB" Depends | tr ',' '\n' |
  sed -n 's/^ *\([a-z0-9.+-]*\).*/\1/p' | grep -v '^lib') >/dev/null
INSTALLED=1
dpkg -i "$DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; exit 1; }
ok "installed tandem $VERSION"

step "installed files"
for f in /usr/bin/tandem /etc/tandem/tandem.yaml /lib/systemd/system/tandem.service \
         /usr/share/man/man1/tandem.1.gz /usr/share/man/man1/tandem-agent.1.gz \
         /usr/share/man/man1/tandem-cluster.1.gz /usr/share/man/man1/tandem-sandbox.1.gz \
         /usr/share/man/man1/tandem-pki.1.gz /usr/share/man/man5/tandem.yaml.5.gz \
         /usr/share/bash-completion/completions/tandem /usr/share/doc/tandem/copyright \
         /usr/share/doc/tandem/README.md.gz; do
  if [ -e "$f" ]; then ok "$f"; else fail "$f is missing"; fi
done
if [ -d /var/lib/tandem ] && [ "$(stat -c %U:%a /var/lib/tandem)" = "root:755" ]; then
  ok "/var/lib/tandem (root, 0755: the agent runs as root)"
else
  fail "/var/lib/tandem: $(stat -c %U:%a /var/lib/tandem 2>&1)"
fi
expect_contains "$(dpkg-query -W -f='${Conffiles}' tandem)" /etc/tandem/tandem.yaml \
  "/etc/tandem/tandem.yaml is a conffile"
outside=$(dpkg -L tandem | grep -Ev '^/(\.|usr/bin|usr/share/(man|doc|bash-completion)|etc/tandem|lib/systemd/system|var/lib/tandem|usr|usr/share|etc|lib|lib/systemd|var|var/lib)(/|$)' || true)
if [ -z "$outside" ]; then ok "no file outside the expected places"; else fail "unexpected: $outside"; fi

# ---- 3. the unit
step "systemd-analyze verify tandem.service (offline: PID 1 here is $(ps -p 1 -o comm=))"
verify=$(systemd-analyze verify /lib/systemd/system/tandem.service 2>&1 || true)
if [ -z "$verify" ]; then ok "systemd-analyze verify: clean"; else fail "systemd-analyze verify: $verify"; fi
unit=$(cat /lib/systemd/system/tandem.service)
for want in "Type=notify" "ExecStart=/usr/bin/tandem agent -c /etc/tandem/tandem.yaml" \
            "WatchdogSec=" "Restart=on-failure" "RestartPreventExitStatus=2" "KillMode=process" \
            "LimitNOFILE=" "NoNewPrivileges=yes" "CapabilityBoundingSet=CAP_SETUID"; do
  expect_contains "$unit" "$want" "unit has $want"
done

# ---- 4. the binary, the man pages, the completion
step "tandem --version, --help, man pages, completion"
v=$(/usr/bin/tandem --version)
expect_contains "$v" "tandem ${VERSION%%-*} (commit " "--version: $v"
if [[ "$v" == *"(commit unknown)"* ]] && git rev-parse --git-dir >/dev/null 2>&1; then
  fail "--version names no commit although the package was built from git"
fi
for args in "" "agent" "cluster" "cluster switchover" "sandbox" "pki" "pki issue"; do
  # shellcheck disable=SC2086
  if out=$(/usr/bin/tandem $args --help 2>&1) && [[ "$out" == *Usage* || "$out" == *tandem* ]]; then
    ok "tandem $args --help"
  else
    fail "tandem $args --help: $out"
  fi
done
for page in tandem tandem-agent tandem-cluster tandem-sandbox tandem-pki tandem.yaml; do
  warnings=$(MANWIDTH=80 man --warnings "$page" 2>&1 >"$WORK/$page.raw" || echo "exit $?")
  # One line, single spaces, unhyphenated: what the checks below search.
  MANWIDTH=1000 man "$page" 2>/dev/null | tr -s '[:space:]' ' ' >"$WORK/$page.txt"
  if [ -n "$warnings" ]; then fail "man $page: $warnings"; continue; fi
  if grep -q "SEE ALSO" "$WORK/$page.raw"; then ok "man $page (no warnings)"; else fail "man $page is empty"; fi
done
expect_contains "$(cat "$WORK/tandem-cluster.txt")" "switchover" "tandem-cluster(1) has switchover"
expect_contains "$(cat "$WORK/tandem-agent.txt")" "Reloading the agent is not a failover" \
  "tandem-agent(1) says what a reload does"
expect_contains "$(cat "$WORK/tandem-agent.txt")" "To stop the node itself, run tandem agent stop" \
  "tandem-agent(1) says how to stop the node"
expect_contains "$(cat "$WORK/tandem.yaml.txt")" "dcs.loop_interval" "tandem.yaml(5) lists the keys"
complete_words() {
  # shellcheck disable=SC1091
  bash -c 'source /usr/share/bash-completion/completions/tandem
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tandem; echo "${COMPREPLY[*]}"' _ "$@"
}
expect_contains "$(complete_words tandem cl)" "cluster" "completion: a command"
expect_contains "$(complete_words tandem cluster switchover --)" "--to --at --wait --cancel" \
  "completion: a command's flags"
expect_contains "$(complete_words tandem sandbox up --)" "--base-port" "completion: sandbox flags"

# ---- 5. the example config, and the unit's command without it
step "the example config, and the unit started without a config"
out=$(/usr/bin/tandem agent -c /etc/tandem/tandem.yaml --check-config 2>&1) &&
  ok "the example loads: $out" || fail "the example does not load: $out"
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/tandem.service)
mv /etc/tandem/tandem.yaml "$WORK/tandem.yaml.saved"
set +e
# shellcheck disable=SC2086
out=$(timeout 20 $exec_start 2>&1)
rc=$?
set -e
mv "$WORK/tandem.yaml.saved" /etc/tandem/tandem.yaml
if [ "$rc" = 2 ]; then ok "the unit's command exits 2 (RestartPreventExitStatus: no restart loop)"; else fail "exit $rc"; fi
expect_contains "$out" "cannot read the config file /etc/tandem/tandem.yaml" \
  "its error (the journal's and systemctl status's last line) names the file"

# ---- 6. a sandbox with the installed binary
step "1-node sandbox with /usr/bin/tandem (ports $BASE_PORT+), its agent under a notify socket"
# The agent inherits $NOTIFY_SOCKET and $WATCHDOG_USEC (2 s) as under systemd: a
# listener records what it sends (READY, STATUS with the role, WATCHDOG).
NOTIFY_SOCK="$WORK/notify.sock"
python3 - "$NOTIFY_SOCK" "$WORK/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.5)
end = time.time() + 120
with open(sys.argv[2], "w", buffering=1) as f:
    while time.time() < end:
        try:
            f.write(s.recv(4096).decode() + "\n")
        except socket.timeout:
            pass
PY
LISTENER=$!
LISTENERS+=("$LISTENER")
for _ in $(seq 50); do [ -S "$NOTIFY_SOCK" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC=2000000 \
  /usr/bin/tandem sandbox up --dir "$SANDBOX" --nodes 1 --base-port "$BASE_PORT" >"$WORK/sandbox.log" 2>&1 ||
  { cat "$WORK/sandbox.log"; fail "sandbox up"; exit 1; }
# Poll (with a deadline) until the primary's status line and a watchdog ping arrived.
for _ in $(seq 100); do
  grep -q "^STATUS=node1: primary" "$WORK/notify.log" && [ "$(grep -c '^WATCHDOG=1' "$WORK/notify.log")" -ge 2 ] && break
  sleep 0.1
done
kill "$LISTENER" 2>/dev/null || true
wait "$LISTENER" 2>/dev/null || true
notes=$(tr '\n' '|' <"$WORK/notify.log")
expect_contains "$notes" "READY=1" "the agent told systemd it is ready"
expect_contains "$notes" "STATUS=node1: primary" "its status line names its role"
expect_contains "$notes" "WATCHDOG=1|" "it fed the watchdog"
status=$(/usr/bin/tandem -c "$SANDBOX/node1/tandem.yaml" cluster status --json)
expect_contains "$status" '"role": "primary"' "node1 is the primary"
agent_pid=$(/usr/bin/tandem sandbox status --dir "$SANDBOX" --json |
  sed -n 's/^ *"agent": *\([0-9]*\).*/\1/p' | head -1)
if [ -n "$agent_pid" ] && [ "$(readlink "/proc/$agent_pid/exe")" = /usr/bin/tandem ]; then
  ok "the sandbox's agent (pid $agent_pid) runs /usr/bin/tandem"
else
  fail "the sandbox's agent is not the installed binary (pid '$agent_pid')"
fi
if PGPASSFILE="$SANDBOX/pgpass" psql -X -q -h 127.0.0.1 -p $((BASE_PORT + 12)) -U postgres -d postgres \
     -c "create table package_test(x int); insert into package_test values (1)" >/dev/null 2>&1; then
  ok "a write through the proxy's read-write port"
else
  fail "no write through the proxy (port $((BASE_PORT + 12)))"
fi
expect_contains "$(cd "$WORK" && complete_words tandem -c "$SANDBOX/node1/tandem.yaml" cluster remove "")" \
  node1 "completion: node names from the running agent"

step "removing the package on the cluster's primary"
# The node's config pointed at the sandbox's node1 (the primary).
cp /etc/tandem/tandem.yaml "$WORK/tandem.yaml.shipped"
cp "$SANDBOX/node1/tandem.yaml" /etc/tandem/tandem.yaml
set +e
out=$(dpkg -r tandem 2>&1)
rc=$?
set -e
if [ "$rc" != 0 ] && [ -x /usr/bin/tandem ]; then ok "dpkg -r refused, the package is still installed"; else fail "dpkg -r on the primary: exit $rc"; fi
expect_contains "$out" "tandem cluster switchover" "the refusal says how to move the primary"
expect_contains "$out" "TANDEM_REMOVE_FORCE=1" "and how to force it"
cp "$WORK/tandem.yaml.shipped" /etc/tandem/tandem.yaml

step "an upgrade while the node runs: the agent executes the new binary in place"
# The node's config names the sandbox's node1 (the primary); reinstalling is
# an upgrade for dpkg (configure with the previous version): the postinst
# reloads the agent (no systemd here: `tandem agent reload`).
cp "$SANDBOX/node1/tandem.yaml" /etc/tandem/tandem.yaml
pm_before=$(head -1 "$SANDBOX/node1/pgdata/postmaster.pid")
image_before=$(/usr/bin/tandem -c "$SANDBOX/node1/tandem.yaml" cluster status --json |
  sed -n 's/^ *"agent_image": "\(.*\)",*$/\1/p')
dpkg -i "$DEB" >"$WORK/dpkg-upgrade.log" 2>&1 || { cat "$WORK/dpkg-upgrade.log"; fail "dpkg -i over a running node"; }
expect_contains "$(cat "$WORK/dpkg-upgrade.log")" "node node1 reloaded" "the postinst reloaded the agent"
image_after=$(/usr/bin/tandem -c "$SANDBOX/node1/tandem.yaml" cluster status --json |
  sed -n 's/^ *"agent_image": "\(.*\)",*$/\1/p')
if [ -n "$image_before" ] && [ -n "$image_after" ] && [ "$image_before" != "$image_after" ] &&
   [ "$(readlink "/proc/$agent_pid/exe")" = /usr/bin/tandem ]; then
  ok "the same agent pid ($agent_pid) runs the new /usr/bin/tandem (image $image_before -> $image_after)"
else
  fail "the agent did not execute the new binary (image '$image_before' -> '$image_after', exe $(readlink "/proc/$agent_pid/exe"))"
fi
if [ "$(head -1 "$SANDBOX/node1/pgdata/postmaster.pid")" = "$pm_before" ]; then
  ok "PostgreSQL kept running (postmaster $pm_before)"
else
  fail "PostgreSQL was restarted by the upgrade"
fi
for _ in $(seq 100); do
  /usr/bin/tandem -c "$SANDBOX/node1/tandem.yaml" cluster status --json 2>/dev/null | grep -q '"role": "primary"' && break
  sleep 0.1
done
expect_contains "$(/usr/bin/tandem -c "$SANDBOX/node1/tandem.yaml" cluster status --json)" '"role": "primary"' \
  "node1 is still the primary"
cp "$WORK/tandem.yaml.shipped" /etc/tandem/tandem.yaml

step "a second agent for the same node"
set +e
timeout 20 /usr/bin/tandem agent -c "$SANDBOX/node1/tandem.yaml" >"$WORK/second.log" 2>&1 &
SECOND_AGENT=$!
wait "$SECOND_AGENT"
rc=$?
SECOND_AGENT=""
set -e
out=$(cat "$WORK/second.log")
if [ "$rc" = 2 ]; then ok "refused (exit 2)"; else fail "the second agent exited $rc: $out"; fi
expect_contains "$out" "$agent_pid" "the refusal names the first agent's pid"
/usr/bin/tandem sandbox down --dir "$SANDBOX" --purge >/dev/null
ok "sandbox down"

# ---- 7. upgrades keep a hand-edited config
step "reinstall and upgrade over a hand-edited /etc/tandem/tandem.yaml"
sed -i 's/^  name: node1 .*/  name: db-edited-by-hand/' /etc/tandem/tandem.yaml
dpkg -i "$DEB" >"$WORK/dpkg2.log" 2>&1 || { cat "$WORK/dpkg2.log"; fail "second dpkg -i"; }
expect_contains "$(cat /etc/tandem/tandem.yaml)" "db-edited-by-hand" "a reinstall keeps the edit"
# A newer package whose example changed too: dpkg keeps the edit and puts the
# new example beside it (--force-confold is what a non-interactive upgrade does).
mkdir "$WORK/next"
dpkg-deb -R "$DEB" "$WORK/next/pkg"
sed -i "s/^Version: .*/Version: ${VERSION}+next1/" "$WORK/next/pkg/DEBIAN/control"
echo "# a line the next version's example adds" >>"$WORK/next/pkg/etc/tandem/tandem.yaml"
(cd "$WORK/next/pkg" && find etc usr lib -type f -exec md5sum {} + | grep -v ' etc/' >DEBIAN/md5sums)
dpkg-deb -b "$WORK/next/pkg" "$WORK/next/tandem_next.deb" >/dev/null
dpkg --force-confold -i "$WORK/next/tandem_next.deb" >"$WORK/dpkg3.log" 2>&1 ||
  { cat "$WORK/dpkg3.log"; fail "upgrade"; }
expect_contains "$(cat /etc/tandem/tandem.yaml)" "db-edited-by-hand" "an upgrade keeps the edit"
if grep -q "next version's example" /etc/tandem/tandem.yaml.dpkg-dist 2>/dev/null; then
  ok "the new example is beside it (tandem.yaml.dpkg-dist)"
else
  fail "no /etc/tandem/tandem.yaml.dpkg-dist"
fi

# ---- 8. purge
step "dpkg --purge"
dpkg --purge tandem >/dev/null
INSTALLED=0
for f in /usr/bin/tandem /etc/tandem /lib/systemd/system/tandem.service; do
  if [ -e "$f" ]; then fail "$f is still there after purge"; else ok "$f gone"; fi
done

if [ "$FAILS" -gt 0 ]; then
  echo "== package test: $FAILS check(s) failed" >&2
  exit 1
fi
echo "== package test: every check passed"

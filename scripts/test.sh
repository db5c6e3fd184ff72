#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
# unit tests, the simulation, and the integration tests on real etcd and
# PostgreSQL 15 (which need root: PostgreSQL runs as the postgres user), and
# the chaos suite (nodes in network namespaces, faults, a checker), and the
# package test (the .deb built, installed, checked and purged).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# setup.sh installed Chromium: the dashboard's browser test must run, not skip.
export TANDEM_REQUIRE_BROWSER=1
./scripts/build.sh
cd build
echo "== unit tests and simulation (each test three times: a flake shows up here, before it lands)"
ctest --output-on-failure -L 'unit|sim' -j "$(nproc)" --repeat until-fail:3
echo "== integration tests (real etcd and PostgreSQL on 127.0.0.1)"
ctest --output-on-failure -L integration
echo "== chaos suite (3 nodes in network namespaces, 50 fault rounds; TANDEM_CHAOS_ROUNDS to change)"
ctest --output-on-failure -L chaos
echo "== package (tests/package/run.sh: build the .deb, lintian, dpkg -i, the installed unit, man pages, a sandbox with /usr/bin/tandem, purge)"
../tests/package/run.sh
echo "== all tests"
ctest -N | tail -1

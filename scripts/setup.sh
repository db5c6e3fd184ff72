#!/usr/bin/env bash
# Installs every Debian package Tandem's build, sandbox and tests need.
# Idempotent and safe to re-run. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  # build
  g++ cmake ninja-build ccache pkg-config clang-format
  # libraries (see the dependency table in README.md)
  libpq-dev libssl-dev zlib1g-dev libbrotli-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev googletest
  # the Debian package (scripts/package.sh) and its test (tests/package)
  debhelper dpkg-dev lintian bash-completion python3
  # run time: the database and the consensus store
  postgresql-15 postgresql-client-15 etcd-server etcd-client
  # tests: network namespaces, firewall rules, process tools; HAProxy for the
  # Patroni-style load-balancer example
  iproute2 iptables procps haproxy
  # metrics: promtool and a Prometheus server for tests/integration/metrics_test.cc
  prometheus
  # the dashboard's browser test (tests/integration/ui_browser_test.py); libcrypt-dev: crypt_r
  chromium chromium-driver python3-selenium libcrypt-dev
)

"$(dirname "$0")/install-packages.sh" "${PACKAGES[@]}"

# Debian's postgresql package creates and starts a default cluster on 5432; Tandem
# runs its own instances and does not need it, but leaves it alone.
id postgres >/dev/null 2>&1 || { echo "setup: the 'postgres' OS user is missing" >&2; exit 1; }

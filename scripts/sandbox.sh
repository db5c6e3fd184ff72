#!/usr/bin/env bash
# Installs what is missing, builds, and starts a local 3-node cluster on
# 127.0.0.1 (directory /tmp/tandem-sandbox, ports 15400+), then prints its status.
# Extra arguments go to `tandem sandbox up` (e.g. --nodes 5).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh --target tandem
exec build/tandem sandbox up --dir /tmp/tandem-sandbox "$@"

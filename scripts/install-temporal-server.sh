#!/usr/bin/env bash
# Builds the pinned Temporal server and its SQL tool (temporal-sql-tool) from the Go module proxy
# into .tools/temporal-server-<version>/ — for the PostgreSQL engine (RBM_GUARD_ENGINE=postgres).
# Not part of `npm install`: it needs Go and minutes (~9 min on 2 busy cores, seconds with a warm
# Go build cache). Idempotent: a second run with the same pinned version does nothing.
# Versions: config/temporal/versions.env (the one place they are pinned).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../config/temporal/versions.env
. "$root/config/temporal/versions.env"
dir="$root/.tools/temporal-server-$TEMPORAL_SERVER_VERSION"
if [ -x "$dir/temporal-server" ] && [ -x "$dir/temporal-sql-tool" ]; then exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "rbm-guard: go not found: the PostgreSQL engine builds the Temporal server $TEMPORAL_SERVER_VERSION from source (apt-get install golang-go, or https://go.dev/dl; any Go >= 1.21 fetches $TEMPORAL_GO_TOOLCHAIN itself)" >&2
  exit 1
fi
echo "rbm-guard: building the Temporal server $TEMPORAL_SERVER_VERSION and its SQL tool into .tools/ (once; minutes on a cold Go cache)…" >&2
start=$(date +%s)
tmp="$dir.partial"
rm -rf "$tmp" && mkdir -p "$tmp"
# GOTOOLCHAIN: the server's go.mod asks for a newer Go than many machines have; the go command
# downloads that toolchain from the module proxy.
export GOTOOLCHAIN="$TEMPORAL_GO_TOOLCHAIN" GOBIN="$tmp"
go install "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION"
go install "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION"
mv "$tmp/server" "$tmp/temporal-server"
mv "$tmp/sql" "$tmp/temporal-sql-tool"
# The schema files ship in the module; copy them beside the binaries so the engine needs no Go at run time.
modcache=$(go env GOMODCACHE)
cp -r "$modcache/go.temporal.io/server@v$TEMPORAL_SERVER_VERSION/schema/postgresql" "$tmp/schema-postgresql"
chmod -R u+w "$tmp/schema-postgresql"
rm -rf "$dir" && mv "$tmp" "$dir"
echo "rbm-guard: Temporal server $TEMPORAL_SERVER_VERSION built in $(( $(date +%s) - start )) s: $dir" >&2

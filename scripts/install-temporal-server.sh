#!/usr/bin/env bash
# Builds the pinned Temporal server, its SQL tool (temporal-sql-tool) and the Web UI server from the
# Go module proxy into .tools/temporal-server-<version>/ — for the PostgreSQL engine (RBM_GUARD_ENGINE=postgres).
# Not part of `npm install`: it needs Go and minutes (~9 min on 2 busy cores, seconds with a warm
# Go build cache). Idempotent: a second run with the same pinned version does nothing.
# Versions: config/temporal/versions.env (the one place they are pinned).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../config/temporal/versions.env
. "$root/config/temporal/versions.env"
dir="$root/.tools/temporal-server-$TEMPORAL_SERVER_VERSION"
ui="temporal-ui-server-$TEMPORAL_UI_SERVER_VERSION"
if [ -x "$dir/temporal-server" ] && [ -x "$dir/temporal-sql-tool" ] && [ -x "$dir/$ui" ] && [ -d "$dir/schema-postgresql" ]; then exit 0; fi

if ! command -v go >/dev/null 2>&1; then
  echo "rbm-guard: go not found: the PostgreSQL engine builds the Temporal server $TEMPORAL_SERVER_VERSION from source (apt-get install golang-go, or https://go.dev/dl; any Go >= 1.21 fetches $TEMPORAL_GO_TOOLCHAIN itself)" >&2
  exit 1
fi
echo "rbm-guard: building the Temporal server $TEMPORAL_SERVER_VERSION, its SQL tool and the UI server $TEMPORAL_UI_SERVER_VERSION into .tools/ (once; minutes on a cold Go cache)…" >&2
start=$(date +%s)
mkdir -p "$dir"
# GOTOOLCHAIN: the server's go.mod asks for a newer Go than many machines have; the go command
# downloads that toolchain from the module proxy. Each binary lands under its final name only once built.
export GOTOOLCHAIN="$TEMPORAL_GO_TOOLCHAIN"
build() { # <package@version> <name>
  [ -x "$dir/$2" ] && return 0
  local tmp; tmp=$(mktemp -d "$dir/.build-XXXXXX")
  GOBIN="$tmp" go install "$1"
  mv "$tmp"/* "$dir/$2" && rmdir "$tmp"
}
build "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION" temporal-server
build "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION" temporal-sql-tool
build "github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_SERVER_VERSION" "$ui"
# The schema files ship in the module; copied beside the binaries so the engine needs no Go at run time.
if [ ! -d "$dir/schema-postgresql" ]; then
  modcache=$(go env GOMODCACHE)
  cp -r "$modcache/go.temporal.io/server@v$TEMPORAL_SERVER_VERSION/schema/postgresql" "$dir/schema-postgresql.partial"
  chmod -R u+w "$dir/schema-postgresql.partial" && mv "$dir/schema-postgresql.partial" "$dir/schema-postgresql"
fi
echo "rbm-guard: Temporal server $TEMPORAL_SERVER_VERSION built in $(( $(date +%s) - start )) s: $dir" >&2

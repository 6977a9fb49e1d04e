#!/usr/bin/env bash
# The Python client's venv (.tools/py-client: temporalio, cryptography, jsonschema and pytest from
# PyPI, the client installed editable) and the Go client's modules (go.temporal.io/sdk from the Go
# module proxy). `npm run setup:clients`; CI runs it before the suites. Idempotent and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.tools/py-client
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r client/python/requirements.txt -e client/python
echo "python client: $("$venv/bin/python" -c 'import temporalio, rbm_guard; print("rbm_guard", "on temporalio", temporalio.__version__)')"

if [ -f client/go/go.mod ]; then
  if command -v go >/dev/null 2>&1; then
    (cd client/go && go mod download && echo "go client: $(go list -m go.temporal.io/sdk)")
  else
    echo "go client: no Go toolchain on PATH (https://go.dev/dl/, or Debian's golang package)" >&2
    exit 1
  fi
fi

#!/usr/bin/env bash
# The chart gate of `make test` (make helm-lint): charts/tkeha checked with the real Helm CLI, the
# Kubernetes 1.33 schemas (kubernetes-validate, strict), the API server's CRD rules, and the real
# tkeha-webhook called by a Go client the way kube-apiserver calls it. What each stage does:
# scripts/chartcheck/__main__.py. Arguments select stages by name prefix (e.g. `set:default lookup`).
#
# Needs what scripts/deps.sh installs (the venv, golang-go, helm unless one is on PATH) and a
# cargo-built tkeha-webhook (make test builds it first; otherwise this builds the debug one).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TOOLS=${TKEHA_TOOLS:-.tools}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import yaml, jsonschema, kubernetes_validate, cryptography' 2>/dev/null \
  || ! command -v go >/dev/null || { ! command -v helm >/dev/null && [ ! -x "$TOOLS/bin/helm" ]; }; then
  bash scripts/deps.sh
fi
if { [ ! -x target/debug/tkeha-webhook ] && [ ! -x target/release/tkeha-webhook ]; } || { [ ! -x target/debug/kubectl-tkeha ] && [ ! -x target/release/kubectl-tkeha ]; }; then
  cargo build -q -p tkeha-webhook -p kubectl-tkeha
fi

# The Go client: built into the tool directory, rebuilt only when its source changes.
client_src=tests/chart/apiserver-client
client_bin=$TOOLS/bin/tkeha-apiserver-client
stamp=$(cat "$client_src"/go.mod "$client_src"/*.go | sha256sum | cut -d' ' -f1)
if [ ! -x "$client_bin" ] || [ "$(cat "$client_bin.src-sha256" 2>/dev/null)" != "$stamp" ]; then
  unformatted=$(gofmt -l "$client_src")
  if [ -n "$unformatted" ]; then
    echo "helm-lint: gofmt would change $unformatted" >&2
    exit 1
  fi
  mkdir -p "$TOOLS/bin"
  # Offline and stdlib only: no module proxy, no toolchain download. Go's caches default to
  # $HOME; without one (some CI shells) they go under the tool directory.
  export GOCACHE=${GOCACHE:-${XDG_CACHE_HOME:-${HOME:-$PWD/$TOOLS}/.cache}/go-build}
  export GOPATH=${GOPATH:-${HOME:-$PWD/$TOOLS}/go}
  (cd "$client_src" && export GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=0 \
    && go vet . && go build -trimpath -o "$OLDPWD/$client_bin.tmp" .)
  mv "$client_bin.tmp" "$client_bin"
  echo "$stamp" >"$client_bin.src-sha256"
fi
export TKEHA_APISERVER_CLIENT=$PWD/$client_bin
exec "$VENV/bin/python" scripts/chartcheck "$@"

#!/usr/bin/env bash
# Lints charts/tkeha with the real Helm library (PyPI helm-sdkpy and helm-python-sdk, in .venv):
# helm-sdkpy lint with default values, certManager.enabled=true and crd.install=false (and proof
# that the gate fails a broken chart), values.schema.json against the defaults, then an offline
# render whose manifests are checked. Each stage runs in its own process (one Go runtime each).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import helm_sdkpy, helm_python, jsonschema, yaml' 2>/dev/null; then
  bash scripts/deps.sh
fi
for stage in sdkpy schema render; do
  "$VENV/bin/python" scripts/helm_lint.py "$stage"
done

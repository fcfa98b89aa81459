#!/usr/bin/env bash
# `make bench`, provisioning part: `tkeha-provisioner apply` wall time on fresh labs of 1, 3 and 12
# masters (RUNS each, median), until the VIP answers; SSH round trips per host. Writes the
# provision section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-provision: needs root (network namespaces)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-provision-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver
export RUNS=${RUNS:-3}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-provision-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE."; } \
  | python3 scripts/bench-section.py provision BENCHMARKS.md
cat "$OUT"

#!/usr/bin/env bash
# `make bench`, failover part: RUNS (10) runs each of apiserver death, graceful keepalived stop and
# link down on a provisioned 3-master lab, sampled every 50 ms from outside. Writes the failover
# section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-failover: needs root (network namespaces)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-failover-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver
export RUNS=${RUNS:-10}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-failover-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE."; } \
  | python3 scripts/bench-section.py failover BENCHMARKS.md
cat "$OUT"

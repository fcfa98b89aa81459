#!/usr/bin/env bash
# `make bench`, failover part: for each failover profile (standard, fast), RUNS (10) runs each of
# apiserver death, graceful keepalived stop and link down on a provisioned 3-master lab, sampled
# from outside (50 ms standard, 20 ms fast), then the stress runs (STRESS_SECS, 60: a CPU hog in
# the holder's namespace, then on the whole machine) and the fast probe's CPU. Writes the
# `failover` and `failover-fast` sections of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-failover: needs root (network namespaces)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-failover-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver
export RUNS=${RUNS:-10} STRESS_SECS=${STRESS_SECS:-60}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
for fp in ${FAILOVER_PROFILES:-standard fast}; do
  section=failover; [ "$fp" = standard ] || section=failover-$fp
  FAILOVER_PROFILE=$fp "$BIN/tkeha-failover-bench" > "$OUT"
  { cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, build profile $PROFILE."; } \
    | python3 scripts/bench-section.py "$section" BENCHMARKS.md
  cat "$OUT"
done

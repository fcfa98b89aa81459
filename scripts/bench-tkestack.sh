#!/usr/bin/env bash
# `make bench`, beside-TKEStack part: RUNS (10) drills and RUNS apiserver deaths on 3 lab masters
# prepared as TKEStack leaves them (its config, its static pod, the stand-in kubelet). Writes the
# tkestack section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-tkestack: needs root (network namespaces)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-tkestack-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver \
  TKEHA_FAKE_KUBELET=$BIN/tkeha-fake-kubelet
export RUNS=${RUNS:-10}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-tkestack-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE, load average $(cut -d' ' -f1-3 /proc/loadavg)."; } \
  | python3 scripts/bench-section.py tkestack BENCHMARKS.md
cat "$OUT"

#!/usr/bin/env bash
# `make bench`, booted-tier failover: apiserver death, graceful stop and a reboot of the VIP holder
# on 3 booted Debian 12 masters (RUNS each). Writes the hosts-failover section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-hosts-failover: needs root (systemd-nspawn, overlayfs)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-hosts-failover-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver TKEHA_LAB_BIN=$BIN/tkeha-lab
export RUNS=${RUNS:-10}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-hosts-failover-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE."; } \
  | python3 scripts/bench-section.py hosts-failover BENCHMARKS.md
cat "$OUT"

#!/usr/bin/env bash
# `make bench`, proxy part: connect + one command on 3 masters directly, through the lab's jump
# server and through its SOCKS5 server (RUNS each, interleaved, median). Writes the proxy section
# of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-proxy: needs root (network namespaces)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-proxy-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
export RUNS=${RUNS:-10}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-proxy-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE, load average $(cut -d' ' -f1-3 /proc/loadavg)."; } \
  | python3 scripts/bench-section.py proxy BENCHMARKS.md
cat "$OUT"

#!/usr/bin/env bash
# `make bench`: every part's benchmark; each writes its own section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/target/release:$PATH"
for part in api plugin webhook webhook-attacks provision failover tkestack hosts-provision hosts-failover proxy; do
  if [ -f "scripts/bench-$part.sh" ]; then bash "scripts/bench-$part.sh"; fi
done

#!/usr/bin/env bash
# `make demo`: the whole tkeha flow, part by part (plugin, webhook, lab provisioning).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/target/release:$PATH"
for part in plugin webhook lab; do
  if [ -f "scripts/demo-$part.sh" ]; then bash "scripts/demo-$part.sh"; fi
done

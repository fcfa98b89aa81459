#!/usr/bin/env bash
# `make bench`, booted-tier provisioning: fresh booted Debian 12 masters (1, 3 and 12 by default,
# SIZES to change), RUNS each, for tkeha's apply with the apt install, with keepalived
# preinstalled, and for the Ansible playbook scripts/ansible/keepalived.yml doing the same fresh
# install. Writes the hosts-provision section of BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench-hosts-provision: needs root (systemd-nspawn, overlayfs)" >&2; exit 1; fi
PROFILE=${PROFILE:-release}
BIN=$PWD/target/$PROFILE
[ -x "$BIN/tkeha-hosts-provision-bench" ] || { echo "build first: cargo build --$PROFILE --workspace" >&2; exit 1; }
VENV=${VENV:-.venv}
[ -x "$VENV/bin/ansible-playbook" ] || { echo "bench-hosts-provision: no $VENV/bin/ansible-playbook (run: bash scripts/deps.sh)" >&2; exit 1; }
export TKEHA_PROVISIONER=$BIN/tkeha-provisioner TKEHA_FAKE_APISERVER=$BIN/tkeha-fake-apiserver TKEHA_LAB_BIN=$BIN/tkeha-lab
export ANSIBLE_PLAYBOOK=$PWD/$VENV/bin/ansible-playbook TKEHA_ANSIBLE_DIR=$PWD/scripts/ansible
export RUNS=${RUNS:-3} SIZES=${SIZES:-1 3 12}
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
"$BIN/tkeha-hosts-provision-bench" > "$OUT"
{ cat "$OUT"; echo; echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, profile $PROFILE, $("$ANSIBLE_PLAYBOOK" --version 2>/dev/null | head -1)."; } \
  | python3 scripts/bench-section.py hosts-provision BENCHMARKS.md
cat "$OUT"

#!/usr/bin/env bash
# `make demo`, lab part: the whole TKE HA flow on a network-namespace lab of 3 fake masters:
# init -> validate -> check -> provision -> status -> failover (drill, apiserver death) -> uninstall,
# then teardown. The lab is always removed (trap on EXIT, INT and TERM), whatever fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo-lab: needs root (network namespaces)" >&2; exit 1; fi
# Prefer release binaries (make demo builds them), fall back to debug.
for d in target/release target/debug; do
  if [ -x "$d/tkeha-lab" ] && [ -x "$d/kubectl-tkeha" ] && [ -x "$d/tkeha-fake-apiserver" ]; then BIN=$PWD/$d; break; fi
done
: "${BIN:?build first: cargo build --release --workspace}"
export PATH="$BIN:$PATH"
STATE=$(mktemp -d /tmp/tkeha-demo-lab.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  printf '\n==> Teardown: the lab'"'"'s namespaces, bridge and processes are removed\n'
  tkeha-lab down --state "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  if [ "$rc" = 0 ]; then echo "demo-lab: done"; else echo "demo-lab: FAILED (exit $rc), lab removed" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step=0
say() { step=$((step + 1)); printf '\n==> %d. %s\n' "$step" "$*"; }
note() { printf '    %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
KH=(--known-hosts "$STATE/known_hosts")
jq_py() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));$1" "$STATE/lab.json" "${@:2}"; }
holders() { tkeha-lab holders --state "$STATE" | python3 -c 'import json,sys;print(", ".join("%s (%s)" % (x["name"], x["ip"]) for x in json.load(sys.stdin)) or "nobody")'; }
answer() { curl -s --max-time 0.5 "http://$VIP:6443/" || true; }

say "A lab of 3 masters: each a network namespace with its own hostname, /etc, /root, /run and PID 1 sshd"
tkeha-lab up --masters 3 --state "$STATE" > "$STATE/lab.json"
VIP=$(jq_py 'print(d["vip"])')
IPS=$(jq_py 'print(",".join(m["ip"] for m in d["masters"]))')
python3 - "$STATE/lab.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("    subnet %s, VIP %s (free: nobody holds it yet)" % (d["subnet"], d["vip"]))
for m in d["masters"]:
    print("    %s: %s, hostname %s, sshd with root/password, a sudo user and key login" % (m["name"], m["ip"], m["hostname"]))
PY

say "Scaffold the Cluster with kubectl tkeha init (the root password comes from stdin, never a flag)"
printf '$ %s\n' "printf rootpw | kubectl tkeha init --ha tke --vip $VIP --master $IPS --password-stdin > cluster.yaml"
printf '%s' rootpw | kubectl tkeha init --ha tke --vip "$VIP" --master "$IPS" --password-stdin > "$STATE/cluster.yaml"
sed -E 's/(password: ).*/\1<base64, hidden>/' "$STATE/cluster.yaml" | sed 's/^/    /'

say "Validate it offline with the admission webhook's own rules"
run kubectl tkeha validate -f "$STATE/cluster.yaml"

say "Preflight, read-only: SSH login, root, the interface holding each IP exactly, VIP in its prefix and free"
note "(host keys are checked against the lab's known_hosts: unknown or changed keys are refused)"
run kubectl tkeha check -f "$STATE/cluster.yaml" "${KH[@]}"

say "Provision: keepalived on every master in parallel (config tested with keepalived -t on the master)"
run kubectl tkeha provision -f "$STATE/cluster.yaml" "${KH[@]}"
note "VIP holder, read from the namespaces (not from the provisioner): $(holders)"
note "No apiserver runs yet, the VIP is already up: kubeadm can use it as its control-plane endpoint."

say "Provision again with nothing changed: nothing is rewritten, nothing restarted"
run kubectl tkeha provision -f "$STATE/cluster.yaml" "${KH[@]}"

say "The masters become control planes: kube-apiserver.yaml appears, stand-in apiservers answer on :6443"
tkeha-lab mark-control-plane --state "$STATE" --all
tkeha-lab apiserver start --state "$STATE" --all
note "GET http://$VIP:6443/ -> $(answer)"

say "Status: keepalived state, VIP holder and health check per master"
run kubectl tkeha status -f "$STATE/cluster.yaml" "${KH[@]}"

say "Drill: stop keepalived on the holder gracefully, time until another master answers, restore it"
run kubectl tkeha drill -f "$STATE/cluster.yaml" "${KH[@]}"
note "VIP holder now: $(holders); GET -> $(answer)"

say "Failure: the holder's apiserver dies; its health check fails and the VIP moves"
HOLDER=$(tkeha-lab holders --state "$STATE" | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["name"][1:])')
OLD=$(jq_py 'print(d["masters"][int(sys.argv[2])-1]["hostname"])' "$HOLDER")
run tkeha-lab apiserver stop --state "$STATE" --master "$HOLDER"
START=$(date +%s%N)
NOW=""
for _ in $(seq 1 200); do
  NOW=$(answer)
  if [ -n "$NOW" ] && [ "$NOW" != "apiserver $OLD" ]; then break; fi
  sleep 0.05
done
note "after $(( ($(date +%s%N) - START) / 1000000 )) ms the VIP answers: $NOW (holder: $(holders))"

say "The old master recovers; nopreempt: it does not take the VIP back (no second outage)"
run tkeha-lab apiserver start --state "$STATE" --master "$HOLDER"
sleep 4
note "4 s later the VIP holder is still: $(holders); GET -> $(answer)"

say "Uninstall: keepalived stopped, our files removed, the VIP gone"
run kubectl tkeha uninstall -f "$STATE/cluster.yaml" "${KH[@]}"
note "VIP holder: $(holders); files left in m1's /etc/keepalived: $(ls -A "$(jq_py 'print(d["masters"][0]["etc"])')/keepalived" | wc -l)"

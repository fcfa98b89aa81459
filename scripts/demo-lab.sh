#!/usr/bin/env bash
# `make demo`, lab part: the whole TKE HA flow on a network-namespace lab of 3 fake masters:
# init -> validate -> provision -> status -> drill, then teardown (always, via trap).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo-lab: needs root (network namespaces)" >&2; exit 1; fi
# Prefer release binaries (make demo builds them), fall back to debug.
for d in target/release target/debug; do
  if [ -x "$d/tkeha-lab" ] && [ -x "$d/kubectl-tkeha" ]; then BIN=$PWD/$d; break; fi
done
: "${BIN:?build first: cargo build --release --workspace}"
export PATH="$BIN:$PATH"
STATE=$(mktemp -d /tmp/tkeha-demo-lab.XXXXXX)
cleanup() {
  echo "==> Teardown: removing the lab's namespaces, bridge and processes"
  tkeha-lab down --state "$STATE" || true
  rm -rf "$STATE"
}
trap cleanup EXIT
say() { printf '\n==> %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Building a lab: 3 masters, each a network namespace with its own hostname, /etc, /run, PID 1 sshd"
tkeha-lab up --masters 3 --state "$STATE" > "$STATE/lab.json"
VIP=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["vip"])' "$STATE/lab.json")
IPS=$(python3 -c 'import json,sys;print(",".join(m["ip"] for m in json.load(open(sys.argv[1]))["masters"]))' "$STATE/lab.json")
python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(f"    subnet {d[\"subnet\"]}, VIP {d[\"vip\"]}")
for m in d["masters"]: print(f"    {m[\"name\"]}: {m[\"ip\"]} (hostname {m[\"hostname\"]})")' "$STATE/lab.json"

say "Scaffold the Cluster: kubectl tkeha init (the root password comes from stdin, never a flag)"
printf '$ %s\n' "printf rootpw | kubectl tkeha init --ha tke --vip $VIP --master $IPS --password-stdin > cluster.yaml"
printf '%s' rootpw | kubectl tkeha init --ha tke --vip "$VIP" --master "$IPS" --password-stdin > "$STATE/cluster.yaml"
grep -v -i 'password' "$STATE/cluster.yaml" | sed 's/^/    /'

say "Validate it with the same rules the admission webhook uses"
run kubectl tkeha validate -f "$STATE/cluster.yaml"

say "Provision keepalived on every master over SSH (host keys checked against the lab's known_hosts)"
run kubectl tkeha provision -f "$STATE/cluster.yaml" --known-hosts "$STATE/known_hosts"

say "Who holds the VIP now? (read from the namespaces, not from the provisioner)"
run tkeha-lab holders --state "$STATE"

say "The masters become control planes: kube-apiserver.yaml appears and stand-in apiservers start"
tkeha-lab mark-control-plane --state "$STATE" --all
tkeha-lab apiserver start --state "$STATE" --all
run curl -s --max-time 2 "http://$VIP:6443/"

say "Status: keepalived state, VIP holder and health check per master"
run kubectl tkeha status -f "$STATE/cluster.yaml" --known-hosts "$STATE/known_hosts"

say "Drill: stop keepalived on the holder, time until another master answers on the VIP, restore"
run kubectl tkeha drill -f "$STATE/cluster.yaml" --known-hosts "$STATE/known_hosts"
run tkeha-lab holders --state "$STATE"
run curl -s --max-time 2 "http://$VIP:6443/"

say "Failure: the holder's apiserver dies; the VIP moves to a healthy master"
HOLDER=$(tkeha-lab holders --state "$STATE" | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["name"][1:])')
run tkeha-lab apiserver stop --state "$STATE" --master "$HOLDER"
for _ in $(seq 1 100); do
  ANSWER=$(curl -s --max-time 0.5 "http://$VIP:6443/" || true)
  if [ -n "$ANSWER" ] && [ "$ANSWER" != "apiserver $(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["masters"][int(sys.argv[2])-1]["hostname"])' "$STATE/lab.json" "$HOLDER")" ]; then break; fi
  sleep 0.1
done
echo "    VIP now answers: $ANSWER"
run tkeha-lab holders --state "$STATE"
echo
echo "demo-lab: done"

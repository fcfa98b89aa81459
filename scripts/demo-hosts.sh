#!/usr/bin/env bash
# `make demo-hosts`: the `make demo` lab story on booted Debian 12 machines (systemd-nspawn --boot,
# systemd as PID 1, keepalived NOT installed, a local package mirror as their only apt source):
# init -> validate -> check -> provision (apt installs keepalived, systemd enables and starts it)
# -> rerun -> status -> drill -> apiserver death -> reboot of the VIP holder -> uninstall.
# The first run builds the cached Debian base (about 1.5 minutes). The lab is always removed
# (trap on EXIT, INT and TERM), whatever fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo-hosts: needs root (systemd-nspawn, overlayfs, bridges)" >&2; exit 1; fi
for d in target/release target/debug; do
  if [ -x "$d/tkeha-lab" ] && [ -x "$d/kubectl-tkeha" ] && [ -x "$d/tkeha-fake-apiserver" ]; then BIN=$PWD/$d; break; fi
done
: "${BIN:?build first: cargo build --release --workspace}"
export PATH="$BIN:$PATH" TKEHA_FAKE_APISERVER="$BIN/tkeha-fake-apiserver"
STATE=$(mktemp -d /tmp/tkeha-demo-hosts.XXXXXX)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  printf '\n==> Teardown: the machines, their overlays, the mirror and the bridge are removed\n'
  tkeha-lab down --state "$STATE" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  if [ "$rc" = 0 ]; then echo "demo-hosts: done"; else echo "demo-hosts: FAILED (exit $rc), lab removed" >&2; fi
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
on() { tkeha-lab exec --state "$STATE" --master "$1" "$2"; }
unit() { on "$1" "systemctl show -p UnitFileState,ActiveState,MainPID keepalived | sort | tr '\n' ' '"; }

say "Three booted Debian 12 masters: systemd PID 1, sshd a service, keepalived not installed"
tkeha-lab hosts-up --masters 3 --state "$STATE" > "$STATE/lab.json"
VIP=$(jq_py 'print(d["vip"])')
IPS=$(jq_py 'print(",".join(m["ip"] for m in d["masters"]))')
python3 - "$STATE/lab.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("    subnet %s, VIP %s (free), package mirror %s (the masters' only apt source)" % (d["subnet"], d["vip"], d["mirror"]))
for m in d["masters"]:
    print("    %s: %s, hostname %s, overlay over the cached base %s" % (m["name"], m["ip"], m["hostname"], d["base_image"]))
PY
note "m1: PID 1 is $(on 1 'cat /proc/1/comm'), system $(on 1 'systemctl is-system-running'), keepalived: $(on 1 'command -v keepalived || echo not installed')"

say "Scaffold the Cluster with kubectl tkeha init (the root password comes from stdin, never a flag)"
printf '$ %s\n' "printf rootpw | kubectl tkeha init --ha tke --vip $VIP --master $IPS --password-stdin > cluster.yaml"
printf '%s' rootpw | kubectl tkeha init --ha tke --vip "$VIP" --master "$IPS" --password-stdin > "$STATE/cluster.yaml"
run kubectl tkeha validate -f "$STATE/cluster.yaml"

say "Preflight, read-only: logins, root, interfaces, VIP free, keepalived installable"
run kubectl tkeha check -f "$STATE/cluster.yaml" "${KH[@]}"

say "Provision: apt installs keepalived from the mirror on every master, systemd enables and starts it"
run kubectl tkeha provision -f "$STATE/cluster.yaml" "${KH[@]}"
for m in 1 2 3; do note "m$m keepalived: $(unit $m)"; done
note "VIP holder, read inside the machines: $(holders)"
note "m1 files: $(on 1 "stat -c '%n %a %U:%G' /etc/keepalived/keepalived.conf /etc/keepalived/check_apiserver.sh" | paste -sd ';' -) (the config holds auth_pass: root only)"

say "Provision again with nothing changed: same MainPID, nothing reloaded"
run kubectl tkeha provision -f "$STATE/cluster.yaml" "${KH[@]}"
for m in 1 2 3; do note "m$m keepalived: $(unit $m)"; done

say "The masters become control planes: kube-apiserver.yaml appears, stand-in apiserver units start"
tkeha-lab mark-control-plane --state "$STATE" --all
tkeha-lab apiserver start --state "$STATE" --all
note "GET http://$VIP:6443/ -> $(answer)"
run kubectl tkeha status -f "$STATE/cluster.yaml" "${KH[@]}"

say "Drill: systemctl stop keepalived on the holder, time until another master answers, restore"
run kubectl tkeha drill -f "$STATE/cluster.yaml" "${KH[@]}"
note "VIP holder now: $(holders)"

# wait_move OLD-HOSTNAME [START-NS]: poll GET VIP:6443 until another master answers.
wait_move() {
  local old=$1 start=${2:-$(date +%s%N)} now
  for _ in $(seq 1 400); do
    now=$(answer)
    if [ -n "$now" ] && [ "$now" != "apiserver $old" ]; then break; fi
    sleep 0.05
  done
  note "$(( ($(date +%s%N) - start) / 1000000 )) ms after the fault the VIP answers: $now (holder: $(holders))"
}
holder_index() { tkeha-lab holders --state "$STATE" | python3 -c 'import json,sys;print(json.load(sys.stdin)[0]["name"][1:])'; }

say "Failure: the holder's apiserver dies (SIGKILL); its health check fails and the VIP moves"
HOLDER=$(holder_index)
OLD=$(jq_py 'print(d["masters"][int(sys.argv[2])-1]["hostname"])' "$HOLDER")
START=$(date +%s%N)
run tkeha-lab apiserver kill --state "$STATE" --master "$HOLDER"
wait_move "$OLD" "$START"
run tkeha-lab apiserver start --state "$STATE" --master "$HOLDER"

say "Reboot: the VIP holder powers off from inside; the VIP moves while it is down"
HOLDER=$(holder_index)
OLD=$(jq_py 'print(d["masters"][int(sys.argv[2])-1]["hostname"])' "$HOLDER")
START=$(date +%s%N)
printf '$ %s\n' "tkeha-lab poweroff --state ... --master $HOLDER"
# In the background: the VIP is watched while the machine goes down.
tkeha-lab poweroff --state "$STATE" --master "$HOLDER" > "$STATE/poweroff.out" &
POWEROFF=$!
wait_move "$OLD" "$START"
wait "$POWEROFF"
note "m$HOLDER was down $(cat "$STATE/poweroff.out") s after systemctl poweroff"
printf '$ %s\n' "tkeha-lab boot --state ... --master $HOLDER"
note "m$HOLDER booted again in $(tkeha-lab boot --state "$STATE" --master "$HOLDER") s"
for _ in $(seq 1 100); do [ "$(on "$HOLDER" 'systemctl is-active keepalived' || true)" = active ] && break; sleep 0.2; done
note "m$HOLDER keepalived after boot: $(unit "$HOLDER") (enabled, so systemd started it)"
sleep 4
note "4 s later the VIP holder is still: $(holders) (nopreempt: no second outage)"

say "Uninstall: keepalived stopped and disabled, our files removed, the package stays"
run kubectl tkeha uninstall -f "$STATE/cluster.yaml" "${KH[@]}"
for m in 1 2 3; do note "m$m keepalived: $(unit $m); package: $(on $m "dpkg-query -W -f='\${Version}' keepalived")"; done
note "VIP holder: $(holders)"

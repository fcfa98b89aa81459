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

#!/usr/bin/env bash
# Builds what krew installs from, and the manifest that points at it:
#   dist/kubectl-tkeha_vVERSION_OS_ARCH.tar.gz   kubectl-tkeha, kubectl_complete-tkeha, LICENSE
#   dist/tkeha.yaml                              plugins/tkeha.yaml with version, uri and sha256 filled in
# The archive is reproducible for a given binary (sorted entries, owner 0, fixed mtime, gzip -n).
#
# Environment:
#   TKEHA_BIN         a built kubectl-tkeha to package (default: cargo build --release, target/release/kubectl-tkeha)
#   DIST              output directory (default: dist)
#   RELEASE_BASE_URL  where the archive will be published (default: https://example.invalid/tkeha/releases/download/vVERSION)
#   SOURCE_DATE_EPOCH mtime of the archive's entries (default: 0)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TKEHA_BIN:-}" ]; then
  cargo build --release -p kubectl-tkeha
  TKEHA_BIN=target/release/kubectl-tkeha
fi
DIST=${DIST:-dist}
LICENSE_TEXT=${LICENSE_TEXT:-/usr/share/common-licenses/Apache-2.0}   # the workspace's license (Cargo.toml), as Debian ships it
[ -x "$TKEHA_BIN" ] || { echo "release: $TKEHA_BIN is not an executable kubectl-tkeha" >&2; exit 2; }
[ -r "$LICENSE_TEXT" ] || { echo "release: no license text at $LICENSE_TEXT (Debian's base-files ships it)" >&2; exit 2; }

# `kubectl-tkeha 0.1.0 linux/amd64`: the manifest's version and selector come from the binary itself.
read -r name version platform < <("$TKEHA_BIN" version)
[ "$name" = kubectl-tkeha ] || { echo "release: $TKEHA_BIN says it is $name" >&2; exit 2; }
os=${platform%/*}
arch=${platform#*/}
archive="kubectl-tkeha_v${version}_${os}_${arch}.tar.gz"
base=${RELEASE_BASE_URL:-https://example.invalid/tkeha/releases/download/v${version}}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$TKEHA_BIN" "$stage/kubectl-tkeha"
install -m 0755 kubectl-tkeha/kubectl_complete-tkeha "$stage/kubectl_complete-tkeha"
install -m 0644 "$LICENSE_TEXT" "$stage/LICENSE"
mkdir -p "$DIST"
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" \
  -cf - kubectl-tkeha kubectl_complete-tkeha LICENSE | gzip -n -9 >"$DIST/$archive"
sha=$(sha256sum "$DIST/$archive" | cut -d' ' -f1)

sed -e "s|RELEASE_VERSION|v${version}|" -e "s|RELEASE_URI|${base}/${archive}|" -e "s|RELEASE_SHA256|${sha}|" \
  -e "s|os: linux|os: ${os}|" -e "s|arch: amd64|arch: ${arch}|" \
  plugins/tkeha.yaml >"$DIST/tkeha.yaml"
if grep -q RELEASE_ "$DIST/tkeha.yaml"; then
  echo "release: $DIST/tkeha.yaml still holds a RELEASE_ placeholder" >&2
  exit 1
fi
echo "$DIST/$archive"
echo "$DIST/tkeha.yaml"

#!/usr/bin/env bash
# Regenerates charts/tkeha/templates/crd.yaml from tkeha_api::types::Cluster (kube's
# CustomResourceExt), through the same test that checks it (kubectl-tkeha/tests/crd.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
TKEHA_UPDATE_CRD=1 cargo test -q -p kubectl-tkeha --test crd -- chart_crd_equals_the_generated_one
echo "gen-crd: wrote charts/tkeha/templates/crd.yaml" >&2

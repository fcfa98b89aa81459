//! The generated CRD: cluster-scoped, platform.tkestack.io/v1, unknown fields preserved.
#![allow(clippy::unwrap_used)]

use kube::CustomResourceExt;
use tkeha_api::types::Cluster;

#[test]
fn crd_is_cluster_scoped_and_preserves_unknown_fields() {
    let crd = Cluster::crd();
    assert_eq!(crd.spec.group, "platform.tkestack.io");
    assert_eq!(crd.spec.scope, "Cluster");
    assert_eq!(crd.spec.names.kind, "Cluster");
    let v = serde_json::to_value(&crd).unwrap();
    let schema = &v["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let spec = &schema["properties"]["spec"];
    assert_eq!(
        spec["x-kubernetes-preserve-unknown-fields"], true,
        "{spec:#}"
    );
    assert!(spec["properties"]["machines"].is_object());
    let text = serde_json::to_string(&v).unwrap();
    assert!(!text.contains("$ref"), "CRD schemas must be inlined");
    assert!(text.contains("nodeCIDRMaskSize"));
}

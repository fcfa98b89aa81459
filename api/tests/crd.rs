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

/// The bounds the rules enforce are in the CRD, so the API server refuses oversized objects
/// before the webhook is called; taints need key and effect with no injected default;
/// integers are int32 with their real ranges.
#[test]
fn crd_carries_the_bounds_required_taint_fields_and_int32_ranges() {
    use tkeha_api::limits::*;
    let crd = serde_json::to_value(Cluster::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let at = |path: &str| {
        spec.pointer(path)
            .unwrap_or_else(|| panic!("{path} missing"))
    };
    let machine = "/properties/machines/items/properties";
    for (path, key, want) in [
        ("/properties/machines".to_string(), "maxItems", MAX_MACHINES),
        (
            "/properties/scalingMachines".to_string(),
            "maxItems",
            MAX_MACHINES,
        ),
        (
            "/properties/publicAlternativeNames".to_string(),
            "maxItems",
            MAX_ALTERNATIVE_NAMES,
        ),
        (
            "/properties/publicAlternativeNames/items".to_string(),
            "maxLength",
            MAX_DNS_NAME,
        ),
        (
            "/properties/apiServerExtraArgs".to_string(),
            "maxProperties",
            MAX_EXTRA_ARGS,
        ),
        (
            "/properties/kubeletExtraArgs/additionalProperties".to_string(),
            "maxLength",
            MAX_EXTRA_ARG_VALUE,
        ),
        ("/properties/clusterCIDR".to_string(), "maxLength", MAX_CIDR),
        (
            "/properties/dnsDomain".to_string(),
            "maxLength",
            MAX_DNS_NAME,
        ),
        (format!("{machine}/ip"), "maxLength", MAX_IP),
        (format!("{machine}/username"), "maxLength", MAX_USERNAME),
        (
            format!("{machine}/password"),
            "maxLength",
            MAX_PASSWORD_BASE64,
        ),
        (
            format!("{machine}/privateKey"),
            "maxLength",
            MAX_PRIVATE_KEY_BASE64,
        ),
        (format!("{machine}/labels"), "maxProperties", MAX_LABELS),
        (
            format!("{machine}/labels/additionalProperties"),
            "maxLength",
            MAX_LABEL_VALUE,
        ),
        (format!("{machine}/taints"), "maxItems", MAX_TAINTS),
        (
            "/properties/features/properties/ha/properties/tke/properties/vip".to_string(),
            "maxLength",
            MAX_IP,
        ),
    ] {
        assert_eq!(at(&path)[key], want, "{path} {key}");
    }
    for (path, min, max) in [
        (format!("{machine}/port"), 1, 65535),
        (
            "/properties/features/properties/ha/properties/tke/properties/vrid".to_string(),
            1,
            255,
        ),
        (
            "/properties/features/properties/ha/properties/thirdParty/properties/vport".to_string(),
            1,
            65535,
        ),
        (
            "/properties/properties/properties/maxNodePodNum".to_string(),
            16,
            256,
        ),
        (
            "/properties/properties/properties/maxClusterServiceNum".to_string(),
            32,
            32768,
        ),
    ] {
        let node = at(&path);
        assert_eq!(node["type"], "integer", "{path}");
        assert_eq!(node["format"], "int32", "{path}");
        assert_eq!(node["minimum"].as_f64(), Some(f64::from(min)), "{path}");
        assert_eq!(node["maximum"].as_f64(), Some(f64::from(max)), "{path}");
    }
    let taint = at(&format!("{machine}/taints/items"));
    assert_eq!(taint["required"], serde_json::json!(["effect", "key"]));
    let text = serde_json::to_string(taint).unwrap();
    assert!(!text.contains("\"default\""), "{text}");
    assert_eq!(
        taint["properties"]["effect"]["enum"],
        serde_json::json!(["NoSchedule", "PreferNoSchedule", "NoExecute"])
    );
    // Every TKEStack spec field is known (so a misspelt one can be told from it).
    for field in [
        "tenantID",
        "displayName",
        "networkType",
        "dockerExtraArgs",
        "kubeletExtraArgs",
        "apiServerExtraArgs",
        "controllerManagerExtraArgs",
        "schedulerExtraArgs",
        "clusterCredentialRef",
        "etcd",
        "hostnameAsNodename",
        "networkArgs",
        "scalingMachines",
        "bootstrapApps",
        "appVersion",
    ] {
        assert!(spec["properties"][field].is_object(), "{field}");
    }
}

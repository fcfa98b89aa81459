//! Updates ratchet the create rules (KEP-4008): a stored Cluster that breaks every create rule
//! can still be edited where the edit does not touch its problems; the update rules still apply.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use tkeha_api::ErrorType::*;
use tkeha_api::review::ALREADY_INVALID;
use tkeha_api::{FieldValidation, Policy, review};

/// A stored object that breaks every group of create rules: type, version, CIDRs, machines
/// (address, port, user, secrets, taints, labels), both HA modes with a bad VIP and vrid,
/// names, bounds and an unknown field.
fn stored() -> Value {
    json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "cls-old", "finalizers": ["cluster"], "labels": {"team": "a"}},
        "spec": {
            "type": "Kind",
            "version": "v1.30",
            "clusterCIDR": "10.244.0.0/16,10.245.0.0/16",
            "serviceCIDR": "10.96.0.0/30",
            "dnsDomain": "Corp_Local",
            "clusterCidr": "typo",
            "properties": {"maxNodePodNum": 100, "maxClusterServiceNum": 256},
            "machines": [
                {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.2", "port": 0, "username": "a;b", "password": "!",
                 "labels": {"bad key": "v"}, "taints": [{"key": "k"}]},
                {"ip": "127.0.0.1", "port": 22, "username": "root", "password": "//4="}
            ],
            "publicAlternativeNames": (0..70).map(|i| format!("n{i}")).collect::<Vec<_>>(),
            "features": {"ipvs": true, "ha": {
                "tke": {"vip": "192.168.1.2", "vrid": 300},
                "thirdParty": {"vip": "192.168.1.5"}
            }}
        },
        "status": {"phase": "Running"}
    })
}

fn strict() -> Policy {
    Policy {
        field_validation: FieldValidation::Strict,
        ..Policy::default()
    }
}

#[test]
fn the_stored_object_breaks_every_group_of_rules() {
    let r = review(&stored(), None, &strict()).unwrap();
    let fields: Vec<&str> = r.errors.iter().map(|e| e.field.as_str()).collect();
    for want in [
        "spec.clusterCidr",
        "spec.publicAlternativeNames",
        "spec.type",
        "spec.version",
        "spec.dnsDomain",
        "spec.properties.maxNodePodNum",
        "spec.clusterCIDR",
        "spec.serviceCIDR",
        "spec.properties.maxClusterServiceNum",
        "spec.machines[1].ip",
        "spec.machines[1].port",
        "spec.machines[1].username",
        "spec.machines[1].password",
        "spec.machines[1].labels",
        "spec.machines[1].taints[0].effect",
        "spec.machines[2].ip",
        "spec.machines[2].password",
        "spec.features.ha",
        "spec.features.ha.tke.vip",
        "spec.features.ha.tke.vrid",
        "spec.features.ha.thirdParty.vport",
    ] {
        assert!(fields.contains(&want), "{want} not in {fields:?}");
    }
}

fn expect_allowed_with_old_problems(new: &Value) {
    let old = stored();
    let before = review(&old, None, &strict()).unwrap();
    let r = review(new, Some(&old), &strict()).unwrap();
    assert!(r.allowed(), "{}", dump(&r));
    // Every old error is now a warning, word for word.
    for e in &before.errors {
        let line = format!("{ALREADY_INVALID}{e}");
        assert!(
            r.warnings.contains(&line),
            "missing {line:?} in\n{}",
            dump(&r)
        );
    }
}

#[test]
fn metadata_and_status_alone_are_always_allowed() {
    let mut label = stored();
    label["metadata"]["labels"]["team"] = json!("b");
    expect_allowed_with_old_problems(&label);
    let mut finalizer = stored();
    finalizer["metadata"]["finalizers"] = json!([]);
    expect_allowed_with_old_problems(&finalizer);
    let mut owners = stored();
    owners["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}]);
    owners["metadata"]["annotations"] = json!({"a": "b"});
    expect_allowed_with_old_problems(&owners);
    let mut status = stored();
    status["status"] = json!({"phase": "Failed", "conditions": []});
    expect_allowed_with_old_problems(&status);
}

#[test]
fn an_unrelated_spec_edit_is_allowed_with_the_old_problems_as_warnings() {
    let mut edit = stored();
    edit["spec"]["displayName"] = json!("prod");
    expect_allowed_with_old_problems(&edit);
    let mut versions = stored();
    versions["spec"]["machines"][0]["labels"] = json!({"role": "master"});
    expect_allowed_with_old_problems(&versions);
}

#[test]
fn an_edit_of_a_bad_field_that_leaves_it_bad_is_refused() {
    let old = stored();
    let mut new = stored();
    new["spec"]["machines"][1]["port"] = json!(70000);
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert_eq!(
        pairs(&r),
        [("spec.machines[1].port".to_string(), Invalid)],
        "{}",
        dump(&r)
    );
    // Fixing it is allowed, and that problem is gone from the warnings.
    new["spec"]["machines"][1]["port"] = json!(22);
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert!(r.allowed(), "{}", dump(&r));
    assert!(
        !r.warnings.iter().any(|w| w.contains("machines[1].port")),
        "{}",
        dump(&r)
    );
    // A new problem in an untouched-before field counts.
    let mut new = stored();
    new["spec"]["machines"][0]["username"] = json!("$(id)");
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert_eq!(
        pairs(&r),
        [("spec.machines[0].username".to_string(), Invalid)],
        "{}",
        dump(&r)
    );
    // Another unknown field is new too.
    let mut new = stored();
    new["spec"]["machines"][0]["usernme"] = json!("root");
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert_eq!(
        pairs(&r),
        [("spec.machines[0].usernme".to_string(), Unknown)],
        "{}",
        dump(&r)
    );
}

#[test]
fn the_update_rules_keep_applying() {
    let old = stored();
    let mut new = stored();
    new["spec"]["type"] = json!("Imported");
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert!(
        r.errors.iter().any(|e| e.field == "spec.type"
            && e.to_string()
                .contains("field is immutable: it was \"Kind\"")),
        "{}",
        dump(&r)
    );
    let mut new = stored();
    new["spec"]["kubeletExtraArgs"] = json!({"max-pods": "200"});
    let r = review(&new, Some(&old), &strict()).unwrap();
    assert!(
        r.errors.iter().any(|e| e.field == "spec.kubeletExtraArgs"
            && e.to_string().contains("only when it installs the masters")),
        "{}",
        dump(&r)
    );
}

#[test]
fn removing_a_master_does_not_move_the_others_problems() {
    // Stored with a bad third master; removing the second shifts it to index 1.
    let mut old = tke3();
    old["spec"]["machines"][2]["username"] = json!("a b");
    let mut new = old.clone();
    new["spec"]["machines"].as_array_mut().unwrap().remove(1);
    let r = run_update(&new, &old);
    assert!(
        !r.errors
            .iter()
            .any(|e| e.field.starts_with("spec.machines[1]")),
        "{}",
        dump(&r)
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with(&format!("{ALREADY_INVALID}spec.machines[1].username"))),
        "{}",
        dump(&r)
    );
}

#[test]
fn an_unchanged_undecodable_spec_does_not_block_a_metadata_edit() {
    let mut old = tke3();
    old["spec"]["machines"][0]["port"] = json!("22");
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"a": "b"});
    let r = run_update(&new, &old);
    assert!(r.allowed(), "{}", dump(&r));
    assert!(r.warnings[0].starts_with(ALREADY_INVALID), "{}", dump(&r));
    // Changing the spec: the decode error is the answer again.
    new["spec"]["version"] = json!("1.22.0");
    assert!(review(&new, Some(&old), &Policy::default()).is_err());
    // No spec at all, unchanged: allowed too.
    let mut bare = tke3();
    bare.as_object_mut().unwrap().remove("spec");
    let mut relabeled = bare.clone();
    relabeled["metadata"]["labels"] = json!({"a": "b"});
    assert!(run_update(&relabeled, &bare).allowed());
    assert!(!run(&bare).allowed());
}

#[test]
fn a_key_stored_before_the_key_rules_ratchets_and_a_new_key_is_checked() {
    // Stored before `privateKey` had to be a private key: "a2V5" is base64 of "key".
    let mut old = tke3();
    old["spec"]["machines"][0]["privateKey"] = json!("a2V5");
    let mut new = old.clone();
    new["metadata"]["labels"] = json!({"team": "b"});
    let r = review(&new, Some(&old), &Policy::default()).unwrap();
    assert!(r.allowed(), "{}", dump(&r));
    assert!(
        r.warnings.iter().any(|w| w.starts_with(ALREADY_INVALID)
            && w.contains(
                "spec.machines[0].privateKey: Invalid value: once decoded, not a private key"
            )),
        "{}",
        dump(&r)
    );
    // Replaced by an encrypted key without its passphrase: a new problem, refused.
    new["spec"]["machines"][0]["privateKey"] = json!(key("id_ed25519_enc"));
    let r = review(&new, Some(&old), &Policy::default()).unwrap();
    assert_eq!(
        pairs(&r),
        [("spec.machines[0].passPhrase".to_string(), Required)],
        "{}",
        dump(&r)
    );
    // With it: allowed, and nothing left to warn about.
    new["spec"]["machines"][0]["passPhrase"] = json!(b64("s3cret"));
    let r = review(&new, Some(&old), &Policy::default()).unwrap();
    assert!(r.allowed() && r.warnings.is_empty(), "{}", dump(&r));
}

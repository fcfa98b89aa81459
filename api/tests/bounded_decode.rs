//! The bounded decode of issue 13: a list or map past its bound is decoded only up to
//! `limits::decoded(bound) + 1` entries and the rest counted, on both decodes (a
//! `serde_json::Value`, and the webhook's decode from text). The review still reports the real
//! length, and a 3 MiB list of `{}` machines no longer becomes a million `ClusterMachine`s.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use tkeha_api::limits::{MAX_EXTRA_ARGS, MAX_MACHINES, MAX_TAINTS, decoded};
use tkeha_api::spectext::DecodedSpec;
use tkeha_api::{ErrorType, Policy, review};

/// A valid spec whose `machines` is `n` empty objects.
fn spec_with_machines(n: usize) -> Value {
    json!({
        "type": "Baremetal",
        "version": "1.30.4",
        "features": {"ha": {"tke": {"vip": "10.0.0.9"}}},
        "machines": vec![json!({}); n],
    })
}

fn object(spec: Value) -> Value {
    json!({"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
           "metadata": {"name": "cls-a"}, "spec": spec})
}

fn too_many(errors: &[tkeha_api::FieldError], field: &str) -> Option<String> {
    errors
        .iter()
        .find(|e| e.field == field && e.kind == ErrorType::TooMany)
        .and_then(|e| e.value.clone())
}

#[test]
fn a_long_machine_list_is_counted_not_decoded() {
    let n = 100_000;
    let spec = spec_with_machines(n);
    // The webhook's decode from text keeps the first entries only.
    let text = serde_json::to_string(&spec).unwrap();
    let decoded_spec: DecodedSpec = serde_json::from_str(&text).unwrap();
    let kept = decoded_spec.spec.machines.as_ref().unwrap().len();
    assert_eq!(kept, decoded(MAX_MACHINES) + 1);
    assert_eq!(decoded_spec.lengths.get("spec.machines"), Some(n));
    // The review of the value reports the real count, once, and nothing per machine.
    let r = review(&object(spec), None, &Policy::default()).unwrap();
    assert_eq!(too_many(&r.errors, "spec.machines"), Some(n.to_string()));
    assert!(
        r.errors
            .iter()
            .all(|e| !e.field.starts_with("spec.machines[")),
        "{:?}",
        r.errors
    );
}

#[test]
fn a_list_or_map_just_past_what_is_decoded_is_counted_right() {
    // Exactly one past what the decode keeps, and far past it, in a nested list and a map.
    for extra in [1usize, 2, 1000] {
        let taints = decoded(MAX_TAINTS) + 1 + extra;
        let args = decoded(MAX_EXTRA_ARGS) + 1 + extra;
        let mut spec = spec_with_machines(0);
        spec["machines"] = json!([{"ip": "10.0.0.1", "username": "root", "password": "MTIzNDU2",
            "taints": vec![json!({"key": "k", "effect": "NoSchedule"}); taints]}]);
        spec["kubeletExtraArgs"] = Value::Object(
            (0..args)
                .map(|i| (format!("a{i}"), Value::String("v".into())))
                .collect(),
        );
        let text = serde_json::to_string(&spec).unwrap();
        let from_text: DecodedSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(
            from_text.lengths.get("spec.machines[0].taints"),
            Some(taints)
        );
        assert_eq!(from_text.lengths.get("spec.kubeletExtraArgs"), Some(args));
        let r = review(&object(spec), None, &Policy::default()).unwrap();
        assert_eq!(
            too_many(&r.errors, "spec.machines[0].taints"),
            Some(taints.to_string())
        );
        assert_eq!(
            too_many(&r.errors, "spec.kubeletExtraArgs"),
            Some(args.to_string())
        );
    }
}

#[test]
fn a_list_within_what_is_decoded_is_decoded_whole() {
    let n = decoded(MAX_MACHINES);
    let text = serde_json::to_string(&spec_with_machines(n)).unwrap();
    let d: DecodedSpec = serde_json::from_str(&text).unwrap();
    assert_eq!(d.spec.machines.unwrap().len(), n);
    assert!(d.lengths.is_empty());
}

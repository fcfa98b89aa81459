//! The defaults patch: what it adds, that it never overwrites, idempotence, unknown fields survive.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};

fn patch_json(v: &Value) -> Value {
    serde_json::to_value(&run(v).patch).unwrap()
}

/// Apply the review's patch to `v` and return the result.
fn patched(v: &Value) -> Value {
    let r = run(v);
    let mut out = v.clone();
    json_patch::patch(&mut out, &r.patch).unwrap();
    assert_eq!(out, r.defaulted, "defaulted must equal input + patch");
    out
}

#[test]
fn port_22_when_missing() {
    let v = with(tke3(), &[("/spec/machines/1/port", None)]);
    assert_eq!(
        patch_json(&v),
        json!([{"op": "add", "path": "/spec/machines/1/port", "value": 22}])
    );
    let v = with(tke3(), &[("/spec/machines/0/port", Some(Value::Null))]);
    assert_eq!(patched(&v)["spec"]["machines"][0]["port"], 22);
}

#[test]
fn vrid_from_vip() {
    for (vip, vrid) in [
        ("192.168.1.0", 1),
        ("192.168.1.33", 34),
        ("192.168.1.254", 255),
        ("192.168.1.255", 1),
        ("2001:db8::1:fe", 255),
    ] {
        let mut v = with(
            tke3(),
            &[
                ("/spec/features/ha/tke/vrid", None),
                ("/spec/features/ha/tke/vip", Some(json!(vip))),
            ],
        );
        if vip.contains(':') {
            for (i, ip) in ["2001:db8::2", "2001:db8::3", "2001:db8::4"]
                .iter()
                .enumerate()
            {
                set(&mut v, &format!("/spec/machines/{i}/ip"), Some(json!(ip)));
            }
            set(&mut v, "/spec/clusterCIDR", Some(json!("fd00:10:244::/56")));
        }
        let out = patched(&v);
        assert_eq!(out["spec"]["features"]["ha"]["tke"]["vrid"], vrid, "{vip}");
        let r = run(&v);
        assert!(r.allowed(), "{vip}: {}", dump(&r));
    }
}

#[test]
fn no_vrid_when_vip_does_not_parse() {
    let v = with(
        tke3(),
        &[
            ("/spec/features/ha/tke/vrid", None),
            ("/spec/features/ha/tke/vip", Some(json!("192.168.1.300"))),
        ],
    );
    let out = patched(&v);
    assert!(out["spec"]["features"]["ha"]["tke"].get("vrid").is_none());
    assert_eq!(
        out["spec"]["publicAlternativeNames"],
        json!(["192.168.1.10"])
    );
}

#[test]
fn vip_added_to_alt_names() {
    // array missing: created
    let v = with(tke3(), &[("/spec/publicAlternativeNames", None)]);
    assert_eq!(
        patch_json(&v),
        json!([{"op": "add", "path": "/spec/publicAlternativeNames", "value": ["192.168.1.10"]}])
    );
    // array present without the VIP: appended
    let v = with(
        tke3(),
        &[(
            "/spec/publicAlternativeNames",
            Some(json!(["api.example.com"])),
        )],
    );
    assert_eq!(
        patched(&v)["spec"]["publicAlternativeNames"],
        json!(["api.example.com", "192.168.1.10"])
    );
    // third party too
    let v = with(tp3(), &[("/spec/publicAlternativeNames", None)]);
    assert_eq!(
        patched(&v)["spec"]["publicAlternativeNames"],
        json!(["192.168.1.5"])
    );
    // present in another spelling of the same address: not added again
    let mut v = tke3();
    set(
        &mut v,
        "/spec/features/ha/tke/vip",
        Some(json!("2001:db8::10")),
    );
    set(
        &mut v,
        "/spec/publicAlternativeNames",
        Some(json!(["2001:0db8::10"])),
    );
    assert!(run(&v).patch.0.is_empty());
}

#[test]
fn vport_not_defaulted() {
    let v = with(tp3(), &[("/spec/features/ha/thirdParty/vport", None)]);
    assert_eq!(patch_json(&v), json!([]));
}

#[test]
fn nothing_overwritten() {
    let v = with(
        tke3(),
        &[
            ("/spec/machines/0/port", Some(json!(2222))),
            ("/spec/features/ha/tke/vrid", Some(json!(77))),
        ],
    );
    assert_eq!(patch_json(&v), json!([]));
    // even invalid user values are left for validation to report
    let v = with(tke3(), &[("/spec/features/ha/tke/vrid", Some(json!(0)))]);
    assert_eq!(patch_json(&v), json!([]));
}

#[test]
fn applying_twice_adds_nothing() {
    let v = with(
        tke3(),
        &[
            ("/spec/machines/0/port", None),
            ("/spec/machines/2/port", None),
            ("/spec/features/ha/tke/vrid", None),
            ("/spec/publicAlternativeNames", None),
        ],
    );
    let once = patched(&v);
    assert_eq!(run(&v).patch.0.len(), 4);
    assert!(run(&once).patch.0.is_empty());
    assert_eq!(patched(&once), once);
}

#[test]
fn unknown_fields_survive() {
    let v = with(
        tke3(),
        &[
            ("/spec/machines/0/port", None),
            (
                "/spec/etcd",
                Some(json!({"local": {"dataDir": "/data/etcd"}})),
            ),
            (
                "/spec/machines/0/proxy",
                Some(json!({"type": "SOCKS5", "ip": "10.0.0.1"})),
            ),
            ("/spec/features/ha/tke/futureField", Some(json!([1, 2, 3]))),
            ("/spec/features/containerRuntime", Some(json!("containerd"))),
            (
                "/status",
                Some(json!({"phase": "Running", "extra": {"x": 1}})),
            ),
            ("/metadata/annotations", Some(json!({"a/b~c": "d"}))),
        ],
    );
    let out = patched(&v);
    let mut expected = v.clone();
    expected["spec"]["machines"][0]["port"] = json!(22);
    assert_eq!(out, expected);
}

#[test]
fn seeds_defaults() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed-tke-ha.jsonc"
    ))
    .unwrap();
    let v = tkeha_api::parse_manifest(&text).unwrap();
    assert_eq!(
        patch_json(&v),
        json!([
            {"op": "add", "path": "/spec/dnsDomain", "value": "cluster.local"},
            {"op": "add", "path": "/spec/features/ha/tke/vrid", "value": 4},
            {"op": "add", "path": "/spec/publicAlternativeNames", "value": ["192.168.1.3"]},
            {"op": "add", "path": "/metadata", "value": {"generateName": "cls-"}}
        ])
    );
}

#[test]
fn tkestack_defaults_cluster_cidr_dns_domain_and_generate_name() {
    let bare = with(
        tke3(),
        &[
            ("/spec/clusterCIDR", None),
            ("/spec/dnsDomain", None),
            ("/metadata/name", None),
        ],
    );
    assert_eq!(
        patch_json(&bare),
        json!([
            {"op": "add", "path": "/spec/clusterCIDR", "value": "10.244.0.0/16"},
            {"op": "add", "path": "/spec/dnsDomain", "value": "cluster.local"},
            {"op": "add", "path": "/metadata/generateName", "value": "cls-"}
        ])
    );
    let out = patched(&bare);
    assert_eq!(out["metadata"], json!({"generateName": "cls-"}));
    // A given value, a name or a generateName is never replaced.
    let given = with(
        tke3(),
        &[
            ("/spec/clusterCIDR", Some(json!("10.100.0.0/16"))),
            ("/spec/dnsDomain", Some(json!("corp.local"))),
            ("/metadata/name", None),
            ("/metadata/generateName", Some(json!("prod-"))),
        ],
    );
    assert_eq!(patch_json(&given), json!([]));
    // Not on update: the name is the API server's by then.
    let r = run_update(&bare, &tke3());
    assert!(
        !serde_json::to_string(&r.patch)
            .unwrap()
            .contains("generateName"),
        "{:?}",
        r.patch
    );
}

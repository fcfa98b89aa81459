//! Update rules with old/new pairs: immutable fields, HA mode/VIP/VRID/vport, master scaling.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use tkeha_api::ErrorType::{self, *};

fn m(ip: &str) -> Value {
    json!({"ip": ip, "port": 22, "username": "root", "password": "MTIzNDU2"})
}

fn expect(new: &Value, old: &Value, field: &str, kind: ErrorType, needle: &str) {
    let r = run_update(new, old);
    let e = r.errors.iter().find(|e| e.field == field && e.kind == kind);
    let e = e.unwrap_or_else(|| panic!("expected {field} {kind:?}, got\n{}", dump(&r)));
    assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
}

fn expect_ok(new: &Value, old: &Value) {
    let r = run_update(new, old);
    assert!(r.allowed(), "expected allowed, got\n{}", dump(&r));
}

#[test]
fn unchanged_update_is_allowed() {
    expect_ok(&tke3(), &tke3());
    expect_ok(&tp3(), &tp3());
}

#[test]
fn immutable_fields() {
    for (ptr, field, val) in [
        ("/spec/type", "spec.type", json!("Imported")),
        (
            "/spec/clusterCIDR",
            "spec.clusterCIDR",
            json!("10.245.0.0/16"),
        ),
        ("/spec/networkDevice", "spec.networkDevice", json!("eth1")),
        ("/spec/dnsDomain", "spec.dnsDomain", json!("corp.local")),
    ] {
        let new = with(tke3(), &[(ptr, Some(val))]);
        expect(&new, &tke3(), field, Invalid, "field is immutable");
    }
    // removing a set value is a change too (back to the default, here)
    let old = with(tke3(), &[("/spec/dnsDomain", Some(json!("corp.local")))]);
    let new = with(tke3(), &[("/spec/dnsDomain", None)]);
    expect(&new, &old, "spec.dnsDomain", Invalid, "field is immutable");
    // removing a value equal to the default is no change: the default comes back
    expect_ok(&with(tke3(), &[("/spec/dnsDomain", None)]), &tke3());
    // a stored object without the defaulted fields: adding the defaults is no change
    let bare = with(
        tke3(),
        &[("/spec/dnsDomain", None), ("/spec/clusterCIDR", None)],
    );
    expect_ok(&tke3(), &bare);
    expect(
        &with(
            tke3(),
            &[("/spec/clusterCIDR", Some(json!("10.245.0.0/16")))],
        ),
        &bare,
        "spec.clusterCIDR",
        Invalid,
        "it was \"10.244.0.0/16\"",
    );
    // version and serviceCIDR may change
    expect_ok(
        &with(tke3(), &[("/spec/version", Some(json!("1.22.0")))]),
        &tke3(),
    );
}

#[test]
fn ha_mode_immutable() {
    expect(
        &tp3(),
        &tke3(),
        "spec.features.ha",
        Invalid,
        "field is immutable",
    );
    expect(
        &tke3(),
        &tp3(),
        "spec.features.ha",
        Invalid,
        "was thirdParty",
    );
    let no_ha = with(tke3(), &[("/spec/features", None)]);
    expect(
        &no_ha,
        &tke3(),
        "spec.features.ha",
        Invalid,
        "field is immutable",
    );
    // setting HA for the first time is allowed
    expect_ok(&tke3(), &no_ha);
}

#[test]
fn vip_vrid_vport_immutable() {
    let new = with(
        tke3(),
        &[("/spec/features/ha/tke/vip", Some(json!("192.168.1.11")))],
    );
    expect(
        &new,
        &tke3(),
        "spec.features.ha.tke.vip",
        Invalid,
        "field is immutable",
    );
    let new = with(tke3(), &[("/spec/features/ha/tke/vrid", Some(json!(12)))]);
    expect(
        &new,
        &tke3(),
        "spec.features.ha.tke.vrid",
        Invalid,
        "field is immutable",
    );
    // a missing vrid is re-defaulted from the same VIP: no change if old had the default
    let old = with(tke3(), &[("/spec/features/ha/tke/vrid", None)]);
    expect_ok(&tke3(), &old);
    let new = with(tke3(), &[("/spec/features/ha/tke/vrid", None)]);
    expect_ok(&new, &tke3());
    let new = with(
        tp3(),
        &[(
            "/spec/features/ha/thirdParty/vip",
            Some(json!("192.168.1.6")),
        )],
    );
    expect(
        &new,
        &tp3(),
        "spec.features.ha.thirdParty.vip",
        Invalid,
        "field is immutable",
    );
    let new = with(
        tp3(),
        &[("/spec/features/ha/thirdParty/vport", Some(json!(8443)))],
    );
    expect(
        &new,
        &tp3(),
        "spec.features.ha.thirdParty.vport",
        Invalid,
        "field is immutable",
    );
}

#[test]
fn scaling_needs_ha() {
    let old = with(
        tke3(),
        &[
            ("/spec/features", None),
            ("/spec/publicAlternativeNames", None),
        ],
    );
    let new = with(old.clone(), &[("/spec/machines/3", Some(m("192.168.1.9")))]);
    expect(
        &new,
        &old,
        "spec.machines",
        Invalid,
        "requires spec.features.ha",
    );
}

#[test]
fn scale_up_and_down_allowed_with_ha() {
    let up = with(
        tke3(),
        &[
            ("/spec/machines/3", Some(m("192.168.1.9"))),
            ("/spec/machines/4", Some(m("192.168.1.8"))),
        ],
    );
    expect_ok(&up, &tke3());
    let down = with(tke3(), &[("/spec/machines/2", None)]);
    expect_ok(&down, &tke3());
}

#[test]
fn no_add_and_remove_in_one_update() {
    // same length, one replaced: TKEStack misses this; we reject it
    let new = with(tke3(), &[("/spec/machines/2", Some(m("192.168.1.9")))]);
    expect(
        &new,
        &tke3(),
        "spec.machines",
        Invalid,
        "in parallel is not allowed: removed [192.168.1.4], added [192.168.1.9]",
    );
    let new = with(
        tke3(),
        &[
            ("/spec/machines/2", None),
            ("/spec/machines/1", Some(m("192.168.1.9"))),
        ],
    );
    expect(&new, &tke3(), "spec.machines", Invalid, "in parallel");
}

#[test]
fn first_master_stays() {
    let new = with(tke3(), &[("/spec/machines/0", None)]);
    expect(
        &new,
        &tke3(),
        "spec.machines",
        Invalid,
        "master[0] can't scale down: 192.168.1.2",
    );
    // reordered: machines[0] must stay first
    let mut new = tke3();
    new["spec"]["machines"].as_array_mut().unwrap().swap(0, 1);
    expect(
        &new,
        &tke3(),
        "spec.machines[0].ip",
        Invalid,
        "must stay first",
    );
}

#[test]
fn undecodable_old_skips_update_rules_with_warning() {
    let old = with(tke3(), &[("/spec/machines/0/port", Some(json!("22")))]);
    let new = with(tke3(), &[("/spec/networkDevice", Some(json!("eth1")))]);
    let r = run_update(&new, &old);
    assert!(r.allowed(), "{}", dump(&r));
    assert!(
        r.warnings.iter().any(|w| w.starts_with("oldObject: ")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn machines_compare_by_address_not_spelling() {
    // the same IPv6 address spelt two ways is the same master: no scaling at all
    let old = with(
        tke3(),
        &[("/spec/machines/2/ip", Some(json!("2001:db8::4")))],
    );
    let new = with(
        tke3(),
        &[("/spec/machines/2/ip", Some(json!("2001:db8:0:0::4")))],
    );
    let r = run_update(&new, &old);
    assert!(
        !r.errors
            .iter()
            .any(|e| e.field.starts_with("spec.machines")),
        "{}",
        dump(&r)
    );
    // a replaced master is named in canonical form; an unparsable one as written
    let new = with(
        tke3(),
        &[("/spec/machines/2/ip", Some(json!("2001:db8:0:0::9")))],
    );
    expect(
        &new,
        &old,
        "spec.machines",
        Invalid,
        "removed [2001:db8::4], added [2001:db8::9]",
    );
    let new = with(tke3(), &[("/spec/machines/2/ip", Some(json!("not-an-ip")))]);
    expect(
        &new,
        &tke3(),
        "spec.machines",
        Invalid,
        "removed [192.168.1.4], added [not-an-ip]",
    );
}

#[test]
fn a_stored_cluster_over_the_machine_bound_ratchets() {
    // Stored before the bound existed: 29 masters, 16 allowed.
    let ips: Vec<String> = (2..=30).map(|i| format!("192.168.1.{i}")).collect();
    let machines = |ips: &[String]| Some(Value::Array(ips.iter().map(|ip| m(ip)).collect()));
    let old = with(tke3(), &[("/spec/machines", machines(&ips))]);
    assert!(!run(&old).allowed());
    // An unrelated edit goes through; the old problem is a warning.
    let new = with(old.clone(), &[("/spec/version", Some(json!("1.22.0")))]);
    let r = run_update(&new, &old);
    assert!(r.allowed(), "{}", dump(&r));
    assert!(
        r.warnings.iter().any(|w| w.starts_with(
            "already invalid before this update: spec.machines: Too many: 29: must have at most 16 items"
        )),
        "{}",
        dump(&r)
    );
    // Growing it further is refused.
    let mut grown = ips.clone();
    grown.push("192.168.1.31".to_string());
    let new = with(tke3(), &[("/spec/machines", machines(&grown))]);
    expect(&new, &old, "spec.machines", TooMany, "at most 16");
    // The update rules still apply past the bound.
    let mut swapped = ips.clone();
    swapped[29 - 2] = "192.168.1.99".to_string();
    let new = with(tke3(), &[("/spec/machines", machines(&swapped))]);
    expect(
        &new,
        &old,
        "spec.machines",
        Invalid,
        "removed [192.168.1.29], added [192.168.1.99]",
    );
}

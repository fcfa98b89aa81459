//! Third-party HA against a real haproxy: `check` reports which masters the LB reaches through
//! VIP:vport, a single-backend LB is an error, and after `apply` a master that the LB will not
//! serve (no hairpin) still reaches an apiserver through VIP:vport thanks to the local redirect.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use tkeha_e2e::lab::{LabConfig, ManifestOptions, Mode};
use tkeha_e2e::scenario::{lab, manifest, provision, provision_ok};

fn third_party(vport: u16) -> ManifestOptions {
    ManifestOptions {
        mode: Mode::ThirdParty,
        vport,
        ..ManifestOptions::default()
    }
}

fn bound(r: &tkeha_e2e::provisioner::Run) -> Vec<String> {
    let mut v: Vec<String> = r.report["lb"]["bound"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn check_counts_the_masters_the_lb_reaches() {
    let lab = lab(LabConfig {
        masters: 3,
        lb: true,
        ..LabConfig::default()
    });
    // The LB drops m1's own traffic to the VIP (it cannot hairpin): the binding seen from this host
    // is complete, but m1's self-connect test fails and is reported.
    lab.lb_drop_from(0, 6443, true).unwrap();
    let m = manifest(&lab, "cluster.json", &third_party(6443), |_| {});
    let r = provision_ok(&lab, "check", &m, &[]);
    assert_eq!(r.report["mode"], "thirdParty");
    assert_eq!(bound(&r), lab.ips(), "bound masters:\n{}", r.stdout);
    let selfc = r.report["lb"]["self_connect"].as_array().unwrap();
    assert_eq!(selfc.len(), 3, "{}", r.stdout);
    for s in selfc {
        let from_m1 = s["host"] == lab.masters[0].ip.as_str();
        assert_eq!(s["ok"], !from_m1, "self-connect: {s}");
    }
    // check is read-only and its temporary listeners are gone.
    for i in 0..3 {
        let rules = lab.exec(i, "iptables -t nat -S OUTPUT").unwrap();
        assert!(
            !rules.contains("tkeha-hairpin"),
            "check installed a rule on m{}",
            i + 1
        );
        let addr = format!("{}:6443", lab.masters[i].ip).parse().unwrap();
        assert!(
            !tkeha_e2e::lab::probe::tcp_open(addr, Duration::from_millis(500)),
            "a listener was left on m{}",
            i + 1
        );
    }
}

#[test]
fn a_single_backend_lb_is_an_error() {
    let lab = lab(LabConfig {
        masters: 3,
        lb: true,
        lb_single_backend: true,
        ..LabConfig::default()
    });
    let m = manifest(&lab, "cluster.json", &third_party(6443), |_| {});
    let r = provision(&lab, "check", &m, &[]);
    assert_eq!(
        r.code,
        1,
        "a single-backend LB must fail check:\n{}",
        r.all_output()
    );
    assert_eq!(bound(&r), vec![lab.masters[0].ip.clone()], "{}", r.stdout);
}

#[test]
fn after_apply_a_master_the_lb_drops_still_reaches_an_apiserver() {
    let vport = 16443;
    let lab = lab(LabConfig {
        masters: 3,
        lb: true,
        vports: vec![vport],
        ..LabConfig::default()
    });
    let m = manifest(&lab, "cluster.json", &third_party(vport), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    let rerun = provision_ok(&lab, "apply", &m, &[]);
    for h in rerun.hosts() {
        assert_eq!(h["changed"], false, "rerun changed a host: {h}");
    }
    for i in 0..3 {
        lab.start_apiserver(i).unwrap();
        let rules = lab.exec(i, "iptables -t nat -S OUTPUT").unwrap();
        assert_eq!(
            rules.matches("tkeha-hairpin").count(),
            1,
            "m{}: {rules}",
            i + 1
        );
    }
    lab.lb_drop_from(0, vport, true).unwrap();
    let url = format!("http://{}:{vport}/", lab.vip());
    // From m1 the LB is unreachable, but the local redirect serves it.
    let out = lab.exec(0, &format!("curl -s --max-time 3 {url}")).unwrap();
    assert_eq!(out.trim(), format!("apiserver {}", lab.masters[0].ns));
    // Without the redirect rule m1 would time out (the LB really drops it).
    lab.exec(0, &format!("iptables -t nat -D OUTPUT -d {}/32 -p tcp --dport {vport} -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443", lab.vip())).unwrap();
    assert!(
        lab.exec(0, &format!("curl -s --max-time 2 {url}")).is_err(),
        "the LB did not drop m1's traffic"
    );
}

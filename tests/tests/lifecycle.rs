//! After installation: `status` sees split brain, `drill` measures a failover, `uninstall` leaves
//! nothing behind (no keepalived, no files, no iptables rule, no VIP).
#![allow(clippy::unwrap_used)]

use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions, Mode};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, provision, provision_ok, single_holder};

fn nothing_left(lab: &Lab) {
    for i in 0..lab.masters.len() {
        assert!(
            lab.pids_named(i, "keepalived").is_empty(),
            "keepalived still runs on m{}",
            i + 1
        );
        let left: Vec<_> = std::fs::read_dir(lab.etc(i).join("keepalived"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            left.is_empty(),
            "m{} still has {left:?} in /etc/keepalived",
            i + 1
        );
        let rules = lab.exec(i, "iptables -t nat -S OUTPUT").unwrap();
        assert!(
            !rules.contains("tkeha-hairpin"),
            "m{} keeps the hairpin rule",
            i + 1
        );
        let run = lab.exec(i, "ls /run").unwrap();
        assert!(
            !run.contains("keepalived.pid"),
            "m{} keeps /run/keepalived.pid",
            i + 1
        );
    }
    assert!(lab.holders().is_empty(), "the VIP is still held");
}

#[test]
fn uninstall_tke_leaves_nothing_behind() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    single_holder(&lab, SETTLE).unwrap();
    let r = provision_ok(&lab, "uninstall", &m, &[]);
    assert_eq!(r.report["action"], "uninstall");
    nothing_left(&lab);
    // Idempotent.
    provision_ok(&lab, "uninstall", &m, &[]);
}

#[test]
fn uninstall_third_party_removes_the_hairpin_rule() {
    let lab = lab(LabConfig {
        masters: 2,
        lb: true,
        ..LabConfig::default()
    });
    let opts = ManifestOptions {
        mode: Mode::ThirdParty,
        ..ManifestOptions::default()
    };
    let m = manifest(&lab, "cluster.json", &opts, |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    assert!(
        lab.exec(0, "iptables -t nat -S OUTPUT")
            .unwrap()
            .contains("tkeha-hairpin")
    );
    provision_ok(&lab, "uninstall", &m, &[]);
    for i in 0..2 {
        let rules = lab.exec(i, "iptables -t nat -S OUTPUT").unwrap();
        assert!(
            !rules.contains("tkeha-hairpin"),
            "m{} keeps the hairpin rule",
            i + 1
        );
    }
}

#[test]
fn status_reports_split_brain_with_a_non_zero_exit() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    let holder = single_holder(&lab, SETTLE).unwrap();
    let ok = provision_ok(&lab, "status", &m, &[]);
    assert_eq!(ok.report["split_brain"], false);
    assert_eq!(ok.report["vip_holder"], lab.masters[holder].ip);
    let h = ok.host(&lab.masters[holder].ip).unwrap();
    assert_eq!(h["holds_vip"], true);
    assert_eq!(h["state"], "MASTER");

    let other = (holder + 1) % 3;
    tkeha_e2e::lab::cmd::run(
        "ip",
        &[
            "-n",
            &lab.masters[other].ns,
            "addr",
            "add",
            &format!("{}/32", lab.vip()),
            "dev",
            "eth0",
        ],
    )
    .unwrap();
    let r = provision(&lab, "status", &m, &[]);
    assert_ne!(
        r.code,
        0,
        "status must fail on split brain:\n{}",
        r.all_output()
    );
    assert_eq!(r.report["split_brain"], true, "{}", r.stdout);
    assert_eq!(r.host(&lab.masters[other].ip).unwrap()["holds_vip"], true);
}

#[test]
fn drill_reports_a_failover_time() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    let r = provision_ok(&lab, "drill", &m, &[]);
    let d = &r.report["drill"];
    assert!(
        d["failover_ms"].as_u64().is_some_and(|ms| ms > 0),
        "no failover_ms: {}",
        r.stdout
    );
    assert_eq!(d["from"], lab.masters[holder].ip, "{}", r.stdout);
    assert_ne!(d["to"], d["from"]);
    // Restored: keepalived runs everywhere again and one master holds the VIP.
    single_holder(&lab, SETTLE).unwrap();
    for i in 0..3 {
        assert!(
            !lab.pids_named(i, "keepalived").is_empty(),
            "keepalived not restored on m{}",
            i + 1
        );
    }
}

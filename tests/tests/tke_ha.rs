//! TKE HA end to end: keepalived installed by `tkeha-provisioner apply` on fresh lab masters brings
//! the VIP up before any apiserver runs, reruns touch nothing, and the VIP follows apiserver death
//! and link loss without ever sitting on two masters.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use tkeha_e2e::lab::{LabConfig, ManifestOptions};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, moved_from, provision_ok, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

const SAMPLE: Duration = Duration::from_millis(50);

fn ping(ip: &str) -> bool {
    std::process::Command::new("ping")
        .args(["-c", "1", "-W", "1", ip])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn fresh_masters_get_one_vip_holder_and_a_rerun_changes_nothing() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let first = provision_ok(&lab, "apply", &m, &[]);
    assert_eq!(first.report["action"], "apply");
    assert_eq!(first.report["vip"], lab.vip());
    assert_eq!(first.hosts().len(), 3, "{}", first.stdout);
    for h in first.hosts() {
        assert_eq!(h["ok"], true, "{h}");
        assert_eq!(h["changed"], true, "a fresh master must be changed: {h}");
    }
    // No apiserver anywhere yet (bootstrap): the VIP is still up, on exactly one master.
    let holder = single_holder(&lab, SETTLE).unwrap();
    assert_eq!(
        first.report["vip_holder"], lab.masters[holder].ip,
        "{}",
        first.stdout
    );
    assert_eq!(first.report["split_brain"], false);
    assert!(ping(&lab.vip()), "the VIP does not answer ping");
    for i in 0..3 {
        let conf = std::fs::read_to_string(lab.etc(i).join("keepalived/keepalived.conf")).unwrap();
        assert!(
            conf.contains(&lab.vip()),
            "keepalived.conf on m{} lacks the VIP",
            i + 1
        );
        assert!(lab.etc(i).join("keepalived/check_apiserver.sh").exists());
        assert!(
            !lab.pids_named(i, "keepalived").is_empty(),
            "no keepalived on m{}",
            i + 1
        );
    }
    let pids: Vec<Vec<u32>> = (0..3).map(|i| lab.pids_named(i, "keepalived")).collect();
    let confs: Vec<String> = (0..3)
        .map(|i| std::fs::read_to_string(lab.etc(i).join("keepalived/keepalived.conf")).unwrap())
        .collect();

    let again = provision_ok(&lab, "apply", &m, &[]);
    for h in again.hosts() {
        assert_eq!(h["changed"], false, "rerun changed a host: {h}");
        assert_eq!(h["restarted"], false, "rerun restarted keepalived: {h}");
    }
    for i in 0..3 {
        assert_eq!(
            lab.pids_named(i, "keepalived"),
            pids[i],
            "keepalived restarted on m{}",
            i + 1
        );
        let conf = std::fs::read_to_string(lab.etc(i).join("keepalived/keepalived.conf")).unwrap();
        assert_eq!(
            conf,
            confs[i],
            "rerun rewrote keepalived.conf on m{} (auth_pass must be reused)",
            i + 1
        );
    }
    assert_eq!(lab.holders(), vec![holder], "the rerun moved the VIP");
}

#[test]
fn apiserver_death_moves_the_vip_and_recovery_does_not_take_it_back() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    let answer = lab.get_vip(6443, Duration::from_secs(2)).unwrap();
    assert_eq!(answer, format!("apiserver {}", lab.masters[holder].ns));

    let watch = Watch::start(&lab, SAMPLE, None);
    lab.stop_apiserver(holder).unwrap();
    let new = moved_from(&lab, holder, SETTLE).unwrap();
    assert_ne!(new, holder);

    // The old master recovers: it must not take the VIP back (no second outage).
    lab.start_apiserver(holder).unwrap();
    let steady = tkeha_e2e::lab::probe::wait_for(Duration::from_secs(5), SAMPLE, || {
        let h = lab.holders();
        (h != vec![new]).then_some(h)
    });
    assert_eq!(
        steady, None,
        "the VIP left master {new} after master {holder} recovered"
    );
    let samples = watch.stop();
    assert!(samples.len() > 20, "too few samples: {}", samples.len());
    let split = split_samples(&samples);
    assert!(
        split.is_empty(),
        "{} samples with two holders, first {:?}",
        split.len(),
        split.first()
    );
    assert_eq!(
        lab.get_vip(6443, Duration::from_secs(2)).unwrap(),
        format!("apiserver {}", lab.masters[new].ns)
    );
}

#[test]
fn link_down_on_the_holder_moves_the_vip() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    let watch = Watch::start(&lab, SAMPLE, None);
    lab.set_link(holder, false).unwrap();
    let new = moved_from(&lab, holder, SETTLE).unwrap();
    lab.set_link(holder, true).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let samples = watch.stop();
    let split = split_samples(&samples);
    assert!(
        split.is_empty(),
        "{} samples with two holders, first {:?}",
        split.len(),
        split.first()
    );
    assert_eq!(
        lab.holders(),
        vec![new],
        "the VIP moved again after the link came back"
    );
}

//! TKE HA end to end: keepalived installed by `tkeha-provisioner apply` on fresh lab masters brings
//! the VIP up before any apiserver runs, reruns touch nothing, and the VIP follows apiserver death
//! and link loss without ever sitting on two masters.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
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

/// The provisioner's per-host SSH exec count (the install target is 6 or fewer).
fn round_trips_at_most_six(h: &serde_json::Value) {
    let n = h["round_trips"].as_u64().unwrap_or(0);
    assert!((1..=6).contains(&n), "{n} SSH round trips: {h}");
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
        round_trips_at_most_six(&h);
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

    // The VIP now answers on the network, but one of our masters holds it: no refusal.
    let again = provision_ok(&lab, "apply", &m, &[]);
    for h in again.hosts() {
        round_trips_at_most_six(&h);
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

#[test]
fn the_interface_is_the_one_holding_exactly_the_machine_ip() {
    let lab = lab(LabConfig::masters(2));
    // m1 also has 10.77.N.111 on lo, which lists first and contains "10.77.N.11" as a substring:
    // a substring match (TKEStack's grep) would pick lo, whose /32 cannot hold the VIP.
    let decoy = format!("{}1", lab.masters[0].ip);
    lab.exec(0, &format!("ip addr add {decoy}/32 dev lo"))
        .unwrap();
    let listed = lab.exec(0, "ip -o -4 addr show").unwrap();
    assert!(
        listed.find(&decoy).unwrap() < listed.find(&format!("{}/24", lab.masters[0].ip)).unwrap(),
        "the decoy must list first:\n{listed}"
    );
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let r = provision_ok(&lab, "apply", &m, &[]);
    assert_eq!(r.host(&lab.masters[0].ip).unwrap()["interface"], "eth0");
    let conf = std::fs::read_to_string(lab.etc(0).join("keepalived/keepalived.conf")).unwrap();
    assert!(conf.contains("interface eth0\n"), "{conf}");
    assert!(conf.contains(&format!("unicast_src_ip {}\n", lab.masters[0].ip)));
    single_holder(&lab, SETTLE).unwrap();
}

#[test]
fn a_config_keepalived_rejects_on_the_target_is_never_moved_into_place() {
    let lab = lab(LabConfig::masters(2));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    // A world-writable /etc/keepalived on m2 is refused by the preflight: nothing changes on
    // either master.
    let dir = lab.etc(1).join("keepalived");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = tkeha_e2e::scenario::provision(&lab, "apply", &m, &[]);
    assert_eq!(r.code, 1, "apply must fail:\n{}", r.all_output());
    let err = r.host(&lab.masters[1].ip).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.starts_with("/etc/keepalived is owned by uid 0 with mode 0777"),
        "{err}"
    );
    for i in 0..2 {
        assert!(!lab.etc(i).join("keepalived/keepalived.conf").exists());
        assert!(lab.pids_named(i, "keepalived").is_empty());
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A world-writable /etc on m2 (the preflight looks at /etc/keepalived only): with
    // enable_script_security, keepalived -t (run on m2 itself) refuses the health-check script
    // as insecure, and the config is not moved into place.
    let etc = lab.etc(1);
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = tkeha_e2e::scenario::provision(&lab, "apply", &m, &[]);
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(r.code, 1, "apply must fail:\n{}", r.all_output());
    let h = r.host(&lab.masters[1].ip).unwrap();
    assert_eq!(h["ok"], false, "{h}");
    let err = h["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("keepalived -t") && err.contains("insecure"),
        "the error should quote keepalived -t: {err}"
    );
    assert!(
        !dir.join("keepalived.conf").exists(),
        "a rejected config was moved into place"
    );
    assert!(
        !dir.join("keepalived.conf.tkeha-new").exists(),
        "the rejected upload was left behind"
    );
    assert!(
        lab.pids_named(1, "keepalived").is_empty(),
        "keepalived started on m2"
    );
}

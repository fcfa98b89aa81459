//! Beside TKEStack, on real programs: lab masters prepared as TKEStack leaves them (its
//! keepalived.conf from its template, its static pod manifest, a control plane), with
//! `tkeha-fake-kubelet` standing in for kubelet (it runs keepalived while the manifest exists
//! and sends it SIGTERM when it goes away; no kubelet or container engine runs here).
//! `status` reports the holder, the weaknesses and `managedBy` (VRRP multicast works across the
//! lab bridge, and dropping it shows as split brain); `drill` moves the VIP and puts the manifest
//! back, also after SIGINT mid-drill, and the master's own guard does it when the provisioner
//! is killed; `provision` and `uninstall` refuse and change nothing; a mixed cluster is refused.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tkeha_e2e::lab::tkestack::{MANIFEST, PARKED};
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions, probe};
use tkeha_e2e::provisioner::{self, Run};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, provision, provision_ok, single_holder};

const CONF: &str = "/etc/keepalived/keepalived.conf";

/// Three masters as TKEStack leaves them, the VIP settled on one; the stand-in kubelet looks
/// at its manifest every `poll_ms`.
fn tkestack_lab(poll_ms: u64) -> (Lab, usize) {
    let lab = lab(LabConfig::masters(3));
    lab.tkestack_cluster(poll_ms).unwrap();
    let holder = steady_holder(&lab);
    (lab, holder)
}

/// Exactly one holder, the same for 3 s (with multicast adverts lost every master would take it).
fn steady_holder(lab: &Lab) -> usize {
    let holder = single_holder(lab, SETTLE).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(
            lab.holders(),
            [holder],
            "the VIP did not stay on one master"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    holder
}

/// What must not change: the files' checksums and keepalived's PIDs on every master.
fn fingerprint(lab: &Lab) -> Vec<(String, String, Vec<u32>)> {
    (0..lab.masters.len())
        .map(|i| {
            (
                lab.checksum(i, CONF),
                lab.checksum(i, MANIFEST),
                lab.pids_named(i, "keepalived"),
            )
        })
        .collect()
}

fn codes(r: &Run) -> Vec<String> {
    r.report["warnings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|w| w["code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn status_reports_the_holder_the_weaknesses_and_managed_by() {
    let (lab, holder) = tkestack_lab(100);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let r = provision_ok(&lab, "status", &m, &[]);
    assert_eq!(r.report["managedBy"], "tkestack", "{}", r.stdout);
    assert_eq!(r.report["vip_holder"], lab.masters[holder].ip.as_str());
    assert_eq!(r.report["split_brain"], false);
    assert_eq!(
        codes(&r),
        [
            "tkestack-preempt",
            "tkestack-auth-pass",
            "tkestack-multicast",
            "tkestack-slow-detection"
        ]
    );
    for (i, h) in r.hosts().iter().enumerate() {
        assert_eq!(h["managedBy"], "tkestack");
        assert_eq!(h["health"], "pass", "{h}");
        let want = if i == holder { "MASTER" } else { "BACKUP" };
        assert_eq!(h["state"], want, "{h}");
    }

    // The text form says it too.
    let kh = lab.known_hosts_path();
    let out = Command::new(provisioner::binary().unwrap())
        .args(["status", "-f"])
        .arg(&m)
        .arg("--known-hosts")
        .arg(&kh)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("HA managed by TKEStack"), "{text}");
    assert!(
        text.contains("warning: VRRP adverts go to multicast 224.0.0.18"),
        "{text}"
    );

    // Cut one backup off VRRP multicast (as a network that drops it would): it takes the VIP
    // too, and status says split brain.
    let backup = (0..3).find(|&i| i != holder).unwrap();
    lab.exec(
        backup,
        "iptables -I INPUT -d 224.0.0.18 -j DROP && iptables -I OUTPUT -d 224.0.0.18 -j DROP",
    )
    .unwrap();
    let both = probe::wait_for(SETTLE, Duration::from_millis(50), || {
        (lab.holders().len() == 2).then_some(())
    });
    assert!(both.is_some(), "holders: {:?}", lab.holders());
    let r = provision(&lab, "status", &m, &[]);
    assert_eq!(r.code, 1, "{}", r.all_output());
    assert_eq!(r.report["split_brain"], true);
    assert!(
        r.report["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("SPLIT BRAIN: 2 masters hold VIP"),
        "{}",
        r.stdout
    );
    lab.exec(
        backup,
        "iptables -D INPUT -d 224.0.0.18 -j DROP && iptables -D OUTPUT -d 224.0.0.18 -j DROP",
    )
    .unwrap();
    single_holder(&lab, SETTLE).unwrap();
}

#[test]
fn check_reports_tkestack_managed_masters_not_a_conflict() {
    let (lab, _) = tkestack_lab(100);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let before = fingerprint(&lab);
    let r = provision_ok(&lab, "check", &m, &[]);
    assert_eq!(r.report["managedBy"], "tkestack");
    for h in r.hosts() {
        assert_eq!(h["interface"], "eth0", "{h}");
        let notes = h["notes"].to_string();
        assert!(notes.contains("TKEStack manages keepalived here"), "{h}");
        assert!(!notes.contains("move it away"), "{h}");
    }
    assert_eq!(fingerprint(&lab), before, "check changed a master");
}

#[test]
fn provision_and_uninstall_refuse_and_change_nothing() {
    let (lab, holder) = tkestack_lab(100);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let before = fingerprint(&lab);
    for action in ["apply", "uninstall"] {
        let r = provision(&lab, action, &m, &[]);
        assert_eq!(r.code, 1, "{action}: {}", r.all_output());
        let errors = r.report["errors"].to_string();
        assert!(
            errors.contains("TKEStack manages HA on these masters")
                && errors.contains("tkeha's part here is `check`, `status` and `drill`"),
            "{action}: {errors}"
        );
        assert_eq!(fingerprint(&lab), before, "{action} changed a master");
        assert_eq!(lab.holders(), [holder], "{action} moved the VIP");
        for i in 0..3 {
            let drill_dir = lab.exec(i, "ls -A /etc/kubernetes").unwrap();
            assert!(!drill_dir.contains("tkeha-drill"), "{action}: {drill_dir}");
        }
    }
}

#[test]
fn drill_moves_the_vip_and_puts_the_manifest_back() {
    let (lab, holder) = tkestack_lab(100);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let manifest_sum = lab.checksum(holder, MANIFEST);
    let old_pids = lab.pids_named(holder, "keepalived");
    let r = provision_ok(&lab, "drill", &m, &[]);
    let d = &r.report["drill"];
    assert_eq!(d["from"], lab.masters[holder].ip.as_str(), "{}", r.stdout);
    assert_ne!(d["to"], d["from"]);
    assert_eq!(d["oracle"], "tcp");
    assert!(d["failover_ms"].as_u64().unwrap() < 10_000, "{d}");
    assert_eq!(r.report["managedBy"], "tkestack");
    // Back where kubelet reads it, unchanged; kubelet started a new keepalived; nothing left over.
    assert_eq!(lab.checksum(holder, MANIFEST), manifest_sum);
    let new_pids = lab.pids_named(holder, "keepalived");
    assert!(!new_pids.is_empty() && new_pids != old_pids, "{new_pids:?}");
    assert_eq!(
        lab.exec(holder, "ls -A /etc/kubernetes").unwrap().trim(),
        "manifests"
    );
    assert!(
        lab.exec(holder, "pgrep -f 'tkeha-dril[l]/restore' || true")
            .unwrap()
            .trim()
            .is_empty(),
        "the guard is gone"
    );
    single_holder(&lab, SETTLE).unwrap();
}

/// `tkeha-provisioner drill` started in the background.
fn spawn_drill(lab: &Lab, m: &std::path::Path, timeout: &str) -> Child {
    Command::new(provisioner::binary().unwrap())
        .args(["drill", "-f"])
        .arg(m)
        .arg("--known-hosts")
        .arg(lab.known_hosts_path())
        .args(["-o", "json", "--timeout", timeout])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the drill parked the holder's manifest.
fn wait_parked(lab: &Lab, holder: usize) {
    let parked = lab.masters[holder]
        .dir
        .join("etc")
        .join(PARKED.trim_start_matches("/etc/"));
    let seen = probe::wait_for(Duration::from_secs(30), Duration::from_millis(10), || {
        parked.exists().then_some(())
    });
    assert!(seen.is_some(), "the drill never parked the manifest");
}

#[test]
fn sigint_in_the_middle_of_a_drill_puts_the_manifest_back() {
    // A kubelet that looks every 3 s: the pod outlives the move by up to 3 s, so the drill is
    // surely still waiting for the VIP when the signal comes.
    let (lab, holder) = tkestack_lab(3000);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let manifest_sum = lab.checksum(holder, MANIFEST);
    let child = spawn_drill(&lab, &m, "30");
    wait_parked(&lab, holder);
    assert_eq!(lab.checksum(holder, MANIFEST), "-", "parked, not copied");
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("interrupted: the drill stopped early and put keepalived back"),
        "{stdout}"
    );
    // Back by the time the provisioner exited, unchanged, and nothing of the drill is left.
    assert_eq!(lab.checksum(holder, MANIFEST), manifest_sum);
    assert_eq!(
        lab.exec(holder, "ls -A /etc/kubernetes").unwrap().trim(),
        "manifests"
    );
    let keepalived = probe::wait_for(SETTLE, Duration::from_millis(50), || {
        (!lab.pids_named(holder, "keepalived").is_empty()).then_some(())
    });
    assert!(keepalived.is_some(), "kubelet did not run keepalived again");
}

#[test]
fn a_killed_provisioner_leaves_the_restore_to_the_masters_guard() {
    let (lab, holder) = tkestack_lab(3000);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let manifest_sum = lab.checksum(holder, MANIFEST);
    // --timeout 2: the guard puts the manifest back 2 + 10 s after the park.
    let mut child = spawn_drill(&lab, &m, "2");
    wait_parked(&lab, holder);
    let parked_at = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        lab.checksum(holder, MANIFEST),
        "-",
        "nobody restored it yet"
    );
    let guard = lab
        .exec(holder, "pgrep -f 'tkeha-dril[l]/restore' || true")
        .unwrap();
    assert!(
        !guard.trim().is_empty(),
        "the master runs the guard, detached from the dead SSH session"
    );
    let back = probe::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (lab.checksum(holder, MANIFEST) == manifest_sum).then_some(())
    });
    assert!(back.is_some(), "the guard did not put the manifest back");
    let after = parked_at.elapsed();
    assert!(
        after >= Duration::from_secs(10),
        "restored after {after:?}: by the guard's timer, not earlier"
    );
    let keepalived = probe::wait_for(SETTLE, Duration::from_millis(50), || {
        (!lab.pids_named(holder, "keepalived").is_empty()).then_some(())
    });
    assert!(keepalived.is_some(), "kubelet did not run keepalived again");
}

#[test]
fn a_mixed_cluster_is_refused() {
    let lab = lab(LabConfig::masters(3));
    for i in 0..2 {
        lab.prepare_tkestack(i).unwrap();
        lab.start_fake_kubelet(i, 100).unwrap();
    }
    single_holder(&lab, SETTLE).unwrap();
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let before = fingerprint(&lab);
    for action in ["check", "apply", "status", "drill", "uninstall"] {
        let r = provision(&lab, action, &m, &[]);
        assert_eq!(r.code, 1, "{action}: {}", r.all_output());
        let first = r.report["errors"][0].as_str().unwrap_or_default();
        assert!(
            first.starts_with(&format!(
                "mixed cluster: TKEStack manages HA on [{}, {}] (its keepalived static pod and config) but not on [{}]",
                lab.masters[0].ip, lab.masters[1].ip, lab.masters[2].ip
            )),
            "{action}: {first}"
        );
        assert!(r.report.get("managedBy").is_none(), "{action}");
        assert_eq!(fingerprint(&lab), before, "{action} changed a master");
    }
    assert!(lab.pids_named(2, "keepalived").is_empty());
}

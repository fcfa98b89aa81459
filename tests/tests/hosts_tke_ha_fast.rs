//! The fast failover profile on booted Debian 12 masters (systemd PID 1): the apiserver probe
//! runs as the enabled `tkeha-apiserver-probe.service`, feeds keepalived, moves the VIP on
//! apiserver death, and is stopped, disabled and removed when the cluster goes back to
//! `standard` (a reload: keepalived's main PID stays).
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use std::time::{Duration, Instant};
use tkeha_e2e::lab::ManifestOptions;
use tkeha_e2e::lab::hosts::{HostLab, HostLabConfig};
use tkeha_e2e::scenario::{SETTLE, hosts_lab, manifest, moved_from, provision_ok, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

const PROBE_UNIT: &str = "tkeha-apiserver-probe";

fn reason(lab: &HostLab, i: usize) -> String {
    lab.exec(i, "cat /run/tkeha-apiserver.reason 2>/dev/null; true")
        .unwrap()
        .trim()
        .to_string()
}

fn wait_reason(lab: &HostLab, i: usize, want: &str) {
    let t = Instant::now();
    while reason(lab, i) != want && t.elapsed() < SETTLE {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        reason(lab, i),
        want,
        "probe verdict on {}",
        lab.masters[i].name
    );
}

#[test]
fn the_probe_is_a_systemd_service_that_moves_the_vip_and_goes_away_with_standard() {
    let lab = hosts_lab(HostLabConfig {
        masters: 2,
        keepalived_preinstalled: true,
        ..HostLabConfig::default()
    });
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &["--failover-profile", "fast"]);
    for i in 0..2 {
        let u = lab.unit(i, PROBE_UNIT).unwrap();
        assert_eq!(
            (u.enabled.as_str(), u.active.as_str()),
            ("enabled", "active"),
            "{PROBE_UNIT} on {}: {u:?}",
            lab.masters[i].name
        );
        wait_reason(&lab, i, "bootstrap");
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
        wait_reason(&lab, i, "ok");
    }
    let status = provision_ok(&lab, "status", &m, &[]);
    for h in status.hosts() {
        assert_eq!(h["failover_profile"], "fast", "{h}");
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    let watch = Watch::start_hosts(&lab, Duration::from_millis(20), None);
    lab.stop_apiserver(holder).unwrap();
    let new = moved_from(&lab, holder, SETTLE).unwrap();
    assert_eq!(reason(&lab, holder), "not-running");
    lab.start_apiserver(holder).unwrap();
    wait_reason(&lab, holder, "ok");

    // Back to standard: a reload, then the probe's unit is gone.
    let pids: Vec<u32> = (0..2)
        .map(|i| lab.unit(i, "keepalived").unwrap().main_pid)
        .collect();
    provision_ok(&lab, "apply", &m, &["--failover-profile", "standard"]);
    std::thread::sleep(Duration::from_secs(4));
    let split = split_samples(&watch.stop()).len();
    assert_eq!(split, 0, "samples with two holders");
    assert_eq!(lab.holders(), vec![new], "the VIP moved during the change");
    for i in 0..2 {
        assert_eq!(
            lab.unit(i, "keepalived").unwrap().main_pid,
            pids[i],
            "keepalived restarted"
        );
        let u = lab.unit(i, PROBE_UNIT).unwrap();
        assert_ne!(u.active, "active", "{u:?}");
        let gone = lab
            .exec(
                i,
                "ls /etc/systemd/system/tkeha-apiserver-probe.service 2>/dev/null; true",
            )
            .unwrap();
        assert_eq!(gone.trim(), "");
    }
}

//! The fast failover profile end to end on the network-namespace lab: keepalived with VRRPv3 and
//! 0.1 s adverts fed by the resident apiserver probe moves the VIP on apiserver death, on a hung
//! apiserver and on link loss, and tells the two apiserver failures apart; a busy holder keeps
//! the VIP; changing the profile either way is a reload during which the VIP keeps answering.
//! Timings are measured by `make bench`, not asserted here (bounds below are only generous).
#![allow(clippy::unwrap_used, clippy::needless_range_loop)]

use std::time::{Duration, Instant};
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, moved_from, provision_ok, single_holder};
use tkeha_e2e::watch::{Sample, Watch, split_samples};

const SAMPLE: Duration = Duration::from_millis(20);

fn reason(lab: &Lab, i: usize) -> String {
    lab.exec(i, "cat /run/tkeha-apiserver.reason 2>/dev/null || true")
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn wait_reason(lab: &Lab, i: usize, want: &str) -> Duration {
    let t = Instant::now();
    while reason(lab, i) != want && t.elapsed() < SETTLE {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(reason(lab, i), want, "probe verdict on m{}", i + 1);
    t.elapsed()
}

fn fast_lab(n: usize) -> (Lab, std::path::PathBuf) {
    let lab = lab(LabConfig::masters(n));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let r = provision_ok(&lab, "apply", &m, &["--failover-profile", "fast"]);
    for h in r.hosts() {
        assert_eq!(h["failover_profile"], "fast", "{h}");
    }
    (lab, m)
}

fn no_split(samples: &[Sample]) {
    let split = split_samples(samples);
    assert!(
        split.is_empty(),
        "{} samples with two holders, first {:?}",
        split.len(),
        split.first()
    );
}

#[test]
fn the_fast_profile_moves_the_vip_on_apiserver_death_a_hung_apiserver_and_link_loss() {
    let (lab, m) = fast_lab(3);
    for i in 0..3 {
        let conf = std::fs::read_to_string(lab.etc(i).join("keepalived/keepalived.conf")).unwrap();
        assert!(conf.contains("version 3\n    advert_int 0.1\n"), "{conf}");
        assert!(conf.contains("check_unicast_src"), "{conf}");
        // Bootstrap: no manifest yet, the probe passes and the VIP is up.
        wait_reason(&lab, i, "bootstrap");
        // No systemd in the namespaces: the probe runs as a daemon with its pid file.
        let alive = lab
            .exec(
                i,
                "kill -0 $(cat /run/tkeha-apiserver-probe.pid) && echo alive",
            )
            .unwrap_or_default();
        assert_eq!(alive.trim(), "alive", "no resident probe on m{}", i + 1);
    }
    single_holder(&lab, SETTLE).unwrap();
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
        wait_reason(&lab, i, "ok");
    }
    let status = provision_ok(&lab, "status", &m, &[]);
    for h in status.hosts() {
        assert_eq!(
            h["failover_profile"], "fast",
            "status reads the profile back: {h}"
        );
        assert_eq!(h["health"], "pass", "{h}");
    }
    let watch = Watch::start(&lab, SAMPLE, None);

    // Death: nothing listens on :6443 any more.
    let first = single_holder(&lab, SETTLE).unwrap();
    lab.stop_apiserver(first).unwrap();
    let second = moved_from(&lab, first, SETTLE).unwrap();
    assert_eq!(reason(&lab, first), "not-running");
    let status = tkeha_e2e::scenario::provision(&lab, "status", &m, &[]);
    let h = status.host(&lab.masters[first].ip).unwrap();
    assert_eq!(h["health"], "fail", "{h}");
    assert!(
        h["notes"]
            .to_string()
            .contains("apiserver probe: not running"),
        "{h}"
    );
    lab.start_apiserver(first).unwrap();
    wait_reason(&lab, first, "ok");

    // Hung: the process is stopped, its socket still accepts.
    lab.pause_apiserver(second, true).unwrap();
    let third = moved_from(&lab, second, SETTLE).unwrap();
    assert_eq!(reason(&lab, second), "not-answering");
    lab.pause_apiserver(second, false).unwrap();
    wait_reason(&lab, second, "ok");

    // Link loss, then the link back: the VIP stays where it went (nopreempt).
    lab.set_link(third, false).unwrap();
    let fourth = moved_from(&lab, third, SETTLE).unwrap();
    lab.set_link(third, true).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lab.holders(), vec![fourth]);
    no_split(&watch.stop());

    // Uninstall stops the probe and removes its files.
    let pids: Vec<String> = (0..3)
        .map(|i| {
            lab.exec(i, "cat /run/tkeha-apiserver-probe.pid")
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let r = provision_ok(&lab, "uninstall", &m, &[]);
    for i in 0..3 {
        assert!(
            !lab.etc(i)
                .join("keepalived/tkeha-apiserver-probe.sh")
                .exists(),
            "{}",
            r.stdout
        );
        let alive = lab
            .exec(
                i,
                &format!("kill -0 {} 2>/dev/null && echo alive; true", pids[i]),
            )
            .unwrap();
        assert_eq!(alive.trim(), "", "the probe still runs on m{}", i + 1);
    }
}

#[test]
fn changing_the_profile_is_a_reload_and_the_vip_keeps_answering() {
    let lab = lab(LabConfig::masters(3));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    assert!(lab.get_vip(6443, Duration::from_secs(2)).is_some());
    let pids: Vec<Vec<u32>> = (0..3).map(|i| lab.pids_named(i, "keepalived")).collect();
    for (to, from) in [("fast", "standard"), ("standard", "fast")] {
        let watch = Watch::start(&lab, SAMPLE, Some(6443));
        std::thread::sleep(Duration::from_millis(300));
        let r = provision_ok(&lab, "apply", &m, &["--failover-profile", to]);
        // Longer than the standard profile's master-down interval (3 s): a backup that
        // stopped hearing the holder would have taken over by now.
        std::thread::sleep(Duration::from_secs(4));
        let samples = watch.stop();
        for h in r.hosts() {
            assert_eq!(h["failover_profile"], to, "{from} -> {to}: {h}");
            assert_eq!(h["changed"], true, "{h}");
        }
        no_split(&samples);
        let unanswered: Vec<&Sample> = samples.iter().filter(|s| s.answer.is_none()).collect();
        assert!(
            unanswered.is_empty(),
            "{from} -> {to}: {} of {} samples unanswered, first at {:?}",
            unanswered.len(),
            samples.len(),
            unanswered.first().map(|s| s.at)
        );
        assert!(
            samples.iter().all(|s| s.holders == vec![holder]),
            "{from} -> {to}: the VIP moved"
        );
        for i in 0..3 {
            assert_eq!(
                lab.pids_named(i, "keepalived"),
                pids[i],
                "keepalived restarted on m{}",
                i + 1
            );
        }
    }
    // Back on standard: the probe and its files are gone.
    for i in 0..3 {
        assert!(
            !lab.etc(i)
                .join("keepalived/tkeha-apiserver-probe.sh")
                .exists()
        );
        assert!(lab.etc(i).join("keepalived/check_apiserver.sh").exists());
    }
}

/// A CPU hog on every core of the holder's namespace for 12 s (the 60 s run is in `make bench`):
/// no spurious failover, never two holders.
#[test]
fn a_busy_holder_keeps_the_vip() {
    let (lab, _m) = fast_lab(3);
    for i in 0..3 {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
        wait_reason(&lab, i, "ok");
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    lab.exec(
        holder,
        &format!("for i in $(seq {cores}); do nohup bash -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & echo $! >> /run/hog.pids; done"),
    )
    .unwrap();
    let watch = Watch::start(&lab, Duration::from_millis(50), Some(6443));
    std::thread::sleep(Duration::from_secs(12));
    let samples = watch.stop();
    lab.exec(holder, "kill $(cat /run/hog.pids); rm -f /run/hog.pids")
        .unwrap();
    no_split(&samples);
    let moved: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.holders != vec![holder])
        .collect();
    assert!(moved.is_empty(), "spurious failover: {:?}", moved.first());
    assert_eq!(reason(&lab, holder), "ok");
}

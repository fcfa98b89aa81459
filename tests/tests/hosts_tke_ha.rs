//! TKE HA on booted Debian 12 masters (systemd PID 1, keepalived not installed, the lab mirror as
//! the only package source): `apply` installs keepalived through apt and leaves the unit enabled
//! and active, a rerun touches nothing, the VIP follows apiserver death and a reboot of its holder,
//! a sudo user works end to end, `uninstall` stops and disables the unit and keeps the package.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};
use tkeha_e2e::lab::hosts::{HostLab, HostLabConfig, UnitState};
use tkeha_e2e::lab::view::LabView;
use tkeha_e2e::lab::{Auth, ManifestOptions, probe};
use tkeha_e2e::scenario::{
    SETTLE, hosts_lab, manifest, moved_from, provision, provision_ok, single_holder,
};
use tkeha_e2e::watch::{Watch, split_samples};

const SAMPLE: Duration = Duration::from_millis(50);
/// How long a freshly booted master's keepalived may take to become active (not a performance bound).
const UNIT_DEADLINE: Duration = Duration::from_secs(90);
/// How long network-online.target takes on the rebooted holder (a slow wait-online).
const SLOW_ONLINE_SECS: u32 = 20;

fn keepalived(lab: &HostLab, i: usize) -> UnitState {
    lab.unit(i, "keepalived").unwrap()
}

fn assert_enabled_and_active(lab: &HostLab) {
    for i in 0..lab.masters.len() {
        let u = keepalived(lab, i);
        assert_eq!(
            (u.enabled.as_str(), u.active.as_str()),
            ("enabled", "active"),
            "keepalived on {}: {u:?}",
            lab.masters[i].name
        );
        assert_ne!(u.main_pid, 0);
    }
}

/// Lines in keepalived's journal of this boot that record a reload (systemd's "Reloading ..."
/// for `systemctl reload`, keepalived's own "Reloading" on SIGHUP).
fn reloads(lab: &HostLab, i: usize) -> usize {
    lab.journal_count(i, "keepalived", "Reloading").unwrap()
}

/// Whether the package is installed according to dpkg on master `i`.
fn package_installed(lab: &HostLab, i: usize) -> bool {
    lab.exec(
        i,
        "dpkg-query -W -f='${Status}' keepalived 2>/dev/null; true",
    )
    .unwrap()
    .contains("install ok installed")
}

/// `tkeha-provisioner ACTION -f MANIFEST -o text`: what an operator reads (exit code, output).
fn provision_text(lab: &HostLab, action: &str, m: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new(tkeha_e2e::provisioner::binary().unwrap())
        .arg(action)
        .arg("-f")
        .arg(m)
        .args(["-o", "text", "--known-hosts"])
        .arg(lab.known_hosts_path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn all_control_planes(lab: &HostLab) {
    for i in 0..lab.masters.len() {
        lab.mark_control_plane(i).unwrap();
        lab.start_apiserver(i).unwrap();
    }
}

fn no_two_holders(samples: &[tkeha_e2e::watch::Sample]) {
    assert!(samples.len() > 20, "too few samples: {}", samples.len());
    let split = split_samples(samples);
    assert!(
        split.is_empty(),
        "{} samples with two holders, first {:?}",
        split.len(),
        split.first()
    );
}

/// Holds for `d` unless the holders change from `[expected]`; returns what they changed to.
fn holders_stay(lab: &HostLab, expected: usize, d: Duration) -> Option<Vec<usize>> {
    probe::wait_for(d, SAMPLE, || {
        let h = lab.holders();
        (h != vec![expected]).then_some(h)
    })
}

#[test]
fn apt_install_from_the_mirror_then_rerun_apiserver_death_and_uninstall() {
    let t = Instant::now();
    let lab = hosts_lab(HostLabConfig::masters(3));
    eprintln!("3 booted masters up in {:.1?}", t.elapsed());
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    // The old install log's fixed name, planted by an unprivileged user as a symlink to a file
    // of root's: root must neither write through it nor be stopped by it.
    lab.exec(
        0,
        "echo precious > /root/victim && chmod 600 /root/victim && \
         su -s /bin/sh tkeha -c 'ln -s /root/victim /tmp/tkeha-keepalived-install.log'",
    )
    .unwrap();
    let t = Instant::now();
    let first = provision_ok(&lab, "apply", &m, &[]);
    eprintln!("apply with the package install: {:.1?}", t.elapsed());
    assert_eq!(lab.exec(0, "cat /root/victim").unwrap(), "precious\n");
    assert_eq!(
        lab.exec(0, "readlink /tmp/tkeha-keepalived-install.log")
            .unwrap()
            .trim(),
        "/root/victim"
    );
    for i in 0..3 {
        // Real modes on the masters: the config (auth_pass) is root's alone, the check script
        // and the directory are root's and not writable by others.
        let modes = lab
            .exec(
                i,
                "stat -c '%n %a %U:%G' /etc/keepalived /etc/keepalived/keepalived.conf /etc/keepalived/check_apiserver.sh",
            )
            .unwrap();
        assert_eq!(
            modes,
            "/etc/keepalived 755 root:root\n/etc/keepalived/keepalived.conf 600 root:root\n\
             /etc/keepalived/check_apiserver.sh 755 root:root\n",
            "{}",
            lab.masters[i].name
        );
        let read = lab
            .exec(
                i,
                "su -s /bin/sh tkeha -c 'cat /etc/keepalived/keepalived.conf' 2>&1; echo rc=$?",
            )
            .unwrap();
        assert!(
            read.contains("Permission denied") && read.trim_end().ends_with("rc=1"),
            "an unprivileged user read keepalived.conf on {}: {read}",
            lab.masters[i].name
        );
        // Nothing of ours left in the world-writable directories (mktemp files are removed).
        let left = lab
            .exec(
                i,
                "ls -A /tmp /var/tmp /dev/shm | grep -e '^tmp\\.' -e tkeha | grep -v -x tkeha-keepalived-install.log; true",
            )
            .unwrap();
        assert_eq!(left.trim(), "", "left in /tmp on {}", lab.masters[i].name);
    }
    for h in first.hosts() {
        assert_eq!(h["changed"], true, "{h}");
        assert!(
            h["notes"].as_array().is_some_and(|n| n.iter().any(|x| x
                .as_str()
                .is_some_and(|x| x.starts_with("keepalived installed (1:")))),
            "{h}"
        );
    }
    assert_enabled_and_active(&lab);
    // apt took the package from the lab mirror: every master fetched it there.
    let served = std::fs::read_to_string(lab.dir.join("mirror.log")).unwrap();
    for (i, mm) in lab.masters.iter().enumerate() {
        assert!(package_installed(&lab, i));
        assert!(
            served
                .lines()
                .any(|l| l.starts_with(&format!("{} ", mm.ip)) && l.contains("/keepalived_")),
            "the mirror never served keepalived to {}:\n{served}",
            mm.ip
        );
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    assert_eq!(first.report["vip_holder"], lab.masters[holder].ip);

    // A rerun changes nothing: same process, no restart, no reload.
    let before: Vec<UnitState> = (0..3).map(|i| keepalived(&lab, i)).collect();
    let reloads_before: Vec<usize> = (0..3).map(|i| reloads(&lab, i)).collect();
    let again = provision_ok(&lab, "apply", &m, &[]);
    for h in again.hosts() {
        assert_eq!(h["changed"], false, "rerun changed a host: {h}");
        assert_eq!(h["restarted"], false, "rerun restarted keepalived: {h}");
    }
    for i in 0..3 {
        let after = keepalived(&lab, i);
        assert_eq!(
            (after.main_pid, after.restarts, &after.invocation),
            (
                before[i].main_pid,
                before[i].restarts,
                &before[i].invocation
            ),
            "keepalived restarted on {}",
            lab.masters[i].name
        );
        assert_eq!(
            reloads(&lab, i),
            reloads_before[i],
            "keepalived reloaded on {}",
            lab.masters[i].name
        );
    }
    assert_eq!(lab.holders(), vec![holder], "the rerun moved the VIP");

    // Apiserver death on a systemd host moves the VIP; the recovered master does not take it back.
    all_control_planes(&lab);
    let holder = single_holder(&lab, SETTLE).unwrap();
    assert_eq!(
        lab.get_vip(6443, Duration::from_secs(2)).unwrap(),
        format!("apiserver {}", lab.masters[holder].hostname)
    );
    let watch = Watch::start_hosts(&lab, SAMPLE, None);
    let t = Instant::now();
    lab.kill_apiserver(holder).unwrap();
    let new = moved_from(&lab, holder, SETTLE).unwrap();
    eprintln!(
        "apiserver death: the VIP answered from another master after {:.2?}",
        t.elapsed()
    );
    lab.start_apiserver(holder).unwrap();
    assert_eq!(
        holders_stay(&lab, new, Duration::from_secs(5)),
        None,
        "the VIP left {} after {} recovered",
        lab.masters[new].name,
        lab.masters[holder].name
    );
    no_two_holders(&watch.stop());

    // uninstall stops and disables the unit and removes our files; the package stays.
    let r = provision_ok(&lab, "uninstall", &m, &[]);
    assert_eq!(r.report["action"], "uninstall");
    for i in 0..3 {
        let u = keepalived(&lab, i);
        assert_eq!(
            (u.active.as_str(), u.enabled.as_str()),
            ("inactive", "disabled"),
            "{}: {u:?}",
            lab.masters[i].name
        );
        // Ours are gone; the package's own keepalived.conf.sample stays with the package.
        let left = lab
            .exec(i, "ls -A /etc/keepalived 2>/dev/null; true")
            .unwrap();
        assert_eq!(
            left.trim(),
            "keepalived.conf.sample",
            "{} keeps our files in /etc/keepalived",
            lab.masters[i].name
        );
        assert!(package_installed(&lab, i), "uninstall removed the package");
    }
    assert!(lab.holders().is_empty(), "the VIP is still held");
}

#[test]
fn a_sudo_user_installs_and_the_vip_survives_a_reboot_of_its_holder() {
    let lab = hosts_lab(HostLabConfig::masters(3));
    let opts = ManifestOptions {
        user: "tkeha".into(),
        auth: Auth::Password,
        ..ManifestOptions::default()
    };
    let m = manifest(&lab, "cluster.json", &opts, |_| {});
    provision_ok(&lab, "check", &m, &[]);
    provision_ok(&lab, "apply", &m, &[]);
    assert_enabled_and_active(&lab);
    all_control_planes(&lab);
    let holder = single_holder(&lab, SETTLE).unwrap();
    // On the holder, network-online.target will take 20 s after the next boot, as a slow
    // wait-online does on real hosts. keepalived keeps Debian's ordering after it (docs/provisioner.md,
    // "Boot order"): the VIP does not wait for it, the survivors hold it.
    lab.slow_network_online(holder, SLOW_ONLINE_SECS).unwrap();

    // Power the holder off from inside: the VIP moves while it is down.
    let watch = Watch::start_hosts(&lab, SAMPLE, Some(6443));
    let t = Instant::now();
    let down = lab.poweroff(holder).unwrap();
    let new = moved_from(&lab, holder, SETTLE).unwrap();
    eprintln!(
        "reboot: {} powered off in {down:.2?}, the VIP answered from {} {:.2?} after poweroff began",
        lab.masters[holder].name,
        lab.masters[new].name,
        t.elapsed()
    );
    assert!(!lab.running(holder));

    // Boot it again: keepalived comes back active because it is enabled, and stays backup.
    let t = Instant::now();
    lab.boot(holder).unwrap();
    let active = probe::wait_for(UNIT_DEADLINE, Duration::from_millis(100), || {
        (keepalived(&lab, holder).active == "active").then_some(())
    });
    assert!(
        active.is_some(),
        "keepalived did not come back after the reboot: {:?}",
        keepalived(&lab, holder)
    );
    eprintln!(
        "reboot: keepalived active on {} {:.2?} after boot started",
        lab.masters[holder].name,
        t.elapsed()
    );
    assert_eq!(keepalived(&lab, holder).enabled, "enabled");
    // The ordering kept: keepalived started once the network was online, which took 20 s.
    let online = lab
        .active_since_us(holder, "network-online.target")
        .unwrap();
    let started = lab.active_since_us(holder, "keepalived").unwrap();
    let slow = lab
        .active_since_us(holder, tkeha_e2e::lab::hosts::SLOW_ONLINE_UNIT)
        .unwrap();
    assert!(
        slow > 0 && online >= slow && started >= online,
        "keepalived on {} must start after network-online.target: slow unit {slow} µs, online {online} µs, keepalived {started} µs",
        lab.masters[holder].name
    );
    assert!(
        online >= u64::from(SLOW_ONLINE_SECS) * 1_000_000,
        "network-online.target was reached {online} µs after boot: the slow unit did not run"
    );
    assert_eq!(
        holders_stay(&lab, new, Duration::from_secs(5)),
        None,
        "the rebooted {} took the VIP back",
        lab.masters[holder].name
    );
    no_two_holders(&watch.stop());

    // The sudo user sees the same state and removes everything again.
    let s = provision_ok(&lab, "status", &m, &[]);
    assert_eq!(s.report["vip_holder"], lab.masters[new].ip);
    provision_ok(&lab, "uninstall", &m, &[]);
    for i in 0..3 {
        let u = keepalived(&lab, i);
        assert_eq!(
            (u.active.as_str(), u.enabled.as_str()),
            ("inactive", "disabled")
        );
    }
    assert!(lab.holders().is_empty());
}

#[test]
fn an_unreachable_mirror_on_one_master_fails_before_any_host_changes() {
    let lab = hosts_lab(HostLabConfig::masters(3));
    lab.set_mirror_reachable(2, false).unwrap();
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let r = provision(&lab, "apply", &m, &[]);
    assert_ne!(r.code, 0, "apply must fail:\n{}", r.all_output());
    let m3 = r.host(&lab.masters[2].ip).unwrap();
    assert_eq!(m3["ok"], false, "{m3}");
    let err = m3["error"].as_str().unwrap_or_default();
    assert!(
        err.contains(&format!("http://{}:80", lab.gateway())),
        "the error must show the tail of apt's output naming the unreachable source: {err}"
    );
    let (code, text) = provision_text(&lab, "apply", &m);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains(&lab.masters[2].ip) && l.contains("FAILED")),
        "the error must name the host:\n{text}"
    );
    // Nothing changed anywhere: no package, no files, no unit, no VIP.
    for i in 0..3 {
        assert!(
            !package_installed(&lab, i),
            "keepalived was installed on {} although m3 cannot install it:\n{}",
            lab.masters[i].name,
            r.stdout
        );
        let files = lab
            .exec(i, "ls -A /etc/keepalived 2>/dev/null; true")
            .unwrap();
        assert_eq!(files.trim(), "", "files written on {}", lab.masters[i].name);
        // The preflight read the sources into its own temporary lists: the host's package
        // lists and apt's caches are as the image left them (empty).
        let apt_state = lab
            .exec(
                i,
                "ls -A /var/lib/apt/lists; ls /var/cache/apt/*.bin 2>/dev/null; ls -d /tmp/tmp.* 2>/dev/null; true",
            )
            .unwrap();
        assert_eq!(
            apt_state.trim(),
            "",
            "the preflight changed apt's state on {}",
            lab.masters[i].name
        );
    }
    for h in r.hosts() {
        assert_eq!(h["changed"], false, "a host changed: {h}");
    }
    assert!(
        lab.holders().is_empty(),
        "the VIP came up: {:?}",
        lab.holders()
    );

    // The mirror is back, and another process holds apt's locks on m1 (unattended-upgrades,
    // say): the lists lock for a few seconds, the dpkg lock for longer. The preflight names the
    // holder, the install waits for both, and apply succeeds.
    lab.set_mirror_reachable(2, true).unwrap();
    lab.exec(0, &hold_lock("/var/lib/apt/lists/lock", 6, "lists"))
        .unwrap();
    lab.exec(0, &hold_lock("/var/lib/dpkg/lock-frontend", 25, "dpkg"))
        .unwrap();
    let t = Instant::now();
    let r = provision_ok(&lab, "apply", &m, &[]);
    eprintln!("apply with apt's locks held on m1: {:.1?}", t.elapsed());
    let m1 = r.host(&lab.masters[0].ip).unwrap();
    assert!(
        m1["notes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x.as_str().is_some_and(|x| x
                .starts_with("the dpkg lock is held by process ")
                && x.contains("python3")))),
        "the preflight must name the lock's holder: {m1}"
    );
    for i in 0..3 {
        assert!(package_installed(&lab, i));
    }
    // The install really waited: the holder ran its full time (it exited 0) before keepalived
    // became active on m1.
    let holder = lab
        .exec(
            0,
            "systemctl show -p ExecMainStatus,ExecMainExitTimestampMonotonic tkeha-lab-lock-dpkg",
        )
        .unwrap();
    let released: u64 = holder
        .lines()
        .find_map(|l| l.strip_prefix("ExecMainExitTimestampMonotonic="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        holder.contains("ExecMainStatus=0") && released > 0,
        "the lock holder did not run to its end: {holder}"
    );
    let active = lab.active_since_us(0, "keepalived").unwrap();
    assert!(
        active > released,
        "keepalived became active on m1 ({active} µs) before the dpkg lock was released ({released} µs)"
    );
}

/// A shell line that holds `path`'s fcntl lock (as apt and dpkg take it) for `secs` seconds, in
/// a transient unit `tkeha-lab-lock-NAME` of the master (kept after it exits, for its timestamps).
fn hold_lock(path: &str, secs: u32, name: &str) -> String {
    format!(
        "systemd-run -q -p RemainAfterExit=yes --unit tkeha-lab-lock-{name} python3 -c \
         'import fcntl, time; f = open(\"{path}\", \"w\"); fcntl.lockf(f, fcntl.LOCK_EX); time.sleep({secs})' \
         && sleep 0.5"
    )
}

#[test]
fn uninstall_says_the_package_stays() {
    let lab = hosts_lab(HostLabConfig {
        masters: 2,
        keepalived_preinstalled: true,
        ..HostLabConfig::default()
    });
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    let (code, out) = provision_text(&lab, "uninstall", &m);
    assert_eq!(code, 0, "{out}");
    for i in 0..2 {
        assert!(package_installed(&lab, i));
    }
    assert!(
        out.contains("package") && out.contains("keepalived") && out.contains("stays"),
        "uninstall must say that the keepalived package stays installed:\n{out}"
    );
}

//! The booted lab itself: masters are Debian 12 systems with systemd as PID 1, sshd as a service,
//! no keepalived, the lab mirror as their only package source (which can be cut per master), a
//! stand-in apiserver unit; they power off and boot again on their own disk, and nothing of the
//! lab is left once it is dropped or its owner is killed.
#![allow(clippy::unwrap_used)]

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tkeha_e2e::lab::hosts::HostLabConfig;
use tkeha_e2e::lab::ssh::Login;
use tkeha_e2e::lab::{machine, netns, probe};
use tkeha_e2e::scenario::hosts_lab;

/// Nothing of slot `slot` left on this machine: processes, mounts, links, firewall rules.
fn nothing_left(slot: u16) {
    let machines: Vec<u32> = tkeha_e2e::lab::procs::find(|c| {
        c.iter().any(|a| {
            a.strip_prefix("--machine=")
                .is_some_and(|m| machine::is_slot_machine(m, slot))
        })
    });
    assert!(
        machines.is_empty(),
        "nspawn of slot {slot} left: {machines:?}"
    );
    let mounts: Vec<_> = machine::mounts()
        .into_iter()
        .filter(|(s, _)| {
            s.strip_prefix("tkeha-lab-")
                .is_some_and(|m| machine::is_slot_machine(m, slot))
        })
        .collect();
    assert!(
        mounts.is_empty(),
        "overlays of slot {slot} left: {mounts:?}"
    );
    let links: Vec<_> = netns::links()
        .into_iter()
        .filter(|l| {
            l.name == netns::bridge_name(slot)
                || l.name
                    .strip_prefix("vb-")
                    .is_some_and(|m| machine::is_slot_machine(m, slot))
        })
        .map(|l| l.name)
        .collect();
    assert!(links.is_empty(), "links of slot {slot} left: {links:?}");
    let rules = tkeha_e2e::lab::cmd::run("iptables", &["-w", "5", "-S", "INPUT"]).unwrap();
    assert!(
        !rules.contains(&tkeha_e2e::lab::mirror::rule_tag(slot)),
        "firewall rules of slot {slot} left:\n{rules}"
    );
    let gateway = format!("10.77.{slot}.1:80").parse().unwrap();
    assert!(
        !probe::tcp_open(gateway, Duration::from_millis(300)),
        "the mirror of slot {slot} still answers"
    );
}

#[test]
fn booted_masters_are_real_systemd_hosts_fed_by_the_lab_mirror() {
    let t = Instant::now();
    let lab = hosts_lab(HostLabConfig::masters(2));
    eprintln!("2 booted masters up in {:.1?}", t.elapsed());
    let slot = lab.slot;
    for i in 0..2 {
        let m = &lab.masters[i];
        assert_eq!(lab.exec(i, "cat /proc/1/comm").unwrap().trim(), "systemd");
        assert_eq!(
            lab.exec(i, "systemctl is-system-running").unwrap().trim(),
            "running"
        );
        assert_eq!(lab.unit(i, "ssh").unwrap().active, "active");
        assert_eq!(
            lab.exec(
                i,
                "command -v keepalived; dpkg-query -W -f='${Status}' keepalived 2>&1; true"
            )
            .unwrap()
            .trim(),
            "dpkg-query: no packages found matching keepalived",
            "keepalived must not be installed on a fresh master"
        );
        // Logins as the netns tier offers them, checked against each master's own host key.
        let by_key = lab.ssh(i, "root", Login::Key, "hostname; id -un").unwrap();
        assert_eq!(by_key, format!("{}\nroot\n", m.hostname));
        let by_pw = lab
            .ssh(i, "root", Login::Password("rootpw"), "id -un")
            .unwrap();
        assert_eq!(by_pw.trim(), "root");
        let user = lab
            .ssh(
                i,
                "tkeha",
                Login::Password("tkehapw"),
                "id -un; sudo -n id -un",
            )
            .unwrap();
        assert_eq!(user, "tkeha\nroot\n");
        // Only lab addresses: no default route, one apt source (the mirror).
        let routes = lab.exec(i, "ip -4 route show").unwrap();
        assert!(!routes.contains("default"), "{routes}");
        let sources = lab
            .exec(
                i,
                "grep -hv '^#' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | grep . ; true",
            )
            .unwrap();
        assert_eq!(
            sources.trim(),
            format!("deb [trusted=yes] http://{}:80/ ./", lab.gateway())
        );
    }
    let known = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    let keys: std::collections::BTreeSet<_> = known
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert_eq!(keys.len(), 2, "masters must not share a host key");
    let wrong = lab.ssh(0, "root", Login::Password("not-the-password"), "true");
    assert!(wrong.is_err(), "a wrong password must not log in");

    // apt sees keepalived in the mirror, and a master whose mirror is cut does not.
    let policy = "apt-get update -q 2>&1 | tail -n 3; apt-cache policy keepalived";
    let seen = lab.exec(0, policy).unwrap();
    assert!(
        seen.contains(&format!("http://{}:80 ./ Packages", lab.gateway())),
        "{seen}"
    );
    lab.set_mirror_reachable(1, false).unwrap();
    // apt-get update exits 0 with a warning when a source fails; no candidate is the verdict.
    let cut = lab.exec(1, policy).unwrap();
    assert!(
        cut.contains(&format!("Failed to fetch http://{}:80/", lab.gateway()))
            && !cut.contains("Candidate: 1:"),
        "m2 must not see keepalived without its mirror:\n{cut}"
    );
    assert!(
        lab.exec(0, "apt-get update -q").is_ok(),
        "m1 lost its mirror too"
    );
    lab.set_mirror_reachable(1, true).unwrap();
    lab.exec(1, "apt-get update -q").unwrap();

    // The stand-in apiserver is a unit: it starts, answers with the hostname, dies, starts again.
    lab.start_apiserver(0).unwrap();
    let body = lab.get_apiserver(0).unwrap();
    assert_eq!(body, format!("apiserver {}", lab.masters[0].hostname));
    lab.kill_apiserver(0).unwrap();
    assert_eq!(
        lab.unit(0, "tkeha-fake-apiserver").unwrap().active,
        "failed"
    );
    lab.start_apiserver(0).unwrap();
    assert_eq!(
        lab.unit(0, "tkeha-fake-apiserver").unwrap().active,
        "active"
    );

    // Power off from inside, boot again: same disk (a file survives), same host key, sshd back.
    lab.exec(1, "echo before > /root/reboot-marker").unwrap();
    let down = lab.poweroff(1).unwrap();
    assert!(!lab.running(1));
    assert!(
        !netns::links().iter().any(|l| l.name == lab.masters[1].veth),
        "a powered-off master keeps its veth"
    );
    let up = lab.boot(1).unwrap();
    eprintln!("m2 powered off in {down:.1?}, booted again in {up:.1?}");
    assert_eq!(
        lab.ssh(1, "root", Login::Key, "cat /root/reboot-marker")
            .unwrap()
            .trim(),
        "before"
    );
    lab.down();
    nothing_left(slot);
}

#[test]
fn a_killed_owner_leaves_nothing_behind() {
    let bin = tkeha_e2e::bins::locate("tkeha-lab", "TKEHA_LAB_BIN").unwrap();
    let state = tempfile::Builder::new()
        .prefix("tkeha-hosts-held-")
        .tempdir()
        .unwrap();
    let mut child = Command::new(bin)
        .args(["hosts-up", "--masters", "1", "--hold", "--state"])
        .arg(state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The description is pretty-printed JSON; it ends with a `}` alone on a line.
    let mut text = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line == "}" {
            break;
        }
    }
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("tkeha-lab hosts-up --hold printed no lab ({e}):\n{text}"));
    let slot = u16::try_from(v["slot"].as_u64().unwrap()).unwrap();
    assert!(Path::new(&format!("/sys/class/net/{}", netns::bridge_name(slot))).exists());
    child.kill().unwrap();
    child.wait().unwrap();
    let gone = probe::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (!Path::new(&format!("/sys/class/net/{}", netns::bridge_name(slot))).exists()).then_some(())
    });
    assert!(gone.is_some(), "the reaper did not remove slot {slot}");
    nothing_left(slot);
}

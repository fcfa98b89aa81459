//! The lab itself: masters look like separate hosts (ssh logins, hostnames, private /etc), the
//! stand-in apiserver answers, the LB forwards, and teardown leaves nothing behind.
#![allow(clippy::unwrap_used)]

use std::time::Duration;
use tkeha_e2e::lab::netns;
use tkeha_e2e::lab::ssh::Login;
use tkeha_e2e::lab::{Lab, LabConfig};

fn root_lab(cfg: LabConfig) -> Lab {
    Lab::up(cfg)
        .unwrap_or_else(|e| panic!("lab up failed (the e2e tests need root and iproute2): {e:#}"))
}

#[test]
fn three_masters_behave_like_separate_hosts() {
    let lab = root_lab(LabConfig::masters(3));
    let slot = lab.slot;
    for i in 0..3 {
        let m = &lab.masters[i];
        let by_key = lab.ssh(i, "root", Login::Key, "hostname; id -un").unwrap();
        assert_eq!(by_key, format!("{}\nroot\n", m.ns));
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
        let user_key = lab.ssh(i, "tkeha", Login::Key, "id -un").unwrap();
        assert_eq!(user_key.trim(), "tkeha");
        // sshd is PID 1 of the master's own PID namespace.
        assert_eq!(lab.exec(i, "cat /proc/1/comm").unwrap().trim(), "sshd");
    }
    let wrong = lab.ssh(0, "root", Login::Password("not-the-password"), "true");
    assert!(wrong.is_err(), "a wrong password must not log in");

    // Private /etc/keepalived: a file written on m1 is invisible on m2 and on the host.
    lab.ssh(0, "root", Login::Key, "echo m1 > /etc/keepalived/probe")
        .unwrap();
    assert!(lab.etc(0).join("keepalived/probe").exists());
    assert!(!lab.etc(1).join("keepalived/probe").exists());
    let on_m2 = lab
        .ssh(1, "root", Login::Key, "ls /etc/keepalived")
        .unwrap();
    assert_eq!(on_m2.trim(), "");
    assert!(!std::path::Path::new("/etc/keepalived/probe").exists());
    // Fresh machines: no control plane yet.
    let k = lab
        .ssh(
            2,
            "root",
            Login::Key,
            "ls -A /etc/kubernetes; test -e /run/keepalived.pid && echo pid; true",
        )
        .unwrap();
    assert_eq!(k.trim(), "");

    // The stand-in apiserver answers with the master's hostname, and stops.
    lab.start_apiserver(1).unwrap();
    let addr = format!("{}:6443", lab.masters[1].ip).parse().unwrap();
    let body = tkeha_e2e::lab::probe::http_get(addr, Duration::from_secs(2)).unwrap();
    assert_eq!(body, format!("apiserver {}", lab.masters[1].ns));
    let inside = lab.exec(1, "cat /run/fake-apiserver.pid").unwrap();
    assert!(!inside.trim().is_empty());
    lab.stop_apiserver(1).unwrap();
    assert!(tkeha_e2e::lab::probe::http_get(addr, Duration::from_secs(1)).is_none());

    lab.mark_control_plane(2).unwrap();
    let k = lab
        .ssh(2, "root", Login::Key, "ls /etc/kubernetes/manifests")
        .unwrap();
    assert_eq!(k.trim(), "kube-apiserver.yaml");

    // Nobody holds the VIP yet.
    assert!(lab.holders().is_empty());

    lab.down();
    assert!(
        netns::slot_namespaces(slot).is_empty(),
        "namespaces of slot {slot} left behind"
    );
    let links: Vec<_> = netns::links()
        .into_iter()
        .filter(|l| l.name.starts_with(&format!("tkh{slot}")))
        .collect();
    assert!(
        links.is_empty(),
        "links of slot {slot} left behind: {links:?}"
    );
}

#[test]
fn parallel_labs_get_distinct_slots() {
    let a = std::thread::spawn(|| root_lab(LabConfig::masters(1)));
    let b = std::thread::spawn(|| root_lab(LabConfig::masters(1)));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_ne!(a.slot, b.slot);
    assert_ne!(a.vip(), b.vip());
    let (sa, sb) = (a.slot, b.slot);
    drop(a);
    drop(b);
    assert!(netns::slot_namespaces(sa).is_empty());
    assert!(netns::slot_namespaces(sb).is_empty());
}

#[test]
fn lb_forwards_the_vip_and_can_refuse_one_master() {
    let cfg = LabConfig {
        masters: 2,
        lb: true,
        vports: vec![6443, 16443],
        ..LabConfig::default()
    };
    let lab = root_lab(cfg);
    lab.start_apiserver(0).unwrap();
    lab.start_apiserver(1).unwrap();
    // haproxy marks a backend up after its health checks pass: poll, bounded.
    let mut seen = std::collections::BTreeSet::new();
    tkeha_e2e::lab::probe::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
        if let Some(b) = lab.get_vip(6443, Duration::from_secs(1)) {
            seen.insert(b);
        }
        (seen.len() == 2).then_some(())
    })
    .unwrap_or_else(|| panic!("the LB reached only {seen:?}"));
    assert!(lab.get_vip(16443, Duration::from_secs(1)).is_some());

    let from_m1 = format!("curl -s --max-time 2 http://{}:6443/", lab.vip());
    assert!(lab.exec(0, &from_m1).unwrap().starts_with("apiserver"));
    lab.lb_drop_from(0, 6443, true).unwrap();
    assert!(
        lab.exec(0, &from_m1).is_err(),
        "m1's traffic to the VIP should be dropped"
    );
    assert!(
        lab.exec(1, &from_m1.replace("m1", "m2"))
            .unwrap()
            .starts_with("apiserver")
    );
    lab.lb_drop_from(0, 6443, false).unwrap();
    assert!(lab.exec(0, &from_m1).unwrap().starts_with("apiserver"));
}

#[test]
fn link_down_cuts_a_master_off() {
    let lab = root_lab(LabConfig::masters(1));
    let addr = format!("{}:22", lab.masters[0].ip).parse().unwrap();
    assert!(tkeha_e2e::lab::probe::tcp_open(
        addr,
        Duration::from_secs(1)
    ));
    lab.set_link(0, false).unwrap();
    assert!(!tkeha_e2e::lab::probe::tcp_open(
        addr,
        Duration::from_millis(500)
    ));
    lab.set_link(0, true).unwrap();
    assert!(
        tkeha_e2e::lab::probe::wait_for(Duration::from_secs(5), Duration::from_millis(50), || {
            tkeha_e2e::lab::probe::tcp_open(addr, Duration::from_millis(300)).then_some(())
        })
        .is_some()
    );
}

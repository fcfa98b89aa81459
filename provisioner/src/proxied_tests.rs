//! The actions with masters behind a proxy, against the fake fleet: every probe of the VIP or the load balancer takes the masters' route, a probe the proxy cannot make fails loudly (never read as "does not answer", never made directly), and masters reached in different ways are refused before any change.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use crate::Action;
use crate::fake::Fleet;
use crate::manifest::Plan;
use crate::transport::{Hop, HopKind, HopProblem, NetFailure, Route, TransportError};

const SOCKS: &str = r#"{"type": "SOCKS5", "ip": "10.9.0.6", "port": 1080}"#;
const JUMP: &str = r#"{"type": "SSHJumpServer", "ip": "10.9.0.5", "port": 22,
                       "username": "jumper", "password": "anVtcGVycHc="}"#;
const TKE: &str = r#"{"tke": {"vip": "10.0.0.100"}}"#;
const THIRD_PARTY: &str = r#"{"thirdParty": {"vip": "10.0.0.100", "vport": 6443}}"#;

fn all_through(fleet: &Fleet, ha: &str, proxy: &str) -> Plan {
    fleet.plan_with_proxies(ha, |_| Some(proxy.to_string()))
}

fn socks_down() -> TransportError {
    TransportError::Hop {
        hop: Hop {
            kind: HopKind::Socks5,
            addr: "10.9.0.6:1080".parse().unwrap(),
        },
        problem: HopProblem::Connect(NetFailure::Refused),
    }
}

fn jump_lost() -> TransportError {
    TransportError::Hop {
        hop: Hop {
            kind: HopKind::JumpServer,
            addr: "10.9.0.5:22".parse().unwrap(),
        },
        problem: HopProblem::Lost("connection reset".into()),
    }
}

fn with_apiservers(fleet: &Fleet) {
    fleet.every(|m| {
        m.apiserver_manifest = true;
        m.apiserver_listening = true;
    });
    fleet.api_behind_vip(true);
}

fn vip_6443() -> SocketAddr {
    "10.0.0.100:6443".parse().unwrap()
}

#[test]
fn apply_probes_the_vip_along_the_masters_route_and_reports_it() {
    let fleet = Fleet::new(3);
    with_apiservers(&fleet);
    let plan = all_through(&fleet, TKE, SOCKS);
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Apply, &plan);
    assert!(report.ok, "{}", report.to_text());
    let probes = fleet.probes();
    assert!(!probes.is_empty());
    for (route, addr) in &probes {
        assert_eq!(route, &plan.machines[0].route, "a probe left the route");
        assert!(matches!(route, Route::Socks5(_)));
        assert_eq!(*addr, vip_6443());
    }
    for h in &report.hosts {
        assert_eq!(h.via.as_deref(), Some("SOCKS5 proxy 10.9.0.6:1080"));
    }
    assert!(
        report
            .to_text()
            .contains("[10.0.0.11 via SOCKS5 proxy 10.9.0.6:1080] ok"),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_dead_proxy_is_not_a_silent_vip() {
    let fleet = Fleet::new(3);
    with_apiservers(&fleet);
    fleet.probe_error(Some(socks_down()));
    let plan = all_through(&fleet, TKE, SOCKS);
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Apply, &plan);
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        [
            "cannot probe 10.0.0.100:6443 from this host: SOCKS5 proxy 10.9.0.6:1080: connection \
          refused (probes take the masters' route and are never made directly)"
        ]
    );
    // One attempt: a dead proxy is not polled until the deadline.
    assert_eq!(fleet.probes().len(), 1, "{:?}", fleet.probes());
}

#[test]
fn a_drill_whose_probe_cannot_be_made_says_so_and_still_restores_the_holder() {
    let fleet = Fleet::new(3);
    let plan = all_through(&fleet, TKE, JUMP);
    fleet.provisioned(&plan, 0);
    with_apiservers(&fleet);
    fleet.probe_error(Some(jump_lost()));
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Drill, &plan);
    assert!(!report.ok);
    assert!(
        report.errors.iter().any(|e| e
            == "cannot probe 10.0.0.100:6443 from this host: jump server 10.9.0.5:22: the SSH \
                connection to it was lost: connection reset (probes take the masters' route and \
                are never made directly)"),
        "{:?}",
        report.errors
    );
    assert!(
        !report
            .errors
            .iter()
            .any(|e| e.starts_with("no other master took")),
        "the proxy's failure is not the VIP's: {:?}",
        report.errors
    );
    assert_eq!(
        fleet.whats(0),
        [
            "probe",
            "stop keepalived",
            "restart keepalived",
            "VIP watch"
        ]
    );
    assert!(fleet.state(0).running, "the old holder was restored");
}

#[test]
fn a_third_party_check_through_a_dead_proxy_blames_the_proxy_not_the_lb() {
    let fleet = Fleet::new(3);
    fleet.probe_error(Some(socks_down()));
    let plan = all_through(&fleet, THIRD_PARTY, SOCKS);
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Check, &plan);
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        [
            "cannot probe 10.0.0.100:6443 from this host: SOCKS5 proxy 10.9.0.6:1080: connection \
          refused (probes take the masters' route and are never made directly)"
        ]
    );
    assert_eq!(fleet.probes().len(), 1);
    // And `apply` changes nothing on any master for it.
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Apply, &plan);
    assert!(!report.ok);
    assert!(
        report
            .errors
            .contains(&"preflight failed: nothing was changed on any master".to_string()),
        "{:?}",
        report.errors
    );
    for i in 0..3 {
        assert!(
            fleet
                .sent(i)
                .iter()
                .all(|s| !s.text().contains("iptables -w 5 -t nat -I")),
            "master {i} was sent the hairpin rule: {:?}",
            fleet.whats(i)
        );
    }
}

#[test]
fn masters_reached_in_different_ways_are_refused_where_a_probe_is_needed() {
    let mixed = |fleet: &Fleet, ha: &str| {
        fleet.plan_with_proxies(ha, |i| (i > 0).then(|| JUMP.to_string()))
    };
    // Third-party HA always probes the LB: refused, nothing probed.
    let fleet = Fleet::new(3);
    let plan = mixed(&fleet, THIRD_PARTY);
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Check, &plan);
    assert_eq!(
        report.errors,
        [
            "the masters are reached in different ways (10.0.0.11 directly; 10.0.0.12, 10.0.0.13 \
          through jump server 10.9.0.5:22): the probes of the VIP from this host go through the masters' proxy \
          and cannot pick one; give every machine the same proxy"
        ]
    );
    assert!(fleet.probes().is_empty(), "{:?}", fleet.probes());

    // TKE HA probes VIP:6443 only once an apiserver is expected: then refused before any change.
    let fleet = Fleet::new(3);
    with_apiservers(&fleet);
    let plan = mixed(&fleet, TKE);
    let report = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Apply, &plan);
    assert!(!report.ok);
    assert!(report.errors[0].starts_with("the masters are reached in different ways"));
    for i in 0..3 {
        assert_eq!(fleet.whats(i), ["probe"], "master {i} was changed");
    }
    assert!(fleet.probes().is_empty());

    // A fresh cluster (no apiserver yet) needs no probe from here: it is provisioned.
    let fleet = Fleet::new(3);
    let plan = mixed(&fleet, TKE);
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Apply, &plan);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.hosts[0].via, None);
    assert_eq!(
        report.hosts[1].via.as_deref(),
        Some("jump server 10.9.0.5:22")
    );
}

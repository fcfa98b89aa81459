//! `apply` with a failover profile against the fake fleet: what the fast profile writes and
//! starts, that a change of profile is a reload (never a restart) made in the order that keeps
//! one holder, and that going back to standard removes the probe.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::Action;
use crate::FailoverProfile;
use crate::fake::Fleet;
use crate::keepalived::{self, CHECK_SCRIPT_PATH, CONF_PATH, PROBE_SCRIPT_PATH, PROBE_UNIT_PATH};
use crate::report::Report;

fn apply_with(fleet: &Fleet, profile: FailoverProfile) -> Report {
    let mut plan = fleet.tke_plan();
    plan.failover_profile = Some(profile);
    fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Apply, &plan)
}

#[test]
fn fresh_systemd_masters_get_the_probe_as_a_service_before_keepalived() {
    let fleet = Fleet::new(2);
    fleet.every(|m| m.systemd = true);
    let report = apply_with(&fleet, FailoverProfile::Fast);
    assert!(report.ok, "{}", report.to_text());
    for i in 0..2 {
        let apply = &fleet.sent(i)[1];
        let paths: Vec<&str> = apply.uploads().iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, [PROBE_SCRIPT_PATH, PROBE_UNIT_PATH, CONF_PATH]);
        let text = apply.text();
        let probe = text
            .find("systemctl start tkeha-apiserver-probe.service")
            .unwrap();
        let keepalived = text.find("systemctl start keepalived").unwrap();
        assert!(
            probe < keepalived,
            "the probe runs before keepalived reads it"
        );
        let state = fleet.state(i);
        assert!(state.probe_running && state.running);
        assert!(
            !state.files.contains_key(CHECK_SCRIPT_PATH),
            "no script for keepalived to run"
        );
        assert_eq!(
            report.hosts[i].failover_profile,
            Some(FailoverProfile::Fast)
        );
        assert!(
            report.hosts[i]
                .notes
                .contains(&"apiserver probe started".to_string())
        );
    }
}

#[test]
fn without_systemd_the_probe_is_a_daemon_with_a_pid_file() {
    let fleet = Fleet::new(1);
    let report = apply_with(&fleet, FailoverProfile::Fast);
    assert!(report.ok, "{}", report.to_text());
    let apply = &fleet.sent(0)[1];
    assert!(!apply.uploads().iter().any(|u| u.path == PROBE_UNIT_PATH));
    assert!(
        apply
            .text()
            .contains("setsid bash /etc/keepalived/tkeha-apiserver-probe.sh")
    );
    assert!(
        apply
            .text()
            .contains("echo $! > /run/tkeha-apiserver-probe.pid")
    );
}

#[test]
fn standard_to_fast_is_a_reload_of_the_holder_first() {
    let fleet = Fleet::new(3);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 1);
    let report = apply_with(&fleet, FailoverProfile::Fast);
    assert!(report.ok, "{}", report.to_text());
    let order = fleet.order_of("apply");
    assert_eq!(
        order.first(),
        Some(&1),
        "the holder reloads first: {order:?}"
    );
    assert_eq!(order.len(), 3);
    for i in 0..3 {
        let m = fleet.state(i);
        assert_eq!(
            (m.starts, m.reloads),
            (0, 1),
            "master {i}: a reload, not a restart"
        );
        assert!(m.probe_running);
        assert_eq!(
            keepalived::parse_profile(&m.files[CONF_PATH].content),
            Some(FailoverProfile::Fast)
        );
        assert!(report.hosts[i].restarted && report.hosts[i].changed);
    }
    assert_eq!(fleet.holders(), vec![1], "the VIP stays");
}

#[test]
fn fast_to_standard_reloads_the_backups_first_and_removes_the_probe() {
    let fleet = Fleet::new(3);
    let mut plan = fleet.tke_plan();
    plan.failover_profile = Some(FailoverProfile::Fast);
    fleet.provisioned(&plan, 0);
    let report = apply_with(&fleet, FailoverProfile::Standard);
    assert!(report.ok, "{}", report.to_text());
    let order = fleet.order_of("apply");
    assert_eq!(order.last(), Some(&0), "the holder reloads last: {order:?}");
    for i in 0..3 {
        let m = fleet.state(i);
        assert_eq!((m.starts, m.reloads), (0, 1), "master {i}");
        assert!(!m.probe_running && !m.files.contains_key(PROBE_SCRIPT_PATH));
        assert!(m.files.contains_key(CHECK_SCRIPT_PATH));
        let sent = fleet.sent(i);
        let text = sent[1].text();
        let reload = text.find("kill -HUP").unwrap();
        let removed = text.find("@@probe=removed").unwrap();
        assert!(
            reload < removed,
            "keepalived stops tracking the probe before it goes"
        );
    }
}

#[test]
fn a_rerun_of_the_same_profile_touches_nothing_and_status_reads_it_back() {
    let fleet = Fleet::new(2);
    let mut plan = fleet.tke_plan();
    plan.failover_profile = Some(FailoverProfile::Fast);
    fleet.provisioned(&plan, 0);
    let report = apply_with(&fleet, FailoverProfile::Fast);
    assert!(report.ok, "{}", report.to_text());
    for i in 0..2 {
        assert_eq!(fleet.whats(i), ["probe", "VIP watch"], "master {i}");
    }
    // `status` knows nothing of the plan's profile: it reads each master's config.
    let status = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Status, &fleet.tke_plan());
    for h in &status.hosts {
        assert_eq!(h.failover_profile, Some(FailoverProfile::Fast), "{h:?}");
    }
    assert!(
        status.to_text().contains("profile=fast"),
        "{}",
        status.to_text()
    );
}

#[test]
fn a_stopped_probe_is_started_again_without_touching_keepalived() {
    let fleet = Fleet::new(1);
    let mut plan = fleet.tke_plan();
    plan.failover_profile = Some(FailoverProfile::Fast);
    fleet.provisioned(&plan, 0);
    fleet.master(0, |m| m.probe_running = false);
    let report = apply_with(&fleet, FailoverProfile::Fast);
    assert!(report.ok, "{}", report.to_text());
    let m = fleet.state(0);
    assert!(m.probe_running);
    assert_eq!((m.starts, m.reloads), (0, 0));
    assert!(fleet.sent(0)[1].uploads().is_empty());
}

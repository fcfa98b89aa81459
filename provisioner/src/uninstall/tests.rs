//! `uninstall` against the fake fleet: what each master is sent, what the report says it removed, and the failures it reports.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::Action;
use crate::fake::{File, Fleet};
use crate::keepalived::{CHECK_SCRIPT_PATH, CONF_PATH};
use crate::remote::ExecOutput;
use crate::report::{Report, VrrpState};

fn uninstall(fleet: &Fleet, ha: &str) -> Report {
    let plan = fleet.plan(ha);
    fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Uninstall, &plan)
}

const TKE: &str = r#"{"tke": {"vip": "10.0.0.100"}}"#;

#[test]
fn keepalived_is_stopped_our_files_removed_and_the_vip_released() {
    let fleet = Fleet::new(3);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 1);
    let report = uninstall(&fleet, TKE);
    assert!(report.ok, "{}", report.to_text());
    for i in 0..3 {
        assert_eq!(
            fleet.whats(i),
            ["probe", "uninstall"],
            "a probe (who manages HA here?), then one script"
        );
        let script = &fleet.sent(i)[1];
        assert!(script.uploads().is_empty());
        assert!(
            script
                .text()
                .contains("grep -q 'managed by tkeha-provisioner' /etc/keepalived/keepalived.conf"),
            "only our own config is removed"
        );
        let h = &report.hosts[i];
        assert!(h.ok && h.changed, "{h:?}");
        assert_eq!(h.state, VrrpState::Stopped);
        assert_eq!(h.round_trips, 2);
        let state = fleet.state(i);
        assert!(!state.running && state.files.is_empty());
    }
    assert!(fleet.holders().is_empty());
    assert_eq!(report.vip_holder, None);
}

#[test]
fn a_second_uninstall_changes_nothing() {
    let fleet = Fleet::new(2);
    let report = uninstall(&fleet, TKE);
    assert!(report.ok);
    assert!(report.hosts.iter().all(|h| !h.changed));
}

#[test]
fn a_foreign_config_is_left_alone_and_said_so() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| {
        m.files.insert(
            CONF_PATH.into(),
            File {
                mode: 0o644,
                content: "vrrp_instance VI_1 {\n}\n".into(),
            },
        );
    });
    let report = uninstall(&fleet, TKE);
    assert!(report.ok);
    assert_eq!(
        report.hosts[0].notes,
        ["/etc/keepalived/keepalived.conf was not written by tkeha: left alone"]
    );
    assert!(!report.hosts[0].changed);
    assert!(fleet.state(0).files.contains_key(CONF_PATH));
}

#[test]
fn a_vip_that_stays_assigned_fails_its_master() {
    let fleet = Fleet::new(2);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    fleet.master(0, |m| m.stale_vip = true);
    let report = uninstall(&fleet, TKE);
    assert!(!report.ok);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some("VIP 10.0.0.100 is still assigned on this master")
    );
    assert!(
        report.hosts[0].changed,
        "keepalived was stopped all the same"
    );
    assert!(report.hosts[1].ok);
    assert!(!fleet.state(0).files.contains_key(CHECK_SCRIPT_PATH));
}

#[test]
fn an_unreachable_master_fails_alone_and_the_others_are_uninstalled() {
    let fleet = Fleet::new(2);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    fleet.master(0, |m| m.connect_error = Some("Connection timed out".into()));
    let report = uninstall(&fleet, TKE);
    assert!(!report.ok);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some("cannot connect to 10.0.0.11:22: Connection timed out")
    );
    assert!(report.hosts[1].ok && report.hosts[1].changed);
    assert!(fleet.state(0).running, "untouched");
}

#[test]
fn a_user_without_sudo_fails_its_master() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| m.sudo_denied = true);
    let report = uninstall(&fleet, TKE);
    assert!(
        report.hosts[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("user tkeha has no passwordless sudo")
    );
}

#[test]
fn a_script_that_dies_midway_is_reported_with_its_status_and_stderr() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| {
        m.replies.insert(
            "uninstall",
            ExecOutput {
                stdout: "@@stopped=1\n".into(),
                stderr: "bash: line 9: ip: command not found\n".into(),
                status: 127,
            },
        );
    });
    let report = uninstall(&fleet, TKE);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some(
            "the uninstall script failed (exit 127) after it stopped keepalived: bash: line 9: ip: command not found"
        )
    );
    assert!(
        report.hosts[0].changed,
        "keepalived was stopped before the script died"
    );
}

#[test]
fn a_connection_lost_after_the_stop_reports_the_change() {
    let fleet = Fleet::new(1);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    // The fake's first line is @@stopped=1; the connection dies after it.
    fleet.master(0, |m| m.cut = Some(("uninstall", 1)));
    let report = uninstall(&fleet, TKE);
    let h = &report.hosts[0];
    assert_eq!(
        h.error.as_deref(),
        Some(
            "the connection was lost while the uninstall script ran (running the uninstall script failed: connection reset by peer); \
             before that it stopped keepalived; rerun uninstall"
        )
    );
    assert!(h.changed, "keepalived was stopped: {h:?}");
}

#[test]
fn the_report_says_the_package_stays() {
    let fleet = Fleet::new(2);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    let report = uninstall(&fleet, TKE);
    for h in &report.hosts {
        assert_eq!(
            h.notes,
            [
                "the keepalived package (1:2.2.7-1+b2) stays installed: uninstall removes only what tkeha wrote \
              (remove the package with the package manager if it is no longer wanted)"
            ]
        );
    }
    assert!(
        report
            .to_text()
            .contains("note: the keepalived package (1:2.2.7-1+b2) stays installed")
    );
    // Without the package there is nothing to say.
    let bare = Fleet::new(1);
    let report = uninstall(&bare, TKE);
    assert!(
        report.hosts[0].notes.is_empty(),
        "{:?}",
        report.hosts[0].notes
    );
}

#[test]
fn third_party_masters_lose_the_hairpin_rule() {
    let fleet = Fleet::new(2);
    let report = uninstall(
        &fleet,
        r#"{"thirdParty": {"vip": "10.0.0.100", "vport": 16443}}"#,
    );
    let script = &fleet.sent(0)[1];
    assert!(
        script.text().contains(
            "iptables -w 5 -t nat -D OUTPUT -d 10.0.0.100/32 -p tcp --dport 16443 -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443"
        ),
        "{}",
        script.text()
    );
    assert!(!script.text().contains("keepalived.conf"));
    assert_eq!(report.mode, "thirdParty");
}

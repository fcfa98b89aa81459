//! `drill` against the fake fleet: what is stopped and restarted where, the figures reported, and every refusal and failure, with the old holder always restored.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::Action;
use crate::fake::{Fleet, Vrrp};
use crate::report::{Report, VrrpState};

/// Three provisioned masters, `holder` holding the VIP.
fn fleet(holder: usize) -> Fleet {
    let fleet = Fleet::new(3);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, holder);
    fleet
}

fn drill(fleet: &Fleet, wait: Duration) -> Report {
    let plan = fleet.tke_plan();
    fleet.provisioner(wait).run(Action::Drill, &plan)
}

#[test]
fn the_holder_is_stopped_the_vip_moves_and_the_old_holder_comes_back_as_backup() {
    let fleet = fleet(0);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(
        fleet.whats(0),
        [
            "probe",
            "stop keepalived",
            "restart keepalived",
            "VIP watch"
        ]
    );
    for i in [1, 2] {
        assert_eq!(
            fleet.whats(i),
            ["probe", "VIP watch", "VIP watch"],
            "master {i}"
        );
    }
    // Without systemd the daemon gets SIGTERM through its pid file, and is started the same way.
    let stop = &fleet.sent(0)[1];
    assert!(stop.text().contains("kill \"$p\""), "{}", stop.text());
    assert!(fleet.sent(0)[2].text().contains("keepalived -D"));

    let d = report.drill.as_ref().unwrap();
    assert_eq!((d.from.as_str(), d.to.as_str()), ("10.0.0.11", "10.0.0.12"));
    assert_eq!(
        d.oracle, "holder",
        "no apiserver listens: the holders decide"
    );
    assert!(d.old_holder_stayed_backup);
    assert!(d.failover_ms < 30_000);
    assert_eq!(report.vip_holder.as_deref(), Some("10.0.0.12"));
    let states: Vec<_> = report.hosts.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [VrrpState::Backup, VrrpState::Master, VrrpState::Backup]
    );
    assert!(fleet.state(0).running, "restored");
    assert_eq!(fleet.holders(), [1]);
}

#[test]
fn with_an_apiserver_the_vip_must_answer_on_6443_and_systemd_stops_without_waiting() {
    let fleet = fleet(1);
    fleet.every(|m| {
        m.systemd = true;
        m.apiserver_manifest = true;
        m.apiserver_listening = true;
    });
    fleet.api_behind_vip(true);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(report.ok, "{}", report.to_text());
    let d = report.drill.as_ref().unwrap();
    assert_eq!(d.oracle, "tcp");
    assert_eq!((d.from.as_str(), d.to.as_str()), ("10.0.0.12", "10.0.0.11"));
    let sent = fleet.sent(1);
    assert!(
        sent[1]
            .text()
            .contains("systemctl stop --no-block keepalived")
    );
    assert!(sent[2].text().contains("systemctl start keepalived"));
}

#[test]
fn an_old_holder_that_takes_the_vip_back_fails_the_drill() {
    let fleet = fleet(0);
    fleet.master(0, |m| m.preempts = true);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        ["the restarted old holder took the VIP back (nopreempt not effective)"]
    );
    assert!(!report.drill.as_ref().unwrap().old_holder_stayed_backup);
}

#[test]
fn no_holder_or_two_are_refused_and_nothing_is_stopped() {
    for (holders, count) in [(vec![], 0), (vec![0, 2], 2)] {
        let fleet = fleet(0);
        fleet.set_holders(&holders);
        let report = drill(&fleet, Duration::from_secs(30));
        assert!(!report.ok);
        assert_eq!(
            report.errors,
            [format!(
                "a drill needs every master reachable and exactly one VIP holder (holders: {count}): run `status`"
            )]
        );
        assert_eq!(report.split_brain, count > 1);
        for i in 0..3 {
            assert_eq!(fleet.whats(i), ["probe"], "master {i}");
        }
    }
}

#[test]
fn an_unreachable_master_is_refused_and_nothing_is_stopped() {
    let fleet = fleet(0);
    fleet.master(2, |m| m.connect_error = Some("No route to host".into()));
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        [
            "a drill needs every master reachable and exactly one VIP holder (holders: 1): run `status`"
        ]
    );
    assert_eq!(fleet.whats(0), ["probe"]);
    assert!(fleet.state(0).running);
}

#[test]
fn without_another_running_keepalived_nothing_is_stopped() {
    let fleet = fleet(0);
    fleet.master(1, |m| m.running = false);
    fleet.master(2, |m| m.running = false);
    let report = drill(&fleet, Duration::from_secs(30));
    assert_eq!(
        report.errors,
        ["no other master runs keepalived: nothing could take the VIP over"]
    );
    assert_eq!(fleet.whats(0), ["probe"]);
}

#[test]
fn a_vip_that_does_not_move_fails_and_the_holder_is_still_restored() {
    let fleet = fleet(0);
    // VRRP adverts are lost from now on: when the holder stops, nobody takes over.
    fleet.vrrp(Vrrp::Nobody);
    let report = drill(&fleet, Duration::from_secs(1));
    assert!(!report.ok);
    assert!(
        report
            .errors
            .contains(&"no other master took VIP 10.0.0.100 within 1 s".to_string()),
        "{:?}",
        report.errors
    );
    assert!(
        report
            .errors
            .contains(&"after the drill 0 masters hold the VIP".to_string())
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
    assert!(fleet.state(0).running, "restored");
}

#[test]
fn a_stop_that_fails_in_transit_is_reported_and_the_holder_restarted() {
    let fleet = fleet(0);
    fleet.master(0, |m| m.stop_fails = true);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(!report.ok);
    assert_eq!(
        report.errors[0],
        "stopping keepalived on the holder failed: running the stop keepalived script failed: channel closed"
    );
    assert!(fleet.whats(0).contains(&"restart keepalived".to_string()));
}

#[test]
fn third_party_ha_has_nothing_to_drill() {
    let fleet = Fleet::new(2);
    let plan = fleet.plan(r#"{"thirdParty": {"vip": "10.0.0.100", "vport": 6443}}"#);
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Drill, &plan);
    assert_eq!(
        report.errors,
        ["drill needs TKE HA (keepalived): in third-party mode the external LB does the failover"]
    );
    assert!(fleet.whats(0).is_empty() && fleet.whats(1).is_empty());
}

/// Three masters as TKEStack leaves them (healthy apiservers), `holder` holding the VIP.
fn tkestack(holder: usize) -> Fleet {
    let fleet = Fleet::new(3);
    fleet.tkestack(&fleet.tke_plan(), holder);
    fleet.every(|m| {
        m.apiserver_manifest = true;
        m.apiserver_listening = true;
    });
    fleet.api_behind_vip(true);
    fleet
}

const PARK: &str = "park keepalived manifest";
const RESTORE: &str = "restore keepalived manifest";

#[test]
fn tkestack_the_manifest_is_parked_the_vip_moves_and_the_manifest_comes_back() {
    let fleet = tkestack(0);
    let pid_before = fleet.state(0).pod_pid;
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(fleet.whats(0), ["probe", PARK, RESTORE, "VIP watch"]);
    for i in [1, 2] {
        assert_eq!(
            fleet.whats(i),
            ["probe", "VIP watch", "VIP watch"],
            "master {i}"
        );
    }
    // The park script writes the guard's restore script (root only) before it moves anything.
    let park = &fleet.sent(0)[1];
    assert_eq!(park.uploads().len(), 1);
    assert_eq!(
        park.uploads()[0].path,
        "/etc/kubernetes/tkeha-drill/restore.sh"
    );
    assert_eq!(park.uploads()[0].mode, 0o700);
    assert!(
        park.text().contains("--on-active=40s"),
        "guard: the drill's wait + 10 s"
    );
    // The restore waits for a keepalived that is not the pod's old one.
    let restore = &fleet.sent(0)[2];
    assert!(
        restore
            .text()
            .contains(&format!("old=' {} {} '", pid_before, pid_before + 1)),
        "{}",
        restore.text()
    );

    let d = report.drill.as_ref().unwrap();
    assert_eq!((d.from.as_str(), d.to.as_str()), ("10.0.0.11", "10.0.0.12"));
    assert_eq!(d.oracle, "tcp");
    assert!(d.old_holder_stayed_backup);
    assert_eq!(report.managed_by, Some(crate::report::ManagedBy::Tkestack));
    let m = fleet.state(0);
    assert!(
        m.static_pod.is_some() && m.parked_pod.is_none(),
        "the manifest is back"
    );
    assert!(
        m.running && m.pod_pid != pid_before,
        "kubelet started a new keepalived"
    );
    assert!(!m.guard_armed, "the guard is disarmed");
    assert!(
        !m.files
            .contains_key("/etc/kubernetes/tkeha-drill/restore.sh")
    );
    assert_eq!(fleet.holders(), [1]);
}

#[test]
fn tkestack_an_old_holder_taking_the_vip_back_is_reported_not_failed() {
    let fleet = tkestack(0);
    fleet.master(0, |m| m.preempts = true);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(report.ok, "{}", report.to_text());
    assert!(!report.drill.as_ref().unwrap().old_holder_stayed_backup);
    let returned = report
        .warnings
        .iter()
        .find(|w| w.code == "drill-vip-returned")
        .unwrap();
    assert!(
        returned.message.contains("no nopreempt"),
        "{}",
        returned.message
    );
}

/// A change to one fake master.
type Change = fn(&mut crate::fake::Master);

#[test]
fn tkestack_any_unhealthy_master_refuses_the_drill_and_nothing_moves() {
    let cases: [(&str, Change); 3] = [
        ("keepalived is not running", |m| m.running = false),
        ("its apiserver does not answer on :6443", |m| {
            m.apiserver_listening = false
        }),
        (
            "a tkeha drill parked TKEStack's static pod manifest at /etc/kubernetes/tkeha-drill/keepalived.yaml",
            |m| {
                m.parked_pod = m.static_pod.take();
                m.running = false;
            },
        ),
    ];
    for (why, change) in cases {
        let fleet = tkestack(0);
        fleet.master(2, change);
        let report = drill(&fleet, Duration::from_secs(30));
        assert!(!report.ok);
        assert!(
            report.errors[0].starts_with(&format!(
                "a drill needs every master healthy, and these are not: 10.0.0.13: {why}"
            )),
            "{:?}",
            report.errors
        );
        for i in 0..3 {
            assert_eq!(fleet.whats(i), ["probe"], "{why}: master {i}");
        }
    }
}

#[test]
fn tkestack_an_interrupt_after_the_park_restores_at_once() {
    let fleet = tkestack(0);
    let interrupt = crate::Interrupt::new();
    fleet.interrupt_on(PARK, interrupt.clone());
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .interrupted_by(interrupt)
        .run(Action::Drill, &fleet.tke_plan());
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        ["interrupted: the drill stopped early and put keepalived back on the old holder"]
    );
    assert_eq!(
        fleet.whats(0),
        ["probe", PARK, RESTORE],
        "no watch after an interrupt"
    );
    let m = fleet.state(0);
    assert!(m.static_pod.is_some() && m.parked_pod.is_none() && !m.guard_armed);
}

#[test]
fn an_interrupt_before_the_stop_changes_nothing() {
    let fleet = tkestack(0);
    let interrupt = crate::Interrupt::new();
    fleet.interrupt_on("VIP watch", interrupt.clone());
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .interrupted_by(interrupt)
        .run(Action::Drill, &fleet.tke_plan());
    assert_eq!(
        report.errors,
        ["interrupted before anything was stopped: nothing was changed"]
    );
    assert_eq!(fleet.whats(0), ["probe"]);
    assert!(fleet.state(0).static_pod.is_some());
}

#[test]
fn tkestack_a_restore_lost_in_transit_leaves_it_to_the_masters_guard() {
    let fleet = tkestack(0);
    fleet.master(0, |m| m.broken.push(RESTORE));
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(!report.ok);
    let error = report
        .errors
        .iter()
        .find(|e| e.starts_with("restoring keepalived on 10.0.0.11 failed"))
        .unwrap();
    assert!(
        error.ends_with(
            "the master's guard puts /etc/kubernetes/manifests/keepalived.yaml back within 40 s of the drill's start"
        ),
        "{error}"
    );
    assert!(fleet.state(0).guard_armed && fleet.state(0).parked_pod.is_some());
    // The guard's timer runs out on the master: the manifest is back, kubelet starts the pod.
    fleet.fire_guard(0);
    let m = fleet.state(0);
    assert!(m.static_pod.is_some() && m.parked_pod.is_none() && m.running);
}

#[test]
fn tkestack_a_refused_park_or_a_stuck_kubelet_fail_the_drill() {
    let fleet = tkestack(0);
    fleet.master(0, |m| {
        m.replies.insert(
            PARK,
            crate::remote::ExecOutput {
                stdout: "@@guard_failed=1\n@@end=1\n".into(),
                stderr: String::new(),
                status: 0,
            },
        );
    });
    let report = drill(&fleet, Duration::from_secs(30));
    assert_eq!(
        report.errors[0],
        "parking the keepalived static pod manifest on the holder failed: the restore guard could not be armed, so nothing was moved"
    );
    assert!(fleet.state(0).running, "nothing was stopped");

    let fleet = tkestack(0);
    fleet.master(0, |m| m.kubelet_stuck = true);
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(
        report.errors.contains(
            &"restoring keepalived on 10.0.0.11 failed: the manifest is back, but kubelet started no keepalived within 30 s: see kubelet's log"
                .to_string()
        ),
        "{:?}",
        report.errors
    );
}

#[test]
fn tkestack_a_manifest_tkestack_wrote_during_the_drill_wins_and_the_parked_copy_is_kept() {
    let fleet = tkestack(0);
    fleet.master(0, |m| {
        m.rewrite_during_drill = Some(format!("{}\n# rewritten", m.static_pod.clone().unwrap()));
    });
    let report = drill(&fleet, Duration::from_secs(30));
    assert!(report.ok, "{}", report.to_text());
    assert!(
        report.hosts[0].notes.contains(
            &"TKEStack wrote the manifest again during the drill; the parked copy differs and is left at /etc/kubernetes/tkeha-drill/keepalived.yaml"
                .to_string()
        ),
        "{:?}",
        report.hosts[0].notes
    );
    let m = fleet.state(0);
    assert!(
        m.static_pod.as_deref().unwrap().ends_with("# rewritten"),
        "TKEStack's copy stays"
    );
    assert!(
        m.parked_pod.is_some(),
        "the drill's copy is kept for a person"
    );
    // The next status says what to do about it.
    let status = fleet
        .provisioner(Duration::from_secs(5))
        .run(Action::Status, &fleet.tke_plan());
    assert!(
        status.hosts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("remove the parked copy"),
        "{:?}",
        status.hosts[0]
    );
}

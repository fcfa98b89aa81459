//! Beside TKEStack, against the fake fleet: `check` and `status` report TKEStack-managed masters (with the weaknesses of its config), `apply` and `uninstall` refuse and send nothing but probes, and a mixed cluster is refused by every action.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::Action;
use crate::fake::{Fleet, Master};
use crate::keepalived::CONF_PATH;
use crate::report::{Health, ManagedBy, Report, VrrpState};
use crate::tkestack::{PARKED_MANIFEST, STATIC_POD_MANIFEST};

const TKE: &str = r#"{"tke": {"vip": "10.0.0.100"}}"#;
const THIRD_PARTY: &str = r#"{"thirdParty": {"vip": "10.0.0.100", "vport": 6443}}"#;

/// Three masters as TKEStack leaves them, `holder` holding the VIP.
fn tkestack(holder: usize) -> Fleet {
    let fleet = Fleet::new(3);
    fleet.tkestack(&fleet.tke_plan(), holder);
    fleet
}

fn run(fleet: &Fleet, action: Action, ha: &str) -> Report {
    fleet
        .provisioner(Duration::from_secs(5))
        .run(action, &fleet.plan(ha))
}

/// Every master's state, for "nothing changed".
fn states(fleet: &Fleet, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:?}", fleet.state(i))).collect()
}

/// Every master received probes and nothing else.
fn only_probes(fleet: &Fleet, n: usize) {
    for i in 0..n {
        let whats = fleet.whats(i);
        assert!(
            !whats.is_empty() && whats.iter().all(|w| w == "probe"),
            "master {i}: {whats:?}"
        );
    }
}

const CODES: [&str; 4] = [
    "tkestack-preempt",
    "tkestack-auth-pass",
    "tkestack-multicast",
    "tkestack-slow-detection",
];

fn codes(report: &Report) -> Vec<&str> {
    report.warnings.iter().map(|w| w.code.as_str()).collect()
}

#[test]
fn check_reports_tkestack_managed_masters_not_a_conflict() {
    let fleet = tkestack(0);
    let report = run(&fleet, Action::Check, TKE);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.managed_by, Some(ManagedBy::Tkestack));
    assert_eq!(codes(&report), CODES);
    for h in &report.hosts {
        assert_eq!(h.managed_by, Some(ManagedBy::Tkestack));
        assert_eq!(
            h.interface.as_deref(),
            Some("eth0"),
            "the interface check still runs"
        );
        assert_eq!(h.notes.len(), 1, "{:?}", h.notes);
        assert!(
            h.notes[0].starts_with("TKEStack manages keepalived here: static pod /etc/kubernetes/manifests/keepalived.yaml"),
            "{:?}",
            h.notes
        );
        assert!(h.notes[0].contains("interface eth0, virtual_router_id 101"));
    }
    only_probes(&fleet, 3);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["managedBy"], "tkestack");
    assert_eq!(json["hosts"][0]["managedBy"], "tkestack");
    assert_eq!(json["warnings"][3]["code"], "tkestack-slow-detection");
    assert!(report.to_text().contains("HA managed by TKEStack"));
}

#[test]
fn check_still_fails_a_vip_in_use_and_a_config_that_contradicts_the_cluster() {
    let fleet = tkestack(0);
    fleet.set_holders(&[]);
    fleet.every(|m| m.vip_answers = true);
    let report = run(&fleet, Action::Check, TKE);
    assert!(
        report.errors[0].starts_with("VIP 10.0.0.100 already answers on the network"),
        "{:?}",
        report.errors
    );

    let fleet = tkestack(0);
    let report = run(&fleet, Action::Check, r#"{"tke": {"vip": "10.0.0.200"}}"#);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some(
            "TKEStack's /etc/keepalived/keepalived.conf floats VIP 10.0.0.100, but the Cluster's VIP is 10.0.0.200: \
             this is not the Cluster of these masters"
        )
    );

    let fleet = tkestack(0);
    fleet.master(1, |m| {
        let f = m.files.get_mut(CONF_PATH).unwrap();
        f.content = f.content.replace("interface eth0", "interface eth1");
    });
    let report = run(&fleet, Action::Check, TKE);
    assert!(
        report.hosts[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("TKEStack's config runs VRRP on eth1, but 10.0.0.12 is on eth0"),
        "{:?}",
        report.hosts[1]
    );
}

#[test]
fn a_vrid_that_differs_from_the_cluster_is_a_note_and_configs_that_disagree_fail() {
    let fleet = tkestack(0);
    let report = run(
        &fleet,
        Action::Check,
        r#"{"tke": {"vip": "10.0.0.100", "vrid": 7}}"#,
    );
    assert!(report.ok, "{}", report.to_text());
    assert!(report.hosts[0].notes.contains(
        &"virtual_router_id is 101 in TKEStack's config and 7 in the Cluster; TKEStack's config is what runs".to_string()
    ));

    fleet.master(2, |m| {
        let f = m.files.get_mut(CONF_PATH).unwrap();
        f.content = f
            .content
            .replace("virtual_router_id 101", "virtual_router_id 9");
    });
    let report = run(&fleet, Action::Status, TKE);
    assert!(
        report.errors.iter().any(|e| e.starts_with(
            "TKEStack's configs disagree: 10.0.0.11 floats 10.0.0.100 with virtual_router_id 101, 10.0.0.13 floats 10.0.0.100 with 9"
        )),
        "{:?}",
        report.errors
    );
}

#[test]
fn apply_is_refused_and_changes_nothing() {
    let fleet = tkestack(1);
    let before = states(&fleet, 3);
    let report = run(&fleet, Action::Apply, TKE);
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        [
            "TKEStack manages HA on these masters (its keepalived static pod and config on every master): \
             tkeha does not provision beside TKEStack's controller, which installs and re-asserts its own setup; \
             tkeha's part here is `check`, `status` and `drill`",
            "preflight failed: nothing was changed on any master"
        ]
    );
    only_probes(&fleet, 3);
    assert_eq!(states(&fleet, 3), before);
    assert_eq!(fleet.holders(), [1]);
}

#[test]
fn uninstall_is_refused_and_changes_nothing() {
    let fleet = tkestack(1);
    let before = states(&fleet, 3);
    let report = run(&fleet, Action::Uninstall, TKE);
    assert!(!report.ok);
    assert!(
        report.errors[0].starts_with("TKEStack manages HA on these masters")
            && report.errors[0].contains("tkeha does not uninstall"),
        "{:?}",
        report.errors
    );
    assert_eq!(report.errors[1], "nothing was changed on any master");
    assert_eq!(report.managed_by, Some(ManagedBy::Tkestack));
    only_probes(&fleet, 3);
    assert_eq!(states(&fleet, 3), before);
}

#[test]
fn third_party_beside_tkestacks_hairpin_rule() {
    let fleet = Fleet::new(2);
    fleet.every(|m| m.tkestack_hairpin = true);
    let status = run(&fleet, Action::Status, THIRD_PARTY);
    assert!(status.ok, "{}", status.to_text());
    assert_eq!(status.managed_by, Some(ManagedBy::Tkestack));
    assert!(
        status.warnings.is_empty(),
        "no keepalived, no keepalived weaknesses"
    );
    assert_eq!(fleet.sent(0)[0].what(), "probe");
    assert!(
        fleet.sent(0)[0]
            .text()
            .contains("iptables -w 5 -t nat -C OUTPUT -p tcp -d 10.0.0.100 --dport 6443 -j REDIRECT --to-ports 6443"),
        "the probe looks for TKEStack's own rule"
    );

    let apply = run(&fleet, Action::Apply, THIRD_PARTY);
    assert!(apply.errors.contains(
        &"TKEStack manages HA on these masters (its hairpin rule on every master): tkeha does not provision beside \
          TKEStack's controller, which installs and re-asserts its own setup; tkeha's part here is `check`, `status` and `drill`"
            .to_string()
    ));
    for i in 0..2 {
        let whats = fleet.whats(i);
        assert!(
            fleet
                .sent(i)
                .iter()
                .all(|s| !s.text().contains("iptables -w 5 -t nat -I")),
            "master {i} was sent an insert: {whats:?}"
        );
    }
    let uninstall = run(&fleet, Action::Uninstall, THIRD_PARTY);
    assert!(!uninstall.ok);
    assert!(!fleet.whats(0).contains(&"uninstall".to_string()));
}

#[test]
fn status_reports_holder_pods_health_weaknesses_and_managed_by() {
    let fleet = tkestack(2);
    fleet.every(|m| {
        m.apiserver_manifest = true;
        m.apiserver_listening = true;
    });
    let report = run(&fleet, Action::Status, TKE);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.vip_holder.as_deref(), Some("10.0.0.13"));
    assert_eq!(report.managed_by, Some(ManagedBy::Tkestack));
    assert_eq!(codes(&report), CODES);
    let states: Vec<_> = report.hosts.iter().map(|h| h.state).collect();
    assert_eq!(
        states,
        [VrrpState::Backup, VrrpState::Backup, VrrpState::Master],
        "keepalived in the pod counts as running"
    );
    assert!(report.hosts.iter().all(|h| h.health == Some(Health::Pass)));
    only_probes(&fleet, 3);
    let text = report.to_text();
    assert!(
        text.contains("warning: `auth_pass 1111` is the same on every TKEStack cluster"),
        "{text}"
    );
    assert!(text.contains("managed_by=TKEStack"), "{text}");

    // A pod without keepalived, a dead apiserver, two holders.
    fleet.master(0, |m| m.running = false);
    fleet.master(1, |m| m.apiserver_listening = false);
    fleet.set_holders(&[1, 2]);
    let report = run(&fleet, Action::Status, TKE);
    assert_eq!(report.hosts[0].state, VrrpState::Stopped);
    assert!(
        report.hosts[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("keepalived is not running: TKEStack's static pod (/etc/kubernetes/manifests/keepalived.yaml) has no keepalived process"),
        "{:?}",
        report.hosts[0]
    );
    assert_eq!(report.hosts[1].health, Some(Health::Fail));
    assert!(report.split_brain);
    assert!(report.errors[0].starts_with("SPLIT BRAIN: 2 masters hold VIP 10.0.0.100"));
}

#[test]
fn status_tells_how_to_put_back_a_manifest_an_interrupted_drill_parked() {
    let fleet = tkestack(0);
    fleet.master(1, |m| {
        m.parked_pod = m.static_pod.take();
        m.running = false;
    });
    let report = run(&fleet, Action::Status, TKE);
    assert_eq!(
        report.managed_by,
        Some(ManagedBy::Tkestack),
        "parked still counts as TKEStack's"
    );
    assert_eq!(
        report.hosts[1].error.as_deref(),
        Some(
            format!(
                "a tkeha drill parked TKEStack's static pod manifest at {PARKED_MANIFEST} (the drill is running, or was \
                 interrupted); if none runs, put it back: mv {PARKED_MANIFEST} {STATIC_POD_MANIFEST}"
            )
            .as_str()
        )
    );
}

/// Masters 0 and 1 TKEStack's, master 2 `third`.
fn mixed(third: impl FnOnce(&Fleet)) -> Fleet {
    let fleet = tkestack(0);
    fleet.master(2, |m| *m = Master::fresh("10.0.0.13", "m3"));
    third(&fleet);
    fleet
}

const MIXED: &str = "mixed cluster: TKEStack manages HA on [10.0.0.11, 10.0.0.12] (its keepalived static pod and \
                     config) but not on [10.0.0.13]; tkeha acts on none of them. If TKEStack is still creating this \
                     cluster, wait until it is Running (it sets up the first master before kubeadm runs and the \
                     others after they join); otherwise make every master the same: all TKEStack's, or none";

/// What a test does to a fleet before it runs.
type Setup = Box<dyn Fn(&Fleet)>;

#[test]
fn a_mixed_cluster_is_refused_by_every_action_and_nothing_changes() {
    let variants: [(&str, Setup); 2] = [
        ("a fresh third master", Box::new(|_| {})),
        (
            "a third master with tkeha's config",
            Box::new(|f: &Fleet| {
                let other = Fleet::new(3);
                other.provisioned(&other.tke_plan(), 0);
                let ours = other.state(2);
                f.master(2, |m| *m = ours);
            }),
        ),
    ];
    for (what, third) in variants {
        for action in [
            Action::Check,
            Action::Apply,
            Action::Status,
            Action::Drill,
            Action::Uninstall,
        ] {
            let fleet = mixed(&third);
            let before = states(&fleet, 3);
            let report = run(&fleet, action, TKE);
            assert!(!report.ok, "{what}, {action:?}");
            assert_eq!(report.errors[0], MIXED, "{what}, {action:?}");
            assert_eq!(report.managed_by, None);
            assert_eq!(report.hosts[0].managed_by, Some(ManagedBy::Tkestack));
            only_probes(&fleet, 3);
            assert_eq!(states(&fleet, 3), before, "{what}, {action:?}");
        }
    }
}

#[test]
fn a_keepalived_static_pod_that_is_not_tkestacks_is_named_and_left_alone() {
    let fleet = tkestack(0);
    fleet.every(|m| {
        let f = m.files.get_mut(CONF_PATH).unwrap();
        f.content = f
            .content
            .replace("advert_int 1", "advert_int 1\n    nopreempt");
    });
    let check = run(&fleet, Action::Check, TKE);
    let error = check.hosts[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("a keepalived static pod (/etc/kubernetes/manifests/keepalived.yaml) runs here that is not TKEStack's"),
        "{error}"
    );
    assert!(
        error.contains("has `nopreempt`, which TKEStack's template does not"),
        "{error}"
    );
    assert_eq!(check.managed_by, Some(ManagedBy::Tkeha));
    let before = states(&fleet, 3);
    let uninstall = run(&fleet, Action::Uninstall, TKE);
    assert!(!uninstall.ok);
    assert_eq!(uninstall.errors, ["nothing was changed on any master"]);
    only_probes(&fleet, 3);
    assert_eq!(states(&fleet, 3), before);
    let apply = run(&fleet, Action::Apply, TKE);
    assert!(!apply.ok);
    assert_eq!(states(&fleet, 3), before);
}

#[test]
fn tkehas_own_masters_say_so() {
    let fleet = Fleet::new(2);
    fleet.provisioned(&fleet.tke_plan(), 0);
    let report = run(&fleet, Action::Status, TKE);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(report.managed_by, Some(ManagedBy::Tkeha));
    assert!(report.warnings.is_empty());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["managedBy"], "tkeha");
    // Fresh masters are tkeha's to provision: the host has no manager yet, the cluster does.
    let fresh = Fleet::new(2);
    let report = run(&fresh, Action::Check, TKE);
    assert_eq!(report.managed_by, Some(ManagedBy::Tkeha));
    assert_eq!(report.hosts[0].managed_by, None);
}

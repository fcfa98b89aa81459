//! `status`: per master keepalived state, VIP holder and health; more than one holder is split brain. Works the same where TKEStack manages HA, and then adds the weaknesses of its config.

use std::time::Instant;

use crate::fleet::{self, Host};
use crate::keepalived::{self, CONF_PATH};
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::report::{Health, Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::probe::{Probe, ProbeRequest};

/// Health from the probe: the fast profile's resident probe decides where it runs, else the
/// installed check script; without either, manifest + listener.
pub(crate) fn health(p: &Probe) -> Health {
    if !p.apiserver_manifest {
        return Health::Bootstrap;
    }
    let resident = p
        .probe_running
        .then_some(p.probe_reason.as_deref())
        .flatten();
    let pass = match (resident, p.health_rc) {
        (Some(reason), _) => matches!(reason, "ok" | "bootstrap"),
        (None, Some(rc)) => rc == 0,
        (None, None) => p.apiserver_listening,
    };
    if pass { Health::Pass } else { Health::Fail }
}

/// VRRP state inferred from outside: holds the VIP => MASTER; stopped => STOPPED; failing health => FAULT; else BACKUP.
pub(crate) fn infer_state(p: &Probe, holds: bool) -> VrrpState {
    match (p.keepalived_running(), holds, health(p)) {
        (false, _, _) => VrrpState::Stopped,
        (true, true, _) => VrrpState::Master,
        (true, false, Health::Fail) => VrrpState::Fault,
        (true, false, _) => VrrpState::Backup,
    }
}

/// Fill each host's state from its probe; returns the holders' indices.
pub(crate) fn fill_states(plan: &Plan, hosts: &mut [Host<'_>]) -> Vec<usize> {
    let mut holders = Vec::new();
    for h in hosts.iter_mut() {
        let Some(p) = h.probe.as_ref() else { continue };
        let holds = p.holds(plan.vip);
        h.report.holds_vip = holds;
        h.report.health = Some(health(p));
        h.report.failover_profile = p.file(CONF_PATH).and_then(keepalived::parse_profile);
        if p.probe_running
            && let Some(reason @ ("not-running" | "not-answering")) = p.probe_reason.as_deref()
        {
            h.report
                .notes
                .push(format!("apiserver probe: {}", reason.replace('-', " ")));
        }
        if holds {
            holders.push(h.index);
        }
        if let Mode::Tke { .. } = plan.mode {
            h.report.state = infer_state(p, holds);
        }
    }
    holders
}

/// Report the HA state of every master.
pub(crate) fn status(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("status", plan.mode.name(), &plan.vip.to_string());
    let mut hosts = fleet::connect_and_probe(plan, p, |_| match plan.mode {
        Mode::ThirdParty { vport } => ProbeRequest {
            hairpin: Some((plan.vip, vport)),
            ..Default::default()
        },
        Mode::Tke { .. } => ProbeRequest::default(),
    });
    let holders = fill_states(plan, &mut hosts);
    managed::judge_fleet(plan, &mut hosts, &mut report);
    for h in hosts.iter_mut() {
        managed::judge_host(plan, h);
    }
    match plan.mode {
        Mode::Tke { .. } => {
            for h in hosts.iter_mut() {
                if let Some(p) = h.probe.as_ref()
                    && !p.keepalived_running()
                {
                    let why = managed::not_running(p);
                    h.report.fail(why);
                }
            }
            report.split_brain = holders.len() > 1;
            match holders.as_slice() {
                [] => report.fail(format!(
                    "no master holds VIP {}: the control plane is unreachable through it",
                    plan.vip
                )),
                [one] => report.vip_holder = hosts.get(*one).map(|h| h.report.host.clone()),
                many => report.fail(format!(
                    "SPLIT BRAIN: {} masters hold VIP {} ([{}]): check VRRP traffic between them",
                    many.len(),
                    plan.vip,
                    many.iter()
                        .filter_map(|i| hosts.get(*i))
                        .map(|h| h.report.host.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        Mode::ThirdParty { .. } => {
            for h in hosts.iter_mut() {
                if h.probe
                    .as_ref()
                    .is_some_and(|p| !p.hairpin && !p.tkestack_hairpin)
                {
                    h.report.fail("the hairpin rule (tkeha-hairpin) is missing: run `tkeha-provisioner apply`");
                }
            }
        }
    }
    fleet::into_report(&mut report, hosts, t);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(running: bool, manifest: bool, rc: Option<i32>) -> Probe {
        Probe {
            running,
            apiserver_manifest: manifest,
            health_rc: rc,
            ..Default::default()
        }
    }

    #[test]
    fn states_are_inferred() {
        assert_eq!(
            infer_state(&probe(false, false, None), false),
            VrrpState::Stopped
        );
        assert_eq!(
            infer_state(&probe(true, false, Some(0)), true),
            VrrpState::Master
        );
        assert_eq!(
            infer_state(&probe(true, true, Some(1)), false),
            VrrpState::Fault
        );
        assert_eq!(
            infer_state(&probe(true, true, Some(0)), false),
            VrrpState::Backup
        );
        assert_eq!(
            infer_state(&probe(true, false, Some(1)), false),
            VrrpState::Backup
        );
    }

    #[test]
    fn health_bootstraps_without_manifest() {
        assert_eq!(health(&probe(true, false, Some(1))), Health::Bootstrap);
        assert_eq!(health(&probe(true, true, Some(0))), Health::Pass);
        assert_eq!(health(&probe(true, true, None)), Health::Fail);
    }

    /// `status` over the fake fleet.
    fn status_of(fleet: &crate::fake::Fleet) -> Report {
        let plan = fleet.tke_plan();
        fleet
            .provisioner(std::time::Duration::from_secs(30))
            .run(crate::Action::Status, &plan)
    }

    #[test]
    fn one_probe_per_master_names_the_holder_and_changes_nothing() {
        let fleet = crate::fake::Fleet::new(3);
        fleet.provisioned(&fleet.tke_plan(), 2);
        let report = status_of(&fleet);
        assert!(report.ok, "{}", report.to_text());
        assert_eq!(report.vip_holder.as_deref(), Some("10.0.0.13"));
        for i in 0..3 {
            assert_eq!(fleet.whats(i), ["probe"]);
            assert_eq!(report.hosts[i].round_trips, 1);
            assert_eq!(report.hosts[i].health, Some(Health::Bootstrap));
        }
        let states: Vec<_> = report.hosts.iter().map(|h| h.state).collect();
        assert_eq!(
            states,
            [VrrpState::Backup, VrrpState::Backup, VrrpState::Master]
        );
    }

    #[test]
    fn a_stopped_keepalived_two_holders_or_none_are_failures() {
        let fleet = crate::fake::Fleet::new(3);
        fleet.provisioned(&fleet.tke_plan(), 0);
        fleet.master(1, |m| m.running = false);
        let report = status_of(&fleet);
        assert_eq!(report.hosts[1].state, VrrpState::Stopped);
        assert_eq!(
            report.hosts[1].error.as_deref(),
            Some("keepalived is not running: run `tkeha-provisioner apply`")
        );

        fleet.master(1, |m| m.running = true);
        fleet.set_holders(&[0, 2]);
        let report = status_of(&fleet);
        assert!(report.split_brain && !report.ok);
        assert_eq!(
            report.errors,
            [
                "SPLIT BRAIN: 2 masters hold VIP 10.0.0.100 ([10.0.0.11, 10.0.0.13]): check VRRP traffic between them"
            ]
        );

        fleet.set_holders(&[]);
        let report = status_of(&fleet);
        assert_eq!(
            report.errors,
            ["no master holds VIP 10.0.0.100: the control plane is unreachable through it"]
        );
    }
}

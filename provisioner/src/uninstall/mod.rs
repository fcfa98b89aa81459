//! `uninstall`: stop keepalived, remove our files and the hairpin rule, and make sure the VIP is gone; refused, with nothing changed anywhere, where TKEStack manages HA or a mixed cluster.

use std::time::Instant;

use crate::Action;
use crate::fleet;
use crate::keepalived::CONF_PATH;
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::observer::Step;
use crate::report::{ManagedBy, Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::probe::ProbeRequest;
use crate::scripts::probe::one_line;
use crate::scripts::probe_tkestack::Manager;
use crate::scripts::uninstall::{UninstallOutcome, uninstall_script};
use crate::tkestack::STATIC_POD_MANIFEST;

/// Remove everything tkeha installed from every master.
pub(crate) fn uninstall(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("uninstall", plan.mode.name(), &plan.vip.to_string());
    // Probe first: nothing is removed anywhere when TKEStack manages HA on any master.
    let mut hosts = fleet::connect_and_probe(plan, p, |_| ProbeRequest {
        hairpin: match plan.mode {
            Mode::ThirdParty { vport } => Some((plan.vip, vport)),
            Mode::Tke { .. } => None,
        },
        ..ProbeRequest::default()
    });
    managed::judge_fleet(plan, &mut hosts, &mut report);
    if report.managed_by == Some(ManagedBy::Tkestack)
        && let Some(refusal) = managed::refusal(Action::Uninstall, plan)
    {
        report.fail(refusal);
    }
    for h in hosts.iter_mut() {
        if let Some(Manager::OtherStaticPod(why)) = h.probe.as_ref().map(|p| &p.manager) {
            let why = format!(
                "a keepalived static pod ({STATIC_POD_MANIFEST}) that tkeha did not write runs here ({why}): \
                 uninstall leaves every master alone"
            );
            h.report.fail(why);
        }
    }
    if !report.errors.is_empty() || hosts.iter().any(|h| h.probe.is_some() && !h.report.ok) {
        report.fail("nothing was changed on any master");
        fleet::into_report(&mut report, hosts, t);
        return report;
    }
    let script = uninstall_script(plan);
    fleet::each(&mut hosts, p, Step::Uninstall, |h| {
        let run = h.run_streamed(&script)?;
        let out = UninstallOutcome::parse(&run.out);
        // What the script reported doing counts even when it did not get to its end.
        h.report.changed = out.changed();
        h.report.state = VrrpState::Stopped;
        if out.foreign_conf {
            h.report
                .notes
                .push(format!("{CONF_PATH} was not written by tkeha: left alone"));
        }
        if let Some(version) = &out.package {
            h.report.notes.push(format!(
                "the keepalived package ({version}) stays installed: uninstall removes only what tkeha wrote \
                 (remove the package with the package manager if it is no longer wanted)"
            ));
        }
        if let Some(cut) = run.cut {
            return Err(format!(
                "the connection was lost while the uninstall script ran ({cut}); before that it {}; rerun uninstall",
                done_so_far(&out)
            ));
        }
        if !out.complete {
            return Err(format!(
                "the uninstall script failed (exit {}) after it {}: {}",
                if out.status >= 0 {
                    out.status.to_string()
                } else {
                    "status unknown".to_string()
                },
                done_so_far(&out),
                one_line(&out.stderr)
            ));
        }
        if out.vip_still {
            return Err(format!("VIP {} is still assigned on this master", plan.vip));
        }
        Ok(())
    });
    fleet::into_report(&mut report, hosts, t);
    report
}

/// What a cut-off uninstall script had done, in words.
fn done_so_far(out: &UninstallOutcome) -> String {
    let mut done = Vec::new();
    if out.stopped {
        done.push("stopped keepalived".to_string());
    }
    if !out.removed.is_empty() {
        done.push(format!("removed {}", out.removed.join(", ")));
    }
    if out.vip_removed {
        done.push("removed the VIP".into());
    }
    if out.hairpin_removed {
        done.push("removed the hairpin rule".into());
    }
    if done.is_empty() {
        "had changed nothing that it reported".into()
    } else {
        done.join(", ")
    }
}

#[cfg(test)]
mod tests;

//! `uninstall`: stop keepalived, remove our files and the hairpin rule, and make sure the VIP is gone.

use std::time::Instant;

use crate::fleet;
use crate::keepalived::CONF_PATH;
use crate::manifest::Plan;
use crate::observer::Step;
use crate::report::{Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::uninstall::{UninstallOutcome, uninstall_script};

/// Remove everything tkeha installed from every master.
pub(crate) fn uninstall(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("uninstall", plan.mode.name(), &plan.vip.to_string());
    let mut hosts = fleet::connect_all(plan, p);
    let script = uninstall_script(plan);
    fleet::each(&mut hosts, p, Step::Uninstall, |h| {
        let out = UninstallOutcome::parse(&h.run(&script)?);
        if !out.complete {
            return Err(format!(
                "the uninstall script failed (exit {}): {}",
                out.status, out.stderr
            ));
        }
        h.report.changed = out.changed();
        h.report.state = VrrpState::Stopped;
        if out.foreign_conf {
            h.report
                .notes
                .push(format!("{CONF_PATH} was not written by tkeha: left alone"));
        }
        if out.vip_still {
            return Err(format!("VIP {} is still assigned on this master", plan.vip));
        }
        Ok(())
    });
    fleet::into_report(&mut report, hosts, t);
    report
}

#[cfg(test)]
mod tests;

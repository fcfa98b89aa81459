//! Beside TKEStack: who manages HA on a cluster's masters (from each probe's [`Manager`]), the refusal of a mixed cluster and of changes where TKEStack manages HA, and the findings about TKEStack's keepalived on one master.
//!
//! TKEStack's controller installs its keepalived (a static pod and a config from its template)
//! and re-asserts it periodically; for third-party HA it adds its own hairpin rule. tkeha never
//! provisions or uninstalls there: its part is `check` (including the LB binding, which TKEStack
//! does not verify), `status` and `drill`.

use crate::Action;
use crate::fleet::Host;
use crate::keepalived::CONF_PATH;
use crate::manifest::{Mode, Plan};
use crate::report::{ManagedBy, Report};
use crate::scripts::probe::{Probe, find_interface};
use crate::scripts::probe_tkestack::Manager;
use crate::tkestack::{self, PARKED_MANIFEST, STATIC_POD_MANIFEST};

/// Who manages HA on one master, when someone does.
pub(crate) fn host_side(m: &Manager) -> Option<ManagedBy> {
    match m {
        Manager::Tkestack(_) | Manager::TkestackHairpin => Some(ManagedBy::Tkestack),
        Manager::Tkeha => Some(ManagedBy::Tkeha),
        Manager::Nobody | Manager::OtherConf | Manager::OtherStaticPod(_) => None,
    }
}

/// What TKEStack installed, in words for messages.
fn what_tkestack_installs(mode: &Mode) -> &'static str {
    match mode {
        Mode::Tke { .. } => "its keepalived static pod and config",
        Mode::ThirdParty { .. } => "its hairpin rule",
    }
}

/// Decide who manages HA on the probed masters: record it on each host and in the report, and
/// fail the report for a mixed cluster (TKEStack on some masters, not on others). Where TKEStack
/// manages HA, its configs must agree with each other, and the report gets the weaknesses of
/// its config. Masters that were not probed do not count.
pub(crate) fn judge_fleet(plan: &Plan, hosts: &mut [Host<'_>], report: &mut Report) {
    let mut tkestack = Vec::new();
    let mut others = Vec::new();
    for h in hosts.iter_mut() {
        let Some(p) = h.probe.as_ref() else { continue };
        h.report.managed_by = host_side(&p.manager);
        if p.manager.is_tkestack() {
            tkestack.push(h.report.host.clone());
        } else {
            others.push(h.report.host.clone());
        }
    }
    report.managed_by = match (tkestack.is_empty(), others.is_empty()) {
        (true, true) => None,
        (true, false) => Some(ManagedBy::Tkeha),
        (false, true) => Some(ManagedBy::Tkestack),
        (false, false) => {
            report.fail(format!(
                "mixed cluster: TKEStack manages HA on [{}] ({}) but not on [{}]; tkeha acts on none of \
                 them. If TKEStack is still creating this cluster, wait until it is Running (it sets up \
                 the first master before kubeadm runs and the others after they join); otherwise make \
                 every master the same: all TKEStack's, or none",
                tkestack.join(", "),
                what_tkestack_installs(&plan.mode),
                others.join(", ")
            ));
            None
        }
    };
    if report.managed_by != Some(ManagedBy::Tkestack) {
        return;
    }
    let confs: Vec<_> = hosts
        .iter()
        .filter_map(|h| match h.probe.as_ref().map(|p| &p.manager) {
            Some(Manager::Tkestack(t)) => Some((h.report.host.as_str(), &t.conf)),
            _ => None,
        })
        .collect();
    if let Some((first_host, first)) = confs.first() {
        for (host, conf) in &confs[1..] {
            if conf.vip != first.vip || conf.vrid != first.vrid {
                report.fail(format!(
                    "TKEStack's configs disagree: {first_host} floats {} with virtual_router_id {}, {host} floats {} with {}: \
                     VRRP only works between masters with the same VIP and VRID",
                    first.vip, first.vrid, conf.vip, conf.vrid
                ));
                break;
            }
        }
        for w in tkestack::weaknesses(first) {
            report.warn(&w.code, w.message);
        }
    }
}

/// The refusal of an action that would change masters where TKEStack manages HA (`None` for the
/// actions tkeha performs there).
pub(crate) fn refusal(action: Action, plan: &Plan) -> Option<String> {
    let verb = match action {
        Action::Apply => "provision",
        Action::Uninstall => "uninstall",
        Action::Check | Action::Status | Action::Drill => return None,
    };
    Some(format!(
        "TKEStack manages HA on these masters ({} on every master): tkeha does not {verb} beside \
         TKEStack's controller, which installs and re-asserts its own setup; tkeha's part here is \
         `check`, `status` and `drill`",
        what_tkestack_installs(&plan.mode)
    ))
}

/// Per-master findings where TKEStack (or another static pod) set up HA: notes, and failures
/// for what contradicts the Cluster or a drill left behind. Nothing for other masters.
pub(crate) fn judge_host(plan: &Plan, h: &mut Host<'_>) {
    let Some(p) = h.probe.as_ref() else { return };
    let mut errors = Vec::new();
    match (&p.manager, &plan.mode) {
        (Manager::Tkestack(t), Mode::Tke { vrid }) => {
            let c = &t.conf;
            h.report.notes.push(format!(
                "TKEStack manages keepalived here: static pod {STATIC_POD_MANIFEST}, config from its template \
                 (interface {}, virtual_router_id {})",
                c.interface, c.vrid
            ));
            if c.vip != plan.vip {
                errors.push(format!(
                    "TKEStack's {CONF_PATH} floats VIP {}, but the Cluster's VIP is {}: this is not the Cluster of these masters",
                    c.vip, plan.vip
                ));
            }
            if c.vrid != *vrid {
                h.report.notes.push(format!(
                    "virtual_router_id is {} in TKEStack's config and {vrid} in the Cluster; TKEStack's config is what runs",
                    c.vrid
                ));
            }
            if let Some(a) = find_interface(&p.addrs, h.machine.ip)
                && a.iface != c.interface
            {
                errors.push(format!(
                    "TKEStack's config runs VRRP on {}, but {} is on {} (TKEStack finds the interface by a \
                     substring match of the IP): the adverts leave on the wrong interface",
                    c.interface, h.machine.ip, a.iface
                ));
            }
            match (t.in_place, t.parked) {
                (false, _) => errors.push(format!(
                    "a tkeha drill parked TKEStack's static pod manifest at {PARKED_MANIFEST} (the drill is \
                     running, or was interrupted); if none runs, put it back: \
                     mv {PARKED_MANIFEST} {STATIC_POD_MANIFEST}"
                )),
                (true, true) => errors.push(format!(
                    "TKEStack's static pod manifest is in place, and a different copy parked by a tkeha drill \
                     is left at {PARKED_MANIFEST} (TKEStack wrote the manifest again during the drill): \
                     remove the parked copy"
                )),
                (true, false) => {}
            }
        }
        (Manager::Tkestack(_), Mode::ThirdParty { .. }) => errors.push(format!(
            "TKEStack's keepalived runs here (static pod {STATIC_POD_MANIFEST}), but the Cluster's HA is third-party"
        )),
        (Manager::TkestackHairpin, Mode::ThirdParty { .. }) => h.report.notes.push(
            "TKEStack's own hairpin rule is present: TKEStack manages it, tkeha adds none".into(),
        ),
        (Manager::OtherStaticPod(why), _) => errors.push(format!(
            "a keepalived static pod ({STATIC_POD_MANIFEST}) runs here that is not TKEStack's ({why}): \
             tkeha neither provisions beside it nor reports on it; remove it, or restore TKEStack's config"
        )),
        _ => {}
    }
    for e in errors {
        h.report.fail(e);
    }
}

/// Why keepalived not running is a failure, in the words of who manages it.
pub(crate) fn not_running(p: &Probe) -> String {
    match &p.manager {
        Manager::Tkestack(_) => format!(
            "keepalived is not running: TKEStack's static pod ({STATIC_POD_MANIFEST}) has no keepalived \
             process; see kubelet's log and the pod's (crictl ps --name keepalived)"
        ),
        _ => "keepalived is not running: run `tkeha-provisioner apply`".into(),
    }
}

#[cfg(test)]
mod tests;

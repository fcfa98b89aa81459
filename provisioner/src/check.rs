//! `check`: the read-only preflight of every master (and, in third-party mode, of the LB binding); where TKEStack manages HA it reports that, not a conflict.

use std::sync::Mutex;
use std::time::Instant;

use rand::Rng as _;

use crate::fleet::{self, Host};
use crate::keepalived::{self, CONF_PATH};
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::observer::Step;
use crate::report::Report;
use crate::runner::Provisioner;
use crate::scripts::apply::{CONF_DIR, LOCK_WAIT_SECS};
use crate::scripts::probe::{Candidate, ProbeRequest, find_interface};
use crate::scripts::probe_tkestack::Manager;
use crate::scripts::watch::{holds_script, parse_holds};
use crate::thirdparty;

/// Connect and probe every master, then judge each one. Third-party mode leaves token listeners running
/// (stopped by [`thirdparty::finish`]); the per-host tokens are returned alongside.
pub(crate) fn preflight<'a>(
    p: &Provisioner<'_>,
    plan: &'a Plan,
    report: &mut Report,
) -> (Vec<Host<'a>>, Vec<String>) {
    let mut rng = rand::rng();
    let tokens: Vec<String> = plan
        .machines
        .iter()
        .map(|_| format!("tkeha-token-{:016x}", rng.random::<u64>()))
        .collect();
    let vip = plan.vip;
    let mut hosts = fleet::connect_and_probe(plan, p, |i| match plan.mode {
        Mode::Tke { .. } => ProbeRequest {
            vip_answer_test: Some(vip),
            installable: true,
            ..Default::default()
        },
        Mode::ThirdParty { vport } => ProbeRequest {
            listener_token: tokens.get(i).cloned(),
            hairpin: Some((vip, vport)),
            ..Default::default()
        },
    });
    for h in hosts.iter_mut().filter(|h| h.usable()) {
        judge_host(plan, h);
    }
    if let Mode::Tke { .. } = plan.mode {
        judge_vip_in_use(p, plan, &mut hosts, report);
    }
    judge_probe_route(plan, &hosts, report);
    managed::judge_fleet(plan, &mut hosts, report);
    (hosts, tokens)
}

/// Per-host findings from the probe.
fn judge_host(plan: &Plan, h: &mut Host<'_>) {
    let Some(p) = h.probe.as_ref() else { return };
    let ip = h.machine.ip;
    let mut errors = Vec::new();
    if p.uid != Some(0) {
        errors.push(format!(
            "scripts run as uid {:?}, not root: log in as root or give the user passwordless sudo",
            p.uid
        ));
    }
    match find_interface(&p.addrs, ip) {
        None => errors.push(format!(
            "no interface holds {ip} exactly (addresses: {}): spec.machines[].ip must be an address of this host",
            p.addrs.iter().map(|a| format!("{}={}", a.iface, a.net)).collect::<Vec<_>>().join(" ")
        )),
        Some(a) => {
            h.report.interface = Some(a.iface.clone());
            if matches!(plan.mode, Mode::Tke { .. }) && !a.net.trunc().contains(&plan.vip) {
                errors.push(format!(
                    "VIP {} is outside {}'s prefix {}: keepalived can only float a VIP inside the node subnet; choose a free address in {}",
                    plan.vip,
                    a.iface,
                    a.net.trunc(),
                    a.net.trunc()
                ));
            }
        }
    }
    match plan.mode {
        // TKEStack's keepalived runs in its container: see managed::judge_host.
        Mode::Tke { .. }
            if matches!(p.manager, Manager::Tkestack(_) | Manager::OtherStaticPod(_)) => {}
        Mode::Tke { .. } => {
            judge_installable(p, &mut errors, &mut h.report.notes);
            if let Some(dir) = p.modes.get(CONF_DIR)
                && dir.writable_by_others()
            {
                errors.push(format!(
                    "{CONF_DIR} is owned by uid {} with mode {:04o}: someone other than root could replace keepalived.conf or the health check in it; make it root's and not writable by others (chown root:root {CONF_DIR}; chmod 0755 {CONF_DIR}) and rerun",
                    dir.uid, dir.mode
                ));
            }
            if let Some(conf) = p.file(CONF_PATH)
                && !keepalived::is_ours(conf)
            {
                errors.push(format!(
                        "{CONF_PATH} exists and was not written by tkeha: move it away (it would be replaced) and rerun"
                    ));
            }
        }
        Mode::ThirdParty { .. } => {
            if !p.has_tool("iptables") {
                errors.push("iptables is not installed: it is needed for the hairpin rule (install iptables)".into());
            }
            if p.apiserver_listening {
                h.report.notes.push(
                    "apiserver already listening on :6443; binding checked by TCP only".into(),
                );
            } else if p.listener_unavailable {
                h.report.notes.push(
                    "neither socat nor python3 is installed: binding checked by TCP only".into(),
                );
            }
        }
    }
    for e in errors {
        h.report.fail(e);
    }
    managed::judge_host(plan, h);
}

/// keepalived must be installed, or installable now: the package manager sees a candidate
/// (checked by the probe against freshly read package sources, see
/// [`crate::scripts::probe::installable_check`]). Anything else fails the host before any
/// master changes.
fn judge_installable(
    p: &crate::scripts::probe::Probe,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    if p.keepalived.is_some() {
        return;
    }
    let Some(pm) = p.package_manager else {
        errors.push("keepalived is not installed and no package manager (apt-get, dnf, yum, zypper) was found: install keepalived".into());
        return;
    };
    let pm = pm.name();
    match &p.candidate {
        Some(Candidate::Available(version)) => {
            notes.push(format!(
                "keepalived will be installed with {pm} (candidate {version})"
            ));
            for holder in &p.dpkg_lock_holders {
                notes.push(format!(
                    "the dpkg lock is held by process {holder}: the install will wait up to {LOCK_WAIT_SECS} s for it"
                ));
            }
        }
        Some(Candidate::Missing(log)) => errors.push(format!(
            "keepalived is not installed and {pm} cannot install it (no candidate from the package sources of this host); {pm} said: {log}. \
             Make a source with keepalived reachable from this host (the site mirror), or install keepalived by hand, and rerun"
        )),
        None => errors.push(format!(
            "keepalived is not installed and whether {pm} can install it could not be established (the check did not answer): \
             install keepalived by hand, or fix {pm} on this host, and rerun"
        )),
    }
}

/// The VIP must not answer on the network unless one of our masters holds it.
///
/// The probes read each master's addresses and test the VIP at about the same time, not at
/// once: a keepalived already running on one of them (left by an earlier apply) can take the
/// VIP in between. So after a positive test with no holder, the holders are read again, and
/// the address is called taken only if still none of our masters holds it.
fn judge_vip_in_use(p: &Provisioner<'_>, plan: &Plan, hosts: &mut [Host<'_>], report: &mut Report) {
    let probes: Vec<_> = hosts.iter().filter_map(|h| h.probe.as_ref()).collect();
    let held = probes.iter().any(|p| p.holds(plan.vip));
    let answers = probes.iter().any(|p| p.vip_answers);
    if !answers || held {
        return;
    }
    let holders = reread_holders(p, plan, hosts);
    for h in hosts.iter_mut().filter(|h| holders.contains(&h.index)) {
        h.report.notes.push(format!(
            "took VIP {} while the masters were probed (its keepalived was already running)",
            plan.vip
        ));
    }
    if holders.is_empty() {
        report.fail(format!(
            "VIP {} already answers on the network (ping/ARP from the masters) and none of these masters holds it: \
             another machine uses this address; choose a free one",
            plan.vip
        ));
    }
}

/// The probes this host will make (the LB's `VIP:vport` in third-party mode; `VIP:6443` once an
/// apiserver is expected) take the masters' one route: refused before any change when the
/// masters are reached in different ways.
fn judge_probe_route(plan: &Plan, hosts: &[Host<'_>], report: &mut Report) {
    let probes_vip = match plan.mode {
        Mode::ThirdParty { .. } => true,
        Mode::Tke { .. } => hosts
            .iter()
            .filter_map(|h| h.probe.as_ref())
            .any(|p| p.apiserver_manifest || p.apiserver_listening),
    };
    if probes_vip && let Err(e) = plan.probe_route() {
        report.fail(e);
    }
}

/// Which usable masters hold the VIP now (one reading each, in parallel). A master that does
/// not answer counts as not holding it.
fn reread_holders(p: &Provisioner<'_>, plan: &Plan, hosts: &mut [Host<'_>]) -> Vec<usize> {
    let script = holds_script(plan.vip);
    let holders = Mutex::new(Vec::new());
    fleet::each(hosts, p, Step::VipRecheck, |h| {
        if let Ok(out) = h.run(&script)
            && parse_holds(&out.stdout) == Some(true)
        {
            holders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(h.index);
        }
        Ok(())
    });
    let mut holders = holders.into_inner().unwrap_or_else(|e| e.into_inner());
    holders.sort_unstable();
    holders
}

/// Run the read-only preflight and report.
pub(crate) fn check(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("check", plan.mode.name(), &plan.vip.to_string());
    let (mut hosts, tokens) = preflight(p, plan, &mut report);
    if let Mode::ThirdParty { vport } = plan.mode {
        thirdparty::verify_binding(p, plan, vport, &hosts, &tokens, &mut report);
        thirdparty::finish(p, plan, vport, &mut hosts, &mut report, false);
    }
    fleet::into_report(&mut report, hosts, t);
    report
}

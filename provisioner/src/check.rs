//! `check`: the read-only preflight of every master (and, in third-party mode, of the LB binding); where TKEStack manages HA it reports that, not a conflict.

use std::time::Instant;

use rand::Rng as _;

use crate::fleet::{self, Host};
use crate::keepalived::{self, CONF_PATH};
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::report::Report;
use crate::runner::Provisioner;
use crate::scripts::probe::{ProbeRequest, find_interface};
use crate::scripts::probe_tkestack::Manager;
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
        judge_vip_in_use(plan, &hosts, report);
    }
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
            if p.keepalived.is_none() && p.package_manager.is_none() {
                errors.push("keepalived is not installed and no package manager (apt-get, dnf, yum, zypper) was found: install keepalived".into());
            } else if p.keepalived.is_none() {
                h.report.notes.push(format!(
                    "keepalived will be installed with {}",
                    p.package_manager.map_or("?", |pm| pm.name())
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

/// The VIP must not answer on the network unless one of our masters holds it.
fn judge_vip_in_use(plan: &Plan, hosts: &[Host<'_>], report: &mut Report) {
    let probes: Vec<_> = hosts.iter().filter_map(|h| h.probe.as_ref()).collect();
    let held = probes.iter().any(|p| p.holds(plan.vip));
    let answers = probes.iter().any(|p| p.vip_answers);
    if answers && !held {
        report.fail(format!(
            "VIP {} already answers on the network (ping/ARP from the masters) and none of these masters holds it: \
             another machine uses this address; choose a free one",
            plan.vip
        ));
    }
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

//! `apply`: preflight everything, change nothing if any host fails; else install, render, validate, move into place,
//! start or reload keepalived (or add the hairpin rule), and wait until exactly one master holds the VIP.
//!
//! Success criterion for TKE HA: exactly one master holds the VIP, steadily for 300 ms, and, if an
//! apiserver is expected (a kube-apiserver manifest exists or something listens on a master's
//! :6443), `VIP:6443` accepts a TCP connection from this host. On a fresh machine set with no
//! apiserver yet, the single holder alone is the criterion (the VIP must exist before kubeadm runs).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::Action;
use crate::check;
use crate::fleet::{self, Host};
use crate::keepalived::{
    self, CHECK_SCRIPT_PATH, CONF_PATH, ConfParams, PROBE_SCRIPT_PATH, PROBE_UNIT_PATH,
};
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::observer::Step;
use crate::profile::{ChangeOrder, FailoverProfile, change_order};
use crate::report::{ManagedBy, Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::apply::{
    ApplyChanges, ApplyEnd, ApplyOutcome, CHECK_MODE, CONF_MODE, PackageManager, ServiceChange,
    UNIT_MODE, apply_script,
};
use crate::scripts::probe::{Probe, find_interface, one_line};
use crate::scripts::service::{ProbeAction, ProbeChange, ServiceAction};
use crate::thirdparty;
use crate::vip;

/// The files one master should have (`check` for the standard profile; `probe`, and `unit` on
/// systemd, for the fast one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desired {
    pub conf: String,
    pub check: Option<String>,
    pub probe: Option<String>,
    pub unit: Option<String>,
}

/// The cluster's auth_pass: reused from any master's current (tkeha) config, else fresh.
fn cluster_auth_pass(hosts: &[Host<'_>]) -> String {
    hosts
        .iter()
        .filter_map(|h| h.probe.as_ref())
        .filter_map(|p| p.file(CONF_PATH))
        .filter(|c| keepalived::is_ours(c))
        .find_map(keepalived::parse_auth_pass)
        .unwrap_or_else(keepalived::random_auth_pass)
}

/// Render the files for one probed host.
fn desired_for(plan: &Plan, vrid: u8, auth_pass: &str, h: &Host<'_>) -> Option<Desired> {
    let p = h.probe.as_ref()?;
    let a = find_interface(&p.addrs, h.machine.ip)?;
    let params = ConfParams {
        router_id: keepalived::router_id(&p.hostname, h.machine.ip),
        interface: a.iface.clone(),
        vrid,
        priority: keepalived::priority_for(h.index, plan.profile()),
        src_ip: h.machine.ip,
        peers: plan
            .machines
            .iter()
            .filter(|m| m.ip != h.machine.ip)
            .map(|m| m.ip)
            .collect(),
        auth_pass: auth_pass.to_string(),
        vip: plan.vip,
        prefix_len: a.net.prefix_len(),
        profile: plan.profile(),
    };
    let fast = plan.profile() == FailoverProfile::Fast;
    Some(Desired {
        conf: keepalived::render_conf(&params),
        check: (!fast).then(keepalived::check_script),
        probe: fast.then(keepalived::probe_script),
        unit: (fast && p.systemd).then(keepalived::probe_unit),
    })
}

/// Install or update keepalived on every master (TKE HA) or the hairpin rule (third-party HA).
pub(crate) fn apply(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("apply", plan.mode.name(), &plan.vip.to_string());
    let (mut hosts, tokens) = check::preflight(p, plan, &mut report);
    if report.managed_by == Some(ManagedBy::Tkestack)
        && let Some(refusal) = managed::refusal(Action::Apply, plan)
    {
        report.fail(refusal);
    }
    let all_ok = |hosts: &[Host<'_>], report: &Report| {
        report.errors.is_empty() && hosts.iter().all(|h| h.report.ok)
    };
    match plan.mode {
        Mode::ThirdParty { vport } => {
            // A refusal beside TKEStack need not wait for the load balancer.
            if report.managed_by != Some(ManagedBy::Tkestack) {
                thirdparty::verify_binding(p, plan, vport, &hosts, &tokens, &mut report);
            }
            if !all_ok(&hosts, &report) {
                report.fail("preflight failed: nothing was changed on any master");
            }
            thirdparty::finish(p, plan, vport, &mut hosts, &mut report, true);
        }
        Mode::Tke { vrid } => {
            if all_ok(&hosts, &report) {
                apply_keepalived(p, plan, vrid, &mut hosts, &mut report, t);
            } else {
                report.fail("preflight failed: nothing was changed on any master");
            }
        }
    }
    fleet::into_report(&mut report, hosts, t);
    report
}

/// The order of a profile change on this fleet, from the profile each master's config names.
pub(crate) fn profile_change_order(hosts: &[Host<'_>], plan: &Plan) -> Option<ChangeOrder> {
    change_order(
        hosts.iter().map(|h| {
            h.probe
                .as_ref()
                .and_then(|p| p.file(CONF_PATH))
                .and_then(keepalived::parse_profile)
        }),
        plan.profile(),
    )
}

/// What the apply script does to the fast profile's probe: start it, restart it on new files,
/// or remove what the fast profile left when the master goes back to standard.
fn probe_change(d: &Desired, p: &Probe, files_differ: bool) -> ProbeChange {
    match (&d.probe, files_differ) {
        (Some(_), true) => ProbeChange::StartOrRestart,
        (Some(_), false) if p.probe_running => ProbeChange::Keep,
        (Some(_), false) => ProbeChange::EnsureStarted,
        (None, _) if p.probe_running || p.file(PROBE_SCRIPT_PATH).is_some() => ProbeChange::Remove,
        (None, _) => ProbeChange::Keep,
    }
}

/// Whether the file at `path` on this master is root-owned with exactly `mode`.
fn mode_is(p: &Probe, path: &str, mode: u32) -> bool {
    p.modes.get(path).is_some_and(|m| m.is_root_owned(mode))
}

/// Bring one master to its desired files (content, owner and mode), with keepalived installed
/// and running. The report says what the script did, read from its markers (what was
/// installed, written, started), not what was intended.
fn configure(plan: &Plan, vrid: u8, auth_pass: &str, h: &mut Host<'_>) -> Result<(), String> {
    let d = desired_for(plan, vrid, auth_pass, h).ok_or("no interface holds the machine IP")?;
    let p = h.probe.as_ref().ok_or("not probed")?;
    let differs = |path: &str, want: &Option<String>| {
        want.as_deref().is_some_and(|w| p.file(path) != Some(w))
    };
    let conf_differs = p.file(CONF_PATH) != Some(d.conf.as_str());
    let check_differs = differs(CHECK_SCRIPT_PATH, &d.check);
    let probe_differs = differs(PROBE_SCRIPT_PATH, &d.probe);
    let unit_differs = differs(PROBE_UNIT_PATH, &d.unit);
    let wants = |want: &Option<String>, path: &str, differs: bool, mode: u32| {
        want.is_some() && (differs || !mode_is(p, path, mode))
    };
    let write_conf = conf_differs || !mode_is(p, CONF_PATH, CONF_MODE);
    let write_check = wants(&d.check, CHECK_SCRIPT_PATH, check_differs, CHECK_MODE);
    let write_probe = wants(&d.probe, PROBE_SCRIPT_PATH, probe_differs, CHECK_MODE);
    let write_unit = wants(&d.unit, PROBE_UNIT_PATH, unit_differs, UNIT_MODE);
    let probe_change = probe_change(&d, p, probe_differs || unit_differs);
    let install = p.keepalived.is_none();
    if !write_conf
        && !write_check
        && !write_probe
        && !write_unit
        && !install
        && p.running
        && matches!(probe_change, ProbeChange::Keep)
    {
        h.report.failover_profile = Some(plan.profile());
        return Ok(());
    }
    let pm = p.package_manager.unwrap_or(PackageManager::AptGet);
    let mut notes = Vec::new();
    for (path, differs, write, mode) in [
        (CONF_PATH, conf_differs, write_conf, CONF_MODE),
        (CHECK_SCRIPT_PATH, check_differs, write_check, CHECK_MODE),
        (PROBE_SCRIPT_PATH, probe_differs, write_probe, CHECK_MODE),
        (PROBE_UNIT_PATH, unit_differs, write_unit, UNIT_MODE),
    ] {
        if write
            && !differs
            && let Some(m) = p.modes.get(path)
        {
            notes.push(format!(
                "{path} had owner {}:{} and mode {:04o}: rewritten as root:root {mode:04o}",
                m.uid, m.gid, m.mode
            ));
        }
    }
    let script = apply_script(&ApplyChanges {
        install: install.then_some(pm),
        check: write_check.then_some(d.check.as_deref()).flatten(),
        conf: write_conf.then_some(d.conf.as_str()),
        service: if conf_differs || check_differs || install {
            ServiceChange::StartOrReload
        } else {
            ServiceChange::EnsureStarted
        },
        systemd: p.systemd,
        probe_script: write_probe.then_some(d.probe.as_deref()).flatten(),
        probe_unit: write_unit.then_some(d.unit.as_deref()).flatten(),
        probe: probe_change,
    });
    let run = h.run_streamed(&script)?;
    let out = ApplyOutcome::parse(&run.out);
    h.report.changed = out.changed();
    h.report.restarted = out.service.is_some();
    match out.probe {
        Some(ProbeAction::Started) => h.report.notes.push("apiserver probe started".into()),
        Some(ProbeAction::Restarted) => h.report.notes.push("apiserver probe restarted".into()),
        Some(ProbeAction::Removed) => h
            .report
            .notes
            .push("apiserver probe removed (standard profile)".into()),
        None => {}
    }
    match &out.installed {
        Some(v) if v.is_empty() => h.report.notes.push("keepalived installed".into()),
        Some(v) => h.report.notes.push(format!("keepalived installed ({v})")),
        None => {}
    }
    if out.already_present {
        h.report.notes.push(
            "keepalived was missing at the probe but present when apply ran: this run did not install it".into(),
        );
    }
    if out.install_touched {
        h.report.notes.push(format!(
            "{} changed packages before it failed: see its output in the error",
            pm.name()
        ));
    }
    let wrote: Vec<&str> = out.wrote.iter().map(String::as_str).collect();
    h.report.notes.extend(
        notes
            .into_iter()
            .filter(|n| wrote.iter().any(|w| n.starts_with(w))),
    );
    if let Some(cut) = run.cut {
        return Err(format!(
            "the connection was lost while the apply script ran ({cut}); before that it {}; rerun apply",
            done_so_far(&out)
        ));
    }
    let said = one_line(&out.stderr);
    match out.end {
        ApplyEnd::ConfigRejected => Err(format!(
            "keepalived -t rejected the rendered config (nothing moved into place): {said}"
        )),
        ApplyEnd::InstallFailed => Err(format!("installing keepalived failed: {said}")),
        ApplyEnd::InstallChangedNothing => Err(format!(
            "keepalived is still not installed although {} reported success (it changed nothing): {said}",
            pm.name()
        )),
        ApplyEnd::Failed { status } => Err(format!(
            "the apply script failed (exit {}): {said}",
            status.map_or_else(|| "status unknown".to_string(), |s| s.to_string())
        )),
        ApplyEnd::Done => {
            h.report.failover_profile = Some(plan.profile());
            Ok(())
        }
    }
}

/// What a cut-off apply script had done, in words.
fn done_so_far(out: &ApplyOutcome) -> String {
    let mut done = Vec::new();
    if out.installed.is_some() {
        done.push("installed keepalived".to_string());
    }
    if !out.wrote.is_empty() {
        done.push(format!("wrote {}", out.wrote.join(", ")));
    }
    match out.service {
        Some(ServiceAction::Started) => done.push("started keepalived".into()),
        Some(ServiceAction::Reloaded) => done.push("reloaded keepalived".into()),
        None => {}
    }
    if done.is_empty() {
        "had changed nothing that it reported".into()
    } else {
        done.join(", ")
    }
}

fn apply_keepalived(
    p: &Provisioner<'_>,
    plan: &Plan,
    vrid: u8,
    hosts: &mut [Host<'_>],
    report: &mut Report,
    t: Instant,
) {
    let auth_pass = cluster_auth_pass(hosts);
    let configure = |h: &mut Host<'_>| configure(plan, vrid, &auth_pass, h);
    match profile_change_order(hosts, plan) {
        None => fleet::each(hosts, p, Step::Configure, configure),
        Some(order) => {
            // The first wave must be done before the second starts, and well within the
            // standard profile's 3 s master-down interval (see `profile::change_order`).
            let holder_first = order == ChangeOrder::HolderFirst;
            let holds = |h: &Host<'_>| h.probe.as_ref().is_some_and(|pr| pr.holds(plan.vip));
            fleet::each_where(
                hosts,
                p,
                Step::Configure,
                |h| holds(h) == holder_first,
                configure,
            );
            fleet::each_where(
                hosts,
                p,
                Step::Configure,
                |h| holds(h) != holder_first,
                configure,
            );
        }
    }
    if !hosts.iter().all(|h| h.report.ok) {
        report.fail("keepalived could not be configured on every master");
        return;
    }
    let remaining = p
        .wait_timeout
        .saturating_sub(t.elapsed())
        .max(Duration::from_secs(5));
    let wait_start = Instant::now();
    match vip::wait_single_holder(hosts, plan.vip, remaining, Duration::from_millis(300)) {
        Ok(i) => {
            report.vip_holder = hosts.get(i).map(|h| h.report.host.clone());
            for h in hosts.iter_mut() {
                h.report.holds_vip = h.index == i;
                h.report.state = if h.index == i {
                    VrrpState::Master
                } else if h.usable() {
                    VrrpState::Backup
                } else {
                    VrrpState::Unknown
                };
            }
            let expected = hosts
                .iter()
                .filter_map(|h| h.probe.as_ref())
                .any(|probe| probe.apiserver_manifest || probe.apiserver_listening);
            let api = SocketAddr::new(plan.vip, 6443);
            if expected {
                let answered = plan.probe_route().and_then(|route| {
                    vip::wait_tcp(p.network.as_ref(), route, api, wait_start + remaining)
                        .map_err(|e| vip::unprobed(api, &e))
                });
                match answered {
                    Ok(true) => {}
                    Ok(false) => report.fail(format!(
                        "{}:6443 does not answer although an apiserver is expected on the masters",
                        plan.vip
                    )),
                    Err(e) => report.fail(e),
                }
            }
        }
        Err(latest) => {
            let holders: Vec<String> = hosts
                .iter()
                .filter(|h| latest.get(h.index).copied().flatten() == Some(true))
                .map(|h| h.report.host.clone())
                .collect();
            report.split_brain = holders.len() > 1;
            report.fail(format!(
                "after {} s not exactly one master holds VIP {} (holders: [{}]); check that VRRP (IP protocol 112) passes between the masters",
                remaining.as_secs(),
                plan.vip,
                holders.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod profile_tests;
#[cfg(test)]
mod tests;

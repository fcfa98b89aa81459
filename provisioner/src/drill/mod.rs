//! `drill`: stop keepalived on the VIP holder, time the failover, restore it, and verify it stays BACKUP.
//!
//! How keepalived is stopped depends on who manages it:
//! - tkeha's own: SIGTERM to the daemon (or `systemctl stop --no-block`), restarted afterwards;
//! - TKEStack's static pod: its manifest is parked outside kubelet's directory, so kubelet stops
//!   the pod and keepalived gets SIGTERM; it is moved back afterwards, under a guard the master
//!   runs itself (`scripts::park`). Every master must be healthy first.
//!
//! The drill always restores what it stopped: after a failed stop, an SSH error, or when
//! [`Options::interrupt`](crate::Options) is set (SIGINT or SIGTERM in the binaries), in which
//! case it ends at once after the restore.
//!
//! Oracle: when an apiserver (or a stand-in) listens on the masters, "answering" means a TCP connect
//! to `VIP:6443` from this host succeeds after another master took the VIP (polled every 50 ms);
//! otherwise the first `1` from another master's `ip addr` watch (sampled every 50 ms on the masters).
//! The clock starts just before the stop command is sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::fleet::{self, Host, SCRIPT_TIMEOUT};
use crate::managed;
use crate::manifest::{Mode, Plan};
use crate::report::{DrillReport, Health, ManagedBy, Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::Script;
use crate::scripts::park::{self, ParkOutcome, RestoreOutcome};
use crate::scripts::probe::ProbeRequest;
use crate::scripts::service;
use crate::status;
use crate::tkestack::{PARKED_MANIFEST, STATIC_POD_MANIFEST};
use crate::vip::{self, HolderView};

/// Seconds to watch after restarting the old holder (longer than VRRP's master-down interval of ~3.6 s).
const NOPREEMPT_WATCH_SECS: u32 = 5;

/// Seconds the master-side restore guard waits beyond the drill's own wait for the VIP.
const GUARD_MARGIN_SECS: u32 = 10;

/// How keepalived is stopped on the holder and brought back.
#[derive(Debug, Clone)]
enum Method {
    /// tkeha's keepalived: the service (systemd or the daemon's pid file).
    Service { systemd: bool },
    /// A static pod (TKEStack's): park its manifest, then move it back.
    StaticPod { guard_secs: u32, old_pids: Vec<u32> },
}

impl Method {
    fn stop_script(&self) -> Script {
        match self {
            Method::Service { systemd } => service::stop_nowait_script(*systemd),
            Method::StaticPod { guard_secs, .. } => park::park_script(*guard_secs),
        }
    }

    /// Run the stop on the holder: `Err` says why nothing (or not all) was stopped.
    fn stop(&self, h: &mut Host<'_>) -> Result<(), String> {
        let script = self.stop_script();
        let remote = h.remote.as_mut().ok_or("no session")?;
        let out = remote
            .run(&script, SCRIPT_TIMEOUT)
            .map_err(|e| e.to_string())?;
        match self {
            Method::Service { .. } => Ok(()),
            Method::StaticPod { .. } => match ParkOutcome::parse(&out) {
                ParkOutcome::Parked(_) => Ok(()),
                ParkOutcome::Refused(why) => Err(why),
            },
        }
    }

    /// Bring keepalived back on the old holder; notes for the report, or why it failed.
    fn restore(&self, h: &mut Host<'_>, wait_secs: u32) -> Result<(), String> {
        match self {
            Method::Service { systemd } => {
                h.run(&service::restart_script(*systemd))?;
                Ok(())
            }
            Method::StaticPod {
                guard_secs,
                old_pids,
            } => {
                let out = h
                    .run(&park::restore_script(old_pids, wait_secs))
                    .map_err(|e| {
                        format!(
                            "{e}; the master's guard puts {STATIC_POD_MANIFEST} back within {guard_secs} s of the \
                             drill's start"
                        )
                    })?;
                let out = RestoreOutcome::parse(&out);
                if !out.in_place {
                    return Err(format!(
                        "{STATIC_POD_MANIFEST} is not back: the master's guard puts it back within {guard_secs} s of the \
                         drill's start; else do it by hand: mv {PARKED_MANIFEST} {STATIC_POD_MANIFEST}"
                    ));
                }
                if out.still_parked {
                    h.report.notes.push(format!(
                        "TKEStack wrote the manifest again during the drill; the parked copy differs and is left at {PARKED_MANIFEST}"
                    ));
                }
                if out.kept {
                    h.report.notes.push(
                        "kubelet had not stopped the pod yet when its manifest came back: the same keepalived runs on"
                            .into(),
                    );
                } else if out.started.is_none() {
                    return Err(format!(
                        "the manifest is back, but kubelet started no keepalived within {wait_secs} s: see kubelet's log"
                    ));
                }
                Ok(())
            }
        }
    }

    fn what_stopped(&self) -> &'static str {
        match self {
            Method::Service { .. } => "stopping keepalived on the holder",
            Method::StaticPod { .. } => "parking the keepalived static pod manifest on the holder",
        }
    }
}

/// Why a master where TKEStack manages keepalived is not fit for a drill, if it is not.
fn unfit(h: &Host<'_>) -> Option<String> {
    let Some(p) = h.probe.as_ref() else {
        return Some(
            h.report
                .error
                .clone()
                .unwrap_or_else(|| "not reached".into()),
        );
    };
    if let Some(e) = &h.report.error {
        return Some(e.clone());
    }
    if !p.keepalived_running() {
        return Some("keepalived is not running".into());
    }
    if status::health(p) == Health::Fail {
        return Some("its apiserver does not answer on :6443".into());
    }
    None
}

/// Run one failover drill.
pub(crate) fn drill(p: &Provisioner<'_>, plan: &Plan) -> Report {
    let t = Instant::now();
    let mut report = Report::new("drill", plan.mode.name(), &plan.vip.to_string());
    if let Mode::ThirdParty { .. } = plan.mode {
        report.fail("drill needs TKE HA (keepalived): in third-party mode the external LB does the failover");
        return report;
    }
    let mut hosts = fleet::connect_and_probe(plan, p, |_| ProbeRequest::default());
    let holders = status::fill_states(plan, &mut hosts);
    managed::judge_fleet(plan, &mut hosts, &mut report);
    if !report.errors.is_empty() {
        return finish(report, hosts, t);
    }
    let tkestack = report.managed_by == Some(ManagedBy::Tkestack);
    if tkestack {
        for h in hosts.iter_mut() {
            managed::judge_host(plan, h);
        }
        let unfit: Vec<String> = hosts
            .iter()
            .filter_map(|h| unfit(h).map(|why| format!("{}: {why}", h.report.host)))
            .collect();
        if !unfit.is_empty() {
            report.fail(format!(
                "a drill needs every master healthy, and these are not: {}; run `status`",
                unfit.join("; ")
            ));
            return finish(report, hosts, t);
        }
    }
    let unusable = hosts.iter().filter(|h| !h.usable()).count();
    let from = match holders.as_slice() {
        [one] if unusable == 0 => *one,
        _ => {
            report.split_brain = holders.len() > 1;
            report.fail(format!(
                "a drill needs every master reachable and exactly one VIP holder (holders: {}): run `status`",
                holders.len()
            ));
            return finish(report, hosts, t);
        }
    };
    if hosts.iter().filter(|h| h.index != from).all(|h| {
        h.probe
            .as_ref()
            .is_some_and(|probe| !probe.keepalived_running())
    }) {
        report.fail("no other master runs keepalived: nothing could take the VIP over");
        return finish(report, hosts, t);
    }
    let holder_probe = hosts.get(from).and_then(|h| h.probe.as_ref());
    let secs = u32::try_from(p.wait_timeout.as_secs()).unwrap_or(30);
    let method = if tkestack {
        Method::StaticPod {
            guard_secs: secs.saturating_add(GUARD_MARGIN_SECS),
            old_pids: holder_probe
                .map(|probe| probe.keepalived_pids.clone())
                .unwrap_or_default(),
        }
    } else {
        Method::Service {
            systemd: holder_probe.is_some_and(|probe| probe.systemd),
        }
    };
    let tcp_oracle = hosts
        .iter()
        .filter_map(|h| h.probe.as_ref())
        .any(|probe| probe.apiserver_listening);
    // The VIP probe takes the masters' route; masters reached in different ways leave it none.
    let route = match plan.probe_route() {
        Ok(route) => Some(route),
        Err(e) if tcp_oracle => {
            report.fail(e);
            return finish(report, hosts, t);
        }
        Err(_) => None,
    };
    let api = SocketAddr::new(plan.vip, 6443);
    let view = HolderView::new(hosts.len());
    let mut measured: Option<(usize, u64)> = None;
    let mut stop_error = None;
    let mut probe_error = None;
    let mut stop_sent = false;
    std::thread::scope(|s| {
        let (old, others): (Vec<_>, Vec<_>) = hosts.iter_mut().partition(|h| h.index == from);
        vip::spawn_watchers(s, others.into_iter(), plan.vip, 50, secs, &view);
        let Some(old) = old.into_iter().next() else {
            return;
        };
        // Let every watcher report once before the clock starts.
        let deadline = Instant::now() + Duration::from_secs(3);
        while view
            .latest()
            .iter()
            .enumerate()
            .any(|(i, v)| i != from && v.is_none())
            && Instant::now() < deadline
            && !p.interrupt.is_set()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if p.interrupt.is_set() {
            view.stop();
            return;
        }
        let start = Instant::now();
        stop_sent = true;
        if let Err(e) = method.stop(old) {
            stop_error = Some(e);
        }
        let deadline = start + p.wait_timeout;
        while stop_error.is_none() && Instant::now() < deadline && !p.interrupt.is_set() {
            let latest = view.latest();
            let new = latest
                .iter()
                .enumerate()
                .find(|(i, v)| *i != from && **v == Some(true))
                .map(|(i, _)| i);
            if let Some(i) = new {
                if !tcp_oracle {
                    // The watcher's own timestamp of its first "1": not delayed by this loop.
                    let at = view
                        .first_held()
                        .get(i)
                        .copied()
                        .flatten()
                        .unwrap_or_else(Instant::now);
                    measured = Some((
                        i,
                        u64::try_from(at.saturating_duration_since(start).as_millis())
                            .unwrap_or(u64::MAX),
                    ));
                    break;
                }
                let Some(route) = route else { break };
                match p
                    .network
                    .tcp_answers(route, api, Duration::from_millis(200))
                {
                    Ok(true) => {
                        measured = Some((
                            i,
                            u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                        ));
                        break;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        probe_error = Some(vip::unprobed(api, &e));
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(if tcp_oracle { 50 } else { 10 }));
        }
        view.stop();
        old.sync_round_trips();
    });
    let interrupted = p.interrupt.is_set();
    if let Some(e) = &stop_error {
        report.fail(format!("{} failed: {e}", method.what_stopped()));
    }
    let probe_failed = probe_error.is_some();
    if let Some(e) = probe_error {
        report.fail(e);
    }
    // Restore the old holder whatever happened (if anything was sent to it).
    if stop_sent && let Some(h) = hosts.get_mut(from) {
        if let Err(e) = method.restore(h, secs) {
            report.fail(format!(
                "restoring keepalived on {} failed: {e}",
                plan.machines[from].name()
            ));
        }
        h.sync_round_trips();
    }
    if interrupted {
        report.fail(if stop_sent {
            "interrupted: the drill stopped early and put keepalived back on the old holder"
        } else {
            "interrupted before anything was stopped: nothing was changed"
        });
        return finish(report, hosts, t);
    }
    // Watch that the old holder does not take the VIP back.
    let after = HolderView::new(hosts.len());
    std::thread::scope(|s| {
        vip::spawn_watchers(
            s,
            hosts.iter_mut(),
            plan.vip,
            100,
            NOPREEMPT_WATCH_SECS,
            &after,
        );
    });
    let old_stayed_backup = !after.ever().get(from).copied().unwrap_or(true);
    let latest = after.latest();
    let holders_now: Vec<usize> = (0..latest.len())
        .filter(|&i| latest[i] == Some(true))
        .collect();
    report.split_brain = holders_now.len() > 1;
    report.vip_holder = match holders_now.as_slice() {
        [one] => plan.machines.get(*one).map(|m| m.name()),
        _ => None,
    };
    for h in hosts.iter_mut() {
        h.report.holds_vip = holders_now.contains(&h.index);
        h.report.state = if h.report.holds_vip {
            VrrpState::Master
        } else {
            VrrpState::Backup
        };
    }
    match measured {
        Some((to, ms)) => {
            report.drill = Some(DrillReport {
                failover_ms: ms,
                from: plan.machines[from].name(),
                to: plan.machines[to].name(),
                oracle: if tcp_oracle { "tcp" } else { "holder" }.into(),
                old_holder_stayed_backup: old_stayed_backup,
            });
            match (old_stayed_backup, tkestack) {
                (true, _) => {}
                // Expected of TKEStack's config (no nopreempt): reported, not a failure.
                (false, true) => report.warn(
                    "drill-vip-returned",
                    format!(
                        "the old holder {} took the VIP back once kubelet restarted keepalived: a second VIP \
                         move (TKEStack's config has no nopreempt)",
                        plan.machines[from].name()
                    ),
                ),
                (false, false) => report
                    .fail("the restarted old holder took the VIP back (nopreempt not effective)"),
            }
        }
        None => {
            // A failed stop or probe is already reported: it is not "no other master took the VIP".
            if stop_error.is_none() && !probe_failed {
                report.fail(format!(
                    "no other master took VIP {} within {} s",
                    plan.vip,
                    p.wait_timeout.as_secs()
                ));
            }
        }
    }
    if holders_now.len() != 1 {
        report.fail(format!(
            "after the drill {} masters hold the VIP",
            holders_now.len()
        ));
    }
    finish(report, hosts, t)
}

fn finish(mut report: Report, hosts: Vec<fleet::Host<'_>>, t: Instant) -> Report {
    fleet::into_report(&mut report, hosts, t);
    report
}

#[cfg(test)]
mod tests;

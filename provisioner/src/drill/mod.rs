//! `drill`: gracefully stop keepalived on the VIP holder, time the failover, restore it, and verify it stays BACKUP.
//!
//! Oracle: when an apiserver (or a stand-in) listens on the masters, "answering" means a TCP connect
//! to `VIP:6443` from this host succeeds after another master took the VIP (polled every 50 ms);
//! otherwise the first `1` from another master's `ip addr` watch (sampled every 50 ms on the masters).
//! The clock starts just before the stop command is sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::fleet::{self, SCRIPT_TIMEOUT};
use crate::manifest::{Mode, Plan};
use crate::report::{DrillReport, Report, VrrpState};
use crate::runner::Provisioner;
use crate::scripts::probe::ProbeRequest;
use crate::scripts::service;
use crate::status;
use crate::vip::{self, HolderView};

/// Seconds to watch after restarting the old holder (longer than VRRP's master-down interval of ~3.6 s).
const NOPREEMPT_WATCH_SECS: u32 = 5;

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
    if hosts
        .iter()
        .filter(|h| h.index != from)
        .all(|h| h.probe.as_ref().is_some_and(|probe| !probe.running))
    {
        report.fail("no other master runs keepalived: nothing could take the VIP over");
        return finish(report, hosts, t);
    }
    let systemd = hosts
        .get(from)
        .and_then(|h| h.probe.as_ref())
        .is_some_and(|probe| probe.systemd);
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
    let secs = u32::try_from(p.wait_timeout.as_secs()).unwrap_or(30);
    let api = SocketAddr::new(plan.vip, 6443);
    let view = HolderView::new(hosts.len());
    let mut measured: Option<(usize, u64)> = None;
    let mut stop_error = None;
    let mut probe_error = None;
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
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let script = service::stop_nowait_script(systemd);
        let start = Instant::now();
        if let Some(remote) = old.remote.as_mut()
            && let Err(e) = remote.run(&script, SCRIPT_TIMEOUT)
        {
            stop_error = Some(e.to_string());
        }
        let deadline = start + p.wait_timeout;
        while stop_error.is_none() && Instant::now() < deadline {
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
    if let Some(e) = stop_error {
        report.fail(format!("stopping keepalived on the holder failed: {e}"));
    }
    let probe_failed = probe_error.is_some();
    if let Some(e) = probe_error {
        report.fail(e);
    }
    // Restore the old holder whatever happened, then watch that it does not take the VIP back.
    let restore = service::restart_script(systemd);
    if let Some(remote) = hosts.get_mut(from).and_then(|h| h.remote.as_mut())
        && let Err(e) = remote.run(&restore, SCRIPT_TIMEOUT)
    {
        report.fail(format!(
            "restarting keepalived on {} failed: {e}; run `apply`",
            plan.machines[from].name()
        ));
    }
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
            if !old_stayed_backup {
                report.fail("the restarted old holder took the VIP back (nopreempt not effective)");
            }
        }
        // A failed probe is already reported: it is not "no other master took the VIP".
        None if probe_failed => {}
        None => report.fail(format!(
            "no other master took VIP {} within {} s",
            plan.vip,
            p.wait_timeout.as_secs()
        )),
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

//! Third-party HA: which masters the external LB reaches through `VIP:vport` (token listeners), self-connect, and the hairpin rule.
//!
//! Each master whose :6443 is free runs, for at most 30 s, a listener answering a per-host random
//! token (socat if installed, else python3). From the provisioner host we connect to `VIP:vport`
//! at least 3x the number of masters (round-robin LBs) and for at most 12 s (health checks of the
//! LB need a few seconds to mark the new listeners up), and collect the tokens. A master whose :6443
//! is busy (an apiserver already runs) can only be checked by TCP; if its answer names its hostname
//! (the lab's stand-in does) it counts as bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::fleet::{self, Host};
use crate::manifest::Plan;
use crate::net::Network;
use crate::observer::Step;
use crate::report::{LbReport, Report, SelfConnect};
use crate::runner::Provisioner;
use crate::scripts::hairpin::{
    HairpinChange, LISTENER_STOP_TRIES, SelfConnectOutcome, self_connect_script,
};
use crate::transport::{Route, TransportError};
use crate::vip;

/// How long to keep trying `VIP:vport`.
const BINDING_DEADLINE: Duration = Duration::from_secs(12);

/// One connection to `VIP:vport` along `route`: what it answered (empty if nothing), or None if
/// the connect failed; an error when the proxy itself failed.
fn attempt(
    network: &dyn Network,
    route: &Route,
    addr: SocketAddr,
) -> Result<Option<String>, TransportError> {
    let answer = network.exchange(
        route,
        addr,
        b"GET / HTTP/1.0\r\nHost: tkeha-binding-check\r\n\r\n",
        Duration::from_secs(1),
        Duration::from_millis(700),
        4096,
    )?;
    Ok(answer.map(|a| String::from_utf8_lossy(&a).into_owned()))
}

/// Which host an answer came from: a token, or a hostname as a whole word (busy :6443 only).
fn attribute(
    answer: &str,
    tokens: &[(usize, String)],
    hostnames: &[(usize, String)],
) -> Option<usize> {
    if let Some((i, _)) = tokens.iter().find(|(_, t)| answer.contains(t.as_str())) {
        return Some(*i);
    }
    let words: Vec<&str> = answer
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .collect();
    hostnames
        .iter()
        .find(|(_, h)| !h.is_empty() && words.contains(&h.as_str()))
        .map(|(i, _)| *i)
}

/// Collect which masters answer through `VIP:vport` and judge the binding.
pub(crate) fn verify_binding(
    p: &Provisioner<'_>,
    plan: &Plan,
    vport: u16,
    hosts: &[Host<'_>],
    tokens: &[String],
    report: &mut Report,
) {
    let addr = SocketAddr::new(plan.vip, vport);
    let route = match plan.probe_route() {
        Ok(route) => route,
        Err(e) => {
            // The preflight said so already.
            if !report.errors.contains(&e) {
                report.fail(e);
            }
            return;
        }
    };
    let with_listener: Vec<(usize, String)> = hosts
        .iter()
        .filter(|h| {
            h.probe
                .as_ref()
                .is_some_and(|probe| probe.listener_pid.is_some())
        })
        .filter_map(|h| tokens.get(h.index).map(|t| (h.index, t.clone())))
        .collect();
    let busy: Vec<(usize, String)> = hosts
        .iter()
        .filter(|h| {
            h.probe
                .as_ref()
                .is_some_and(|probe| probe.listener_pid.is_none())
        })
        .map(|h| {
            (
                h.index,
                h.probe
                    .as_ref()
                    .map(|probe| probe.hostname.clone())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let min_attempts = 3 * plan.machines.len();
    let deadline = Instant::now() + BINDING_DEADLINE;
    let mut seen = vec![false; plan.machines.len()];
    let mut attempts = 0u32;
    let mut tcp_ok = false;
    let mut probe_error = None;
    loop {
        attempts += 1;
        let mut matched = false;
        let answer = match attempt(p.network.as_ref(), route, addr) {
            Ok(answer) => answer,
            Err(e) => {
                probe_error = Some(vip::unprobed(addr, &e));
                break;
            }
        };
        if let Some(answer) = answer {
            tcp_ok = true;
            if let Some(i) = attribute(&answer, &with_listener, &busy) {
                if let Some(s) = seen.get_mut(i) {
                    *s = true;
                }
                matched = true;
            }
        }
        let all_listeners_seen = with_listener
            .iter()
            .all(|(i, _)| seen.get(*i).copied().unwrap_or(false));
        let busy_seen = busy
            .iter()
            .all(|(i, _)| seen.get(*i).copied().unwrap_or(false));
        if (attempts as usize >= min_attempts
            && all_listeners_seen
            && (busy.is_empty() || busy_seen))
            || Instant::now() >= deadline
        {
            break;
        }
        if !matched {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let name = |i: usize| plan.machines.get(i).map(|m| m.name()).unwrap_or_default();
    let bound: Vec<String> = (0..seen.len()).filter(|&i| seen[i]).map(name).collect();
    let unverified: Vec<String> = busy
        .iter()
        .filter(|(i, _)| !seen[*i])
        .map(|(i, _)| name(*i))
        .collect();
    let counted = bound.len() + if tcp_ok { unverified.len() } else { 0 };
    if let Some(e) = probe_error {
        report.fail(e);
    } else if !tcp_ok {
        report.fail(format!(
            "cannot connect to {addr} from this host: the load balancer is not listening on the VIP/vport (spec.features.ha.thirdParty)"
        ));
    } else if counted < 2 {
        report.fail(format!(
            "the load balancer reaches only {} master(s) through {addr} ([{}]): bind at least 2 masters' :6443 as its backends \
             (a master usually cannot reach itself through the LB)",
            bound.len(),
            bound.join(", ")
        ));
    }
    report.lb = Some(LbReport {
        bound,
        unverified,
        self_connect: Vec::new(),
        attempts,
    });
}

/// Second step on every master: test `VIP:vport` from the master, stop the token listener, and
/// (when `install` and nothing failed) add the hairpin rule idempotently.
pub(crate) fn finish(
    p: &Provisioner<'_>,
    plan: &Plan,
    vport: u16,
    hosts: &mut [Host<'_>],
    report: &mut Report,
    install: bool,
) {
    let install = install && report.ok && hosts.iter().all(|h| h.report.ok);
    let vip = plan.vip;
    let results = std::sync::Mutex::new(Vec::new());
    let step = if install {
        Step::SelfConnectAndHairpin
    } else {
        Step::SelfConnect
    };
    fleet::each(hosts, p, step, |h| {
        let pid = h.probe.as_ref().and_then(|probe| probe.listener_pid);
        let script = self_connect_script(vip, vport, pid, install);
        let out = SelfConnectOutcome::parse(&h.run(&script)?);
        results.lock().unwrap_or_else(|e| e.into_inner()).push((
            h.index,
            h.report.host.clone(),
            out.reaches_vip,
        ));
        match out.hairpin {
            Some(HairpinChange::Failed) => {
                return Err(format!("adding the hairpin rule failed: {}", out.stderr));
            }
            Some(HairpinChange::Added) => h.report.changed = true,
            None => {}
        }
        if out.listener_left {
            h.report.notes.push(format!(
                "the temporary token listener on :6443 was still there {} s after it was stopped",
                f64::from(LISTENER_STOP_TRIES) * 0.05
            ));
        }
        if !out.reaches_vip {
            h.report.notes.push(format!(
                "this master cannot reach {vip}:{vport} itself (LB self-connect limit){}",
                if install || h.probe.as_ref().is_some_and(|probe| probe.hairpin) {
                    "; the hairpin rule covers it"
                } else {
                    "; apply installs the hairpin rule"
                }
            ));
        }
        Ok(())
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort();
    let lb = report.lb.get_or_insert_with(LbReport::default);
    lb.self_connect = results
        .into_iter()
        .map(|(_, host, ok)| SelfConnect { host, ok })
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_tokens_then_whole_hostnames() {
        let tokens = vec![
            (0, "tkeha-token-aa".to_string()),
            (1, "tkeha-token-bb".to_string()),
        ];
        let names = vec![(2, "m3".to_string())];
        assert_eq!(attribute("tkeha-token-bb\n", &tokens, &names), Some(1));
        assert_eq!(
            attribute("HTTP/1.0 200 OK\r\n\r\napiserver m3\n", &tokens, &names),
            Some(2)
        );
        // "m3" inside "m33" is not m3.
        assert_eq!(attribute("apiserver m33\n", &tokens, &names), None);
        assert_eq!(attribute("", &tokens, &names), None);
    }
}

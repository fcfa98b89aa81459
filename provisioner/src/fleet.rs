//! Running one step on every master in parallel (one thread and one session per host), telling the observer as each ends.

use std::time::Instant;

use crate::manifest::{Machine, Plan};
use crate::observer::{Step, StepEvent};
use crate::remote::{ExecOutput, Remote, RemoteError};
use crate::report::{HostReport, Report};
use crate::runner::Provisioner;
use crate::scripts::Script;
use crate::scripts::probe::{self, Probe, ProbeRequest};

/// Timeout for an ordinary remote script (installing a package may take a while).
pub(crate) const SCRIPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// One master during a run.
#[derive(Debug)]
pub(crate) struct Host<'a> {
    pub index: usize,
    pub machine: &'a Machine,
    pub remote: Option<Box<dyn Remote>>,
    pub probe: Option<Probe>,
    pub report: HostReport,
}

impl Host<'_> {
    /// Reachable and nothing failed so far.
    pub fn usable(&self) -> bool {
        self.report.ok && self.remote.is_some()
    }

    /// Copy the session's round-trip count into the report.
    pub fn sync_round_trips(&mut self) {
        if let Some(r) = &self.remote {
            self.report.round_trips = r.round_trips();
        }
    }

    /// Run `script` on this master (errors as text, for the report).
    pub fn run(&mut self, script: &Script) -> Result<ExecOutput, String> {
        let remote = self.remote.as_mut().ok_or("no session")?;
        remote
            .run(script, SCRIPT_TIMEOUT)
            .map_err(|e| e.to_string())
    }
}

/// What a script read as it ran said, and whether its connection died first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Streamed {
    /// Its output so far: every line in `stdout`, the lines that are not `@@` markers also in
    /// `stderr` (a streamed script sends stderr to stdout), `status` from its `@@exit=` line
    /// (-1 when it never came).
    pub out: ExecOutput,
    /// The transport failed before the script ended: why.
    pub cut: Option<String>,
}

impl Host<'_> {
    /// Run a script that begins with [`crate::scripts::STREAMED_PRELUDE`], keeping every line
    /// as it arrives, so that what it did before a lost connection is still known.
    ///
    /// # Errors
    ///
    /// The script did not run at all (no session, sudo refused), as text for the report.
    pub fn run_streamed(&mut self, script: &Script) -> Result<Streamed, String> {
        let remote = self.remote.as_mut().ok_or("no session")?;
        let mut out = ExecOutput {
            status: -1,
            ..ExecOutput::default()
        };
        let mut lines = 0usize;
        let r = remote.stream(script, SCRIPT_TIMEOUT, &mut |line| {
            lines += 1;
            if lines > MAX_STREAMED_LINES {
                return false;
            }
            if let Some(code) = line.strip_prefix("@@exit=") {
                out.status = code.trim().parse().unwrap_or(-1);
            } else if !line.starts_with("@@") {
                out.stderr.push_str(line);
                out.stderr.push('\n');
            }
            out.stdout.push_str(line);
            out.stdout.push('\n');
            true
        });
        let cut = match r {
            Err(e @ RemoteError::Sudo { .. }) => return Err(e.to_string()),
            Err(e) => Some(e.to_string()),
            Ok(()) if lines > MAX_STREAMED_LINES => Some(format!(
                "the {} script printed more than {MAX_STREAMED_LINES} lines; stopped reading",
                script.what()
            )),
            Ok(()) => None,
        };
        Ok(Streamed { out, cut })
    }
}

/// Lines read from one streamed script at most.
const MAX_STREAMED_LINES: usize = 10_000;

/// Tell the observer how a step on `host` ended.
fn tell(p: &Provisioner<'_>, host: &str, step: Step, started: Instant, error: Option<&str>) {
    p.observer.step(&StepEvent {
        host,
        step,
        elapsed: started.elapsed(),
        error,
    });
}

/// Run `f` on every usable host in parallel; an `Err` fails that host with the message.
pub(crate) fn each<F>(hosts: &mut [Host<'_>], p: &Provisioner<'_>, step: Step, f: F)
where
    F: Fn(&mut Host<'_>) -> Result<(), String> + Sync,
{
    each_where(hosts, p, step, |_| true, f);
}

/// [`each`] on the usable hosts that `pick` chooses (a wave of a change made in order).
pub(crate) fn each_where<F>(
    hosts: &mut [Host<'_>],
    p: &Provisioner<'_>,
    step: Step,
    pick: impl Fn(&Host<'_>) -> bool,
    f: F,
) where
    F: Fn(&mut Host<'_>) -> Result<(), String> + Sync,
{
    std::thread::scope(|s| {
        for h in hosts.iter_mut().filter(|h| h.usable() && pick(h)) {
            let f = &f;
            s.spawn(move || {
                let t = Instant::now();
                let name = h.report.host.clone();
                match f(h) {
                    Ok(()) => tell(p, &name, step, t, None),
                    Err(e) => {
                        tell(p, &name, step, t, Some(&e));
                        h.report.fail(e);
                    }
                }
                h.sync_round_trips();
            });
        }
    });
}

fn new_hosts(plan: &Plan) -> Vec<Host<'_>> {
    plan.machines
        .iter()
        .enumerate()
        .map(|(index, machine)| Host {
            index,
            machine,
            remote: None,
            probe: None,
            report: HostReport {
                via: machine.route.hop().map(|hop| hop.to_string()),
                ..HostReport::new(&machine.name())
            },
        })
        .collect()
}

/// Open the session of one host (an event either way).
fn connect_one(h: &mut Host<'_>, p: &Provisioner<'_>) -> bool {
    let t = Instant::now();
    match p.connector.connect(h.machine) {
        Ok(r) => {
            h.remote = Some(r);
            tell(p, &h.report.host, Step::Connect, t, None);
            true
        }
        Err(e) => {
            let e = e.to_string();
            tell(p, &h.report.host, Step::Connect, t, Some(&e));
            h.report.fail(e);
            false
        }
    }
}

/// Run the probe script on one connected host.
fn probe_one(h: &mut Host<'_>, req: &ProbeRequest) -> Result<(), String> {
    let out = h.run(&probe::probe_script(req))?;
    let p = probe::parse_probe(&out.stdout);
    if !p.complete {
        return Err(format!(
            "the probe script did not finish (exit {}): {}",
            out.status,
            out.stderr.trim()
        ));
    }
    h.probe = Some(p);
    Ok(())
}

/// Connect to every master and probe it (`req` per host index), all hosts in parallel and each
/// host's probe right after its own connection (no barrier in between).
pub(crate) fn connect_and_probe<'a>(
    plan: &'a Plan,
    p: &Provisioner<'_>,
    req: impl Fn(usize) -> ProbeRequest + Sync,
) -> Vec<Host<'a>> {
    let mut hosts = new_hosts(plan);
    std::thread::scope(|s| {
        for h in hosts.iter_mut() {
            let req = &req;
            s.spawn(move || {
                if !connect_one(h, p) {
                    return;
                }
                let t = Instant::now();
                let r = probe_one(h, &req(h.index));
                let name = h.report.host.clone();
                match r {
                    Ok(()) => tell(p, &name, Step::Probe, t, None),
                    Err(e) => {
                        tell(p, &name, Step::Probe, t, Some(&e));
                        h.report.fail(e);
                    }
                }
                h.sync_round_trips();
            });
        }
    });
    hosts
}

/// Hand the hosts' reports to the report, with their final round-trip counts.
pub(crate) fn into_report(report: &mut Report, hosts: Vec<Host<'_>>, started: Instant) {
    report.hosts = hosts
        .into_iter()
        .map(|mut h| {
            h.sync_round_trips();
            h.report
        })
        .collect();
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.finish();
}

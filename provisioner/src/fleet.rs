//! Running one step on every master in parallel (one thread and one SSH session per host), with progress lines.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use crate::hostkeys::HostKeyPolicy;
use crate::manifest::{Machine, Plan};
use crate::probe::{self, Probe, ProbeRequest};
use crate::report::HostReport;
use crate::ssh::{self, Conn};

/// Knobs of a run that are not in the manifest.
#[derive(Debug, Clone)]
pub struct Options {
    pub host_keys: HostKeyPolicy,
    /// TCP connect + handshake + auth timeout per host.
    pub connect_timeout: Duration,
    /// How long to wait for the VIP to settle (apply, drill).
    pub wait_timeout: Duration,
    /// Print per-host progress lines on stderr.
    pub progress: bool,
}

impl Options {
    pub fn new(host_keys: HostKeyPolicy) -> Self {
        Options {
            host_keys,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(30),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// Timeout for an ordinary remote script (installing a package may take a while).
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

/// One master during a run.
#[derive(Debug)]
pub struct Host<'a> {
    pub index: usize,
    pub machine: &'a Machine,
    pub conn: Option<Conn>,
    pub probe: Option<Probe>,
    pub report: HostReport,
}

impl Host<'_> {
    /// Reachable and nothing failed so far.
    pub fn usable(&self) -> bool {
        self.report.ok && self.conn.is_some()
    }

    /// Copy the session's round-trip count into the report.
    pub fn sync_round_trips(&mut self) {
        if let Some(c) = &self.conn {
            self.report.round_trips = c.round_trips;
        }
    }
}

/// Print a progress line if enabled.
pub fn progress(opts: &Options, host: &str, line: &str) {
    if opts.progress {
        eprintln!("[{host}] {line}");
    }
}

/// Run `f` on every usable host in parallel; an `Err` fails that host with the message.
pub fn each<F>(hosts: &mut [Host<'_>], opts: &Options, label: &str, f: F)
where
    F: Fn(&mut Host<'_>) -> Result<(), String> + Sync,
{
    std::thread::scope(|s| {
        for h in hosts.iter_mut().filter(|h| h.usable()) {
            let f = &f;
            s.spawn(move || {
                let t = Instant::now();
                let name = h.report.host.clone();
                match f(h) {
                    Ok(()) => progress(
                        opts,
                        &name,
                        &format!("{label}... ok ({} ms)", t.elapsed().as_millis()),
                    ),
                    Err(e) => {
                        progress(opts, &name, &format!("{label}... FAILED: {e}"));
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
            conn: None,
            probe: None,
            report: HostReport::new(&machine.name()),
        })
        .collect()
}

/// Open the SSH session of one host (progress line either way).
fn connect_one(h: &mut Host<'_>, opts: &Options) -> bool {
    let t = Instant::now();
    match ssh::connect(h.machine, &opts.host_keys, opts.connect_timeout) {
        Ok(c) => {
            h.conn = Some(c);
            progress(
                opts,
                &h.report.host,
                &format!("connecting... ok ({} ms)", t.elapsed().as_millis()),
            );
            true
        }
        Err(e) => {
            progress(opts, &h.report.host, &format!("connecting... FAILED: {e}"));
            h.report.fail(e.to_string());
            false
        }
    }
}

/// Run the probe script on one connected host.
fn probe_one(h: &mut Host<'_>, req: &ProbeRequest) -> Result<(), String> {
    let script = probe::probe_script(req);
    let conn = h.conn.as_mut().ok_or("no session")?;
    let out = conn
        .run("probe", &script, SCRIPT_TIMEOUT)
        .map_err(|e| e.to_string())?;
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

/// Connect to every master in parallel.
pub fn connect_all<'a>(plan: &'a Plan, opts: &Options) -> Vec<Host<'a>> {
    let mut hosts = new_hosts(plan);
    std::thread::scope(|s| {
        for h in hosts.iter_mut() {
            s.spawn(move || connect_one(h, opts));
        }
    });
    hosts
}

/// Connect to every master and probe it (`req` per host index), all hosts in parallel and each
/// host's probe right after its own connection (no barrier in between).
pub fn connect_and_probe<'a>(
    plan: &'a Plan,
    opts: &Options,
    req: impl Fn(usize) -> ProbeRequest + Sync,
) -> Vec<Host<'a>> {
    let mut hosts = new_hosts(plan);
    std::thread::scope(|s| {
        for h in hosts.iter_mut() {
            let req = &req;
            s.spawn(move || {
                if !connect_one(h, opts) {
                    return;
                }
                let t = Instant::now();
                let r = probe_one(h, &req(h.index));
                let name = h.report.host.clone();
                match r {
                    Ok(()) => progress(
                        opts,
                        &name,
                        &format!("probing... ok ({} ms)", t.elapsed().as_millis()),
                    ),
                    Err(e) => {
                        progress(opts, &name, &format!("probing... FAILED: {e}"));
                        h.report.fail(e);
                    }
                }
                h.sync_round_trips();
            });
        }
    });
    hosts
}

//! tkeha-hosts-failover-bench: failover of the provisioned keepalived on 3 booted Debian 12
//! masters (systemd units). Faults on the VIP holder: apiserver death (`systemctl kill -s KILL`
//! of the stand-in unit), graceful stop (`systemctl stop keepalived`), and reboot (`systemctl
//! poweroff` from inside, then the machine boots again). Samples from this machine every 50 ms
//! (`GET http://VIP:6443/`, and who holds the VIP, every master read at once); time = fault to
//! the first answer from another master. The reboot is also run with `network-online.target`
//! made 20 s slow on the rebooting holder (keepalived's unit waits for it; docs/provisioner.md, "Boot
//! order"). Prints a Markdown section for BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median, verdict};
use tkeha_e2e::lab::hosts::{HostLab, HostLabConfig};
use tkeha_e2e::lab::view::LabView;
use tkeha_e2e::lab::{ManifestOptions, probe};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{SETTLE, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

const EVERY: Duration = Duration::from_millis(50);
/// How long network-online.target takes in the slow-boot reboot.
const SLOW_ONLINE_SECS: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    ApiserverDeath,
    GracefulStop,
    Reboot,
    /// Reboot with a slow network-online.target on the holder.
    RebootSlowOnline,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::ApiserverDeath => "apiserver death",
            Fault::GracefulStop => "graceful stop (systemctl stop keepalived)",
            Fault::Reboot => "reboot of the holder (systemctl poweroff)",
            Fault::RebootSlowOnline => "reboot of the holder, network-online 20 s slow",
        }
    }
    /// (target, on the median or on every run).
    fn target(self) -> (f64, &'static str) {
        match self {
            Fault::ApiserverDeath => (2.5, "median"),
            Fault::GracefulStop => (1.5, "max"),
            Fault::Reboot | Fault::RebootSlowOnline => (4.0, "max"),
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("tkeha-hosts-failover-bench: {e:#}");
        std::process::exit(1);
    }
}

/// Waits until one master holds the VIP and answers through it; returns it.
fn steady(lab: &HostLab) -> Result<usize> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let h = single_holder(lab, SETTLE)?;
        if lab.get_vip(6443, Duration::from_millis(300))
            == Some(format!("apiserver {}", lab.masters[h].hostname))
        {
            return Ok(h);
        }
        if Instant::now() > deadline {
            bail!("the lab did not settle");
        }
        std::thread::sleep(EVERY);
    }
}

/// What must be in place on the holder before the clock starts.
fn prepare(lab: &HostLab, fault: Fault, h: usize) -> Result<()> {
    match fault {
        Fault::RebootSlowOnline => lab.slow_network_online(h, SLOW_ONLINE_SECS),
        Fault::ApiserverDeath | Fault::GracefulStop | Fault::Reboot => Ok(()),
    }
}

fn inject(lab: &HostLab, fault: Fault, h: usize) -> Result<()> {
    match fault {
        Fault::ApiserverDeath => lab.kill_apiserver(h),
        Fault::GracefulStop => lab.exec(h, "systemctl stop keepalived").map(|_| ()),
        Fault::Reboot | Fault::RebootSlowOnline => lab.poweroff(h).map(|_| ()),
    }
}

fn restore(lab: &HostLab, fault: Fault, h: usize) -> Result<Option<f64>> {
    match fault {
        Fault::ApiserverDeath => lab.start_apiserver(h).map(|_| None),
        Fault::GracefulStop => lab.exec(h, "systemctl start keepalived").map(|_| None),
        Fault::Reboot | Fault::RebootSlowOnline => {
            let t = Instant::now();
            lab.boot(h)?;
            probe::wait_for(Duration::from_secs(90), Duration::from_millis(50), || {
                (lab.unit(h, "keepalived").ok()?.active == "active").then_some(())
            })
            .context("keepalived did not come back after the reboot")?;
            let back = t.elapsed().as_secs_f64();
            if fault == Fault::RebootSlowOnline {
                lab.exec(
                    h,
                    &format!(
                        "systemctl disable -q {u}; rm -f /etc/systemd/system/{u}",
                        u = tkeha_e2e::lab::hosts::SLOW_ONLINE_UNIT
                    ),
                )?;
            }
            Ok(Some(back))
        }
    }
}

struct Outcome {
    ms: f64,
    split: usize,
    back_after_boot: Option<f64>,
    /// The old holder holds the VIP again after it was restored (it should stay backup).
    retaken: bool,
}

fn one(lab: &HostLab, fault: Fault) -> Result<Outcome> {
    let h = steady(lab)?;
    prepare(lab, fault, h)?;
    let old = format!("apiserver {}", lab.masters[h].hostname);
    let watch = Watch::start_hosts(lab, EVERY, Some(6443));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = watch.started.elapsed();
    inject(lab, fault, h)?;
    let deadline = Instant::now() + SETTLE;
    loop {
        let a = lab.get_vip(6443, Duration::from_millis(200));
        if a.as_ref().is_some_and(|a| *a != old) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(EVERY);
    }
    std::thread::sleep(Duration::from_millis(500));
    let back_after_boot = restore(lab, fault, h)?;
    std::thread::sleep(Duration::from_millis(1500));
    let retaken = lab.holders().contains(&h);
    let samples = watch.stop();
    let first = samples
        .iter()
        .find(|s| s.at >= t0 && s.answer.as_ref().is_some_and(|a| *a != old))
        .context("no other master answered")?;
    Ok(Outcome {
        ms: (first.at - t0).as_secs_f64() * 1000.0,
        split: split_samples(&samples).len(),
        back_after_boot,
        retaken,
    })
}

fn run() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // keepalived comes from the preinstalled layer: the failover does not depend on how it was
    // installed, and the bench need not pay for three apt installs.
    let lab = HostLab::up(HostLabConfig {
        masters: 3,
        keepalived_preinstalled: true,
        ..HostLabConfig::default()
    })?;
    let m = lab.write_manifest("cluster.json", &ManifestOptions::default(), |_| {})?;
    let kh = lab.known_hosts_path();
    let r = provisioner::run("apply", &m, &["--known-hosts", &kh.to_string_lossy()])?;
    if r.code != 0 {
        bail!("apply failed:\n{}", r.all_output());
    }
    for i in 0..lab.masters.len() {
        lab.mark_control_plane(i)?;
        lab.start_apiserver(i)?;
    }
    let mut rows = Vec::new();
    let mut verdicts = Vec::new();
    let mut total_split = 0;
    let mut boots: Vec<(Fault, Vec<f64>, usize)> = Vec::new();
    let slow_runs = runs.min(3);
    for fault in [
        Fault::ApiserverDeath,
        Fault::GracefulStop,
        Fault::Reboot,
        Fault::RebootSlowOnline,
    ] {
        let mut ms = Vec::new();
        let mut split = 0;
        let mut back = Vec::new();
        let mut retaken = 0;
        let n_runs = if fault == Fault::RebootSlowOnline {
            slow_runs
        } else {
            runs
        };
        for n in 0..n_runs {
            let o = one(&lab, fault)?;
            eprintln!(
                "{} run {}: {:.0} ms, two-holder samples {}{}",
                fault.name(),
                n + 1,
                o.ms,
                o.split,
                o.back_after_boot
                    .map(|b| format!(", keepalived active {b:.2} s after boot started"))
                    .unwrap_or_default()
            );
            ms.push(o.ms);
            split += o.split;
            back.extend(o.back_after_boot);
            retaken += usize::from(o.retaken);
        }
        if !back.is_empty() {
            boots.push((fault, back, retaken));
        }
        total_split += split;
        let (med, mx) = (median(&ms) / 1000.0, max(&ms) / 1000.0);
        rows.push(format!(
            "| {} | {n_runs} | {med:.2} s | {mx:.2} s | {:.2} s | {split} |",
            fault.name(),
            ms.iter().copied().fold(f64::MAX, f64::min) / 1000.0
        ));
        let (target, on) = fault.target();
        let measured = if on == "median" { med } else { mx };
        verdicts.push(format!(
            "{}: {on} <= {target} s {} ({measured:.2} s)",
            fault.name(),
            verdict(measured <= target)
        ));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("### Failover on booted Debian 12 masters (systemd units)\n");
    println!(
        "Command: `scripts/bench-hosts-failover.sh` (runs `tkeha-hosts-failover-bench`, RUNS={runs}; the slow-online reboot {slow_runs}). 3 masters booted"
    );
    println!(
        "with `systemd-nspawn --boot`, keepalived preinstalled and configured by `tkeha-provisioner apply`, the"
    );
    println!(
        "stand-in apiserver a systemd unit on each. Each run: wait for one holder answering through the VIP,"
    );
    println!(
        "inject the fault on it, sample every 50 ms from this machine (`GET http://VIP:6443/`, holders read in"
    );
    println!(
        "every master at once), restore. Time = fault to the first sample answered by another master."
    );
    println!(
        "Reboot: `systemctl poweroff` inside the holder (time counted from there), then the machine boots again"
    );
    println!(
        "on its own disk; in the slow-online row a oneshot unit first makes `network-online.target` take {SLOW_ONLINE_SECS} s on"
    );
    println!(
        "the holder (keepalived's unit is ordered after it). Load average at the start: {}; at the end: {}.\n",
        load_start.trim(),
        load.trim()
    );
    println!("| scenario | runs | median | max | min | samples with two holders |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    for v in &verdicts {
        println!("- {v}");
    }
    println!(
        "- zero samples with two holders: {} ({total_split})",
        verdict(total_split == 0)
    );
    for (fault, back, retaken) in &boots {
        println!(
            "- {}: keepalived was active again {:.2} s (median, max {:.2} s) after the boot began; the",
            fault.name(),
            median(back),
            max(back)
        );
        println!(
            "  rebooted master stayed backup (nopreempt): {} ({retaken} of {} runs took the VIP back).",
            verdict(*retaken == 0),
            back.len()
        );
    }
    Ok(())
}

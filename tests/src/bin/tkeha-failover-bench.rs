//! tkeha-failover-bench: failover times of the provisioned keepalived on a 3-master lab, for the
//! failover profile in `FAILOVER_PROFILE` (`standard` or `fast`). For each scenario (apiserver
//! death, graceful keepalived stop, link down) and each run, samples from the root namespace
//! (every 50 ms for standard, 20 ms for fast: `GET http://VIP:6443/` and who holds the VIP per
//! `ip -n`), and measures the time from the fault to another master answering. Then the stress
//! runs (`STRESS_SECS`, 60 by default): a CPU hog on every core in the holder's namespace, then
//! on the whole machine, counting VIP moves and samples with two holders; and, for `fast`, the
//! probe's CPU. Prints a Markdown section.

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median, verdict};
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{SETTLE, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

/// Sampling period: set once from the profile (50 ms standard, 20 ms fast).
static EVERY_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(50);

fn every() -> Duration {
    Duration::from_millis(EVERY_MS.load(std::sync::atomic::Ordering::Relaxed))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    ApiserverDeath,
    GracefulStop,
    LinkDown,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::ApiserverDeath => "apiserver death",
            Fault::GracefulStop => "graceful keepalived stop",
            Fault::LinkDown => "link down",
        }
    }
    fn target_median(self, fast: bool) -> f64 {
        match (self, fast) {
            (Fault::ApiserverDeath, false) => 2.5,
            (Fault::GracefulStop, false) => 1.5,
            (Fault::LinkDown, false) => 4.0,
            (Fault::ApiserverDeath, true) => 0.3,
            (Fault::GracefulStop, true) => 0.2,
            (Fault::LinkDown, true) => 0.5,
        }
    }
    /// "At most" for graceful stop and link down: every run, not just the median.
    fn target_max(self, fast: bool) -> Option<f64> {
        match (self, fast) {
            (Fault::ApiserverDeath, false) => Some(4.0),
            (Fault::GracefulStop, false) => Some(1.5),
            (Fault::LinkDown, false) => Some(4.0),
            (Fault::ApiserverDeath, true) => Some(0.5),
            (Fault::GracefulStop | Fault::LinkDown, true) => None,
        }
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("tkeha-failover-bench: {e:#}");
        std::process::exit(1);
    }
}

/// Waits until one master holds the VIP and answers through it; returns it.
fn steady(lab: &Lab) -> Result<usize> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let h = single_holder(lab, SETTLE)?;
        if lab.get_vip(6443, Duration::from_millis(300))
            == Some(format!("apiserver {}", lab.masters[h].ns))
        {
            return Ok(h);
        }
        if Instant::now() > deadline {
            bail!("the lab did not settle");
        }
        std::thread::sleep(every());
    }
}

fn inject(lab: &Lab, fault: Fault, h: usize) -> Result<()> {
    match fault {
        Fault::ApiserverDeath => lab.stop_apiserver(h),
        Fault::GracefulStop => lab.exec(h, "kill $(cat /run/keepalived.pid)").map(|_| ()),
        Fault::LinkDown => lab.set_link(h, false),
    }
}

fn restore(lab: &Lab, fault: Fault, h: usize) -> Result<()> {
    match fault {
        Fault::ApiserverDeath => lab.start_apiserver(h),
        Fault::GracefulStop => {
            // Wait for the old daemon to be gone, then start it the way the provisioner does.
            let script = "for i in $(seq 100); do [ -e /run/keepalived.pid ] && kill -0 $(cat /run/keepalived.pid) 2>/dev/null || break; sleep 0.05; done; \
                          rm -f /run/keepalived.pid /run/vrrp.pid; keepalived -D -f /etc/keepalived/keepalived.conf </dev/null >/dev/null 2>&1";
            lab.exec(h, script).map(|_| ())
        }
        Fault::LinkDown => lab.set_link(h, true),
    }
}

struct Outcome {
    ms: f64,
    split: usize,
}

fn one(lab: &Lab, fault: Fault) -> Result<Outcome> {
    let h = steady(lab)?;
    let old = format!("apiserver {}", lab.masters[h].ns);
    let watch = Watch::start(lab, every(), Some(6443));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = watch.started.elapsed();
    inject(lab, fault, h)?;
    // Let it fail over, then a little more to catch a flap-back.
    let deadline = Instant::now() + SETTLE;
    loop {
        let a = lab.get_vip(6443, Duration::from_millis(200));
        if a.as_ref().is_some_and(|a| *a != old) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(every());
    }
    std::thread::sleep(Duration::from_millis(500));
    restore(lab, fault, h)?;
    std::thread::sleep(Duration::from_millis(1500));
    let samples = watch.stop();
    let first = samples
        .iter()
        .find(|s| s.at >= t0 && s.answer.as_ref().is_some_and(|a| *a != old))
        .context("no other master answered")?;
    Ok(Outcome {
        ms: (first.at - t0).as_secs_f64() * 1000.0,
        split: split_samples(&samples).len(),
    })
}

/// Starts one busy loop per core, in master `ns`'s namespaces (`Some(i)`) or on the host
/// (`None`); returns what stops them.
fn hog(lab: &Lab, on: Option<usize>) -> Result<Box<dyn FnOnce()>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = format!(
        "for i in $(seq {cores}); do nohup bash -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & echo $! >> /run/tkeha-bench-hog.pids; done"
    );
    match on {
        Some(i) => {
            lab.exec(i, &start)?;
            let pid = lab.masters[i].sshd_pid;
            Ok(Box::new(move || {
                let _ = tkeha_e2e::lab::cmd::in_ns(
                    pid,
                    "kill $(cat /run/tkeha-bench-hog.pids); rm -f /run/tkeha-bench-hog.pids",
                );
            }))
        }
        None => {
            let mut children = Vec::new();
            for _ in 0..cores {
                children.push(
                    std::process::Command::new("bash")
                        .args(["-c", "while :; do :; done"])
                        .spawn()
                        .context("start a CPU hog")?,
                );
            }
            Ok(Box::new(move || {
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }))
        }
    }
}

/// One stress run: `secs` seconds of hogs, sampled; (VIP moves, samples with two holders, samples).
fn stress(lab: &Lab, on_holder: bool, secs: u64) -> Result<(usize, usize, usize)> {
    let h = steady(lab)?;
    let stop = hog(lab, on_holder.then_some(h))?;
    let watch = Watch::start(lab, Duration::from_millis(50), None);
    std::thread::sleep(Duration::from_secs(secs));
    let samples = watch.stop();
    stop();
    let moves = samples
        .windows(2)
        .filter(|w| w[0].holders != w[1].holders && !w[1].holders.is_empty())
        .count()
        + usize::from(samples.first().is_some_and(|s| s.holders != vec![h]));
    Ok((moves, split_samples(&samples).len(), samples.len()))
}

/// CPU of the resident probe on master `i` over `secs` seconds, in percent of one core.
fn probe_cpu(lab: &Lab, i: usize, secs: u64) -> Result<f64> {
    let ticks = || -> Result<f64> {
        let out = lab.exec(
            i,
            "awk '{print $14+$15}' /proc/$(cat /run/tkeha-apiserver-probe.pid)/stat",
        )?;
        out.trim()
            .parse::<f64>()
            .context("read the probe's CPU ticks")
    };
    let hz = 100.0; // USER_HZ on Linux
    let (t0, a) = (Instant::now(), ticks()?);
    std::thread::sleep(Duration::from_secs(secs));
    let (b, dt) = (ticks()?, t0.elapsed().as_secs_f64());
    Ok((b - a) / hz / dt * 100.0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let stress_secs: u64 = std::env::var("STRESS_SECS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(60);
    let profile = std::env::var("FAILOVER_PROFILE").unwrap_or_else(|_| "standard".into());
    let fast = match profile.as_str() {
        "standard" => false,
        "fast" => true,
        other => bail!("FAILOVER_PROFILE={other}: use standard or fast"),
    };
    EVERY_MS.store(
        if fast { 20 } else { 50 },
        std::sync::atomic::Ordering::Relaxed,
    );
    let load_before = loadavg();
    let lab = Lab::up(LabConfig::masters(3))?;
    let m = lab.write_manifest("cluster.json", &ManifestOptions::default(), |_| {})?;
    let kh = lab.known_hosts_path();
    let r = provisioner::run(
        "apply",
        &m,
        &[
            "--known-hosts",
            &kh.to_string_lossy(),
            "--failover-profile",
            &profile,
        ],
    )?;
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
    for fault in [Fault::ApiserverDeath, Fault::GracefulStop, Fault::LinkDown] {
        let mut ms = Vec::new();
        let mut split = 0;
        for n in 0..runs {
            let o = one(&lab, fault)?;
            eprintln!(
                "{profile}: {} run {}: {:.0} ms, two-holder samples {}",
                fault.name(),
                n + 1,
                o.ms,
                o.split
            );
            ms.push(o.ms);
            split += o.split;
        }
        total_split += split;
        let (med, mx) = (median(&ms) / 1000.0, max(&ms) / 1000.0);
        rows.push(format!(
            "| {} | {runs} | {med:.2} s | {mx:.2} s | {:.2} s | {split} |",
            fault.name(),
            ms.iter().copied().fold(f64::MAX, f64::min) / 1000.0
        ));
        let mut v = format!(
            "{}: median <= {} s {}",
            fault.name(),
            fault.target_median(fast),
            verdict(med <= fault.target_median(fast))
        );
        if let Some(t) = fault.target_max(fast) {
            v.push_str(&format!(", max <= {t} s {}", verdict(mx <= t)));
        }
        verdicts.push(v);
    }
    let mut stress_rows = Vec::new();
    let mut spurious = 0;
    for (name, on_holder) in [
        ("CPU hog on every core in the holder's namespace", true),
        ("CPU hog on every core of the whole machine", false),
    ] {
        let (moves, split, n) = stress(&lab, on_holder, stress_secs)?;
        eprintln!("{profile}: stress {name}: {moves} VIP moves, {split} two-holder samples of {n}");
        spurious += moves;
        total_split += split;
        stress_rows.push(format!(
            "| {name} | {stress_secs} s | {n} | {moves} | {split} |"
        ));
    }
    let cpu = if fast {
        let h = steady(&lab)?;
        Some(probe_cpu(&lab, h, 30)?)
    } else {
        None
    };
    let load_after = loadavg();
    println!(
        "### Failover, profile `{profile}` (3 masters, keepalived as provisioned by `tkeha-provisioner apply --failover-profile {profile}`)\n"
    );
    println!(
        "Command: `scripts/bench-failover.sh` (runs `tkeha-failover-bench` with FAILOVER_PROFILE={profile}, RUNS={runs},"
    );
    println!(
        "STRESS_SECS={stress_secs}). Each run: wait for one holder answering through the VIP, inject the fault on it, sample"
    );
    println!(
        "every {} ms from the root namespace (`GET http://VIP:6443/` with a short timeout, VIP holders via `ip -n NS addr`),",
        every().as_millis()
    );
    println!(
        "restore. Time = fault to the first sample answered by another master. Link down = the holder's veth down on the"
    );
    println!(
        "bridge side; graceful = SIGTERM to keepalived; apiserver death = the stand-in on :6443 stopped.\n"
    );
    if fast {
        println!(
            "keepalived as rendered for `fast`: VRRPv3 unicast with `check_unicast_src`, advert_int 0.1, priorities 150/149/148"
        );
        println!(
            "(takeover skew (256-p)/256 x 0.1 s, about 41 ms), nopreempt, a `vrrp_track_file` written by the resident probe"
        );
        println!("(every 50 ms; 2 refused connects = not running,");
        println!("2 probes without an answer in 150 ms = not answering).\n");
    } else {
        println!(
            "keepalived as rendered for `standard`: VRRPv2 unicast with `check_unicast_src`, advert_int 1, priorities 254/253/252"
        );
        println!(
            "(takeover skew (256-p)/256 s), nopreempt, health check every 1 s, fall 2, rise 2, garp refresh 10 s.\n"
        );
    }
    println!("| scenario | runs | median | max | min | samples with two holders |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    println!(
        "| stress (sampled every 50 ms) | length | samples | VIP moves (spurious failovers) | samples with two holders |"
    );
    println!("|---|---|---|---|---|");
    for r in &stress_rows {
        println!("{r}");
    }
    println!();
    for v in &verdicts {
        println!("- {v}");
    }
    println!(
        "- zero spurious failovers in the stress runs: {} ({spurious})",
        verdict(spurious == 0)
    );
    println!(
        "- zero samples with two holders: {} ({total_split})",
        verdict(total_split == 0)
    );
    if let Some(cpu) = cpu {
        println!(
            "- probe CPU on the holder (apiserver answering, 30 s from /proc/PID/stat): {cpu:.2}% of one core; <= 1% {}",
            verdict(cpu <= 1.0)
        );
    }
    println!("- load average (1/5/15 min) before: {load_before}; after: {load_after}");
    Ok(())
}

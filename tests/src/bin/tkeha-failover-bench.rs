//! tkeha-failover-bench: failover times of the provisioned keepalived on a 3-master lab. For each
//! scenario (apiserver death, graceful keepalived stop, link down) and each run, samples from the
//! root namespace every 50 ms (`GET http://VIP:6443/` and who holds the VIP per `ip -n`), and
//! measures the time from the fault to another master answering. Prints a Markdown section.

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median, verdict};
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{SETTLE, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

const EVERY: Duration = Duration::from_millis(50);

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
    fn target_median(self) -> f64 {
        match self {
            Fault::ApiserverDeath => 2.5,
            Fault::GracefulStop => 1.5,
            Fault::LinkDown => 4.0,
        }
    }
    /// "At most" for graceful stop and link down: every run, not just the median.
    fn target_max(self) -> Option<f64> {
        match self {
            Fault::ApiserverDeath => Some(4.0),
            Fault::GracefulStop => Some(1.5),
            Fault::LinkDown => Some(4.0),
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
        std::thread::sleep(EVERY);
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
    let watch = Watch::start(lab, EVERY, Some(6443));
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
        std::thread::sleep(EVERY);
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

fn run() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let lab = Lab::up(LabConfig::masters(3))?;
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
    for fault in [Fault::ApiserverDeath, Fault::GracefulStop, Fault::LinkDown] {
        let mut ms = Vec::new();
        let mut split = 0;
        for n in 0..runs {
            let o = one(&lab, fault)?;
            eprintln!(
                "{} run {}: {:.0} ms, two-holder samples {}",
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
            fault.target_median(),
            verdict(med <= fault.target_median())
        );
        if let Some(t) = fault.target_max() {
            v.push_str(&format!(", max <= {t} s {}", verdict(mx <= t)));
        }
        verdicts.push(v);
    }
    println!("### Failover (3 masters, keepalived as provisioned by `tkeha-provisioner apply`)\n");
    println!(
        "Command: `scripts/bench-failover.sh` (runs `tkeha-failover-bench`, RUNS={runs}). Each run: wait for one holder"
    );
    println!(
        "answering through the VIP, inject the fault on it, sample every 50 ms from the root namespace"
    );
    println!(
        "(`GET http://VIP:6443/` with a short timeout, VIP holders via `ip -n NS addr`), restore. Time = fault to"
    );
    println!(
        "the first sample answered by another master. Link down = the holder's veth down on the bridge side;"
    );
    println!(
        "graceful = SIGTERM to keepalived; apiserver death = the stand-in on :6443 stopped.\n"
    );
    println!(
        "keepalived as rendered by the provisioner: VRRPv2 unicast, advert_int 1, priorities 254/253/252"
    );
    println!(
        "(takeover skew (256-p)/256 s), nopreempt, health check every 1 s, fall 2, rise 2, garp refresh 10 s.\n"
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
    Ok(())
}

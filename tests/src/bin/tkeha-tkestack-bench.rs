//! tkeha-tkestack-bench: failover on 3 lab masters prepared as TKEStack leaves them (its keepalived.conf, its static pod, the stand-in kubelet): `tkeha-provisioner drill` (manifest moved away, then back) as the drill reports it, and apiserver death on the holder (TKEStack's check: every 2 s, fall 3) sampled every 50 ms from the root namespace. Prints a Markdown section.

use anyhow::{Context, Result, bail};
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median};
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{SETTLE, single_holder};
use tkeha_e2e::watch::{Watch, split_samples};

const EVERY: Duration = Duration::from_millis(50);

fn main() {
    if let Err(e) = run() {
        eprintln!("tkeha-tkestack-bench: {e:#}");
        std::process::exit(1);
    }
}

/// One holder that answers through the VIP.
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

/// The holder's apiserver stops: time to another master answering through the VIP.
fn apiserver_death(lab: &Lab) -> Result<(f64, usize)> {
    let h = steady(lab)?;
    let old = format!("apiserver {}", lab.masters[h].ns);
    let watch = Watch::start(lab, EVERY, Some(6443));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = watch.started.elapsed();
    lab.stop_apiserver(h)?;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        if lab
            .get_vip(6443, Duration::from_millis(200))
            .is_some_and(|a| a != old)
        {
            break;
        }
        std::thread::sleep(EVERY);
    }
    std::thread::sleep(Duration::from_millis(500));
    lab.start_apiserver(h)?;
    // TKEStack's check needs `rise 1` success and its config has no nopreempt: give it time to
    // settle before the next run.
    std::thread::sleep(Duration::from_secs(4));
    let samples = watch.stop();
    let first = samples
        .iter()
        .find(|s| s.at >= t0 && s.answer.as_ref().is_some_and(|a| *a != old))
        .with_context(|| {
            let seen: Vec<_> = samples
                .iter()
                .filter(|s| s.at >= t0)
                .map(|s| (s.holders.clone(), s.answer.clone()))
                .collect();
            format!(
                "no other master answered after {} stopped; samples (holders, answer): {:?}",
                lab.masters[h].name,
                seen.iter().step_by(10).collect::<Vec<_>>()
            )
        })?;
    Ok((
        (first.at - t0).as_secs_f64() * 1000.0,
        split_samples(&samples).len(),
    ))
}

fn run() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let lab = Lab::up(LabConfig::masters(3))?;
    lab.tkestack_cluster(100)?;
    steady(&lab)?;
    let m = lab.write_manifest("cluster.json", &ManifestOptions::default(), |_| {})?;
    let kh = lab.known_hosts_path();
    let mut drill_ms = Vec::new();
    let mut drill_wall = Vec::new();
    for n in 0..runs {
        steady(&lab)?;
        let r = provisioner::run("drill", &m, &["--known-hosts", &kh.to_string_lossy()])?;
        if r.code != 0 {
            bail!("drill {} failed:\n{}", n + 1, r.all_output());
        }
        let ms = r.report["drill"]["failover_ms"]
            .as_f64()
            .context("no failover_ms")?;
        eprintln!("drill run {}: {ms:.0} ms ({:?} in all)", n + 1, r.elapsed);
        drill_ms.push(ms);
        drill_wall.push(r.elapsed.as_secs_f64());
    }
    let mut death_ms = Vec::new();
    let mut split = 0;
    for n in 0..runs {
        let (ms, s) = apiserver_death(&lab)?;
        eprintln!(
            "apiserver death run {}: {ms:.0} ms, two-holder samples {s}",
            n + 1
        );
        death_ms.push(ms);
        split += s;
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    println!("### Beside TKEStack (3 masters as TKEStack leaves them)\n");
    println!(
        "Command: `scripts/bench-tkestack.sh` (runs `tkeha-tkestack-bench`, RUNS={runs}). The masters have TKEStack's"
    );
    println!(
        "keepalived.conf from its template (multicast, priority 100 everywhere, no nopreempt, check every 2 s, fall 3)"
    );
    println!(
        "and its static pod manifest; `tkeha-fake-kubelet` stands in for kubelet (it looks at the manifest every 100 ms)."
    );
    println!(
        "Drill: `tkeha-provisioner drill` moves the holder's manifest away (SIGTERM to keepalived) and back; its"
    );
    println!(
        "`failover_ms` (to `VIP:6443` answering from another master) and the whole run. Apiserver death: the stand-in"
    );
    println!("on the holder stopped, sampled every 50 ms from outside.\n");
    println!("| scenario | runs | median | max | min | samples with two holders |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| drill (manifest moved away) | {runs} | {:.2} s | {:.2} s | {:.2} s | - |",
        median(&drill_ms) / 1000.0,
        max(&drill_ms) / 1000.0,
        min(&drill_ms) / 1000.0
    );
    println!(
        "| drill, whole run (probe, park, failover, restore, 5 s nopreempt watch) | {runs} | {:.2} s | {:.2} s | {:.2} s | - |",
        median(&drill_wall),
        max(&drill_wall),
        min(&drill_wall)
    );
    println!(
        "| apiserver death (TKEStack's check) | {runs} | {:.2} s | {:.2} s | {:.2} s | {split} |",
        median(&death_ms) / 1000.0,
        max(&death_ms) / 1000.0,
        min(&death_ms) / 1000.0
    );
    println!();
    println!(
        "Compare tkeha's own keepalived in the failover section: apiserver death moves the VIP in about 1.7 s there."
    );
    Ok(())
}

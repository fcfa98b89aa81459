//! tkeha-proxy-bench: wall time to connect to 3 masters at once (TCP or proxy, SSH handshake,
//! host-key check, password login) and run one command on each, directly, through the SOCKS5
//! server and through the jump server (a fresh dialer per run, so each jump run includes its one
//! jump login); then `tkeha-provisioner apply` on 3 masters directly, through the jump server and
//! through SOCKS5, with the jump server's logins counted. Prints a Markdown section for
//! BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median, verdict};
use tkeha_e2e::lab::proxy::{JUMP_PASSWORD, JUMP_USER};
use tkeha_e2e::lab::sshd::ROOT_PASSWORD;
use tkeha_e2e::lab::{Lab, LabConfig, LabProxy, ManifestOptions};
use tkeha_e2e::provisioner;
use tkeha_e2e::remote::{password, ssh_run};
use tkeha_provisioner::HostKeyPolicy;
use tkeha_provisioner::transport::{Dialer, JumpServer, Route, Socks5Proxy};

const TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    if let Err(e) = run() {
        eprintln!("tkeha-proxy-bench: {e:#}");
        std::process::exit(1);
    }
}

/// Seconds for one run on all masters of `lab`, and the jump logins it made.
fn one(lab: &Lab, route: &Route) -> Result<(f64, u32)> {
    let policy = HostKeyPolicy::KnownHosts(lab.known_hosts_path());
    let dialer = Dialer::new(policy.clone());
    let root = password(ROOT_PASSWORD);
    let addrs: Vec<SocketAddr> = (0..lab.masters.len())
        .map(|i| lab.master_addr(i))
        .collect::<Result<_>>()?;
    let start = Instant::now();
    let outs: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = addrs
            .iter()
            .map(|&addr| {
                let (dialer, policy, root) = (&dialer, &policy, &root);
                s.spawn(move || {
                    ssh_run(
                        dialer,
                        route,
                        policy,
                        addr,
                        ("root", root),
                        "hostname",
                        TIMEOUT,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("panic".into())))
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    for (i, out) in outs.into_iter().enumerate() {
        let out = out.map_err(anyhow::Error::msg)?;
        if out.trim() != lab.masters[i].ns {
            bail!("master {} answered {out:?}", lab.masters[i].ns);
        }
    }
    let logins = dialer.jump_stats().iter().map(|s| s.logins).sum();
    Ok((secs, logins))
}

/// One `apply` of `lab`'s masters through `proxy` (stand-in apiservers running, so it also waits
/// for `VIP:6443` to answer along the route), then `uninstall` to start the next one fresh.
/// Returns the apply's wall time and the jump logins its report counted.
fn apply_once(lab: &Lab, proxy: Option<LabProxy>) -> Result<(f64, u32)> {
    let opts = ManifestOptions {
        proxy,
        ..ManifestOptions::default()
    };
    let m = lab.write_manifest("bench.json", &opts, |_| {})?;
    let kh = lab.known_hosts_path();
    let kh = kh.to_string_lossy();
    let start = Instant::now();
    let apply = provisioner::run("apply", &m, &["--known-hosts", kh.as_ref()])?;
    let secs = start.elapsed().as_secs_f64();
    if apply.code != 0 || apply.report["ok"] != true {
        bail!("apply ({proxy:?}) failed:\n{}", apply.all_output());
    }
    let logins = apply.report["jump_servers"]
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["logins"].as_u64()).sum::<u64>())
        .unwrap_or(0);
    let undo = provisioner::run("uninstall", &m, &["--known-hosts", kh.as_ref()])?;
    if undo.code != 0 {
        bail!("uninstall ({proxy:?}) failed:\n{}", undo.all_output());
    }
    Ok((secs, u32::try_from(logins).unwrap_or(u32::MAX)))
}

fn env_runs(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .max(1)
}

fn run() -> Result<()> {
    let runs = env_runs("RUNS", 10);
    let apply_runs = env_runs("APPLY_RUNS", 5);
    let direct_lab = Lab::up(LabConfig::masters(3)).context("direct lab")?;
    let proxy_lab = Lab::up(LabConfig {
        proxies: true,
        ..LabConfig::masters(3)
    })
    .context("proxy lab")?;
    let jump = Route::Jump(
        JumpServer::new(proxy_lab.jump_addr()?, JUMP_USER, password(JUMP_PASSWORD))
            .map_err(anyhow::Error::msg)?,
    );
    let socks = Route::Socks5(Socks5Proxy {
        addr: proxy_lab.socks_addr()?,
        auth: None,
    });
    let before = proxy_lab.jump_connections()?;
    let (mut direct, mut via_jump, mut via_socks, mut logins) = (vec![], vec![], vec![], vec![]);
    // Interleaved, so that load on a shared machine hits every route alike.
    for _ in 0..runs {
        direct.push(one(&direct_lab, &Route::Direct)?.0);
        let (t, l) = one(&proxy_lab, &jump)?;
        via_jump.push(t);
        logins.push(f64::from(l));
        via_socks.push(one(&proxy_lab, &socks)?.0);
    }
    let connections = proxy_lab.jump_connections()? - before;

    // Provisioning: apply on 3 masters per route, interleaved, each undone before the next.
    for lab in [&direct_lab, &proxy_lab] {
        for i in 0..lab.masters.len() {
            lab.start_apiserver(i)?;
        }
    }
    let before_apply = proxy_lab.jump_connections()?;
    let (mut apply_direct, mut apply_jump, mut apply_socks, mut apply_logins) =
        (vec![], vec![], vec![], vec![]);
    for _ in 0..apply_runs {
        apply_direct.push(apply_once(&direct_lab, None)?.0);
        let (t, l) = apply_once(&proxy_lab, Some(LabProxy::Jump))?;
        apply_jump.push(t);
        apply_logins.push(f64::from(l));
        apply_socks.push(apply_once(&proxy_lab, Some(LabProxy::Socks5))?.0);
    }
    // Each apply and each uninstall through the jump server is one SSH connection to it.
    let apply_connections = proxy_lab.jump_connections()? - before_apply;

    let d = median(&direct);
    let ratio = |v: &[f64]| if d > 0.0 { median(v) / d } else { 0.0 };
    println!("### Reaching masters through a proxy (3 masters, connect + one command)\n");
    println!(
        "Command: `scripts/bench-proxy.sh` (runs `tkeha-proxy-bench`, {runs} runs per route, interleaved). One"
    );
    println!(
        "run: a fresh `transport::Dialer`, then on 3 masters at once: connect, SSH handshake, host-key check"
    );
    println!(
        "(known_hosts), password login as root, `hostname`. Through the jump server the run includes its"
    );
    println!(
        "own login to the jump server (OpenSSH), shared by the 3 masters; microsocks is the SOCKS5 server.\n"
    );
    println!("| route | median | max | vs direct |");
    println!("|---|---|---|---|");
    println!(
        "| direct | {:.3} s | {:.3} s | 1.00x |",
        median(&direct),
        max(&direct)
    );
    println!(
        "| jump server | {:.3} s | {:.3} s | {:.2}x |",
        median(&via_jump),
        max(&via_jump),
        ratio(&via_jump)
    );
    println!(
        "| SOCKS5 | {:.3} s | {:.3} s | {:.2}x |",
        median(&via_socks),
        max(&via_socks),
        ratio(&via_socks)
    );
    println!();
    println!(
        "Jump logins per run (the transport's count): max {}; SSH connections the jump host's sshd logged: {connections} for {runs} runs.",
        max(&logins)
    );
    println!(
        "Target: one jump handshake per run: {}. (The issue's 1.5x target is for provisioning, below.)",
        verdict(max(&logins) <= 1.0 && connections == runs),
    );
    println!();
    println!(
        "The jump server adds a fixed {:.3} s per run (median difference): its own SSH login, made once and",
        median(&via_jump) - d
    );
    println!("shared, before the masters' logins can start.\n");

    let ad = median(&apply_direct);
    let aratio = |v: &[f64]| if ad > 0.0 { median(v) / ad } else { 0.0 };
    println!("#### Provisioning 3 masters through a proxy (`tkeha-provisioner apply`)\n");
    println!(
        "{apply_runs} runs per route, interleaved. One run: `tkeha-provisioner apply -f cluster.json -o json` on"
    );
    println!(
        "the 3 masters (keepalived present, stand-in apiservers running, so apply also waits until `VIP:6443`"
    );
    println!(
        "answers along the masters' route), timed from start to exit; then `uninstall` (not timed) for"
    );
    println!(
        "a fresh start. The manifest names the proxy in `machines[].proxy`; the direct lab is a separate lab."
    );
    println!();
    println!("| route | apply median | max | vs direct |");
    println!("|---|---|---|---|");
    println!(
        "| direct | {:.2} s | {:.2} s | 1.00x |",
        ad,
        max(&apply_direct)
    );
    println!(
        "| jump server | {:.2} s | {:.2} s | {:.2}x |",
        median(&apply_jump),
        max(&apply_jump),
        aratio(&apply_jump)
    );
    println!(
        "| SOCKS5 | {:.2} s | {:.2} s | {:.2}x |",
        median(&apply_socks),
        max(&apply_socks),
        aratio(&apply_socks)
    );
    println!();
    println!(
        "Jump logins per apply (the report's `jump_servers[].logins`): max {}; SSH connections the jump host's",
        max(&apply_logins)
    );
    println!(
        "sshd logged: {apply_connections} for {apply_runs} applies and {apply_runs} uninstalls (one per command, shared by the 3 masters"
    );
    println!("and the VIP probes).");
    println!(
        "Targets: apply through the jump server <= 1.5x direct: {} ({:.2}x); its SSH handshake once per apply, not once per master: {}.",
        verdict(aratio(&apply_jump) <= 1.5),
        aratio(&apply_jump),
        verdict(max(&apply_logins) <= 1.0 && apply_connections == 2 * apply_runs)
    );
    Ok(())
}

//! The third-party load balancer stand-in: haproxy in the `lb` namespace holding the VIP, forwarding
//! VIP:vport to the masters' :6443, and iptables faults that make one master unable to reach the VIP.

use super::cmd::run;
use anyhow::{Context, Result};
use std::fs;
use std::path::Path;

/// Writes haproxy.cfg: one frontend binding every vport on the VIP, backends = `backends` (ips) :6443.
pub fn write_config(
    dir: &Path,
    vip: &str,
    vports: &[u16],
    backends: &[(String, String)],
) -> Result<()> {
    let mut cfg = format!(
        "global\n    pidfile {d}/haproxy.pid\n    stats socket {d}/haproxy.sock mode 600 level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         frontend apiserver_vip\n",
        d = dir.display()
    );
    for p in vports {
        cfg.push_str(&format!("    bind {vip}:{p}\n"));
    }
    cfg.push_str(
        "    default_backend masters\nbackend masters\n    balance roundrobin\n    \
         default-server check inter 1s fall 2 rise 2\n",
    );
    for (name, ip) in backends {
        cfg.push_str(&format!("    server {name} {ip}:6443\n"));
    }
    fs::write(dir.join("haproxy.cfg"), cfg)?;
    Ok(())
}

/// Validates and starts haproxy (daemon mode) inside namespace `ns`.
pub fn start(ns: &str, dir: &Path) -> Result<()> {
    let cfg = dir.join("haproxy.cfg");
    let cfg = cfg.to_string_lossy();
    run("haproxy", &["-c", "-q", "-f", &cfg]).context("haproxy config check")?;
    run("ip", &["netns", "exec", ns, "haproxy", "-D", "-f", &cfg]).context("starting haproxy")?;
    Ok(())
}

/// Drops (or stops dropping) TCP from `src` to `vip:vport` at the LB: that master cannot reach
/// itself through the VIP, like a cloud LB without hairpin support.
pub fn drop_from(ns: &str, src: &str, vip: &str, vport: u16, on: bool) -> Result<()> {
    let port = vport.to_string();
    let op = if on { "-I" } else { "-D" };
    run(
        "ip",
        &[
            "netns", "exec", ns, "iptables", op, "INPUT", "-s", src, "-d", vip, "-p", "tcp",
            "--dport", &port, "-j", "DROP",
        ],
    )?;
    Ok(())
}

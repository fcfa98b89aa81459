//! The lab's network: a unique slot (bridge `tkh{N}br`, subnet 10.77.N.0/24), namespaces with veths,
//! link faults, who holds an address, and teardown/garbage collection of a slot's objects.

use super::cmd::{run, run_quiet};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// Highest slot number; slots are 1..=MAX_SLOT so every lab gets its own 10.77.N.0/24.
pub const MAX_SLOT: u16 = 200;

/// Name of the bridge of slot `n`.
pub fn bridge_name(slot: u16) -> String {
    format!("tkh{slot}br")
}

/// Atomically takes the first free slot by creating its bridge (the kernel refuses a duplicate name).
/// The bridge's alias records the owner so `gc` can tell live labs from leftovers.
pub fn allocate_slot(dir: &Path, owner_pid: u32) -> Result<u16> {
    for n in 1..=MAX_SLOT {
        let br = bridge_name(n);
        match run("ip", &["link", "add", &br, "type", "bridge"]) {
            Ok(_) => {
                let alias = format!("tkeha-lab pid={owner_pid} dir={}", dir.display());
                run("ip", &["link", "set", &br, "alias", &alias])?;
                return Ok(n);
            }
            Err(e) if e.to_string().contains("File exists") => continue,
            Err(e) => {
                return Err(e).context(
                    "cannot create the lab bridge: the lab needs root (CAP_NET_ADMIN) and iproute2",
                );
            }
        }
    }
    bail!("all lab slots 1..={MAX_SLOT} are taken; run `tkeha-lab gc`")
}

/// Addresses the bridge and adds the shared safety route so stray 10.77/16 traffic never leaves the host.
pub fn setup_bridge(slot: u16) -> Result<()> {
    let br = bridge_name(slot);
    run(
        "ip",
        &["addr", "add", &format!("10.77.{slot}.1/24"), "dev", &br],
    )?;
    run("ip", &["link", "set", &br, "up"])?;
    // Shared by all slots, never removed: the bridges' /24 routes are more specific and win.
    let routes = run("ip", &["route", "show", "type", "unreachable"]).unwrap_or_default();
    if !routes.contains("10.77.0.0/16") {
        let _ = run_quiet("ip", &["route", "add", "unreachable", "10.77.0.0/16"]);
    }
    Ok(())
}

/// Creates namespace `ns` with `eth0` (address `cidr`) wired to the slot's bridge through `veth`.
pub fn add_node(slot: u16, ns: &str, veth: &str, cidr: &str) -> Result<()> {
    add_node_on(&bridge_name(slot), ns, veth, cidr)
}

/// Creates namespace `ns` with `eth0` (address `cidr`) wired to `bridge` through `veth`.
pub fn add_node_on(bridge: &str, ns: &str, veth: &str, cidr: &str) -> Result<()> {
    run("ip", &["netns", "add", ns])?;
    run(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ],
    )?;
    run("ip", &["link", "set", veth, "master", bridge, "up"])?;
    run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
    run("ip", &["-n", ns, "addr", "add", cidr, "dev", "eth0"])?;
    run("ip", &["-n", ns, "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Takes a node's link down or up (from the bridge side, like pulling its cable).
pub fn set_link(veth: &str, up: bool) -> Result<()> {
    run("ip", &["link", "set", veth, if up { "up" } else { "down" }])?;
    Ok(())
}

/// True when `ip` is configured on any interface of namespace `ns`.
pub fn holds(ns: &str, ip: &str) -> bool {
    let needle = format!(" {ip}/");
    run("ip", &["-n", ns, "-4", "-o", "addr", "show"])
        .map(|out| out.contains(&needle))
        .unwrap_or(false)
}

/// Process ids (root namespace numbering) of everything living in network namespace `ns`.
pub fn pids(ns: &str) -> Vec<u32> {
    run("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Stops every process in `ns`: SIGTERM, a short grace period, then SIGKILL.
pub fn kill_all(ns: &str) {
    let first = pids(ns);
    if first.is_empty() {
        return;
    }
    for p in &first {
        run_quiet("kill", &[&p.to_string()]);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        if pids(ns).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in pids(ns) {
        run_quiet("kill", &["-9", &p.to_string()]);
    }
}

/// Namespaces on this machine that belong to slot `n` (`tkh{n}m{i}`, `tkh{n}lb`, `tkh{n}jump`, `tkh{n}socks`).
pub fn slot_namespaces(slot: u16) -> Vec<String> {
    let prefix = format!("tkh{slot}");
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            name.strip_prefix(&prefix).is_some_and(|rest| {
                rest == "lb"
                    || super::proxy::NODE_SUFFIXES.contains(&rest)
                    || rest
                        .strip_prefix('m')
                        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            })
        })
        .map(str::to_string)
        .collect()
}

/// Removes everything of slot `n`: processes, namespaces (their veths go with them), host veths, bridge.
/// Idempotent: missing objects are fine.
pub fn teardown_slot(slot: u16) {
    let namespaces = slot_namespaces(slot);
    for ns in &namespaces {
        kill_all(ns);
    }
    for ns in &namespaces {
        run_quiet("ip", &["netns", "del", ns]);
    }
    let prefix = format!("tkh{slot}v");
    for link in links() {
        if link.name.strip_prefix(&prefix).is_some_and(|r| {
            r == "lb" || super::proxy::VETH_SUFFIXES.contains(&r) || r.parse::<u32>().is_ok()
        }) {
            run_quiet("ip", &["link", "del", &link.name]);
        }
    }
    run_quiet("ip", &["link", "del", &super::proxy::hidden_bridge(slot)]);
    run_quiet("ip", &["link", "del", &bridge_name(slot)]);
}

/// One root-namespace link as listed by `ip -j link`.
#[derive(Debug, Clone)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// Its `ifalias`, where the lab records which slot owns it.
    pub alias: Option<String>,
}

/// All links of the root namespace.
pub fn links() -> Vec<Link> {
    let text = run("ip", &["-j", "link", "show"]).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    Some(Link {
                        name: l.get("ifname")?.as_str()?.to_string(),
                        alias: l
                            .get("ifalias")
                            .and_then(|x| x.as_str())
                            .map(str::to_string),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Slots whose bridge exists on this machine, with the owner alias recorded at allocation.
pub fn existing_slots() -> Vec<(u16, Option<String>)> {
    links()
        .into_iter()
        .filter_map(|l| {
            let n = l
                .name
                .strip_prefix("tkh")?
                .strip_suffix("br")?
                .parse::<u16>()
                .ok()?;
            Some((n, l.alias))
        })
        .collect()
}

/// Removes labs whose owner is gone: the state directory no longer exists, or the owning test
/// process died (pid 0 marks a lab started by `tkeha-lab up`, which lives until `tkeha-lab down`).
/// Returns the slots removed.
pub fn gc() -> Vec<u16> {
    let mut removed = Vec::new();
    for (slot, alias) in existing_slots() {
        let Some(alias) = alias else { continue };
        let Some(rest) = alias.strip_prefix("tkeha-lab pid=") else {
            continue;
        };
        let Some((pid, dir)) = rest.split_once(" dir=") else {
            continue;
        };
        let pid: u32 = pid.parse().unwrap_or(0);
        let dir_gone = !Path::new(dir).join("state.json").exists() && !Path::new(dir).exists();
        let owner_gone = pid != 0 && !Path::new(&format!("/proc/{pid}")).exists();
        if dir_gone || owner_gone {
            super::teardown_slot(slot);
            removed.push(slot);
        }
    }
    removed
}

//! The kube-apiserver stand-in on a master: start/stop `tkeha-fake-apiserver` inside the master's
//! namespaces (pid file in its private /run), and the static-pod manifest that marks a control plane.

use super::cmd::in_ns;
use super::probe::{tcp_open, wait_for};
use anyhow::{Result, bail};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the stand-in keeps its pid inside a master.
pub const PID_FILE: &str = "/run/fake-apiserver.pid";

/// Finds the `tkeha-fake-apiserver` binary: $TKEHA_FAKE_APISERVER, else next to the running
/// executable or in its parent (cargo puts test binaries in target/<profile>/deps).
pub fn locate_binary() -> Result<PathBuf> {
    crate::bins::locate("tkeha-fake-apiserver", "TKEHA_FAKE_APISERVER")
}

/// Starts the stand-in on 0.0.0.0:6443 of the master whose sshd is `pid`; waits until it accepts.
pub fn start(pid: u32, ip: &str, binary: &Path) -> Result<()> {
    let addr: SocketAddr = format!("{ip}:6443").parse()?;
    if tcp_open(addr, Duration::from_millis(300)) {
        return Ok(());
    }
    let script = format!(
        "nohup {} --port 6443 --pid-file {PID_FILE} >/dev/null 2>&1 </dev/null &",
        binary.display()
    );
    in_ns(pid, &script)?;
    if wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        tcp_open(addr, Duration::from_millis(300)).then_some(())
    })
    .is_none()
    {
        bail!("the stand-in apiserver on {ip} did not start listening");
    }
    Ok(())
}

/// Stops the stand-in (SIGTERM by its pid file) and waits until :6443 is closed.
pub fn stop(pid: u32, ip: &str) -> Result<()> {
    in_ns(
        pid,
        &format!("[ -f {PID_FILE} ] && kill $(cat {PID_FILE}) 2>/dev/null; rm -f {PID_FILE}; true"),
    )?;
    let addr: SocketAddr = format!("{ip}:6443").parse()?;
    if wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        (!tcp_open(addr, Duration::from_millis(300))).then_some(())
    })
    .is_none()
    {
        bail!("the stand-in apiserver on {ip} is still listening");
    }
    Ok(())
}

/// Freezes (SIGSTOP) or thaws (SIGCONT) the stand-in: a hung apiserver whose socket the kernel
/// still accepts connections on.
pub fn pause(pid: u32, paused: bool) -> Result<()> {
    let sig = if paused { "STOP" } else { "CONT" };
    in_ns(
        pid,
        &format!("[ -f {PID_FILE} ] && kill -{sig} $(cat {PID_FILE})"),
    )
    .map(|_| ())
}

/// Creates /etc/kubernetes/manifests/kube-apiserver.yaml in the master's private /etc (at `etc`).
pub fn mark_control_plane(etc: &Path) -> Result<()> {
    let dir = etc.join("kubernetes").join("manifests");
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("kube-apiserver.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\n  namespace: kube-system\n\
         spec:\n  containers:\n  - name: kube-apiserver\n    image: stand-in\n",
    )?;
    Ok(())
}

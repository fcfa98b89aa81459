//! Steps the end-to-end tests and benchmarks share: build a lab (failing loudly when the machine
//! cannot), write a manifest, run the provisioner, wait for the VIP to settle.

use crate::lab::hosts::{HostLab, HostLabConfig};
use crate::lab::view::LabView;
use crate::lab::{Lab, LabConfig, ManifestOptions, probe};
use crate::provisioner::{self, Run};
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::Duration;

/// How long the VIP may take to settle or move before a test gives up (not a performance bound).
pub const SETTLE: Duration = Duration::from_secs(20);

/// Builds a lab or fails with why (the e2e tests need root, iproute2, sshd, keepalived, haproxy).
pub fn lab(cfg: LabConfig) -> Lab {
    match Lab::up(cfg) {
        Ok(l) => l,
        Err(e) => panic!("cannot build the netns lab (run as root after scripts/deps.sh): {e:#}"),
    }
}

/// Builds a booted lab or fails with why (root, systemd-container, debootstrap, dpkg-dev).
pub fn hosts_lab(cfg: HostLabConfig) -> HostLab {
    match HostLab::up(cfg) {
        Ok(l) => l,
        Err(e) => {
            panic!("cannot build the booted lab (run as root after scripts/deps.sh): {e:#}")
        }
    }
}

/// Writes a manifest for `lab` with `opts`, edited by `edit`.
pub fn manifest(
    lab: &impl LabView,
    name: &str,
    opts: &ManifestOptions,
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    match lab.write_manifest(name, opts, edit) {
        Ok(p) => p,
        Err(e) => panic!("cannot write manifest {name}: {e:#}"),
    }
}

/// Runs the provisioner with the lab's known_hosts; panics only if it cannot be started at all.
pub fn provision(
    lab: &impl LabView,
    action: &str,
    manifest: &std::path::Path,
    extra: &[&str],
) -> Run {
    let kh = lab.known_hosts_path();
    let kh = kh.to_string_lossy();
    let mut args = vec!["--known-hosts", kh.as_ref()];
    args.extend_from_slice(extra);
    match provisioner::run(action, manifest, &args) {
        Ok(r) => r,
        Err(e) => panic!("cannot run tkeha-provisioner (cargo build --workspace first): {e:#}"),
    }
}

/// Like `provision` but the run must succeed (exit 0, ok=true).
pub fn provision_ok(
    lab: &impl LabView,
    action: &str,
    manifest: &std::path::Path,
    extra: &[&str],
) -> Run {
    let r = provision(lab, action, manifest, extra);
    assert_eq!(
        r.code,
        0,
        "`tkeha-provisioner {action}` failed:\n{}",
        r.all_output()
    );
    assert_eq!(r.report["ok"], true, "report not ok:\n{}", r.stdout);
    r
}

/// Waits until exactly one master holds the VIP; returns it.
pub fn single_holder(lab: &impl LabView, deadline: Duration) -> Result<usize> {
    let mut last = Vec::new();
    let found = probe::wait_for(deadline, Duration::from_millis(50), || {
        last = lab.holders();
        (last.len() == 1).then(|| last[0])
    });
    match found {
        Some(h) => Ok(h),
        None => bail!("no single VIP holder within {deadline:?}; holders: {last:?}"),
    }
}

/// Waits until exactly one master other than `old` holds the VIP and `GET VIP:6443` answers from it.
pub fn moved_from(lab: &impl LabView, old: usize, deadline: Duration) -> Result<usize> {
    let mut last = (Vec::new(), None);
    let found = probe::wait_for(deadline, Duration::from_millis(50), || {
        let h = lab.holders();
        let answer = lab.get_vip(6443, Duration::from_millis(500));
        last = (h.clone(), answer.clone());
        match (h.as_slice(), answer) {
            ([n], Some(a)) if *n != old && a == format!("apiserver {}", lab.hostname(*n)) => {
                Some(*n)
            }
            _ => None,
        }
    });
    match found {
        Some(h) => Ok(h),
        None => {
            bail!("the VIP did not move away from master {old} within {deadline:?}; last: {last:?}")
        }
    }
}

//! One booted master: an overlayfs root over the cached read-only images, its own files (hostname,
//! address, host key, logins, apt source) in its upper directory, and `systemd-nspawn --boot`
//! with systemd as PID 1. It can be powered off from inside and booted again on the same disk.
//! Also the slot-wide teardown of booted machines, usable by a later process after a crash.

use super::cmd::{run, run_quiet};
use super::procs;
use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Environment entry nspawn hands to each master's PID 1: how a lab finds its machines again.
pub const MARKER_ENV: &str = "TKEHA_LAB_MACHINE";
/// uid of the lab's sudo user in the base image.
const USER_UID: u32 = 1777;

/// One booted master.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `m1`, `m2`, ...
    pub name: String,
    /// `tkh{slot}m{i}`: hostname and nspawn machine name.
    pub hostname: String,
    /// Its address on the lab bridge (host0, from systemd-networkd).
    pub ip: String,
    /// Host side of its veth on the bridge (`vb-` + machine name, made by nspawn).
    pub veth: String,
    /// Its files: `upper/`, `work/`, `root/` (the overlay mount), `console.log`.
    pub dir: PathBuf,
}

/// Everything a master's own files depend on.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    /// The lab's authorized_keys text (both lab keys).
    pub authorized_keys: &'a str,
    /// Bridge address that serves the mirror.
    pub gateway: &'a str,
    /// Prefix length of the lab subnet.
    pub prefix: u8,
}

impl Machine {
    /// The master's root as mounted on this machine.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// The overlay mount's source name: how teardown finds it in /proc/self/mountinfo.
    pub fn mount_source(&self) -> String {
        format!("tkeha-lab-{}", self.hostname)
    }

    /// Mounts the overlay root: `lowers` (top first) read-only, writes in the master's upper dir.
    pub fn mount(&self, lowers: &[&Path]) -> Result<()> {
        let (upper, work, root) = (self.dir.join("upper"), self.dir.join("work"), self.root());
        for d in [&upper, &work, &root] {
            fs::create_dir_all(d)?;
        }
        mount_overlay(&self.mount_source(), lowers, &upper, &work, &root)
    }

    /// Writes the master's own files into its root; returns its known_hosts line.
    pub fn prepare(&self, id: &Identity<'_>) -> Result<String> {
        let root = self.root();
        let w = |rel: &str, text: &str, mode: u32| -> Result<()> {
            let p = root.join(rel);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&p, text).with_context(|| format!("writing {rel} of {}", self.name))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
            Ok(())
        };
        w("etc/hostname", &format!("{}\n", self.hostname), 0o644)?;
        let hosts = fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
        w(
            "etc/hosts",
            &format!(
                "{hosts}127.0.1.1 {h}\n{ip} {h}\n",
                h = self.hostname,
                ip = self.ip
            ),
            0o644,
        )?;
        w("etc/machine-id", &format!("{}\n", machine_id()?), 0o444)?;
        w(
            "etc/systemd/network/10-tkeha-host0.network",
            &format!(
                "# tkeha lab: the master's address on the lab bridge.\n[Match]\nName=host0\n\n\
                 [Network]\nAddress={}/{}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
                self.ip, id.prefix
            ),
            0o644,
        )?;
        w(
            "etc/apt/sources.list",
            &super::mirror::sources_list(id.gateway),
            0o644,
        )?;
        w("root/.ssh/authorized_keys", id.authorized_keys, 0o600)?;
        let user_keys = format!("home/{}/.ssh/authorized_keys", super::sshd::USER);
        w(&user_keys, id.authorized_keys, 0o600)?;
        std::os::unix::fs::chown(root.join(&user_keys), Some(USER_UID), Some(USER_UID))?;
        let key = root.join("etc/ssh/ssh_host_ed25519_key");
        run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                &format!("root@{}", self.hostname),
                "-f",
                &key.to_string_lossy(),
            ],
        )?;
        let public = fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key.pub"))?;
        let mut fields = public.split_whitespace();
        let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
            bail!("unexpected ssh-keygen output for {}", self.name);
        };
        Ok(format!("{} {kind} {blob}\n", self.ip))
    }

    /// Boots the machine (`systemd-nspawn --boot`, detached) on `bridge`; returns at once.
    pub fn boot(&self, bridge: &str, apiserver_bin: &Path) -> Result<()> {
        if self.nspawn_pid().is_some() {
            bail!("{} is already running", self.name);
        }
        let args: Vec<String> = vec![
            "-q".into(),
            "-D".into(),
            self.root().to_string_lossy().into_owned(),
            format!("--machine={}", self.hostname),
            // No systemd on this machine's side: nothing to register with, no scope to create.
            "--register=no".into(),
            "--keep-unit".into(),
            "--boot".into(),
            format!("--network-bridge={bridge}"),
            "--console=read-only".into(),
            "--resolv-conf=off".into(),
            "--timezone=off".into(),
            "--link-journal=no".into(),
            format!("--setenv={MARKER_ENV}={}", self.hostname),
            format!(
                "--bind-ro={}:{}",
                apiserver_bin.display(),
                super::image::APISERVER_BIN
            ),
        ];
        // Each machine gets its own cgroup: nspawn --keep-unit makes the cgroup it starts in the
        // machine's root, and machines sharing one (here every process sits in `/`) fight over
        // init.scope and system.slice: their units fail at random with 219/CGROUP.
        let cgroups = cgroup_dirs(&self.hostname);
        remove_cgroups(&cgroups);
        let mut wrapped: Vec<String> = vec![
            "-c".into(),
            "while [ \"$1\" != -- ]; do echo $$ > \"$1/cgroup.procs\" || exit 1; shift; done; \
             shift; exec systemd-nspawn \"$@\""
                .into(),
            "sh".into(),
        ];
        for d in &cgroups {
            fs::create_dir_all(d)
                .with_context(|| format!("creating the cgroup {}", d.display()))?;
            wrapped.push(d.to_string_lossy().into_owned());
        }
        wrapped.push("--".into());
        wrapped.extend(args);
        procs::spawn_detached("sh", &wrapped, &self.dir.join("console.log"))
    }

    /// The running `systemd-nspawn` of this machine.
    pub fn nspawn_pid(&self) -> Option<u32> {
        let want = format!("--machine={}", self.hostname);
        procs::find(|c| is_nspawn(c) && c.contains(&want))
            .into_iter()
            .next()
    }

    /// The machine's PID 1 (systemd) as seen from this machine.
    pub fn init_pid(&self) -> Option<u32> {
        let nspawn = self.nspawn_pid()?;
        let entry = format!("{MARKER_ENV}={}", self.hostname);
        procs::all()
            .into_iter()
            .find(|&p| procs::parent(p) == Some(nspawn) && procs::environ_has(p, &entry))
    }

    /// Waits until systemd reports `running` and sshd accepts; returns how long that took.
    pub fn wait_ready(&self, deadline: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut last = String::from("not started");
        let addr: std::net::SocketAddr = format!("{}:22", self.ip).parse()?;
        loop {
            // Nothing enters the machine before sshd answers: a process joined from outside
            // while systemd sets up its cgroups makes early units fail (219/CGROUP) under
            // cgroup v1, as this machine has.
            let sshd = super::probe::tcp_open(addr, Duration::from_millis(300));
            if let Some(pid) = self.init_pid().filter(|_| sshd) {
                match super::cmd::in_ns(pid, "systemctl is-system-running 2>/dev/null; true") {
                    Ok(s) => last = s.trim().to_string(),
                    Err(e) => last = e.to_string(),
                }
                if last == "running" && super::probe::tcp_open(addr, Duration::from_millis(300)) {
                    return Ok(start.elapsed());
                }
                if last == "degraded" {
                    let failed = super::cmd::in_ns(pid, FAILED_UNITS).unwrap_or_default();
                    bail!(
                        "{} booted degraded; failed units:\n{}",
                        self.name,
                        failed.trim()
                    );
                }
            } else if start.elapsed() > Duration::from_secs(5) && self.nspawn_pid().is_none() {
                bail!(
                    "systemd-nspawn for {} exited: {}",
                    self.name,
                    super::image::tail(&self.dir.join("console.log"), 10)
                );
            }
            if start.elapsed() > deadline {
                bail!(
                    "{} ({}) not ready after {deadline:?}: systemctl is-system-running says {last:?}; console:\n{}",
                    self.name,
                    self.ip,
                    super::image::tail(&self.dir.join("console.log"), 10)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a shell snippet as root inside the running machine (all its namespaces).
    pub fn exec(&self, script: &str) -> Result<String> {
        let pid = self
            .init_pid()
            .with_context(|| format!("{} is not running", self.name))?;
        super::cmd::in_ns(pid, script)
    }

    /// Powers the machine off from inside (`systemctl poweroff`) and waits until it is down.
    pub fn poweroff(&self, deadline: Duration) -> Result<Duration> {
        let start = Instant::now();
        let nspawn = self
            .nspawn_pid()
            .with_context(|| format!("{} is not running", self.name))?;
        // The call may lose its connection as systemd goes down; the wait below is the verdict.
        let _ = self.exec("systemctl poweroff");
        if !procs::wait_gone(&[nspawn], deadline) {
            bail!("{} did not power off within {deadline:?}", self.name);
        }
        Ok(start.elapsed())
    }
}

/// Lists the failed units of a booted machine with the end of each one's journal.
const FAILED_UNITS: &str = "systemctl --failed --no-legend --plain --no-pager; \
    for u in $(systemctl --failed --no-legend --plain --no-pager | cut -d' ' -f1); do \
    journalctl -b -q --no-pager -o short-monotonic -u \"$u\" | tail -n 8; done";

/// Whether a command line is a `systemd-nspawn`.
fn is_nspawn(cmd: &[String]) -> bool {
    cmd.first()
        .is_some_and(|a| a == "systemd-nspawn" || a.ends_with("/systemd-nspawn"))
}

/// The cgroups machine `name` runs in, one per mounted hierarchy systemd uses: the unified
/// hierarchy, and on a hybrid (cgroup v1) machine also the named `systemd` one.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return vec![root.join("tkeha-lab").join(name)];
    }
    ["systemd", "unified"]
        .iter()
        .map(|h| root.join(h))
        .filter(|h| h.join("cgroup.procs").exists())
        .map(|h| h.join("tkeha-lab").join(name))
        .collect()
}

/// Removes cgroup directories (and the empty ones a machine left below them), deepest first.
fn remove_cgroups(dirs: &[PathBuf]) {
    fn rm(dir: &Path) {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = fs::remove_dir(dir);
    }
    for d in dirs {
        rm(d);
    }
}

/// A fresh random machine id (32 hex digits), stable across the master's reboots.
fn machine_id() -> Result<String> {
    let bytes = fs::read("/proc/sys/kernel/random/uuid")?;
    Ok(String::from_utf8_lossy(&bytes).trim().replace('-', ""))
}

/// Mounts an overlay named `source` at `merged`.
pub fn mount_overlay(
    source: &str,
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    merged: &Path,
) -> Result<()> {
    let lower: Vec<String> = lowers
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    run(
        "mount",
        &[
            "-t",
            "overlay",
            source,
            "-o",
            &opts,
            &merged.to_string_lossy(),
        ],
    )
    .context("mounting a master's overlayfs root")?;
    Ok(())
}

/// (source, mount point) of every mount of this machine's mount namespace.
pub fn mounts() -> Vec<(String, PathBuf)> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let point = head.split_whitespace().nth(4)?;
            let source = tail.split_whitespace().nth(1)?;
            Some((source.to_string(), PathBuf::from(unescape_mount(point))))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Unmounts `path` (lazily if busy); gone is fine.
pub fn unmount(path: &Path) {
    let p = path.to_string_lossy();
    if !run_quiet("umount", &[&p]) {
        run_quiet("umount", &["-l", &p]);
    }
}

/// Unmounts everything mounted at or below `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let mut points: Vec<PathBuf> = mounts()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        unmount(&p);
    }
}

/// Whether `name` is `tkh{slot}m{digits}`.
pub fn is_slot_machine(name: &str, slot: u16) -> bool {
    name.strip_prefix(&format!("tkh{slot}m"))
        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
}

/// Removes every booted machine of slot `slot`: kills each PID 1 (its whole PID namespace goes
/// with it) and its nspawn, unmounts the overlays, removes nspawn's runtime dirs and the veths.
/// Idempotent; needs nothing but the slot number.
pub fn teardown_slot(slot: u16) {
    let nspawns = procs::find(|c| {
        is_nspawn(c)
            && c.iter().any(|a| {
                a.strip_prefix("--machine=")
                    .is_some_and(|m| is_slot_machine(m, slot))
            })
    });
    let inits: Vec<u32> = procs::all()
        .into_iter()
        .filter(|&p| procs::parent(p).is_some_and(|pp| nspawns.contains(&pp)))
        .collect();
    procs::signal(&inits, "KILL");
    if !procs::wait_gone(&nspawns, Duration::from_secs(5)) {
        procs::signal(&nspawns, "KILL");
        procs::wait_gone(&nspawns, Duration::from_secs(2));
    }
    for (source, point) in mounts() {
        if source
            .strip_prefix("tkeha-lab-")
            .is_some_and(|m| is_slot_machine(m, slot))
        {
            unmount(&point);
        }
    }
    for hierarchy in cgroup_dirs("x") {
        let Some(parent) = hierarchy.parent() else {
            continue;
        };
        if let Ok(entries) = fs::read_dir(parent) {
            let ours: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| is_slot_machine(n, slot))
                })
                .map(|e| e.path())
                .collect();
            remove_cgroups(&ours);
        }
    }
    for sub in ["propagate", "unix-export", "incoming"] {
        let dir = Path::new("/run/systemd/nspawn").join(sub);
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name()
                    .to_str()
                    .is_some_and(|n| is_slot_machine(n, slot))
                {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    for link in super::netns::links() {
        if link
            .name
            .strip_prefix("vb-")
            .is_some_and(|m| is_slot_machine(m, slot))
        {
            run_quiet("ip", &["link", "del", &link.name]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_machine_names_match_exactly() {
        assert!(is_slot_machine("tkh5m1", 5));
        assert!(is_slot_machine("tkh5m12", 5));
        assert!(!is_slot_machine("tkh51m1", 5));
        assert!(!is_slot_machine("tkh5m", 5));
        assert!(!is_slot_machine("tkh5lb", 5));
    }

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount("/tmp/a\\040b"), "/tmp/a b");
    }
}

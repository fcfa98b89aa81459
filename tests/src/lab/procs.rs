//! Finding the lab's processes from outside by what they are (command line, environment), so a
//! lab can be torn down by a later process after its owner died, and starting detached daemons.

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The command line of `pid` split at NULs (empty when it is gone or a kernel thread).
pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid`'s environment holds exactly `entry` (`KEY=VALUE`).
pub fn environ_has(pid: u32, entry: &str) -> bool {
    fs::read(format!("/proc/{pid}/environ"))
        .map(|b| b.split(|c| *c == 0).any(|e| e == entry.as_bytes()))
        .unwrap_or(false)
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Every live process id on the machine.
pub fn all() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&p| alive(p))
                .collect()
        })
        .unwrap_or_default()
}

/// Live processes whose command line satisfies `pred`.
pub fn find(pred: impl Fn(&[String]) -> bool) -> Vec<u32> {
    all().into_iter().filter(|&p| pred(&cmdline(p))).collect()
}

/// The parent of `pid`.
pub fn parent(pid: u32) -> Option<u32> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `signal` (a `kill -s` name such as KILL or TERM) to each pid; gone ones are fine.
pub fn signal(pids: &[u32], signal: &str) {
    for p in pids {
        super::cmd::run_quiet("kill", &["-s", signal, &p.to_string()]);
    }
}

/// Waits until none of `pids` is alive; false after `deadline`.
pub fn wait_gone(pids: &[u32], deadline: Duration) -> bool {
    let start = Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Starts `prog args` in a new session that outlives this process (`setsid -f`), stdin closed,
/// output to `log`: a lab daemon must not hold a test runner's pipes open.
pub fn spawn_detached(prog: &str, args: &[String], log: &Path) -> Result<()> {
    let f = fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let status = Command::new("setsid")
        .arg("-f")
        .arg(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
        .with_context(|| format!("cannot start {prog} (setsid from util-linux)"))?;
    if !status.success() {
        bail!("starting {prog} failed ({status})");
    }
    Ok(())
}

//! Running the host tools the lab is made of (`ip`, `nsenter`, `ssh-keygen`, ...) with readable errors.

use anyhow::{Context, Result, bail};
use std::process::{Command, Stdio};

/// Runs `prog args...`, returns its stdout; a non-zero exit is an error carrying stderr.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {prog}"))?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command and ignores its outcome (teardown of objects that may already be gone).
pub fn run_quiet(prog: &str, args: &[&str]) -> bool {
    Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a shell snippet inside every namespace of the process `pid` (a master's sshd, PID 1 there).
pub fn in_ns(pid: u32, script: &str) -> Result<String> {
    let target = pid.to_string();
    run(
        "nsenter",
        &["--target", &target, "--all", "sh", "-c", script],
    )
}

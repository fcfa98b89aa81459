//! Running `tkeha-provisioner` as a black box and reading its `-o json` report.

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One run of the provisioner.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// The parsed `-o json` report (Null when stdout was not JSON).
    pub report: Value,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Wall time from start to exit.
    pub elapsed: Duration,
}

impl Run {
    /// The per-host entry for `ip`.
    pub fn host(&self, ip: &str) -> Option<&Value> {
        self.report["hosts"]
            .as_array()?
            .iter()
            .find(|h| h["host"] == ip)
    }

    /// Every per-host entry of the report.
    pub fn hosts(&self) -> Vec<Value> {
        self.report["hosts"].as_array().cloned().unwrap_or_default()
    }

    /// Everything printed, for assertions on messages.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Path of `tkeha-provisioner` ($TKEHA_PROVISIONER or next to the running executable).
pub fn binary() -> Result<std::path::PathBuf> {
    crate::bins::locate("tkeha-provisioner", "TKEHA_PROVISIONER")
}

/// `tkeha-provisioner ACTION -f MANIFEST -o json EXTRA...`
pub fn run(action: &str, manifest: &Path, extra: &[&str]) -> Result<Run> {
    let bin = binary()?;
    let start = Instant::now();
    let out = Command::new(&bin)
        .arg(action)
        .arg("-f")
        .arg(manifest)
        .args(["-o", "json"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed,
    })
}

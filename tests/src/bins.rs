//! Locating the workspace's binaries (provisioner, plugin, lab tools) from a test or tool process.

use anyhow::{Result, bail};
use std::path::PathBuf;

/// Finds binary `name`: the path in env var `env` if set, else the directory of the running
/// executable or one of its ancestors up to the cargo profile dir (`target/debug` or `target/release`).
pub fn locate(name: &str, env: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "cannot find `{name}` near {} (build it with `cargo build --workspace`, or set {env})",
        exe.display()
    )
}

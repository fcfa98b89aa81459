//! Logging in to a master the way an operator would, with OpenSSH's `ssh` (and `sshpass` for passwords).

use super::Lab;
use super::hosts::HostLab;
use anyhow::{Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};

/// How to authenticate an `ssh` login.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// The lab key.
    Key,
    /// A password, offered as `password` (or keyboard-interactive) auth through sshpass.
    Password(&'a str),
}

impl Lab {
    /// Runs `cmd` on master `i` as `user` over ssh, checking the host key against the lab's known_hosts.
    pub fn ssh(&self, i: usize, user: &str, login: Login<'_>, cmd: &str) -> Result<String> {
        let (ip, key, known) = (
            &self.masters[i].ip,
            self.key_path(),
            self.known_hosts_path(),
        );
        ssh_to(ip, &key, &known, user, login, cmd)
    }
}

impl HostLab {
    /// Runs `cmd` on master `i` as `user` over ssh, checking the host key against the lab's known_hosts.
    pub fn ssh(&self, i: usize, user: &str, login: Login<'_>, cmd: &str) -> Result<String> {
        let (ip, key, known) = (
            &self.masters[i].ip,
            self.key_path(),
            self.known_hosts_path(),
        );
        ssh_to(ip, &key, &known, user, login, cmd)
    }
}

/// Runs `cmd` on `ip` as `user` with OpenSSH, host key checked against `known_hosts`.
pub fn ssh_to(
    ip: &str,
    key: &Path,
    known_hosts: &Path,
    user: &str,
    login: Login<'_>,
    cmd: &str,
) -> Result<String> {
    {
        let known = format!("UserKnownHostsFile={}", known_hosts.display());
        let mut c = match login {
            Login::Key => {
                let mut c = Command::new("ssh");
                c.arg("-i")
                    .arg(key)
                    .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]);
                c
            }
            Login::Password(pw) => {
                let mut c = Command::new("sshpass");
                c.env("SSHPASS", pw)
                    .args(["-e", "ssh", "-o", "PubkeyAuthentication=no"]);
                c
            }
        };
        c.args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &known,
            "-o",
            "ConnectTimeout=5",
        ])
        .args(["-o", "LogLevel=ERROR", "-p", "22"])
        .arg(format!("{user}@{ip}"))
        .arg(cmd)
        .stdin(Stdio::null());
        let out = c.output()?;
        if !out.status.success() {
            bail!(
                "ssh {user}@{ip} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

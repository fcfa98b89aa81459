//! The lab's package mirror, as on an air-gapped site: keepalived and what it needs beyond the
//! base (resolved by apt against the base's own dpkg status, Recommends included as apt installs
//! them by default), downloaded once on this machine with `apt-get download`, indexed with
//! `dpkg-scanpackages`, cached by its exact package list, and served over HTTP on the lab bridge
//! (`http://10.77.N.1/`) as the masters' only apt source.
//!
//! The repository is not signed, so masters name it `[trusted=yes]`. A real site signs its mirror
//! and installs its key on the hosts; `trusted=yes` only affects this one lab source.

use super::cmd::run;
use super::image::{self, CacheLock, Image};
use super::procs;
use anyhow::{Context, Result, bail};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The packages the lab mirror offers on top of the base (with everything they need): keepalived,
/// and python3-apt, which Ansible's apt module installs on first use (the bench's comparison). A
/// real site mirror carries the whole distribution; these are what the lab's hosts ask for.
pub const ROOT_PACKAGES: &[&str] = &["keepalived", "python3-apt"];
/// The mirror's TCP port on the bridge address.
pub const PORT: u16 = 80;

/// A cached, indexed set of .deb files.
#[derive(Debug, Clone)]
pub struct MirrorContent {
    /// `mirror-KEY`, KEY from the package list.
    pub name: String,
    /// The flat repository: the .debs and `Packages`.
    pub dir: PathBuf,
    /// `name=version` of every package in it.
    pub packages: Vec<String>,
}

/// `name=version` of what `apt-get install ROOT_PACKAGES` would install on `base` (from the `Inst`
/// lines of a simulation run by this machine's apt against the base's dpkg status).
pub fn resolve(base: &Image) -> Result<Vec<String>> {
    let status = base.root.join("var/lib/dpkg/status");
    let status = format!("Dir::State::status={}", status.display());
    let mut args = vec![
        "-s",
        "-q",
        "-o",
        &status,
        "-o",
        "APT::Install-Recommends=true",
        "install",
    ];
    args.extend_from_slice(ROOT_PACKAGES);
    let out = run("apt-get", &args)
    .context(
        "resolving keepalived's dependencies with this machine's apt (run `apt-get update` or `bash scripts/deps.sh`)",
    )?;
    let mut pkgs = parse_inst_lines(&out);
    pkgs.sort();
    if !pkgs.iter().any(|p| p.starts_with("keepalived=")) {
        bail!("apt would not install keepalived on the base:\n{out}");
    }
    Ok(pkgs)
}

/// `Inst NAME [OLD] (VERSION ...)` lines of `apt-get -s` as `NAME=VERSION`.
pub fn parse_inst_lines(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let name = rest.split_whitespace().next()?;
            let version = rest.split_once('(')?.1.split_whitespace().next()?;
            Some(format!("{name}={version}"))
        })
        .collect()
}

/// The mirror for `base`, downloaded and indexed once per package list.
pub fn content(base: &Image) -> Result<MirrorContent> {
    let packages = resolve(base)?;
    let key = image::sha256_hex(format!("{}\n", packages.join("\n")).as_bytes())?;
    let cache = image::cache_dir();
    let name = format!("mirror-{}", &key[..16]);
    let dir = cache.join(&name);
    let content = MirrorContent {
        name: name.clone(),
        dir: dir.clone(),
        packages: packages.clone(),
    };
    if dir.join("ready").exists() {
        return Ok(content);
    }
    let _lock = CacheLock::take(&cache)?;
    if dir.join("ready").exists() {
        return Ok(content);
    }
    eprintln!(
        "tkeha-lab: downloading {} packages for the lab mirror {name}",
        packages.len()
    );
    let building = cache.join(format!("{name}.building"));
    image::remove_partial(&building)?;
    fs::create_dir_all(&building)?;
    image::run_logged(
        Command::new("apt-get")
            .current_dir(&building)
            .args(["download", "-q", "-o", "APT::Sandbox::User=root"])
            .args(&packages),
        &building.join("download.log"),
        "apt-get download",
    )?;
    let index = Command::new("dpkg-scanpackages")
        .current_dir(&building)
        .args(["--multiversion", ".", "/dev/null"])
        .output()
        .context("cannot run dpkg-scanpackages (dpkg-dev; run `bash scripts/deps.sh`)")?;
    if !index.status.success() || index.stdout.is_empty() {
        bail!(
            "dpkg-scanpackages failed: {}",
            String::from_utf8_lossy(&index.stderr)
        );
    }
    fs::write(building.join("Packages"), &index.stdout)?;
    let _ = fs::remove_file(building.join("download.log"));
    fs::write(
        building.join("PACKAGES"),
        format!("{}\n", packages.join("\n")),
    )?;
    fs::write(building.join("ready"), "")?;
    fs::rename(&building, &dir)?;
    Ok(content)
}

/// The line of a master's sources.list that names the lab mirror on bridge address `gateway`.
pub fn sources_list(gateway: &str) -> String {
    format!(
        "# The site's package mirror (tkeha lab), the only package source of this host.\n\
         # Unsigned lab repository: trusted=yes applies to this source only; a real site signs its\n\
         # mirror and installs the key on its hosts.\n\
         deb [trusted=yes] http://{gateway}:{PORT}/ ./\n"
    )
}

fn is_server(cmd: &[String], gateway: &str) -> bool {
    cmd.iter().any(|a| a == "http.server")
        && cmd.windows(2).any(|w| w[0] == "--bind" && w[1] == gateway)
}

/// Serves `content` on `gateway:80` (python3's http.server, detached) until [`stop`].
pub fn serve(content: &MirrorContent, gateway: &str, log: &Path) -> Result<()> {
    let args: Vec<String> = [
        "-m",
        "http.server",
        "--bind",
        gateway,
        "--directory",
        &content.dir.to_string_lossy(),
        &PORT.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    procs::spawn_detached("python3", &args, log)?;
    let addr: SocketAddr = format!("{gateway}:{PORT}").parse()?;
    if super::probe::wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        super::probe::tcp_open(addr, Duration::from_millis(200)).then_some(())
    })
    .is_none()
    {
        bail!(
            "the lab mirror did not start on {addr}: {}",
            image::tail(log, 5)
        );
    }
    Ok(())
}

/// Stops the mirror server of bridge address `gateway` (if any).
pub fn stop(gateway: &str) {
    let pids = procs::find(|c| is_server(c, gateway));
    procs::signal(&pids, "TERM");
    if !procs::wait_gone(&pids, Duration::from_secs(2)) {
        procs::signal(&pids, "KILL");
    }
}

/// The iptables comment that marks the lab's rules of slot `slot`.
pub fn rule_tag(slot: u16) -> String {
    format!("tkeha-lab-slot{slot}")
}

fn block_rule(slot: u16, master_ip: &str, gateway: &str) -> Vec<String> {
    [
        "INPUT",
        "-s",
        master_ip,
        "-d",
        gateway,
        "-p",
        "tcp",
        "--dport",
        &PORT.to_string(),
        "-m",
        "comment",
        "--comment",
        &rule_tag(slot),
        "-j",
        "REJECT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Makes the mirror unreachable (`on`) for one master, or reachable again: the host refuses that
/// master's connections to the mirror, as a site firewall or a dead route would.
pub fn set_blocked(slot: u16, master_ip: &str, gateway: &str, on: bool) -> Result<()> {
    let rule = block_rule(slot, master_ip, gateway);
    let mut check: Vec<&str> = vec!["-w", "5", "-C"];
    check.extend(rule.iter().map(String::as_str));
    let present = super::cmd::run_quiet("iptables", &check);
    if present == on {
        return Ok(());
    }
    let mut args: Vec<&str> = vec!["-w", "5", if on { "-I" } else { "-D" }];
    args.extend(rule.iter().map(String::as_str));
    run("iptables", &args).context("changing the lab mirror's firewall rule")?;
    Ok(())
}

/// Removes every firewall rule of slot `slot`.
pub fn remove_rules(slot: u16) {
    let tag = rule_tag(slot);
    let listing = run("iptables", &["-w", "5", "-S", "INPUT"]).unwrap_or_default();
    for line in listing.lines() {
        if !line.contains(&format!("--comment {tag} ")) {
            continue;
        }
        let Some(spec) = line.strip_prefix("-A ") else {
            continue;
        };
        let mut args = vec!["-w", "5", "-D"];
        args.extend(spec.split_whitespace());
        super::cmd::run_quiet("iptables", &args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inst_lines_give_name_and_candidate_version() {
        let out = "NOTE: simulation\n\
                   Inst perl-base [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])\n\
                   Inst keepalived (1:2.2.7-1+b2 Debian:12.15/oldstable [amd64])\n\
                   Conf keepalived (1:2.2.7-1+b2 Debian:12.15/oldstable [amd64])\n";
        assert_eq!(
            parse_inst_lines(out),
            vec!["perl-base=5.36.0-7+deb12u4", "keepalived=1:2.2.7-1+b2"]
        );
    }

    #[test]
    fn the_source_is_trusted_only_for_the_lab_repository() {
        let s = sources_list("10.77.5.1");
        assert!(
            s.contains("deb [trusted=yes] http://10.77.5.1:80/ ./\n"),
            "{s}"
        );
    }

    #[test]
    fn the_server_is_recognised_by_its_bind_address_only() {
        let c: Vec<String> = ["python3", "-m", "http.server", "--bind", "10.77.5.1", "80"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_server(&c, "10.77.5.1"));
        assert!(!is_server(&c, "10.77.51.1"));
    }
}

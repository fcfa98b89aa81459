//! tkeha-hosts-provision-bench: provisioning booted Debian 12 masters (1, 3 and 12 by default).
//! Three columns per size, each on freshly booted masters with the stand-in apiservers running:
//! `tkeha-provisioner apply` installing keepalived through apt from the lab mirror; the same apply
//! with keepalived preinstalled (what tkeha adds to the package install); and an Ansible playbook
//! (scripts/ansible/keepalived.yml) doing the same fresh install on the same kind of hosts.
//! Time = from the start of the run until `GET http://VIP:6443/` answers from this machine, and
//! until the command exits. What tkeha adds = apply's time with keepalived preinstalled minus
//! VRRP's own master-down wait. Prints a Markdown section for BENCHMARKS.md.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tkeha_e2e::bench::{max, median, verdict};
use tkeha_e2e::lab::hosts::{HostLab, HostLabConfig};
use tkeha_e2e::lab::view::LabView;
use tkeha_e2e::lab::{ManifestOptions, probe};
use tkeha_e2e::provisioner;

fn main() {
    if let Err(e) = run() {
        eprintln!("tkeha-hosts-provision-bench: {e:#}");
        std::process::exit(1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    /// tkeha apply, keepalived installed by apt from the mirror.
    Install,
    /// tkeha apply, keepalived already installed.
    Preinstalled,
    /// ansible-playbook, keepalived installed by apt from the mirror.
    Ansible,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Install => "tkeha, apt install",
            Column::Preinstalled => "tkeha, preinstalled",
            Column::Ansible => "Ansible, apt install",
        }
    }
}

#[derive(Debug, Clone)]
struct Sample {
    /// Run start until the VIP answers HTTP.
    answer: f64,
    /// Run start until the command exits.
    exit: f64,
    /// Run start until keepalived is active on the last master (from systemd's timestamps).
    all_active: f64,
    /// VRRP's own wait: from keepalived becoming active on the master that took the VIP until
    /// it entered MASTER state and added the VIP (the master-down interval).
    vrrp_wait: f64,
}

impl Sample {
    /// What tkeha adds: the command's time minus VRRP's own wait.
    fn added(&self) -> f64 {
        self.exit - self.vrrp_wait
    }
}

fn ansible_playbook() -> PathBuf {
    std::env::var_os("ANSIBLE_PLAYBOOK")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("ansible-playbook"))
}

fn playbook_dir() -> PathBuf {
    std::env::var_os("TKEHA_ANSIBLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("scripts/ansible"))
}

/// An inventory equivalent to the manifest the provisioner gets: same VIP, vrid, priorities.
fn inventory(lab: &HostLab) -> Result<PathBuf> {
    let mut text = String::from("[masters]\n");
    for (i, m) in lab.masters.iter().enumerate() {
        writeln!(text, "{} priority={}", m.ip, 254 - i)?;
    }
    let vip = lab.vip();
    let last: u16 = vip.rsplit('.').next().unwrap_or("0").parse()?;
    writeln!(
        text,
        "\n[masters:vars]\nansible_user=root\nansible_ssh_private_key_file={}\n\
         ansible_python_interpreter=/usr/bin/python3\nvip={vip}\nprefix=24\nvrid={}\n\
         auth_pass=AnsB3nch\niface=host0",
        lab.key_path().display(),
        last % 255 + 1
    )?;
    let path = lab.dir.join("inventory.ini");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn spawn(column: Column, lab: &HostLab) -> Result<Child> {
    let out = Stdio::piped();
    let err = Stdio::piped();
    match column {
        Column::Install | Column::Preinstalled => {
            let m = lab.write_manifest("cluster.json", &ManifestOptions::default(), |_| {})?;
            Ok(Command::new(provisioner::binary()?)
                .args(["apply", "-o", "json", "-f"])
                .arg(&m)
                .arg("--known-hosts")
                .arg(lab.known_hosts_path())
                .stdout(out)
                .stderr(err)
                .spawn()?)
        }
        Column::Ansible => {
            let inv = inventory(lab)?;
            let ssh_args = format!(
                "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s",
                lab.known_hosts_path().display()
            );
            Ok(Command::new(ansible_playbook())
                .arg("-i")
                .arg(&inv)
                .arg(playbook_dir().join("keepalived.yml"))
                .args(["--forks", &lab.masters.len().to_string()])
                .env("ANSIBLE_SSH_ARGS", ssh_args)
                .env("ANSIBLE_PIPELINING", "1")
                .env("ANSIBLE_HOST_KEY_CHECKING", "1")
                .env("ANSIBLE_LOCAL_TEMP", lab.dir.join("ansible-tmp"))
                .env("ANSIBLE_NOCOLOR", "1")
                .stdout(out)
                .stderr(err)
                .spawn()?)
        }
    }
}

/// This machine's CLOCK_MONOTONIC in µs: the clock systemd's `...Monotonic` timestamps on the
/// masters use (containers share the kernel's). Read through python3 (a lab requirement); the
/// reading is taken a few milliseconds before the call returns.
fn monotonic_us() -> Result<u64> {
    let out = Command::new("python3")
        .args(["-c", "import time; print(int(time.monotonic() * 1e6))"])
        .output()
        .context("python3 for the monotonic clock")?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("python3 printed no monotonic time")
}

fn one(masters: usize, column: Column) -> Result<Sample> {
    let lab = HostLab::up(HostLabConfig {
        masters,
        keepalived_preinstalled: column == Column::Preinstalled,
        ..HostLabConfig::default()
    })?;
    // Stand-ins run before the run (no kube-apiserver.yaml: health is "bootstrap").
    for i in 0..masters {
        lab.start_apiserver(i)?;
    }
    let mono_start = monotonic_us()?;
    let start = Instant::now();
    let mut child = spawn(column, &lab)?;
    let mut exit = None;
    let answered = probe::wait_for(Duration::from_secs(600), Duration::from_millis(20), || {
        if lab.get_vip(6443, Duration::from_millis(100)).is_some() {
            return Some(Ok(start.elapsed()));
        }
        match child.try_wait() {
            Ok(Some(status)) if !status.success() => Some(Err(status)),
            Ok(Some(_)) => {
                exit.get_or_insert_with(|| start.elapsed());
                None
            }
            _ => None,
        }
    });
    let out = child.wait_with_output()?;
    let exit = exit.unwrap_or_else(|| start.elapsed());
    let answer = match answered {
        Some(Ok(a)) if out.status.success() => a,
        _ => bail!(
            "{} on {masters} masters failed or the VIP never answered ({}):\n{}{}",
            column.name(),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 40),
            tail(&String::from_utf8_lossy(&out.stderr), 20)
        ),
    };
    let mut last = 0.0f64;
    for i in 0..masters {
        let active = lab.active_since_us(i, "keepalived")?;
        if active == 0 {
            bail!("keepalived never became active on {}", lab.masters[i].name);
        }
        last = last.max(active.saturating_sub(mono_start) as f64 / 1e6);
    }
    let holder = match lab.holders().as_slice() {
        [h] => *h,
        other => bail!("after the run the VIP holders are {other:?}, not one master"),
    };
    // Both on the holder's own clock, to the microsecond: systemd's "active" and keepalived's
    // "Entering MASTER STATE" (when it adds the VIP).
    let active_us = lab.active_since_us(holder, "keepalived")?;
    let master_us = lab
        .journal_first_us(holder, "keepalived", "Entering MASTER STATE")?
        .with_context(|| {
            format!(
                "no \"Entering MASTER STATE\" in keepalived's journal on {}",
                lab.masters[holder].name
            )
        })?;
    Ok(Sample {
        answer: answer.as_secs_f64(),
        exit: exit.as_secs_f64(),
        all_active: last,
        vrrp_wait: master_us.saturating_sub(active_us) as f64 / 1e6,
    })
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn run() -> Result<()> {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1 3 12".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    let columns = [Column::Install, Column::Preinstalled, Column::Ansible];
    if !Path::new(&playbook_dir().join("keepalived.yml")).exists() {
        bail!(
            "no playbook at {}/keepalived.yml (set TKEHA_ANSIBLE_DIR)",
            playbook_dir().display()
        );
    }
    let mut rows = Vec::new();
    let mut faster_everywhere = true;
    let mut added_12 = None;
    let mut added_rows = Vec::new();
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for &masters in &sizes {
        let mut med = Vec::new();
        let mut cells = Vec::new();
        for column in columns {
            let mut answer = Vec::new();
            let mut exit = Vec::new();
            let mut active = Vec::new();
            let mut added = Vec::new();
            let mut vrrp = Vec::new();
            for r in 0..runs {
                let s = one(masters, column)?;
                eprintln!(
                    "masters={masters} {} run={}: VIP answers {:.2}s, exit {:.2}s, keepalived active everywhere {:.2}s, VRRP wait {:.2}s",
                    column.name(),
                    r + 1,
                    s.answer,
                    s.exit,
                    s.all_active,
                    s.vrrp_wait
                );
                answer.push(s.answer);
                exit.push(s.exit);
                active.push(s.all_active);
                added.push(s.added());
                vrrp.push(s.vrrp_wait);
            }
            med.push(median(&answer));
            cells.push(format!(
                "{:.1} s (max {:.1}) / {:.1} s / {:.1} s",
                median(&answer),
                max(&answer),
                median(&exit),
                median(&active)
            ));
            if column == Column::Preinstalled {
                added_rows.push(format!(
                    "| {masters} | {:.2} s (max {:.2}) | {:.2} s | {:.2} s | {:.2} s |",
                    median(&added),
                    max(&added),
                    median(&exit),
                    median(&vrrp),
                    median(&active)
                ));
                if masters == 12 {
                    added_12 = Some((median(&added), max(&added)));
                }
            }
        }
        faster_everywhere &= med[0] < med[2];
        rows.push(format!("| {masters} | {} |", cells.join(" | ")));
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("### Provisioning booted Debian 12 masters (apt from the lab mirror, systemd)\n");
    println!(
        "Command: `scripts/bench-hosts-provision.sh` (runs `tkeha-hosts-provision-bench`, RUNS={runs}, sizes {sizes:?}). Each"
    );
    println!(
        "run boots fresh masters (`systemd-nspawn --boot` over the cached base; keepalived not installed, or"
    );
    println!(
        "installed but unconfigured for the preinstalled column), starts the stand-in apiserver units, then"
    );
    println!(
        "times the run. Cell: VIP answers `GET http://VIP:6443/` from this machine (median, max) / the"
    );
    println!(
        "command exits / keepalived active on the last master (systemd's ActiveEnterTimestamp), all from"
    );
    println!(
        "the start of the run. Load average at the start: {}; at the end: {}.\n",
        load_start.trim(),
        load.trim()
    );
    println!(
        "| masters | {} | {} | {} |",
        columns[0].name(),
        columns[1].name(),
        columns[2].name()
    );
    println!("|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!();
    println!(
        "- tkeha's fresh install faster than the Ansible playbook at every size: {}",
        verdict(faster_everywhere)
    );
    println!(
        "- what tkeha adds to the package install = `apply`'s time with keepalived preinstalled (start to exit)"
    );
    println!(
        "  minus VRRP's own wait (on the master that took the VIP, from its keepalived becoming active to its"
    );
    println!(
        "  \"Entering MASTER STATE\": the master-down interval, 3 x advert_int plus skew, which any keepalived pays). It counts"
    );
    println!(
        "  everything tkeha does: connect, probe, render, upload, `keepalived -t`, start on every master, the"
    );
    println!(
        "  watch until exactly one master holds the VIP steadily, the TCP check of VIP:6443, and the exit."
    );
    println!(
        "  (The earlier figure, start to keepalived active on every master, left out tkeha's own confirmation.)\n"
    );
    println!(
        "| masters | what tkeha adds (median, max) | apply, start to exit | VRRP's wait | keepalived active everywhere |"
    );
    println!("|---|---|---|---|---|");
    for r in &added_rows {
        println!("{r}");
    }
    println!();
    match added_12 {
        Some((med, mx)) => println!(
            "- what tkeha adds, 12 masters <= 2 s: {} ({med:.2} s median, max {mx:.2} s)",
            verdict(med <= 2.0)
        ),
        None => println!("- what tkeha adds, 12 masters: not measured in this run (SIZES)"),
    }
    println!(
        "- the Ansible playbook (scripts/ansible/keepalived.yml) runs with --forks = masters, pipelining,"
    );
    println!(
        "  no fact gathering and persistent SSH connections; its apt module installs python3-apt from the"
    );
    println!("  mirror on first use, which is part of what it costs on a fresh host.");
    Ok(())
}

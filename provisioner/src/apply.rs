//! `apply`: preflight everything, change nothing if any host fails; else install, render, validate, move into place,
//! start or reload keepalived (or add the hairpin rule), and wait until exactly one master holds the VIP.
//!
//! Success criterion for TKE HA: exactly one master holds the VIP, steadily for 300 ms, and, if an
//! apiserver is expected (a kube-apiserver manifest exists or something listens on a master's
//! :6443), `VIP:6443` accepts a TCP connection from this host. On a fresh machine set with no
//! apiserver yet, the single holder alone is the criterion (the VIP must exist before kubeadm runs).

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::check;
use crate::fleet::{self, Host, Options, SCRIPT_TIMEOUT};
use crate::keepalived::{self, CHECK_SCRIPT_PATH, CONF_PATH, ConfParams};
use crate::manifest::{Mode, Plan};
use crate::probe::{PATH_EXPORT, find_interface};
use crate::report::{Report, VrrpState};
use crate::service;
use crate::thirdparty;
use crate::vip;

/// The files one master should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub conf: String,
    pub check: String,
}

/// The cluster's auth_pass: reused from any master's current (tkeha) config, else fresh.
pub fn cluster_auth_pass(hosts: &[Host<'_>]) -> String {
    hosts
        .iter()
        .filter_map(|h| h.probe.as_ref())
        .filter_map(|p| p.file(CONF_PATH))
        .filter(|c| keepalived::is_ours(c))
        .find_map(keepalived::parse_auth_pass)
        .unwrap_or_else(keepalived::random_auth_pass)
}

/// Render the files for one probed host.
pub fn desired_for(plan: &Plan, vrid: u8, auth_pass: &str, h: &Host<'_>) -> Option<Desired> {
    let p = h.probe.as_ref()?;
    let a = find_interface(&p.addrs, h.machine.ip)?;
    let params = ConfParams {
        router_id: keepalived::router_id(&p.hostname, h.machine.ip),
        interface: a.iface.clone(),
        vrid,
        priority: keepalived::priority_for(h.index),
        src_ip: h.machine.ip,
        peers: plan
            .machines
            .iter()
            .filter(|m| m.ip != h.machine.ip)
            .map(|m| m.ip)
            .collect(),
        auth_pass: auth_pass.to_string(),
        vip: plan.vip,
        prefix_len: a.net.prefix_len(),
    };
    Some(Desired {
        conf: keepalived::render_conf(&params),
        check: keepalived::check_script(),
    })
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The apply script for one host: only the steps needed (install, write changed files, test, start/reload).
pub fn apply_script(
    d: &Desired,
    write_conf: bool,
    write_check: bool,
    install: Option<&str>,
    systemd: bool,
) -> String {
    let mut s = String::from("set -e\numask 022\n");
    s.push_str(PATH_EXPORT);
    if let Some(pm) = install {
        let cmd = match pm {
            "apt-get" => {
                "{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived; }; }"
            }
            "dnf" => "dnf install -y keepalived",
            "yum" => "yum install -y keepalived",
            _ => "zypper -n install keepalived",
        };
        s.push_str(&format!(
            "if ! command -v keepalived >/dev/null 2>&1; then\n  if ! {cmd} >/tmp/tkeha-keepalived-install.log 2>&1; then tail -n 20 /tmp/tkeha-keepalived-install.log >&2; echo \"@@install_failed=1\"; exit 4; fi\n  echo \"@@installed=1\"\nfi\n"
        ));
    }
    s.push_str("mkdir -p /etc/keepalived\n");
    if write_check {
        s.push_str(&format!(
            "printf '%s' '{}' | base64 -d > {CHECK_SCRIPT_PATH}.tkeha-new\nchmod 0755 {CHECK_SCRIPT_PATH}.tkeha-new\nchown root:root {CHECK_SCRIPT_PATH}.tkeha-new\nmv -f {CHECK_SCRIPT_PATH}.tkeha-new {CHECK_SCRIPT_PATH}\n",
            b64(&d.check)
        ));
    }
    if write_conf {
        s.push_str(&format!(
            "printf '%s' '{}' | base64 -d > {CONF_PATH}.tkeha-new\nchmod 0644 {CONF_PATH}.tkeha-new\n\
             if ! out=$(keepalived -t -f {CONF_PATH}.tkeha-new 2>&1); then echo \"$out\" >&2; rm -f {CONF_PATH}.tkeha-new; echo \"@@test_failed=1\"; exit 5; fi\n\
             mv -f {CONF_PATH}.tkeha-new {CONF_PATH}\n",
            b64(&d.conf)
        ));
    }
    s.push_str(&service::start_or_reload(systemd));
    s.push_str("echo \"@@end=1\"\n");
    s
}

/// Install or update keepalived on every master (TKE HA) or the hairpin rule (third-party HA).
pub fn apply(plan: &Plan, opts: &Options) -> Report {
    let t = Instant::now();
    let mut report = Report::new("apply", plan.mode.name(), &plan.vip.to_string());
    let (mut hosts, tokens) = check::preflight(plan, opts, &mut report);
    let all_ok = |hosts: &[Host<'_>], report: &Report| {
        report.errors.is_empty() && hosts.iter().all(|h| h.report.ok)
    };
    match plan.mode {
        Mode::ThirdParty { vport } => {
            thirdparty::verify_binding(plan, vport, &hosts, &tokens, &mut report);
            if !all_ok(&hosts, &report) {
                report.fail("preflight failed: nothing was changed on any master");
            }
            thirdparty::finish(plan, vport, &mut hosts, opts, &mut report, true);
        }
        Mode::Tke { vrid } => {
            if all_ok(&hosts, &report) {
                apply_keepalived(plan, vrid, &mut hosts, opts, &mut report, t);
            } else {
                report.fail("preflight failed: nothing was changed on any master");
            }
        }
    }
    for h in hosts.iter_mut() {
        h.sync_round_trips();
    }
    report.hosts = hosts.into_iter().map(|h| h.report).collect();
    report.elapsed_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.finish();
    report
}

fn apply_keepalived(
    plan: &Plan,
    vrid: u8,
    hosts: &mut [Host<'_>],
    opts: &Options,
    report: &mut Report,
    t: Instant,
) {
    let auth_pass = cluster_auth_pass(hosts);
    fleet::each(hosts, opts, "configuring keepalived", |h| {
        let d =
            desired_for(plan, vrid, &auth_pass, h).ok_or("no interface holds the machine IP")?;
        let p = h.probe.as_ref().ok_or("not probed")?;
        let write_conf = p.file(CONF_PATH) != Some(d.conf.as_str());
        let write_check = p.file(CHECK_SCRIPT_PATH) != Some(d.check.as_str());
        let install = p.keepalived.is_none();
        if !write_conf && !write_check && !install && p.running {
            return Ok(());
        }
        let script = apply_script(
            &d,
            write_conf,
            write_check,
            install.then_some(p.package_manager.as_deref().unwrap_or("apt-get")),
            p.systemd,
        );
        let conn = h.conn.as_mut().ok_or("no session")?;
        let out = conn
            .run("apply", &script, SCRIPT_TIMEOUT)
            .map_err(|e| e.to_string())?;
        h.report.changed = write_conf || write_check || out.stdout.contains("@@installed=1");
        h.report.restarted = out.stdout.contains("@@action=");
        if out.stdout.contains("@@test_failed=1") {
            return Err(format!(
                "keepalived -t rejected the rendered config (nothing moved into place): {}",
                out.stderr.trim()
            ));
        }
        if out.stdout.contains("@@install_failed=1") {
            return Err(format!(
                "installing keepalived failed: {}",
                out.stderr.trim()
            ));
        }
        if out.status != 0 || !out.stdout.contains("@@end=1") {
            return Err(format!(
                "the apply script failed (exit {}): {}",
                out.status,
                out.stderr.trim()
            ));
        }
        if install {
            h.report.notes.push("keepalived installed".into());
        }
        Ok(())
    });
    if !hosts.iter().all(|h| h.report.ok) {
        report.fail("keepalived could not be configured on every master");
        return;
    }
    let remaining = opts
        .wait_timeout
        .saturating_sub(t.elapsed())
        .max(Duration::from_secs(5));
    let wait_start = Instant::now();
    match vip::wait_single_holder(hosts, plan.vip, remaining, Duration::from_millis(300)) {
        Ok(i) => {
            report.vip_holder = hosts.get(i).map(|h| h.report.host.clone());
            for h in hosts.iter_mut() {
                h.report.holds_vip = h.index == i;
                h.report.state = if h.index == i {
                    VrrpState::Master
                } else if h.usable() {
                    VrrpState::Backup
                } else {
                    VrrpState::Unknown
                };
            }
            let expected = hosts
                .iter()
                .filter_map(|h| h.probe.as_ref())
                .any(|p| p.apiserver_manifest || p.apiserver_listening);
            if expected && !vip::wait_tcp(plan.vip, 6443, wait_start + remaining) {
                report.fail(format!(
                    "{}:6443 does not answer although an apiserver is expected on the masters",
                    plan.vip
                ));
            }
        }
        Err(latest) => {
            let holders: Vec<String> = hosts
                .iter()
                .filter(|h| latest.get(h.index).copied().flatten() == Some(true))
                .map(|h| h.report.host.clone())
                .collect();
            report.split_brain = holders.len() > 1;
            report.fail(format!(
                "after {} s not exactly one master holds VIP {} (holders: [{}]); check that VRRP (IP protocol 112) passes between the masters",
                remaining.as_secs(),
                plan.vip,
                holders.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired() -> Desired {
        Desired {
            conf: "# managed by tkeha-provisioner\nglobal_defs {\n}\n".into(),
            check: "#!/bin/bash\nexit 0\n".into(),
        }
    }

    #[test]
    fn script_validates_before_moving() {
        let s = apply_script(&desired(), true, true, None, false);
        let test = s
            .find("keepalived -t -f /etc/keepalived/keepalived.conf.tkeha-new")
            .unwrap_or(usize::MAX);
        let mv = s
            .find("mv -f /etc/keepalived/keepalived.conf.tkeha-new /etc/keepalived/keepalived.conf")
            .unwrap_or(0);
        assert!(test < mv, "{s}");
        // The check script is in place before the config test (keepalived -t checks the script path).
        assert!(
            s.find("mv -f /etc/keepalived/check_apiserver.sh.tkeha-new")
                .unwrap_or(usize::MAX)
                < test
        );
        assert!(!s.contains("apt-get"));
    }

    #[test]
    fn unchanged_files_are_not_written() {
        let s = apply_script(&desired(), false, false, None, false);
        assert!(!s.contains("base64 -d"));
        assert!(s.contains("keepalived -D"));
    }

    #[test]
    fn install_uses_the_package_manager() {
        assert!(
            apply_script(&desired(), true, true, Some("dnf"), true)
                .contains("dnf install -y keepalived")
        );
        assert!(
            apply_script(&desired(), true, true, Some("apt-get"), true)
                .contains("apt-get install -y -q keepalived")
        );
    }
}

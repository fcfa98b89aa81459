//! The provisioner's commands with masters behind a proxy (`machines[].proxy`), on the proxy lab:
//! masters on a network this host cannot reach, a real jump host (OpenSSH) and a real SOCKS5
//! server (microsocks). `check`, `apply`, `status`, `drill` and `uninstall` work through each
//! proxy type, with one jump login per command for all masters; every failure names its hop and
//! changes nothing; `@revoked` and `@cert-authority` are honoured for masters and jump host alike.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tkeha_e2e::lab::manifest::b64;
use tkeha_e2e::lab::proxy::{JUMP_USER, SOCKS_USER};
use tkeha_e2e::lab::{Lab, LabConfig, LabProxy, ManifestOptions};
use tkeha_e2e::provisioner::{self, Run};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, provision, provision_ok, single_holder};

const PREFLIGHT_FAILED: &str = "preflight failed: nothing was changed on any master";
/// Long enough for a proxy's own connect to a downed master to fail (ARP gives up after ~3 s).
const DOWN_CONNECT_TIMEOUT: &str = "15";

fn proxy_lab() -> Lab {
    lab(LabConfig {
        proxies: true,
        ..LabConfig::masters(3)
    })
}

fn through(kind: LabProxy) -> ManifestOptions {
    ManifestOptions {
        proxy: Some(kind),
        ..ManifestOptions::default()
    }
}

/// Runs the provisioner with `known_hosts` instead of the lab's.
fn run_with(action: &str, m: &Path, known_hosts: &Path, extra: &[&str]) -> Run {
    let kh = known_hosts.to_string_lossy();
    let mut args = vec!["--known-hosts", kh.as_ref()];
    args.extend_from_slice(extra);
    provisioner::run(action, m, &args).unwrap()
}

/// No master was changed: no keepalived config, no keepalived running.
fn nothing_changed(lab: &Lab) {
    for i in 0..lab.masters.len() {
        assert!(
            !lab.etc(i).join("keepalived/keepalived.conf").exists(),
            "master {i} got a keepalived.conf"
        );
        assert!(
            lab.pids_named(i, "keepalived").is_empty(),
            "keepalived runs on master {i}"
        );
    }
    assert!(lab.holders().is_empty(), "the VIP is held");
}

/// Every host failed with an error starting with `prefix`, and nothing was changed.
fn every_host_refused(r: &Run, prefix: &str) {
    assert_eq!(r.code, 1, "{}", r.all_output());
    for h in r.hosts() {
        let e = h["error"].as_str().unwrap_or_default();
        assert!(e.starts_with(prefix), "want {prefix:?}..., got {h}");
    }
}

fn host_error(r: &Run, ip: &str) -> String {
    r.host(ip).unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The lab's known_hosts line for `ip` (bare, port 22): (type, base64 key).
fn key_of(lab: &Lab, ip: &str) -> (String, String) {
    let text = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{ip} ")))
        .unwrap_or_else(|| panic!("no known_hosts line for {ip}: {text}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[1].to_string(), f[2].to_string())
}

/// A known_hosts file in the lab dir: the lab's lines, minus those starting with `drop`, plus `extra`.
fn known_hosts_variant(lab: &Lab, name: &str, drop: Option<&str>, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    let mut out: String = text
        .lines()
        .filter(|l| drop.is_none_or(|d| !l.starts_with(&format!("{d} "))))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(extra);
    let path = lab.dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn jump_stats(r: &Run) -> Value {
    r.report["jump_servers"].clone()
}

/// check, apply, status, drill and uninstall through one proxy type, end to end.
fn every_command_through(kind: LabProxy) {
    let lab = proxy_lab();
    // This host cannot reach the masters: only the proxies can.
    for i in 0..3 {
        let addr = lab.master_addr(i).unwrap();
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
            "{addr} answers directly"
        );
    }
    // Stand-in apiservers: `apply` and `drill` then probe VIP:6443 from this host, through the proxy.
    for i in 0..3 {
        lab.start_apiserver(i).unwrap();
    }
    let m = manifest(&lab, "cluster.json", &through(kind), |_| {});
    let via = match kind {
        LabProxy::Jump => format!("jump server {}", lab.jump_addr().unwrap()),
        LabProxy::Socks5 => format!("SOCKS5 proxy {}", lab.socks_addr().unwrap()),
        LabProxy::Socks5Login => format!("SOCKS5 proxy {}", lab.socks_auth_addr().unwrap()),
    };
    let jump = kind == LabProxy::Jump;
    let connections = || lab.jump_connections().unwrap();
    let before = connections();
    let one_login_per_command = |r: &Run, before: usize| {
        if jump {
            assert_eq!(jump_stats(r)[0]["logins"], 1, "{}", r.stdout);
            assert_eq!(connections() - before, 1, "{}", lab.jump_log().unwrap());
        } else {
            assert!(r.report.get("jump_servers").is_none(), "{}", r.stdout);
            assert_eq!(connections(), 0);
        }
    };

    let check = provision_ok(&lab, "check", &m, &[]);
    for h in check.hosts() {
        assert_eq!(h["via"], via.as_str(), "{h}");
    }
    one_login_per_command(&check, before);

    let before = connections();
    let apply = provision_ok(&lab, "apply", &m, &[]);
    one_login_per_command(&apply, before);
    if jump {
        // Three SSH sessions and the VIP probes all went through the one session.
        assert!(
            jump_stats(&apply)[0]["tunnels"].as_u64().unwrap() >= 4,
            "{}",
            apply.stdout
        );
    }
    let holder = single_holder(&lab, SETTLE).unwrap();
    assert_eq!(apply.report["vip_holder"], lab.masters[holder].ip);
    // The VIP answers, seen from the proxies' side (this host has no way there).
    let vip = lab.vip_addr(6443);
    assert_eq!(
        lab.http_get_behind(vip, Duration::from_secs(3)).as_deref(),
        Some(format!("apiserver {}", lab.masters[holder].ns).as_str())
    );
    assert!(TcpStream::connect_timeout(&vip, Duration::from_secs(1)).is_err());

    let before = connections();
    let status = provision_ok(&lab, "status", &m, &[]);
    one_login_per_command(&status, before);
    assert_eq!(status.report["vip_holder"], lab.masters[holder].ip);

    let before = connections();
    let drill = provision_ok(&lab, "drill", &m, &[]);
    one_login_per_command(&drill, before);
    assert_eq!(
        drill.report["drill"]["oracle"], "tcp",
        "VIP:6443 probed through the proxy: {}",
        drill.stdout
    );
    assert_eq!(drill.report["drill"]["from"], lab.masters[holder].ip);
    let now = single_holder(&lab, SETTLE).unwrap();
    assert_ne!(now, holder, "the VIP did not move");
    assert_eq!(
        lab.http_get_behind(vip, Duration::from_secs(3)).as_deref(),
        Some(format!("apiserver {}", lab.masters[now].ns).as_str())
    );

    let before = connections();
    let uninstall = provision_ok(&lab, "uninstall", &m, &[]);
    one_login_per_command(&uninstall, before);
    for i in 0..3 {
        assert!(lab.pids_named(i, "keepalived").is_empty(), "master {i}");
        assert!(!lab.etc(i).join("keepalived/keepalived.conf").exists());
    }
    assert!(lab.holders().is_empty());
}

#[test]
fn every_command_works_through_the_jump_server_with_one_login_each() {
    every_command_through(LabProxy::Jump);
}

#[test]
fn every_command_works_through_socks5() {
    every_command_through(LabProxy::Socks5);
}

#[test]
fn socks5_with_rfc1929_credentials_and_a_wrong_password() {
    let lab = proxy_lab();
    let socks = lab.socks_auth_addr().unwrap();
    let m = manifest(&lab, "login.json", &through(LabProxy::Socks5Login), |_| {});
    provision_ok(&lab, "check", &m, &[]);
    let bad = manifest(
        &lab,
        "bad-login.json",
        &through(LabProxy::Socks5Login),
        |v| {
            for m in v["spec"]["machines"].as_array_mut().unwrap() {
                m["proxy"]["password"] = json!(b64("not-the-socks-password"));
            }
        },
    );
    let r = provision(&lab, "apply", &bad, &[]);
    every_host_refused(
        &r,
        &format!("SOCKS5 proxy {socks}: authentication failed as {SOCKS_USER}"),
    );
    assert!(!r.all_output().contains("not-the-socks-password"));
    assert!(
        r.report["errors"]
            .as_array()
            .unwrap()
            .contains(&json!(PREFLIGHT_FAILED))
    );
    nothing_changed(&lab);
}

#[test]
fn socks5_failures_name_the_hop_and_change_nothing() {
    let mut lab = proxy_lab();
    let socks = lab.socks_addr().unwrap();
    let m = manifest(&lab, "cluster.json", &through(LabProxy::Socks5), |_| {});

    // Proxy down.
    lab.set_socks(false).unwrap();
    let r = provision(&lab, "apply", &m, &[]);
    every_host_refused(&r, &format!("SOCKS5 proxy {socks}: connection refused"));
    assert!(
        r.report["errors"]
            .as_array()
            .unwrap()
            .contains(&json!(PREFLIGHT_FAILED))
    );
    nothing_changed(&lab);
    lab.set_socks(true).unwrap();

    // Proxy up, the master behind it down.
    let m3: SocketAddr = lab.master_addr(2).unwrap();
    lab.set_link(2, false).unwrap();
    let r = provision(
        &lab,
        "apply",
        &m,
        &["--connect-timeout", DOWN_CONNECT_TIMEOUT],
    );
    assert_eq!(r.code, 1, "{}", r.all_output());
    assert_eq!(
        host_error(&r, &lab.masters[2].ip),
        format!("master {m3} via SOCKS5 proxy {socks}: host unreachable")
    );
    assert_eq!(r.host(&lab.masters[0].ip).unwrap()["ok"], true);
    assert!(
        r.report["errors"]
            .as_array()
            .unwrap()
            .contains(&json!(PREFLIGHT_FAILED))
    );
    nothing_changed(&lab);
    lab.set_link(2, true).unwrap();
}

#[test]
fn jump_server_failures_name_the_hop_and_change_nothing() {
    let mut lab = proxy_lab();
    let jump = lab.jump_addr().unwrap();
    let jump_ip = jump.ip().to_string();
    let m = manifest(&lab, "cluster.json", &through(LabProxy::Jump), |_| {});

    // A wrong jump-server password: one attempt for all three masters, no login.
    let bad = manifest(&lab, "bad-jump.json", &through(LabProxy::Jump), |v| {
        for m in v["spec"]["machines"].as_array_mut().unwrap() {
            m["proxy"]["password"] = json!(b64("not-the-jump-password"));
        }
    });
    let before = lab.jump_connections().unwrap();
    let r = provision(&lab, "apply", &bad, &[]);
    every_host_refused(
        &r,
        &format!("jump server {jump}: authentication failed as {JUMP_USER}"),
    );
    assert!(!r.all_output().contains("not-the-jump-password"));
    assert_eq!(lab.jump_connections().unwrap() - before, 1);
    assert_eq!(lab.jump_logins().unwrap(), 0);
    assert_eq!(jump_stats(&r)[0]["logins"], 1);
    assert!(
        jump_stats(&r)[0]["error"]
            .as_str()
            .unwrap()
            .contains("authentication failed")
    );
    nothing_changed(&lab);

    // The jump host's key unknown: refused by --known-hosts, the hop named.
    let no_jump = known_hosts_variant(&lab, "kh-no-jump", Some(&jump_ip), "");
    let r = run_with("apply", &m, &no_jump, &[]);
    every_host_refused(
        &r,
        &format!("jump server {jump}: host key (ssh-ed25519) not in "),
    );
    nothing_changed(&lab);

    // The jump host's key revoked (next to its normal entry): refused, as OpenSSH refuses it.
    let (kind, key) = key_of(&lab, &jump_ip);
    let revoked = known_hosts_variant(
        &lab,
        "kh-jump-revoked",
        None,
        &format!("@revoked * {kind} {key}\n"),
    );
    let r = run_with("check", &m, &revoked, &[]);
    every_host_refused(
        &r,
        &format!("jump server {jump}: REVOKED HOST KEY DETECTED"),
    );
    let openssh = std::process::Command::new("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", revoked.display()))
        .arg(format!("{JUMP_USER}@{jump_ip}"))
        .arg("true")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&openssh.stderr);
    assert!(
        !openssh.status.success() && said.contains("REVOKED HOST KEY DETECTED"),
        "OpenSSH agrees: {said}"
    );

    // A master's key revoked: that master is refused, through the jump server, and named so.
    let m2 = lab.master_addr(1).unwrap();
    let (kind, key) = key_of(&lab, &lab.masters[1].ip);
    let revoked = known_hosts_variant(
        &lab,
        "kh-master-revoked",
        None,
        &format!("@revoked {} {kind} {key}\n", lab.masters[1].ip),
    );
    let r = run_with("apply", &m, &revoked, &[]);
    assert_eq!(r.code, 1, "{}", r.all_output());
    let e = host_error(&r, &lab.masters[1].ip);
    assert!(
        e.starts_with(&format!(
            "host key of {m2} via jump server {jump}: REVOKED HOST KEY DETECTED"
        )),
        "{e}"
    );
    assert_eq!(r.host(&lab.masters[0].ip).unwrap()["ok"], true);
    nothing_changed(&lab);

    // The jump host trusted only through a certificate authority: refused, and said why.
    let ca = known_hosts_variant(
        &lab,
        "kh-jump-ca",
        Some(&jump_ip),
        &format!("@cert-authority {jump_ip} {kind} {key}\n"),
    );
    let r = run_with("check", &m, &ca, &[]);
    every_host_refused(
        &r,
        &format!("jump server {jump}: host key (ssh-ed25519) not in "),
    );
    assert!(
        host_error(&r, &lab.masters[0].ip).contains("host certificates are not supported"),
        "{}",
        r.stdout
    );

    // The jump server up, a master behind it down: both hops named.
    lab.set_link(1, false).unwrap();
    let r = provision(
        &lab,
        "apply",
        &m,
        &["--connect-timeout", DOWN_CONNECT_TIMEOUT],
    );
    assert_eq!(r.code, 1, "{}", r.all_output());
    let e = host_error(&r, &lab.masters[1].ip);
    assert!(
        e.starts_with(&format!("master {m2} via jump server {jump}: ")),
        "{e}"
    );
    assert_eq!(r.host(&lab.masters[0].ip).unwrap()["ok"], true);
    assert!(
        r.report["errors"]
            .as_array()
            .unwrap()
            .contains(&json!(PREFLIGHT_FAILED))
    );
    nothing_changed(&lab);
    lab.set_link(1, true).unwrap();

    // The jump host's key changed (reinstalled): refused, also when new keys are accepted.
    lab.rotate_jump_host_key().unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let r = provision(&lab, "apply", &m, extra);
        every_host_refused(
            &r,
            &format!("jump server {jump}: host key (ssh-ed25519) does NOT match the one in "),
        );
    }
    nothing_changed(&lab);

    // The jump server down.
    lab.set_jump(false).unwrap();
    let r = provision(&lab, "apply", &m, &[]);
    every_host_refused(&r, &format!("jump server {jump}: connection refused"));
    nothing_changed(&lab);
}

//! The provisioner's transports against the proxy lab: masters on a network this host cannot reach,
//! a real jump host (OpenSSH) and a real SOCKS5 server (microsocks). SSH sessions through each
//! proxy run commands; one jump login serves three masters; every failure names its hop.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use tkeha_e2e::lab::proxy::{
    JUMP_PASSWORD, JUMP_USER, SOCKS_AUTH_PORT, SOCKS_PASSWORD, SOCKS_USER,
};
use tkeha_e2e::lab::sshd::ROOT_PASSWORD;
use tkeha_e2e::lab::{Lab, LabConfig, netns};
use tkeha_e2e::remote::{self, password};
use tkeha_provisioner::HostKeyPolicy;
use tkeha_provisioner::manifest::Secret;
use tkeha_provisioner::transport::{
    Dialer, JumpServer, Route, Socks5Auth, Socks5Proxy, Target, TransportError, login,
};

const T: Duration = Duration::from_secs(5);
/// Long enough for the proxy's own connect to a downed master to fail (ARP gives up).
const DOWN_T: Duration = Duration::from_secs(15);

fn proxy_lab() -> Lab {
    Lab::up(LabConfig {
        proxies: true,
        ..LabConfig::masters(3)
    })
    .unwrap_or_else(|e| {
        panic!("lab up failed (the e2e tests need root, iproute2, microsocks): {e:#}")
    })
}

fn jump_route(lab: &Lab, pw: &str) -> Route {
    Route::Jump(JumpServer::new(lab.jump_addr().unwrap(), JUMP_USER, password(pw)).unwrap())
}

fn socks_route(lab: &Lab) -> Route {
    Route::Socks5(Socks5Proxy {
        addr: lab.socks_addr().unwrap(),
        auth: None,
    })
}

fn socks_login_route(lab: &Lab, pw: &str) -> Route {
    Route::Socks5(Socks5Proxy {
        addr: lab.socks_auth_addr().unwrap(),
        auth: Some(Socks5Auth::new(SOCKS_USER, Secret::new(pw)).unwrap()),
    })
}

fn known_hosts(lab: &Lab) -> HostKeyPolicy {
    HostKeyPolicy::KnownHosts(lab.known_hosts_path())
}

/// SSH to `addr` along `route` as root, run `cmd`, return its stdout (or the error's text).
fn ssh_run(
    dialer: &Dialer,
    route: &Route,
    policy: &HostKeyPolicy,
    addr: SocketAddr,
    cmd: &str,
) -> Result<String, String> {
    let root = password(ROOT_PASSWORD);
    remote::ssh_run(dialer, route, policy, addr, ("root", &root), cmd, T)
}

fn masters_only_known_hosts(lab: &Lab, path: &Path) {
    let jump_ip = lab.jump_addr().unwrap().ip().to_string();
    let text = std::fs::read_to_string(lab.known_hosts_path()).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{jump_ip} ")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(kept.lines().count(), 3, "{text}");
    std::fs::write(path, kept).unwrap();
}

#[test]
fn masters_behind_proxies_are_reached_only_through_them() {
    let lab = proxy_lab();
    let policy = known_hosts(&lab);
    let dialer = Dialer::new(policy.clone());
    // This host has no way to the masters' network.
    for i in 0..3 {
        let addr = lab.master_addr(i).unwrap();
        assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
        let e = dialer
            .dial(&Route::Direct, Target::master(addr), Duration::from_secs(1))
            .unwrap_err();
        assert!(
            matches!(e, TransportError::Direct { .. }),
            "{e}: a direct connection must fail"
        );
    }
    // SOCKS5 without authentication (TKEStack's dialer), then with RFC 1929.
    for route in [socks_route(&lab), socks_login_route(&lab, SOCKS_PASSWORD)] {
        for i in 0..3 {
            let out = ssh_run(
                &dialer,
                &route,
                &policy,
                lab.master_addr(i).unwrap(),
                "hostname",
            )
            .unwrap_or_else(|e| panic!("{route}: {e}"));
            assert_eq!(out.trim(), lab.masters[i].ns, "{route}");
        }
    }
    assert!(dialer.jump_stats().is_empty());
    let before = lab.jump_connections().unwrap();
    assert_eq!(before, 0);
    // The jump server: three masters at once, one jump login.
    let route = jump_route(&lab, JUMP_PASSWORD);
    let outs: Vec<Result<String, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (dialer, route, policy) = (&dialer, &route, &policy);
                let addr = lab.master_addr(i).unwrap();
                s.spawn(move || ssh_run(dialer, route, policy, addr, "hostname; id -un"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, out) in outs.into_iter().enumerate() {
        assert_eq!(out.unwrap(), format!("{}\nroot\n", lab.masters[i].ns));
    }
    let stats = dialer.jump_stats();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].server, lab.jump_addr().unwrap());
    assert_eq!(stats[0].logins, 1, "one jump login for three masters");
    assert_eq!(stats[0].tunnels_opened, 3);
    assert_eq!(
        lab.jump_connections().unwrap() - before,
        1,
        "{}",
        lab.jump_log().unwrap()
    );
    assert_eq!(lab.jump_logins().unwrap(), 1, "{}", lab.jump_log().unwrap());
    // Probes of the hidden network go through the proxies: a closed port is "no", an open one "yes".
    let m1 = &lab.masters[0];
    let api: SocketAddr = format!("{}:6443", m1.ip).parse().unwrap();
    for route in [socks_route(&lab), route.clone()] {
        assert!(
            dialer
                .tcp_answers(&route, lab.master_addr(0).unwrap(), T)
                .unwrap()
        );
        assert!(!dialer.tcp_answers(&route, api, T).unwrap(), "{route}");
        assert_eq!(
            dialer
                .exchange(&route, api, b"GET / HTTP/1.0\r\n\r\n", T, T, 4096)
                .unwrap(),
            None
        );
    }
    lab.start_apiserver(0).unwrap();
    for route in [socks_route(&lab), route.clone()] {
        let answer = dialer
            .exchange(&route, api, b"GET / HTTP/1.0\r\n\r\n", T, T, 4096)
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.contains(&format!("apiserver {}", m1.ns)),
            "{route}: {text}"
        );
    }
    // The lab's own oracle for the hidden network agrees.
    assert_eq!(
        lab.http_get_behind(api, Duration::from_secs(2)).as_deref(),
        Some(format!("apiserver {}", m1.ns).as_str())
    );
    // Still one login: probes share the jump session.
    assert_eq!(lab.jump_connections().unwrap() - before, 1);
    assert_eq!(dialer.jump_stats()[0].logins, 1);
}

#[test]
fn the_jump_pump_carries_large_streams_to_three_masters_at_once() {
    let lab = proxy_lab();
    let policy = known_hosts(&lab);
    let dialer = Dialer::new(policy.clone());
    let route = jump_route(&lab, JUMP_PASSWORD);
    let before = lab.jump_connections().unwrap();
    // 2 MiB down from each of three masters at once (more than an SSH window), then 1 MiB up.
    let cmd = "head -c 2097152 /dev/urandom | sha256sum; head -c 2097152 /dev/zero | tr '\\0' x";
    let t0 = Instant::now();
    let outs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (dialer, route, policy) = (&dialer, &route, &policy);
                let addr = lab.master_addr(i).unwrap();
                s.spawn(move || ssh_run(dialer, route, policy, addr, cmd).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        let (sum, rest) = out.split_once('\n').unwrap();
        assert_eq!(sum.len(), 64 + 3, "{sum}");
        assert_eq!(rest.len(), 2 * 1024 * 1024);
        assert!(rest.bytes().all(|b| b == b'x'));
    }
    // Upload: a script read from stdin, 1 MiB, counted on the master.
    let addr = lab.master_addr(1).unwrap();
    let stream = dialer.dial(&route, Target::master(addr), T).unwrap();
    let sess = login::handshake(stream, addr.ip(), 22, &policy, T).unwrap();
    login::authenticate(&sess, "root", &password(ROOT_PASSWORD)).unwrap();
    let mut ch = sess.channel_session().unwrap();
    ch.exec("wc -c").unwrap();
    let blob = vec![b'y'; 1024 * 1024];
    std::io::Write::write_all(&mut ch, &blob).unwrap();
    ch.send_eof().unwrap();
    let mut out = String::new();
    ch.read_to_string(&mut out).unwrap();
    assert_eq!(out.trim(), "1048576");
    eprintln!(
        "6 MiB down + 1 MiB up through the jump pump in {:?}",
        t0.elapsed()
    );
    assert_eq!(dialer.jump_stats()[0].logins, 1);
    assert_eq!(lab.jump_connections().unwrap() - before, 1);
}

#[test]
fn jump_server_failures_name_the_hop() {
    let mut lab = proxy_lab();
    let policy = known_hosts(&lab);
    let jump = lab.jump_addr().unwrap();
    let m2 = lab.master_addr(1).unwrap();

    // Wrong password: one attempt for all masters, and the jump server is named.
    let dialer = Dialer::new(policy.clone());
    let bad = jump_route(&lab, "not-the-password");
    for i in 0..3 {
        let e = ssh_run(&dialer, &bad, &policy, lab.master_addr(i).unwrap(), "true").unwrap_err();
        assert!(
            e.starts_with(&format!(
                "jump server {jump}: authentication failed as {JUMP_USER}"
            )),
            "{e}"
        );
        assert!(!e.contains("not-the-password"), "{e}");
    }
    assert_eq!(dialer.jump_stats()[0].logins, 1);
    assert_eq!(lab.jump_logins().unwrap(), 0);

    // Unknown jump host key: refused with --known-hosts, recorded with --accept-new-host-keys.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    masters_only_known_hosts(&lab, &file);
    let strict = HostKeyPolicy::KnownHosts(file.clone());
    let e = ssh_run(
        &Dialer::new(strict.clone()),
        &jump_route(&lab, JUMP_PASSWORD),
        &strict,
        m2,
        "true",
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "jump server {jump}: host key (ssh-ed25519) not in "
        )),
        "{e}"
    );
    let accept = HostKeyPolicy::AcceptNew(file.clone());
    let out = ssh_run(
        &Dialer::new(accept.clone()),
        &jump_route(&lab, JUMP_PASSWORD),
        &accept,
        m2,
        "hostname",
    )
    .unwrap();
    assert_eq!(out.trim(), lab.masters[1].ns);
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with(&format!("{} ssh-ed25519 ", jump.ip()))),
        "{recorded}"
    );

    // Proxy up, master down: the master and the jump server are both named.
    let dialer = Dialer::new(policy.clone());
    let route = jump_route(&lab, JUMP_PASSWORD);
    lab.set_link(1, false).unwrap();
    // The jump host gives up once ARP fails (about 3 s): wait for that.
    let e = dialer
        .dial(&route, Target::master(m2), DOWN_T)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "master {m2} via jump server {jump}: the jump server could not connect to it"
        )),
        "{e}"
    );
    // With a short timeout the same failure is a timeout that still names both hops.
    let e = dialer
        .dial(&route, Target::master(m2), Duration::from_millis(500))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("master {m2} via jump server {jump}: no connection within 500 ms")
    );
    // A closed port on a live master, through the same session (queued behind the open the jump
    // server is still trying for m2: libssh2 opens one channel at a time per session).
    let closed: SocketAddr = format!("{}:2222", lab.masters[0].ip).parse().unwrap();
    let e = dialer
        .dial(&route, Target::master(closed), DOWN_T)
        .unwrap_err();
    assert!(e.is_target_failure(), "{e}");
    // The session survives its failed tunnels: the other masters still answer.
    let out = ssh_run(
        &dialer,
        &route,
        &policy,
        lab.master_addr(2).unwrap(),
        "hostname",
    )
    .unwrap();
    assert_eq!(out.trim(), lab.masters[2].ns);
    assert_eq!(dialer.jump_stats()[0].logins, 1);
    lab.set_link(1, true).unwrap();

    // The jump server goes away under an established session: the loss is named, not hidden.
    lab.set_jump(false).unwrap();
    let e = ssh_run(&dialer, &route, &policy, m2, "true").unwrap_err();
    assert!(
        e.starts_with(&format!(
            "jump server {jump}: the SSH connection to it was lost"
        )),
        "{e}"
    );
    // Jump server down from the start.
    let e = ssh_run(&Dialer::new(policy.clone()), &route, &policy, m2, "true").unwrap_err();
    assert_eq!(e, format!("jump server {jump}: connection refused"));
    // A probe through it fails as the jump server's fault, never as "the VIP does not answer".
    let e = Dialer::new(policy.clone())
        .tcp_answers(&route, lab.vip_addr(6443), T)
        .unwrap_err();
    assert!(e.is_proxy_failure(), "{e}");

    // A changed jump host key is refused under both policies.
    lab.rotate_jump_host_key().unwrap();
    for p in [
        policy.clone(),
        HostKeyPolicy::AcceptNew(lab.known_hosts_path()),
    ] {
        let e = ssh_run(&Dialer::new(p.clone()), &route, &p, m2, "true").unwrap_err();
        assert!(
            e.starts_with(&format!(
                "jump server {jump}: host key (ssh-ed25519) does NOT match the one in "
            )),
            "{e}"
        );
    }
}

#[test]
fn socks5_failures_name_the_hop() {
    let mut lab = proxy_lab();
    let policy = known_hosts(&lab);
    let dialer = Dialer::new(policy.clone());
    let socks = lab.socks_addr().unwrap();
    let socks_login = lab.socks_auth_addr().unwrap();
    assert_eq!(socks_login.port(), SOCKS_AUTH_PORT);
    let m1 = lab.master_addr(0).unwrap();

    // RFC 1929: a wrong password, and no credentials for a proxy that wants them.
    let e = ssh_run(
        &dialer,
        &socks_login_route(&lab, "wrong"),
        &policy,
        m1,
        "true",
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "SOCKS5 proxy {socks_login}: authentication failed as {SOCKS_USER}"
        )),
        "{e}"
    );
    assert!(!e.contains("wrong"), "{e}");
    let no_login = Route::Socks5(Socks5Proxy {
        addr: socks_login,
        auth: None,
    });
    let e = ssh_run(&dialer, &no_login, &policy, m1, "true").unwrap_err();
    assert!(
        e.contains("accepts none of the authentication methods offered (no authentication)"),
        "{e}"
    );

    // Proxy up, target refused (closed port) or down (link down).
    let route = socks_route(&lab);
    let closed: SocketAddr = format!("{}:2222", lab.masters[0].ip).parse().unwrap();
    let e = dialer.dial(&route, Target::master(closed), T).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("master {closed} via SOCKS5 proxy {socks}: connection refused")
    );
    let m3 = lab.master_addr(2).unwrap();
    lab.set_link(2, false).unwrap();
    let e = dialer
        .dial(&route, Target::master(m3), DOWN_T)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!("master {m3} via SOCKS5 proxy {socks}: host unreachable")
    );
    // A probe of a down address through a working proxy is a plain "no".
    assert!(
        !dialer
            .tcp_answers(&route, m3, Duration::from_millis(500))
            .unwrap()
    );
    lab.set_link(2, true).unwrap();

    // Proxy down.
    lab.set_socks(false).unwrap();
    let e = ssh_run(&dialer, &route, &policy, m1, "true").unwrap_err();
    assert_eq!(e, format!("SOCKS5 proxy {socks}: connection refused"));
    let e = dialer.tcp_answers(&route, m1, T).unwrap_err();
    assert!(e.is_proxy_failure(), "{e}");
    // And back.
    lab.set_socks(true).unwrap();
    let out = ssh_run(&dialer, &route, &policy, m1, "hostname").unwrap();
    assert_eq!(out.trim(), lab.masters[0].ns);

    // Teardown leaves nothing of the proxy tier: namespaces, the hidden bridge, veths, microsocks.
    let slot = lab.slot;
    let socks_ip = socks.ip().to_string();
    lab.down();
    assert!(netns::slot_namespaces(slot).is_empty());
    let links: Vec<_> = netns::links()
        .into_iter()
        .filter(|l| l.name.starts_with(&format!("tkh{slot}")))
        .collect();
    assert!(
        links.is_empty(),
        "links of slot {slot} left behind: {links:?}"
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("microsocks -i {socks_ip} ")])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "microsocks left behind");
}

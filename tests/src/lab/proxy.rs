//! The proxy tier of the lab (`LabConfig::proxies`): the masters, the LB and the VIP on a second network (10.78.N.0/24, bridge `tkh{N}bh`) that the test host cannot reach, a jump host (own namespaces, sshd, host key and user) and a microsocks SOCKS5 server on both networks, and the knobs to break each of them.

use super::cmd::{run, run_quiet};
use super::probe::{tcp_open, wait_for};
use super::{Lab, netns, sshd};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The jump host's login (its only user allowed in; root may not log in there).
pub const JUMP_USER: &str = "jumper";
/// Its password.
pub const JUMP_PASSWORD: &str = "jumperpw";
const JUMP_UID: u32 = 1778;
/// The SOCKS5 port with no authentication (TKEStack's way).
pub const SOCKS_PORT: u16 = 1080;
/// The SOCKS5 port that requires RFC 1929 username/password.
pub const SOCKS_AUTH_PORT: u16 = 1081;
/// Its username.
pub const SOCKS_USER: &str = "socksuser";
/// Its password.
pub const SOCKS_PASSWORD: &str = "sockspw";

/// Namespace suffixes of this tier (`tkh{N}jump`, `tkh{N}socks`), for teardown.
pub const NODE_SUFFIXES: [&str; 2] = ["jump", "socks"];
/// Host-side veth suffixes of this tier (`tkh{N}v` + suffix), for teardown.
pub const VETH_SUFFIXES: [&str; 4] = ["j", "jb", "s", "sb"];

/// The bridge of the hidden network of slot `slot` (no address on the host side).
pub fn hidden_bridge(slot: u16) -> String {
    format!("tkh{slot}bh")
}

/// The first three octets of the hidden network: `10.78.N`.
pub fn hidden_prefix(slot: u16) -> String {
    format!("10.78.{slot}")
}

/// A node of this tier: a namespace with a leg on each network.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the lab network (reachable from the test host).
    pub ip: String,
    /// Its address on the hidden network.
    pub back_ip: String,
    /// Host side of its lab-network veth.
    pub veth: String,
    /// Host side of its hidden-network veth.
    pub back_veth: String,
    /// Its files.
    pub dir: PathBuf,
}

/// The jump host and the SOCKS5 server of a lab.
#[derive(Debug, Clone)]
pub struct ProxyHosts {
    /// The jump host; its sshd is PID 1 of its own PID namespace.
    pub jump: Node,
    /// The jump host's sshd as seen from the root namespace.
    pub jump_sshd_pid: u32,
    /// The SOCKS5 server (two microsocks: [`SOCKS_PORT`] open, [`SOCKS_AUTH_PORT`] with a login).
    pub socks: Node,
}

impl ProxyHosts {
    /// Names and addresses for slot `slot`, under `dir` (nothing is created yet).
    pub fn plan(slot: u16, dir: &Path) -> Self {
        let node = |name: &str, v: &str, host: u8| Node {
            ns: format!("tkh{slot}{name}"),
            ip: format!("10.77.{slot}.{host}"),
            back_ip: format!("{}.{host}", hidden_prefix(slot)),
            veth: format!("tkh{slot}v{v}"),
            back_veth: format!("tkh{slot}v{v}b"),
            dir: dir.join(name),
        };
        ProxyHosts {
            jump: node("jump", "j", 5),
            jump_sshd_pid: 0,
            socks: node("socks", "s", 6),
        }
    }

    fn describe(&self) -> Value {
        let node = |n: &Node| {
            json!({ "ns": n.ns, "ip": n.ip, "back_ip": n.back_ip, "veth": n.veth,
                    "back_veth": n.back_veth, "dir": n.dir })
        };
        json!({
            "jump": node(&self.jump), "jump_sshd_pid": self.jump_sshd_pid,
            "jump_user": JUMP_USER, "socks": node(&self.socks),
            "socks_port": SOCKS_PORT, "socks_auth_port": SOCKS_AUTH_PORT, "socks_user": SOCKS_USER,
        })
    }

    fn load(v: &Value) -> Option<Self> {
        let node = |n: &Value| -> Option<Node> {
            let s = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Node {
                ns: s("ns")?,
                ip: s("ip")?,
                back_ip: s("back_ip")?,
                veth: s("veth")?,
                back_veth: s("back_veth")?,
                dir: PathBuf::from(s("dir")?),
            })
        };
        Some(ProxyHosts {
            jump: node(v.get("jump")?)?,
            jump_sshd_pid: v.get("jump_sshd_pid")?.as_u64()? as u32,
            socks: node(v.get("socks")?)?,
        })
    }
}

/// JSON for `state.json` (`null` without the proxy tier).
pub fn describe(p: Option<&ProxyHosts>) -> Value {
    p.map(ProxyHosts::describe).unwrap_or(Value::Null)
}

/// The proxy tier recorded in `state.json`, if any.
pub fn load(v: &Value) -> Option<ProxyHosts> {
    v.get("proxy").and_then(ProxyHosts::load)
}

/// Creates the hidden bridge and the shared safety route: nothing of 10.78/16 leaves this host,
/// and a connection from the test host to the hidden network fails at once.
pub fn setup_hidden_network(slot: u16) -> Result<()> {
    let br = hidden_bridge(slot);
    run("ip", &["link", "add", &br, "type", "bridge"])?;
    run("ip", &["link", "set", &br, "up"])?;
    let routes = run("ip", &["route", "show", "type", "unreachable"]).unwrap_or_default();
    if !routes.contains("10.78.0.0/16") {
        let _ = run_quiet("ip", &["route", "add", "unreachable", "10.78.0.0/16"]);
    }
    Ok(())
}

/// Adds `eth1` (address `cidr`) to namespace `ns`, wired to `bridge` through `veth`.
fn add_leg(bridge: &str, ns: &str, veth: &str, cidr: &str) -> Result<()> {
    run(
        "ip",
        &[
            "link", "add", veth, "type", "veth", "peer", "name", "eth1", "netns", ns,
        ],
    )?;
    run("ip", &["link", "set", veth, "master", bridge, "up"])?;
    run("ip", &["-n", ns, "addr", "add", cidr, "dev", "eth1"])?;
    run("ip", &["-n", ns, "link", "set", "eth1", "up"])?;
    Ok(())
}

/// Whether `ip:port` accepts a connection, tested from inside namespace `ns`.
pub fn tcp_open_in(ns: &str, ip: &str, port: u16) -> bool {
    run_quiet(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "timeout",
            "1",
            "bash",
            "-c",
            &format!("</dev/tcp/{ip}/{port}"),
        ],
    )
}

/// Adds the jump user to the jump host's private /etc (its own user, not the masters').
fn add_jump_user(dir: &Path) -> Result<()> {
    let etc = dir.join("etc");
    let home = dir.join("home").join(JUMP_USER);
    fs::create_dir_all(&home)?;
    let hash = run("openssl", &["passwd", "-6", JUMP_PASSWORD])?;
    let append = |file: &str, line: String| -> Result<()> {
        let path = etc.join(file);
        let mut text = fs::read_to_string(&path)?;
        text.push_str(&line);
        fs::write(&path, text)?;
        Ok(())
    };
    append(
        "passwd",
        format!(
            "{JUMP_USER}:x:{JUMP_UID}:{JUMP_UID}:tkeha lab jump user:{}:/bin/bash\n",
            home.display()
        ),
    )?;
    append("group", format!("{JUMP_USER}:x:{JUMP_UID}:\n"))?;
    append(
        "shadow",
        format!("{JUMP_USER}:{}:19000:0:99999:7:::\n", hash.trim()),
    )?;
    run(
        "chown",
        &[
            "-R",
            &format!("{JUMP_UID}:{JUMP_UID}"),
            &home.to_string_lossy(),
        ],
    )?;
    Ok(())
}

/// The jump host's sshd_config: only the jump user, TCP forwarding on, connections logged.
fn write_jump_config(node: &Node, lab_dir: &Path) -> Result<()> {
    let conf = format!(
        "ListenAddress {ip}:22\n\
         PidFile /run/sshd.pid\n\
         HostKey {d}/ssh_host_ed25519_key\n\
         PermitRootLogin no\n\
         AllowUsers {JUMP_USER}\n\
         PasswordAuthentication yes\n\
         KbdInteractiveAuthentication yes\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys {lab}/authorized_keys\n\
         AllowTcpForwarding yes\n\
         PermitOpen any\n\
         StrictModes no\n\
         UsePAM yes\n\
         UseDNS no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n\
         MaxStartups 100:30:200\n",
        ip = node.ip,
        d = node.dir.display(),
        lab = lab_dir.display(),
    );
    fs::write(node.dir.join("sshd_config"), conf)?;
    Ok(())
}

fn spawn_microsocks(node: &Node, port: u16, login: bool) -> Result<std::process::Child> {
    let log = fs::File::create(node.dir.join(format!("microsocks-{port}.log")))?;
    let port_s = port.to_string();
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &node.ns,
        "microsocks",
        "-i",
        &node.ip,
        "-p",
    ])
    .arg(&port_s);
    if login {
        c.args(["-u", SOCKS_USER, "-P", SOCKS_PASSWORD]);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting microsocks (scripts/deps.sh installs it)")
}

fn wait_open(addr: SocketAddr, what: &str) -> Result<()> {
    if wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
        tcp_open(addr, Duration::from_millis(300)).then_some(())
    })
    .is_none()
    {
        bail!("{what} at {addr} does not accept connections");
    }
    Ok(())
}

/// Waits until nothing accepts on `addr` any more (a dying process's threads may hold its
/// listening socket a moment after the process is gone from `ip netns pids`).
fn wait_closed(addr: SocketAddr, what: &str) -> Result<()> {
    if wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
        (!tcp_open(addr, Duration::from_millis(300))).then_some(())
    })
    .is_none()
    {
        bail!("{what} at {addr} still accepts connections after being stopped");
    }
    Ok(())
}

impl Lab {
    /// A machine's `proxy` field naming one of this lab's proxies.
    pub fn proxy_spec(&self, kind: super::LabProxy) -> Result<Value> {
        use super::LabProxy;
        let b64 = super::manifest::b64;
        Ok(match kind {
            LabProxy::Jump => {
                let a = self.jump_addr()?;
                json!({"type": "SSHJumpServer", "ip": a.ip().to_string(), "port": a.port(),
                       "username": JUMP_USER, "password": b64(JUMP_PASSWORD)})
            }
            LabProxy::Socks5 => {
                let a = self.socks_addr()?;
                json!({"type": "SOCKS5", "ip": a.ip().to_string(), "port": a.port()})
            }
            LabProxy::Socks5Login => {
                let a = self.socks_auth_addr()?;
                json!({"type": "SOCKS5", "ip": a.ip().to_string(), "port": a.port(),
                       "username": SOCKS_USER, "password": b64(SOCKS_PASSWORD)})
            }
        })
    }

    /// Builds the jump host and the SOCKS5 server (the masters are up already).
    pub(super) fn build_proxies(&mut self, hashes: &sshd::Hashes) -> Result<()> {
        let slot = self.slot;
        let mut p = self
            .proxy
            .clone()
            .context("the proxy tier was not planned")?;
        let back = hidden_bridge(slot);
        let lab_bridge = netns::bridge_name(slot);
        for n in [&p.jump, &p.socks] {
            fs::create_dir_all(&n.dir)?;
            netns::add_node_on(&lab_bridge, &n.ns, &n.veth, &format!("{}/24", n.ip))?;
            add_leg(&back, &n.ns, &n.back_veth, &format!("{}/24", n.back_ip))?;
        }
        // The jump host: a machine of its own, like a master, with its own host key and user.
        let jump = p.jump.clone();
        let line = sshd::prepare(&jump.dir, &jump.ns, &jump.ip, hashes)?;
        add_jump_user(&jump.dir)?;
        write_jump_config(&jump, &self.dir)?;
        let (child, pid) = sshd::start(&jump.ns, &jump.dir, &jump.ns)?;
        self.children.push(child);
        p.jump_sshd_pid = pid;
        let mut known = fs::read_to_string(self.known_hosts_path()).unwrap_or_default();
        known.push_str(&line);
        fs::write(self.known_hosts_path(), known)?;
        // The SOCKS5 server: one microsocks without and one with RFC 1929 authentication.
        for (port, login) in [(SOCKS_PORT, false), (SOCKS_AUTH_PORT, true)] {
            let child = spawn_microsocks(&p.socks, port, login)?;
            self.children.push(child);
        }
        self.proxy = Some(p);
        self.wait_jump()?;
        wait_open(self.socks_addr()?, "microsocks")?;
        wait_open(self.socks_auth_addr()?, "microsocks with a login")?;
        Ok(())
    }

    fn proxies(&self) -> Result<&ProxyHosts> {
        self.proxy
            .as_deref()
            .context("this lab has no proxy tier (LabConfig::proxies)")
    }

    /// The jump host's sshd, `10.77.N.5:22`.
    pub fn jump_addr(&self) -> Result<SocketAddr> {
        Ok(format!("{}:22", self.proxies()?.jump.ip).parse()?)
    }

    /// The SOCKS5 server without authentication, `10.77.N.6:1080`.
    pub fn socks_addr(&self) -> Result<SocketAddr> {
        Ok(format!("{}:{SOCKS_PORT}", self.proxies()?.socks.ip).parse()?)
    }

    /// The SOCKS5 server with RFC 1929 authentication, `10.77.N.6:1081`.
    pub fn socks_auth_addr(&self) -> Result<SocketAddr> {
        Ok(format!("{}:{SOCKS_AUTH_PORT}", self.proxies()?.socks.ip).parse()?)
    }

    /// Master `i`'s SSH address.
    pub fn master_addr(&self, i: usize) -> Result<SocketAddr> {
        Ok(format!("{}:22", self.masters[i].ip).parse()?)
    }

    /// The jump host's sshd log (LogLevel VERBOSE).
    pub fn jump_log(&self) -> Result<String> {
        Ok(fs::read_to_string(
            self.proxies()?.jump.dir.join("sshd.log"),
        )?)
    }

    /// SSH connections the jump host's sshd accepted from this host so far ("Connection from
    /// 10.77.N.1" lines; the lab's own readiness checks come from inside the jump host).
    pub fn jump_connections(&self) -> Result<usize> {
        let needle = format!("Connection from 10.77.{}.1 ", self.slot);
        Ok(self
            .jump_log()?
            .lines()
            .filter(|l| l.contains(&needle))
            .count())
    }

    /// Successful logins on the jump host so far ("Accepted ..." lines).
    pub fn jump_logins(&self) -> Result<usize> {
        Ok(self
            .jump_log()?
            .lines()
            .filter(|l| l.contains("Accepted "))
            .count())
    }

    /// Stops (all its processes) or restarts the jump host's sshd: a jump server down.
    pub fn set_jump(&mut self, up: bool) -> Result<()> {
        let p = self.proxies()?.clone();
        if !up {
            netns::kill_all(&p.jump.ns);
            return wait_closed(self.jump_addr()?, "the jump host's sshd");
        }
        if !netns::pids(&p.jump.ns).is_empty() {
            return Ok(());
        }
        let (child, pid) = sshd::start(&p.jump.ns, &p.jump.dir, &p.jump.ns)?;
        self.children.push(child);
        if let Some(px) = self.proxy.as_mut() {
            px.jump_sshd_pid = pid;
        }
        self.wait_jump()
    }

    /// Waits until the jump host's sshd accepts, checked from inside the jump host so that the
    /// check is not counted by [`Lab::jump_connections`].
    fn wait_jump(&self) -> Result<()> {
        let j = &self.proxies()?.jump;
        if wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
            tcp_open_in(&j.ns, &j.ip, 22).then_some(())
        })
        .is_none()
        {
            let log = fs::read_to_string(j.dir.join("sshd.log")).unwrap_or_default();
            bail!(
                "the jump host's sshd at {}:22 does not accept connections: {}",
                j.ip,
                log.trim()
            );
        }
        Ok(())
    }

    /// Makes the jump host and the SOCKS5 server forget master `i`'s link-layer address, as they
    /// would after a while: a master whose link is down is then "host unreachable" to them after
    /// one ARP round (about 3 s) instead of after a stale entry's probes (up to ~18 s).
    pub(super) fn forget_master_neighbour(&self, i: usize) {
        if let Some(p) = &self.proxy {
            for ns in [&p.jump.ns, &p.socks.ns] {
                run_quiet(
                    "ip",
                    &["-n", ns, "neigh", "flush", "to", &self.masters[i].ip],
                );
            }
        }
    }

    /// Stops or restarts both microsocks: a SOCKS5 proxy down.
    pub fn set_socks(&mut self, up: bool) -> Result<()> {
        let p = self.proxies()?.clone();
        if !up {
            netns::kill_all(&p.socks.ns);
            wait_closed(self.socks_addr()?, "microsocks")?;
            return wait_closed(self.socks_auth_addr()?, "microsocks with a login");
        }
        if !netns::pids(&p.socks.ns).is_empty() {
            return Ok(());
        }
        for (port, login) in [(SOCKS_PORT, false), (SOCKS_AUTH_PORT, true)] {
            let child = spawn_microsocks(&p.socks, port, login)?;
            self.children.push(child);
        }
        wait_open(self.socks_addr()?, "microsocks")?;
        wait_open(self.socks_auth_addr()?, "microsocks with a login")
    }

    /// Gives the jump host a new host key (as a reinstall would) and restarts its sshd; the lab's
    /// known_hosts keeps the old key. Returns the new known_hosts line.
    pub fn rotate_jump_host_key(&mut self) -> Result<String> {
        let p = self.proxies()?.clone();
        let key = p.jump.dir.join("ssh_host_ed25519_key");
        let _ = fs::remove_file(&key);
        let _ = fs::remove_file(p.jump.dir.join("ssh_host_ed25519_key.pub"));
        run(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                &p.jump.ns,
                "-f",
                &key.to_string_lossy(),
            ],
        )?;
        self.set_jump(false)?;
        self.set_jump(true)?;
        let public = fs::read_to_string(p.jump.dir.join("ssh_host_ed25519_key.pub"))?;
        let mut f = public.split_whitespace();
        let (Some(kind), Some(blob)) = (f.next(), f.next()) else {
            bail!("unexpected ssh-keygen output for the jump host");
        };
        Ok(format!("{} {kind} {blob}\n", p.jump.ip))
    }

    /// `GET http://ADDR/` from the SOCKS5 server's namespace, which sits on the hidden network:
    /// the oracle for "the VIP answers" when the test host cannot reach it. The body, or None.
    pub fn http_get_behind(&self, addr: SocketAddr, timeout: Duration) -> Option<String> {
        let p = self.proxy.as_ref()?;
        let secs = format!("{:.1}", timeout.as_secs_f64().max(0.2));
        run(
            "ip",
            &[
                "netns",
                "exec",
                &p.socks.ns,
                "curl",
                "-sS",
                "--max-time",
                &secs,
                &format!("http://{addr}/"),
            ],
        )
        .ok()
        .map(|b| b.trim().to_string())
    }

    /// Starts the stand-in apiserver on master `i` of a lab whose masters sit behind the proxies
    /// (the readiness check runs inside the master, since this host cannot reach it).
    pub(super) fn start_apiserver_behind(&self, i: usize) -> Result<()> {
        let m = &self.masters[i];
        if tcp_open_in(&m.ns, &m.ip, 6443) {
            return Ok(());
        }
        let bin = super::apiserver::locate_binary()?;
        let script = format!(
            "nohup {} --port 6443 --pid-file {} >/dev/null 2>&1 </dev/null &",
            bin.display(),
            super::apiserver::PID_FILE
        );
        super::cmd::in_ns(m.sshd_pid, &script)?;
        if wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            tcp_open_in(&m.ns, &m.ip, 6443).then_some(())
        })
        .is_none()
        {
            bail!("the stand-in apiserver on {} did not start listening", m.ip);
        }
        Ok(())
    }
}

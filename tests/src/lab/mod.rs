//! The labs. The network-namespace tier (here): masters that look like real hosts (own netns,
//! UTS, mount and PID namespaces, sshd, users, /etc) on a private bridge, an optional haproxy LB,
//! and a stand-in apiserver; `Lab::up` builds one in a unique slot, dropping the `Lab` tears it
//! down. The booted tier (`hosts`): Debian 12 machines under `systemd-nspawn --boot`.

pub mod apiserver;
pub mod cmd;
pub mod haproxy;
pub mod hosts;
pub mod image;
pub mod machine;
pub mod manifest;
pub mod mirror;
pub mod netns;
pub mod probe;
pub mod procs;
pub mod proxy;
pub mod ssh;
pub mod sshd;
pub mod tkestack;
pub mod view;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

pub use manifest::{Auth, LabProxy, ManifestOptions, Mode};
pub use sshd::SshAuth;

/// What to build.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Number of masters, 1..=12.
    pub masters: usize,
    /// Start the haproxy LB namespace holding the VIP.
    pub lb: bool,
    /// LB frontend ports on the VIP (default 6443).
    pub vports: Vec<u16>,
    /// The LB forwards only to the first master (a misconfigured LB).
    pub lb_single_backend: bool,
    /// 0-based indexes of masters whose sshd offers only publickey + keyboard-interactive.
    pub kbd_only: Vec<usize>,
    /// Keep the lab's files here instead of a fresh temp dir.
    pub state_dir: Option<PathBuf>,
    /// Outlive this process (`tkeha-lab up`): dropping the `Lab` leaves it running.
    pub persistent: bool,
    /// Put the masters, LB and VIP on a network this host cannot reach, behind a jump host and
    /// a SOCKS5 server ([`proxy`]).
    pub proxies: bool,
}

impl Default for LabConfig {
    fn default() -> Self {
        Self {
            masters: 3,
            lb: false,
            vports: vec![6443],
            lb_single_backend: false,
            kbd_only: Vec::new(),
            state_dir: None,
            persistent: false,
            proxies: false,
        }
    }
}

impl LabConfig {
    /// `n` masters and every other setting at its default.
    pub fn masters(n: usize) -> Self {
        Self {
            masters: n,
            ..Self::default()
        }
    }
}

/// One master.
#[derive(Debug, Clone)]
pub struct Master {
    /// `m1`, `m2`, ...
    pub name: String,
    /// Network namespace, also the hostname: `tkh{N}m{i}`.
    pub ns: String,
    /// Its address on the lab bridge (the machine IP in manifests).
    pub ip: String,
    /// Host side of its veth (link faults).
    pub veth: String,
    /// Its files; `dir/etc` is its /etc.
    pub dir: PathBuf,
    /// sshd (PID 1 of its PID namespace) as seen from the root namespace.
    pub sshd_pid: u32,
}

/// The LB namespace.
#[derive(Debug, Clone)]
pub struct Lb {
    /// Its network namespace.
    pub ns: String,
    /// Its address on the lab bridge (it also holds the VIP).
    pub ip: String,
    /// Host side of its veth.
    pub veth: String,
    /// Its files (haproxy.cfg, logs).
    pub dir: PathBuf,
}

/// A running lab.
#[derive(Debug)]
pub struct Lab {
    /// Its slot: names, bridge and subnet derive from it, so labs run side by side.
    pub slot: u16,
    /// Its files (keys, known_hosts, manifests, per-master directories).
    pub dir: PathBuf,
    /// The masters, in manifest order.
    pub masters: Vec<Master>,
    /// The third-party LB, when asked for.
    pub lb: Option<Lb>,
    /// The LB's frontend ports on the VIP.
    pub vports: Vec<u16>,
    /// The jump host and SOCKS5 server when the masters sit behind them.
    pub proxy: Option<Box<proxy::ProxyHosts>>,
    children: Vec<Child>,
    keep: bool,
    _tmp: Option<tempfile::TempDir>,
}

/// Creates the lab's two login keys in `dir` (`id_ed25519`, and `id_ed25519_passphrase`
/// encrypted with [`sshd::KEY_PASSPHRASE`]) and `dir/authorized_keys` holding both; returns it.
pub fn make_keys(dir: &Path) -> Result<String> {
    let keygen = |path: PathBuf, passphrase: &str, comment: &str| {
        let path = path.to_string_lossy().into_owned();
        let args = [
            "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", &path,
        ];
        cmd::run("ssh-keygen", &args)
    };
    keygen(dir.join("id_ed25519"), "", "tkeha-lab")?;
    keygen(
        dir.join("id_ed25519_passphrase"),
        sshd::KEY_PASSPHRASE,
        "tkeha-lab-passphrase",
    )?;
    let mut authorized = fs::read_to_string(dir.join("id_ed25519.pub"))?;
    authorized.push_str(&fs::read_to_string(dir.join("id_ed25519_passphrase.pub"))?);
    fs::write(dir.join("authorized_keys"), &authorized)?;
    Ok(authorized)
}

/// Removes everything of slot `slot`, whichever tier built it: booted machines, the mirror
/// server and its firewall rules, namespaces, veths and the bridge. Idempotent.
pub fn teardown_slot(slot: u16) {
    machine::teardown_slot(slot);
    mirror::stop(&format!("10.77.{slot}.1"));
    mirror::remove_rules(slot);
    netns::teardown_slot(slot);
}

/// Fails with a clear message unless running as root (the lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN).
pub fn require_root() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("");
    if uid != "0" {
        bail!(
            "the network-namespace lab must run as root (uid 0), found uid {uid:?}: run the e2e tests as root"
        );
    }
    Ok(())
}

impl Lab {
    /// Builds a lab in a fresh slot. On error, everything created so far is removed.
    pub fn up(cfg: LabConfig) -> Result<Lab> {
        require_root()?;
        if !(1..=12).contains(&cfg.masters) {
            bail!("a lab has 1..=12 masters, not {}", cfg.masters);
        }
        netns::gc();
        let (dir, tmp) = match &cfg.state_dir {
            Some(d) => {
                fs::create_dir_all(d)?;
                (fs::canonicalize(d)?, None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("tkeha-lab-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let owner = if cfg.persistent {
            0
        } else {
            std::process::id()
        };
        let slot = netns::allocate_slot(&dir, owner)?;
        let proxy = cfg
            .proxies
            .then(|| Box::new(proxy::ProxyHosts::plan(slot, &dir)));
        let mut lab = Lab {
            slot,
            dir,
            masters: Vec::new(),
            lb: None,
            vports: if cfg.vports.is_empty() {
                vec![6443]
            } else {
                cfg.vports.clone()
            },
            proxy,
            children: Vec::new(),
            keep: false,
            _tmp: tmp,
        };
        lab.build(&cfg)
            .with_context(|| format!("building lab slot {slot}"))?;
        lab.keep = cfg.persistent;
        Ok(lab)
    }

    fn build(&mut self, cfg: &LabConfig) -> Result<()> {
        let slot = self.slot;
        netns::setup_bridge(slot)?;
        if self.proxy.is_some() {
            proxy::setup_hidden_network(slot)?;
        }
        make_keys(&self.dir)?;
        let hashes = sshd::Hashes::new()?;
        for i in 0..cfg.masters {
            let n = i + 1;
            let m = Master {
                name: format!("m{n}"),
                ns: format!("tkh{slot}m{n}"),
                ip: format!("{}.{}", self.net_prefix(), 10 + n),
                veth: format!("tkh{slot}v{n}"),
                dir: self.dir.join(format!("m{n}")),
                sshd_pid: 0,
            };
            netns::add_node_on(&self.net_bridge(), &m.ns, &m.veth, &format!("{}/24", m.ip))?;
            self.masters.push(m);
        }
        // Preparing /etc copies and host keys is the slow part: do it in parallel.
        let lines: Vec<Result<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .masters
                .iter()
                .map(|m| s.spawn(|| sshd::prepare(&m.dir, &m.ns, &m.ip, &hashes)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panic"))))
                .collect()
        });
        let mut known = String::new();
        for l in lines {
            known.push_str(&l?);
        }
        fs::write(self.known_hosts_path(), known)?;
        for i in 0..self.masters.len() {
            let auth = if cfg.kbd_only.contains(&i) {
                SshAuth::KbdInteractiveOnly
            } else {
                SshAuth::All
            };
            let m = &self.masters[i];
            sshd::write_config(&m.dir, &self.dir, &m.ip, auth)?;
            let (child, pid) = sshd::start(&m.ns, &m.dir, &m.ns)?;
            self.children.push(child);
            self.masters[i].sshd_pid = pid;
        }
        for m in &self.masters {
            let addr: SocketAddr = format!("{}:22", m.ip).parse()?;
            let hidden = self.proxy.is_some();
            if probe::wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
                if hidden {
                    proxy::tcp_open_in(&m.ns, &m.ip, 22).then_some(())
                } else {
                    probe::tcp_open(addr, Duration::from_millis(300)).then_some(())
                }
            })
            .is_none()
            {
                let log = fs::read_to_string(m.dir.join("sshd.log")).unwrap_or_default();
                bail!(
                    "sshd on {} ({}) does not accept connections: {}",
                    m.ns,
                    m.ip,
                    log.trim()
                );
            }
        }
        if cfg.lb {
            let lb = Lb {
                ns: format!("tkh{slot}lb"),
                ip: format!("{}.10", self.net_prefix()),
                veth: format!("tkh{slot}vlb"),
                dir: self.dir.join("lb"),
            };
            fs::create_dir_all(&lb.dir)?;
            netns::add_node_on(
                &self.net_bridge(),
                &lb.ns,
                &lb.veth,
                &format!("{}/24", lb.ip),
            )?;
            cmd::run(
                "ip",
                &[
                    "-n",
                    &lb.ns,
                    "addr",
                    "add",
                    &format!("{}/24", self.vip()),
                    "dev",
                    "eth0",
                ],
            )?;
            let backends: Vec<(String, String)> = self
                .masters
                .iter()
                .take(if cfg.lb_single_backend { 1 } else { usize::MAX })
                .map(|m| (m.name.clone(), m.ip.clone()))
                .collect();
            haproxy::write_config(&lb.dir, &self.vip(), &self.vports, &backends)?;
            haproxy::start(&lb.ns, &lb.dir)?;
            self.lb = Some(lb);
        }
        if self.proxy.is_some() {
            self.build_proxies(&hashes)?;
        }
        fs::write(
            self.dir.join("state.json"),
            serde_json::to_string_pretty(&self.describe())?,
        )?;
        Ok(())
    }

    /// Re-attaches to a lab described by `DIR/state.json` (for `tkeha-lab`); dropping it keeps it.
    pub fn load(dir: &Path) -> Result<Lab> {
        let path = dir.join("state.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("no lab at {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)?;
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let masters = v["masters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| Master {
                        name: s(m, "name"),
                        ns: s(m, "ns"),
                        ip: s(m, "ip"),
                        veth: s(m, "veth"),
                        dir: PathBuf::from(s(m, "dir")),
                        sshd_pid: m["sshd_pid"].as_u64().unwrap_or(0) as u32,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let lb = v.get("lb").filter(|l| l.is_object()).map(|l| Lb {
            ns: s(l, "ns"),
            ip: s(l, "ip"),
            veth: s(l, "veth"),
            dir: PathBuf::from(s(l, "dir")),
        });
        let vports = v["vports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_u64().map(|p| p as u16))
                    .collect()
            })
            .unwrap_or_else(|| vec![6443]);
        Ok(Lab {
            slot: v["slot"].as_u64().unwrap_or(0) as u16,
            dir: dir.to_path_buf(),
            masters,
            lb,
            vports,
            proxy: proxy::load(&v).map(Box::new),
            children: Vec::new(),
            keep: true,
            _tmp: None,
        })
    }

    /// JSON description of the lab (also stored as `state.json`).
    pub fn describe(&self) -> Value {
        json!({
            "slot": self.slot,
            "subnet": format!("{}.0/24", self.net_prefix()),
            "bridge": netns::bridge_name(self.slot),
            "gateway": format!("10.77.{}.1", self.slot),
            "vip": self.vip(),
            "vports": self.vports,
            "state_dir": self.dir,
            "key": self.key_path(),
            "known_hosts": self.known_hosts_path(),
            "users": { "root": "root", "sudo_user": sshd::USER },
            "masters": self.masters.iter().map(|m| json!({
                "name": m.name, "ns": m.ns, "hostname": m.ns, "ip": m.ip, "veth": m.veth,
                "dir": m.dir, "etc": m.dir.join("etc"), "sshd_pid": m.sshd_pid,
            })).collect::<Vec<_>>(),
            "lb": self.lb.as_ref().map(|l| json!({ "ns": l.ns, "ip": l.ip, "veth": l.veth, "dir": l.dir })),
            "proxy": proxy::describe(self.proxy.as_deref()),
        })
    }

    /// The first three octets of the masters' network: `10.77.N`, or `10.78.N` behind proxies.
    pub fn net_prefix(&self) -> String {
        match self.proxy {
            Some(_) => proxy::hidden_prefix(self.slot),
            None => format!("10.77.{}", self.slot),
        }
    }

    /// The bridge the masters and the LB are on.
    fn net_bridge(&self) -> String {
        match self.proxy {
            Some(_) => proxy::hidden_bridge(self.slot),
            None => netns::bridge_name(self.slot),
        }
    }

    /// The lab's VIP, 10.77.N.100 (10.78.N.100 behind proxies).
    pub fn vip(&self) -> String {
        format!("{}.100", self.net_prefix())
    }

    /// `VIP:port`.
    pub fn vip_addr(&self, port: u16) -> SocketAddr {
        let second = if self.proxy.is_some() { 78 } else { 77 };
        SocketAddr::from(([10, second, self.slot as u8, 100], port))
    }

    /// The lab's private key (ed25519, OpenSSH format), accepted for root and tkeha everywhere.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// The lab's second private key, encrypted with [`sshd::KEY_PASSPHRASE`], also accepted everywhere.
    pub fn encrypted_key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519_passphrase")
    }

    /// known_hosts with every master's real host key.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The masters' addresses, in manifest order.
    pub fn ips(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.ip.clone()).collect()
    }

    /// Master `i`'s /etc as seen from the root namespace.
    pub fn etc(&self, i: usize) -> PathBuf {
        self.masters[i].dir.join("etc")
    }

    /// Runs a shell snippet as root inside master `i` (all its namespaces).
    pub fn exec(&self, i: usize, script: &str) -> Result<String> {
        cmd::in_ns(self.masters[i].sshd_pid, script)
    }

    /// Pids (root numbering) of processes named `comm` in master `i`'s network namespace.
    pub fn pids_named(&self, i: usize, comm: &str) -> Vec<u32> {
        let mut v: Vec<u32> = netns::pids(&self.masters[i].ns)
            .into_iter()
            .filter(|p| {
                fs::read_to_string(format!("/proc/{p}/comm"))
                    .map(|c| c.trim() == comm)
                    .unwrap_or(false)
            })
            .collect();
        v.sort_unstable();
        v
    }

    /// Indexes of the masters that have the VIP on an interface right now.
    pub fn holders(&self) -> Vec<usize> {
        let vip = self.vip();
        (0..self.masters.len())
            .filter(|&i| netns::holds(&self.masters[i].ns, &vip))
            .collect()
    }

    /// Starts the stand-in apiserver on master `i`.
    pub fn start_apiserver(&self, i: usize) -> Result<()> {
        if self.proxy.is_some() {
            return self.start_apiserver_behind(i);
        }
        let bin = apiserver::locate_binary()?;
        apiserver::start(self.masters[i].sshd_pid, &self.masters[i].ip, &bin)
    }

    /// Stop master `i`'s stand-in apiserver (an apiserver death).
    pub fn stop_apiserver(&self, i: usize) -> Result<()> {
        apiserver::stop(self.masters[i].sshd_pid, &self.masters[i].ip)
    }

    /// Freeze (SIGSTOP) or thaw master `i`'s stand-in apiserver (a hung apiserver).
    pub fn pause_apiserver(&self, i: usize, paused: bool) -> Result<()> {
        apiserver::pause(self.masters[i].sshd_pid, paused)
    }

    /// Creates /etc/kubernetes/manifests/kube-apiserver.yaml on master `i`: its health now counts.
    pub fn mark_control_plane(&self, i: usize) -> Result<()> {
        apiserver::mark_control_plane(&self.etc(i))
    }

    /// Link of master `i` up or down (from the bridge side).
    pub fn set_link(&self, i: usize, up: bool) -> Result<()> {
        netns::set_link(&self.masters[i].veth, up)?;
        if !up {
            self.forget_master_neighbour(i);
        }
        Ok(())
    }

    /// Makes the LB drop (or stop dropping) traffic from master `i` to VIP:vport.
    pub fn lb_drop_from(&self, i: usize, vport: u16, on: bool) -> Result<()> {
        let lb = self.lb.as_ref().context("this lab has no LB")?;
        haproxy::drop_from(&lb.ns, &self.masters[i].ip, &self.vip(), vport, on)
    }

    /// `GET http://VIP:port/` from the root namespace; the body (`apiserver <hostname>`) or None.
    pub fn get_vip(&self, port: u16, timeout: Duration) -> Option<String> {
        probe::http_get(self.vip_addr(port), timeout)
    }

    /// A Cluster manifest for this lab.
    pub fn manifest(&self, opts: &ManifestOptions) -> Result<Value> {
        let key = match opts.auth {
            Auth::KeyWithPassphrase => fs::read_to_string(self.encrypted_key_path())?,
            Auth::Key => fs::read_to_string(self.key_path())?,
            Auth::Password => String::new(),
        };
        let mut v = manifest::render(
            &format!("tkh{}", self.slot),
            &self.vip(),
            &self.ips(),
            &key,
            opts,
        );
        if let Some(kind) = opts.proxy {
            let proxy = self.proxy_spec(kind)?;
            for m in v["spec"]["machines"].as_array_mut().into_iter().flatten() {
                m["proxy"] = proxy.clone();
            }
        }
        Ok(v)
    }

    /// Writes `manifest(opts)` (optionally edited by `edit`) to a file in the lab dir; returns its path.
    pub fn write_manifest(
        &self,
        name: &str,
        opts: &ManifestOptions,
        edit: impl FnOnce(&mut Value),
    ) -> Result<PathBuf> {
        let mut v = self.manifest(opts)?;
        edit(&mut v);
        let path = self.dir.join(name);
        fs::write(&path, serde_json::to_string_pretty(&v)?)?;
        Ok(path)
    }

    /// Tears the lab down now (also what Drop does for a non-persistent lab).
    pub fn down(mut self) {
        self.teardown();
        self.keep = true;
    }

    fn teardown(&mut self) {
        netns::teardown_slot(self.slot);
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.clear();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            self.teardown();
        }
    }
}

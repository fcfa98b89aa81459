//! The booted lab: Debian 12 masters booted with `systemd-nspawn --boot` (systemd PID 1, sshd and
//! the stand-in apiserver as systemd services, keepalived not installed unless asked) on a private
//! bridge, fed by the lab mirror. `HostLab::up` builds one in a unique slot shared with the netns
//! tier's numbering; dropping it tears everything down, and a reaper process does the same if the
//! owner dies any other way (panic, SIGINT, SIGKILL).

use super::machine::{self, Identity, Machine};
use super::mirror::{self, MirrorContent};
use super::view::LabView;
use super::{ManifestOptions, image, netns, probe};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead as _, Write as _};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// How long a master may take to boot before the lab gives up (not a performance bound).
pub const BOOT_DEADLINE: Duration = Duration::from_secs(120);
/// How long a master may take to power off.
pub const POWEROFF_DEADLINE: Duration = Duration::from_secs(60);
/// The unit [`HostLab::slow_network_online`] installs.
pub const SLOW_ONLINE_UNIT: &str = "tkeha-lab-slow-online.service";

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct HostLabConfig {
    /// Number of masters, 1..=12.
    pub masters: usize,
    /// Boot from the base plus the keepalived layer (package installed, not configured).
    pub keepalived_preinstalled: bool,
    /// Keep the lab's files here instead of a fresh temp dir.
    pub state_dir: Option<PathBuf>,
    /// Outlive this process (`tkeha-lab hosts-up`): no reaper, dropping the lab leaves it running.
    pub persistent: bool,
}

impl HostLabConfig {
    /// `n` fresh masters (keepalived not installed).
    pub fn masters(n: usize) -> Self {
        Self {
            masters: n,
            ..Self::default()
        }
    }
}

/// `systemctl show` of one unit, the fields the tests compare.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    /// `ActiveState`: active, inactive, failed, ...
    pub active: String,
    /// `UnitFileState`: enabled, disabled, ... (empty when the unit file does not exist).
    pub enabled: String,
    /// `MainPID` (0 when not running).
    pub main_pid: u32,
    /// `NRestarts`.
    pub restarts: u32,
    /// `InvocationID`: changes with every start of the unit.
    pub invocation: String,
    /// `ActiveEnterTimestampMonotonic` in µs.
    pub active_since_us: u64,
}

/// A running booted lab.
#[derive(Debug)]
pub struct HostLab {
    /// The slot: bridge `tkh{N}br`, subnet 10.77.N.0/24.
    pub slot: u16,
    /// The lab's files (keys, known_hosts, manifests, each master's overlay).
    pub dir: PathBuf,
    /// The masters, in manifest order.
    pub masters: Vec<Machine>,
    /// Whether the masters booted with keepalived already installed.
    pub keepalived_preinstalled: bool,
    /// Name of the base image (its cache key).
    pub base: String,
    /// Name of the mirror content (its cache key).
    pub mirror: String,
    apiserver_bin: PathBuf,
    init_pids: Mutex<Vec<Option<u32>>>,
    reaper: Option<Child>,
    keep: bool,
    _tmp: Option<tempfile::TempDir>,
}

/// Fails with the missing tool and the fix when this machine cannot run the booted tier.
pub fn require_tools() -> Result<()> {
    super::require_root()?;
    for tool in [
        "systemd-nspawn",
        "debootstrap",
        "dpkg-scanpackages",
        "python3",
        "setsid",
        "iptables",
        "nsenter",
        "ssh-keygen",
    ] {
        if super::cmd::run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            bail!(
                "`{tool}` is missing: the booted lab needs systemd-container, debootstrap, dpkg-dev, \
                 python3, util-linux, iptables and openssh; run `bash scripts/deps.sh`"
            );
        }
    }
    Ok(())
}

impl HostLab {
    /// Builds a lab in a fresh slot (the cached images first, if missing). On error, everything
    /// created so far is removed.
    pub fn up(cfg: HostLabConfig) -> Result<HostLab> {
        require_tools()?;
        if !(1..=12).contains(&cfg.masters) {
            bail!("a lab has 1..=12 masters, not {}", cfg.masters);
        }
        netns::gc();
        let base = image::base()?;
        let content = mirror::content(&base)?;
        let layer = if cfg.keepalived_preinstalled {
            Some(image::keepalived_layer(&base, &content)?)
        } else {
            None
        };
        let apiserver_bin = super::apiserver::locate_binary()?;
        let (dir, tmp) = match &cfg.state_dir {
            Some(d) => {
                fs::create_dir_all(d)?;
                (fs::canonicalize(d)?, None)
            }
            None => {
                let t = tempfile::Builder::new().prefix("tkeha-hosts-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let owner = if cfg.persistent {
            0
        } else {
            std::process::id()
        };
        let slot = netns::allocate_slot(&dir, owner)?;
        let mut lab = HostLab {
            slot,
            dir: dir.clone(),
            masters: Vec::new(),
            keepalived_preinstalled: cfg.keepalived_preinstalled,
            base: base.name.clone(),
            mirror: content.name.clone(),
            apiserver_bin,
            init_pids: Mutex::new(Vec::new()),
            reaper: None,
            keep: false,
            _tmp: tmp,
        };
        if !cfg.persistent {
            lab.reaper = Some(spawn_reaper(slot, &dir)?);
        }
        let mut lowers: Vec<PathBuf> = Vec::new();
        if let Some(l) = &layer {
            lowers.push(l.root.clone());
        }
        lowers.push(base.root.clone());
        lab.build(cfg.masters, &content, &lowers)
            .with_context(|| format!("building booted lab slot {slot}"))?;
        lab.keep = cfg.persistent;
        Ok(lab)
    }

    fn build(&mut self, n: usize, content: &MirrorContent, lowers: &[PathBuf]) -> Result<()> {
        let slot = self.slot;
        netns::setup_bridge(slot)?;
        let authorized = super::make_keys(&self.dir)?;
        mirror::serve(content, &self.gateway(), &self.dir.join("mirror.log"))?;
        for i in 1..=n {
            self.masters.push(Machine {
                name: format!("m{i}"),
                hostname: format!("tkh{slot}m{i}"),
                ip: format!("10.77.{slot}.{}", 10 + i),
                veth: format!("vb-tkh{slot}m{i}"),
                dir: self.dir.join(format!("m{i}")),
            });
        }
        *self.pids() = vec![None; n];
        let gateway = self.gateway();
        let id = Identity {
            authorized_keys: &authorized,
            gateway: &gateway,
            prefix: 24,
        };
        let lowers: Vec<&Path> = lowers.iter().map(PathBuf::as_path).collect();
        let bridge = netns::bridge_name(slot);
        let known: Vec<Result<String>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .masters
                .iter()
                .map(|m| {
                    let (id, lowers, bridge) = (&id, &lowers, &bridge);
                    let bin = &self.apiserver_bin;
                    s.spawn(move || -> Result<String> {
                        m.mount(lowers)?;
                        let line = m.prepare(id)?;
                        m.boot(bridge, bin)?;
                        Ok(line)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panic"))))
                .collect()
        });
        let mut known_hosts = String::new();
        for k in known {
            known_hosts.push_str(&k?);
        }
        fs::write(self.known_hosts_path(), known_hosts)?;
        self.wait_all_ready()?;
        fs::write(
            self.dir.join("state.json"),
            serde_json::to_string_pretty(&self.describe())?,
        )?;
        Ok(())
    }

    fn wait_all_ready(&self) -> Result<()> {
        let results: Vec<Result<Duration>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .masters
                .iter()
                .map(|m| s.spawn(move || m.wait_ready(BOOT_DEADLINE)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("panic"))))
                .collect()
        });
        for r in results {
            r?;
        }
        Ok(())
    }

    fn pids(&self) -> std::sync::MutexGuard<'_, Vec<Option<u32>>> {
        self.init_pids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-attaches to a lab described by `DIR/state.json` (for `tkeha-lab`); dropping it keeps it.
    pub fn load(dir: &Path) -> Result<HostLab> {
        let path = dir.join("state.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("no lab at {}", path.display()))?;
        let v: Value = serde_json::from_str(&text)?;
        if v["tier"] != "booted" {
            bail!("{} describes a network-namespace lab", path.display());
        }
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let masters: Vec<Machine> = v["masters"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| Machine {
                        name: s(m, "name"),
                        hostname: s(m, "hostname"),
                        ip: s(m, "ip"),
                        veth: s(m, "veth"),
                        dir: PathBuf::from(s(m, "dir")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let n = masters.len();
        Ok(HostLab {
            slot: u16::try_from(v["slot"].as_u64().unwrap_or(0)).unwrap_or(0),
            dir: dir.to_path_buf(),
            masters,
            keepalived_preinstalled: v["keepalived_preinstalled"].as_bool().unwrap_or(false),
            base: s(&v, "base_image"),
            mirror: s(&v, "mirror_content"),
            apiserver_bin: PathBuf::from(s(&v, "apiserver_binary")),
            init_pids: Mutex::new(vec![None; n]),
            reaper: None,
            keep: true,
            _tmp: None,
        })
    }

    /// JSON description of the lab (also stored as `state.json`).
    pub fn describe(&self) -> Value {
        json!({
            "tier": "booted",
            "slot": self.slot,
            "subnet": format!("10.77.{}.0/24", self.slot),
            "bridge": netns::bridge_name(self.slot),
            "gateway": self.gateway(),
            "vip": self.vip(),
            "mirror": format!("http://{}:{}/", self.gateway(), mirror::PORT),
            "state_dir": self.dir,
            "key": self.key_path(),
            "known_hosts": self.known_hosts_path(),
            "users": { "root": "root", "sudo_user": super::sshd::USER },
            "keepalived_preinstalled": self.keepalived_preinstalled,
            "base_image": self.base,
            "mirror_content": self.mirror,
            "apiserver_binary": self.apiserver_bin,
            "masters": self.masters.iter().map(|m| json!({
                "name": m.name, "hostname": m.hostname, "ip": m.ip, "veth": m.veth,
                "dir": m.dir, "root": m.root(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The bridge address: the mirror's address as the masters see it.
    pub fn gateway(&self) -> String {
        format!("10.77.{}.1", self.slot)
    }

    /// The lab's VIP, 10.77.N.100.
    pub fn vip(&self) -> String {
        format!("10.77.{}.100", self.slot)
    }

    /// `VIP:port`.
    pub fn vip_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 77, u8::try_from(self.slot).unwrap_or(0), 100], port))
    }

    /// The lab's private key, accepted for root and the sudo user everywhere.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// known_hosts with every master's host key.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The masters' addresses.
    pub fn ips(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.ip.clone()).collect()
    }

    /// Master `i`'s PID 1, cached while it lives.
    pub fn init_pid(&self, i: usize) -> Option<u32> {
        let entry = format!("{}={}", machine::MARKER_ENV, self.masters[i].hostname);
        if let Some(p) = self.pids().get(i).copied().flatten()
            && super::procs::environ_has(p, &entry)
            && super::procs::alive(p)
        {
            return Some(p);
        }
        let p = self.masters[i].init_pid();
        if let Some(slot) = self.pids().get_mut(i) {
            *slot = p;
        }
        p
    }

    /// Whether master `i` is booted.
    pub fn running(&self, i: usize) -> bool {
        self.init_pid(i).is_some()
    }

    /// Runs a shell snippet as root inside master `i`.
    pub fn exec(&self, i: usize, script: &str) -> Result<String> {
        let pid = self
            .init_pid(i)
            .with_context(|| format!("{} is not running", self.masters[i].name))?;
        super::cmd::in_ns(pid, script)
    }

    /// `systemctl show` of `unit` on master `i`.
    pub fn unit(&self, i: usize, unit: &str) -> Result<UnitState> {
        let out = self.exec(
            i,
            &format!(
                "systemctl show -p ActiveState,UnitFileState,MainPID,NRestarts,InvocationID,ActiveEnterTimestampMonotonic {unit}"
            ),
        )?;
        Ok(parse_unit(&out))
    }

    /// Lines of master `i`'s journal for `unit` (this boot) that contain `needle`.
    pub fn journal_count(&self, i: usize, unit: &str, needle: &str) -> Result<usize> {
        let out = self.exec(
            i,
            &format!("journalctl -b -q --no-pager -o cat -u {unit} 2>/dev/null; true"),
        )?;
        Ok(out.lines().filter(|l| l.contains(needle)).count())
    }

    /// Whether master `i` has the VIP on an interface.
    pub fn holds(&self, i: usize) -> bool {
        self.init_pid(i)
            .is_some_and(|pid| holds_in(pid, &self.vip()))
    }

    /// Indexes of the masters that hold the VIP right now (powered-off ones hold nothing).
    pub fn holders(&self) -> Vec<usize> {
        (0..self.masters.len()).filter(|&i| self.holds(i)).collect()
    }

    /// A sampler of the holders for a background thread (PIDs re-found after a reboot). All
    /// masters are read at once, one thread each: read one after the other, a clean handover
    /// between two reads would look like two holders.
    pub fn holder_probe(&self) -> impl FnMut() -> Vec<usize> + Send + 'static {
        let masters = self.masters.clone();
        let vip = self.vip();
        let mut pids: Vec<Option<u32>> = (0..masters.len()).map(|i| self.init_pid(i)).collect();
        move || {
            for (i, m) in masters.iter().enumerate() {
                let entry = format!("{}={}", machine::MARKER_ENV, m.hostname);
                if !pids[i].is_some_and(|p| super::procs::environ_has(p, &entry)) {
                    pids[i] = m.init_pid();
                }
            }
            let held: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = pids
                    .iter()
                    .map(|p| {
                        let vip = &vip;
                        s.spawn(move || p.is_some_and(|p| holds_in(p, vip)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(false))
                    .collect()
            });
            (0..masters.len()).filter(|&i| held[i]).collect()
        }
    }

    /// Starts the stand-in apiserver on master `i` as an enabled unit (it comes back after a
    /// reboot, as kubelet would start the static pod), and waits until it answers.
    pub fn start_apiserver(&self, i: usize) -> Result<()> {
        let u = image::APISERVER_UNIT;
        self.exec(
            i,
            &format!("systemctl reset-failed {u} 2>/dev/null; systemctl enable -q --now {u}"),
        )?;
        self.wait_apiserver(i, true)
    }

    /// Stops and disables the stand-in on master `i`; waits until :6443 is closed.
    pub fn stop_apiserver(&self, i: usize) -> Result<()> {
        self.exec(
            i,
            &format!("systemctl disable -q --now {}", image::APISERVER_UNIT),
        )?;
        self.wait_apiserver(i, false)
    }

    /// Kills the stand-in on master `i` with SIGKILL (apiserver death); waits until :6443 is closed.
    pub fn kill_apiserver(&self, i: usize) -> Result<()> {
        self.exec(
            i,
            &format!("systemctl kill -s KILL {}", image::APISERVER_UNIT),
        )?;
        self.wait_apiserver(i, false)
    }

    /// `GET http://IP:6443/` of master `i` from this machine (its stand-in's answer).
    pub fn get_apiserver(&self, i: usize) -> Option<String> {
        let addr: SocketAddr = format!("{}:6443", self.masters[i].ip).parse().ok()?;
        probe::http_get(addr, Duration::from_secs(2))
    }

    fn wait_apiserver(&self, i: usize, up: bool) -> Result<()> {
        let addr: SocketAddr = format!("{}:6443", self.masters[i].ip).parse()?;
        if probe::wait_for(Duration::from_secs(15), Duration::from_millis(20), || {
            (probe::tcp_open(addr, Duration::from_millis(300)) == up).then_some(())
        })
        .is_none()
        {
            bail!(
                "the stand-in apiserver on {} is {}",
                self.masters[i].name,
                if up {
                    "not answering"
                } else {
                    "still answering"
                }
            );
        }
        Ok(())
    }

    /// Creates /etc/kubernetes/manifests/kube-apiserver.yaml on master `i`: its health now counts.
    pub fn mark_control_plane(&self, i: usize) -> Result<()> {
        self.exec(
            i,
            "mkdir -p /etc/kubernetes/manifests && printf 'apiVersion: v1\\nkind: Pod\\nmetadata:\\n  name: kube-apiserver\\n  namespace: kube-system\\n' > /etc/kubernetes/manifests/kube-apiserver.yaml",
        )?;
        Ok(())
    }

    /// Powers master `i` off from inside; returns when its nspawn is gone.
    pub fn poweroff(&self, i: usize) -> Result<Duration> {
        let d = self.masters[i].poweroff(POWEROFF_DEADLINE)?;
        if let Some(slot) = self.pids().get_mut(i) {
            *slot = None;
        }
        Ok(d)
    }

    /// Boots master `i` again on its own disk; returns when systemd is running and sshd accepts.
    pub fn boot(&self, i: usize) -> Result<Duration> {
        let m = &self.masters[i];
        m.boot(&netns::bridge_name(self.slot), &self.apiserver_bin)?;
        m.wait_ready(BOOT_DEADLINE)
    }

    /// Makes `network-online.target` on master `i` take `secs` seconds from the next boot on,
    /// as a slow wait-online does on a real host (NetworkManager or ifupdown waiting for every
    /// interface, networkd's wait-online for a link that never comes up): an enabled oneshot
    /// unit ordered before the target sleeps that long.
    pub fn slow_network_online(&self, i: usize, secs: u32) -> Result<()> {
        self.exec(
            i,
            &format!(
                "printf '%s\\n' '[Unit]' 'Description=tkeha lab: network-online.target takes {secs} s' \
                 'DefaultDependencies=no' 'After=network.target' 'Before=network-online.target' '' \
                 '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' 'ExecStart=/bin/sleep {secs}' '' \
                 '[Install]' 'WantedBy=network-online.target' > /etc/systemd/system/{SLOW_ONLINE_UNIT} && \
                 systemctl enable -q {SLOW_ONLINE_UNIT}"
            ),
        )?;
        Ok(())
    }

    /// The monotonic time (µs, the kernel's clock, which the masters share with this machine)
    /// of the first line of `unit`'s journal in this boot that contains `needle`.
    pub fn journal_first_us(&self, i: usize, unit: &str, needle: &str) -> Result<Option<u64>> {
        let out = self.exec(
            i,
            &format!(
                "journalctl -b -q --no-pager -o json --output-fields=MESSAGE -u {unit} 2>/dev/null; true"
            ),
        )?;
        Ok(out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["MESSAGE"].as_str().is_some_and(|m| m.contains(needle)))
            .and_then(|v| v["__MONOTONIC_TIMESTAMP"].as_str()?.parse().ok()))
    }

    /// `ActiveEnterTimestampMonotonic` of `unit` on master `i` (µs of the kernel's monotonic
    /// clock, shared with this machine; 0 if never).
    pub fn active_since_us(&self, i: usize, unit: &str) -> Result<u64> {
        let out = self.exec(
            i,
            &format!("systemctl show -p ActiveEnterTimestampMonotonic --value {unit}"),
        )?;
        Ok(out.trim().parse().unwrap_or(0))
    }

    /// Makes the lab mirror unreachable from master `i` (`reachable = false`), or reachable again.
    pub fn set_mirror_reachable(&self, i: usize, reachable: bool) -> Result<()> {
        mirror::set_blocked(self.slot, &self.masters[i].ip, &self.gateway(), !reachable)
    }

    /// Link of master `i` up or down (its veth on the bridge side).
    pub fn set_link(&self, i: usize, up: bool) -> Result<()> {
        netns::set_link(&self.masters[i].veth, up)
    }

    /// A Cluster manifest for this lab.
    pub fn manifest(&self, opts: &ManifestOptions) -> Result<Value> {
        let key = match opts.auth {
            super::Auth::KeyWithPassphrase => {
                fs::read_to_string(self.dir.join("id_ed25519_passphrase"))?
            }
            super::Auth::Key => fs::read_to_string(self.key_path())?,
            super::Auth::Password => String::new(),
        };
        let mut v = super::manifest::render(
            &format!("tkh{}", self.slot),
            &self.vip(),
            &self.ips(),
            &key,
            opts,
        );
        v["spec"]["networkDevice"] = json!("host0");
        Ok(v)
    }

    /// Tears the lab down now (also what Drop does for a non-persistent lab).
    pub fn down(mut self) {
        self.teardown();
        self.keep = true;
    }

    fn teardown(&mut self) {
        super::teardown_slot(self.slot);
        if let Some(mut r) = self.reaper.take() {
            if let Some(mut stdin) = r.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = r.wait();
        }
    }
}

impl Drop for HostLab {
    fn drop(&mut self) {
        if !self.keep {
            self.teardown();
        }
    }
}

impl LabView for HostLab {
    fn vip(&self) -> String {
        HostLab::vip(self)
    }
    fn vip_addr(&self, port: u16) -> SocketAddr {
        HostLab::vip_addr(self, port)
    }
    fn holders(&self) -> Vec<usize> {
        HostLab::holders(self)
    }
    fn hostname(&self, i: usize) -> String {
        self.masters[i].hostname.clone()
    }
    fn known_hosts_path(&self) -> PathBuf {
        HostLab::known_hosts_path(self)
    }
    fn write_manifest(
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
}

/// Whether the network namespace of `pid` has `vip` on an interface.
///
/// Read from the namespace's `/proc/PID/net/fib_trie` (an address of the machine is a
/// `/32 host LOCAL` entry there): a file read, not a process, so the samplers of several
/// masters read at nearly the same instant even on a loaded machine. Spawning `nsenter ... ip`
/// per master took tens of milliseconds under load, enough for a clean handover between two
/// reads to look like two holders. Falls back to `ip` if the file cannot be read.
fn holds_in(pid: u32, vip: &str) -> bool {
    if let Ok(trie) = fs::read_to_string(format!("/proc/{pid}/net/fib_trie")) {
        return fib_trie_has_local(&trie, vip);
    }
    let needle = format!(" {vip}/");
    super::cmd::run(
        "nsenter",
        &[
            "--target",
            &pid.to_string(),
            "--net",
            "ip",
            "-4",
            "-o",
            "addr",
            "show",
        ],
    )
    .map(|out| out.contains(&needle))
    .unwrap_or(false)
}

/// Whether `fib_trie` text lists `addr` as a local address (`|-- ADDR` then `/32 host LOCAL`).
pub fn fib_trie_has_local(trie: &str, addr: &str) -> bool {
    let mut current = false;
    for line in trie.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            current = a == addr;
        } else if t.starts_with("+--") {
            current = false;
        } else if current && t.starts_with("/32 host LOCAL") {
            return true;
        }
    }
    false
}

/// Parses `systemctl show -p ...` output.
pub fn parse_unit(out: &str) -> UnitState {
    let map: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| map.get(k).copied().unwrap_or_default().to_string();
    UnitState {
        active: get("ActiveState"),
        enabled: get("UnitFileState"),
        main_pid: get("MainPID").parse().unwrap_or(0),
        restarts: get("NRestarts").parse().unwrap_or(0),
        invocation: get("InvocationID"),
        active_since_us: get("ActiveEnterTimestampMonotonic").parse().unwrap_or(0),
    }
}

/// Starts `tkeha-lab reap` for this lab: it waits on a pipe from this process and tears the slot
/// down when the pipe closes without a "done" line (this process died without dropping the lab).
/// Its own process group, so a Ctrl-C aimed at the test runner does not stop it first.
fn spawn_reaper(slot: u16, dir: &Path) -> Result<Child> {
    let bin = crate::bins::locate("tkeha-lab", "TKEHA_LAB_BIN")?;
    let log = fs::File::create(dir.join("reaper.log"))?;
    Command::new(bin)
        .args(["reap", "--slot", &slot.to_string(), "--dir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the lab's reaper (tkeha-lab reap)")
}

/// The reaper's body: block until the owner says "done" or dies; after a death, tear the slot
/// down if it still belongs to the lab in `dir` (the bridge alias names the owner's dir).
pub fn reap(slot: u16, dir: &Path) -> Result<bool> {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim() == "done" {
        return Ok(false);
    }
    let ours = netns::existing_slots().into_iter().any(|(n, alias)| {
        n == slot
            && alias
                .as_deref()
                .and_then(|a| a.split_once(" dir="))
                .is_some_and(|(_, d)| Path::new(d) == dir)
    });
    if ours {
        super::teardown_slot(slot);
        if dir.starts_with(std::env::temp_dir()) {
            let _ = fs::remove_dir_all(dir);
        }
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_address_is_found_in_fib_trie() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.77.2.0\n        /24 link UNICAST\n\
                    Local:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 10.77.2.100\n        /32 host LOCAL\n\
                    |-- 10.77.2.11\n        /32 host LOCAL\n     |-- 10.77.2.255\n        /32 link BROADCAST\n";
        assert!(fib_trie_has_local(trie, "10.77.2.100"));
        assert!(fib_trie_has_local(trie, "10.77.2.11"));
        assert!(!fib_trie_has_local(trie, "10.77.2.1"));
        assert!(
            !fib_trie_has_local(trie, "10.77.2.255"),
            "broadcast, not local"
        );
        assert!(!fib_trie_has_local(trie, "10.77.2.0"));
    }

    #[test]
    fn systemctl_show_is_parsed() {
        let u = parse_unit(
            "ActiveState=active\nUnitFileState=enabled\nMainPID=42\nNRestarts=0\nInvocationID=abc\nActiveEnterTimestampMonotonic=123\n",
        );
        assert_eq!(u.active, "active");
        assert_eq!(u.enabled, "enabled");
        assert_eq!(u.main_pid, 42);
        assert_eq!(u.restarts, 0);
        assert_eq!(u.invocation, "abc");
        assert_eq!(u.active_since_us, 123);
    }
}

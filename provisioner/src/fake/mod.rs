//! A scripted fleet of fake masters for the unit tests: a [`Connector`] and a [`Network`] with no I/O, that answer the provisioner's scripts the way a master would, record every script sent, and fail where a test says.
//!
//! Each [`Master`] is a small state (keepalived installed and running, its files with their
//! modes, the VIP) plus the failures to inject. The answers follow the scripts' contracts (the
//! `@@key=value` markers of `crate::scripts`), not their bash: the lab tests prove the bash
//! against real programs. The VIP moves as VRRP with `nopreempt` would move it: to the first
//! running master when nobody holds it, away from a master whose keepalived stops, and back to
//! a restarted one only when the test says it preempts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;

use crate::interrupt::Interrupt;
use crate::keepalived::{self, CHECK_SCRIPT_PATH, CONF_PATH, PROBE_SCRIPT_PATH, PROBE_UNIT_PATH};
use crate::manifest::{Machine, Plan, plan_from_text};
use crate::net::Network;
use crate::remote::{Connector, ExecOutput, Remote, RemoteError};
use crate::runner::Provisioner;
use crate::scripts::Script;
use crate::scripts::park::RESTORE_SCRIPT;
use crate::tkestack::fixtures::{STATIC_POD, tkestack_conf};
use crate::tkestack::{PARKED_MANIFEST, STATIC_POD_MANIFEST};
use crate::transport::{Route, TransportError};

/// A file on a fake master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct File {
    pub mode: u32,
    pub content: String,
}

/// How VRRP behaves among the fake masters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vrrp {
    /// One holder at a time, as keepalived with `nopreempt` and working adverts.
    Normal,
    /// Nobody ever takes the VIP.
    Nobody,
    /// Adverts are lost: every running master holds the VIP.
    SplitBrain,
}

/// One fake master: its state and the failures to inject.
#[derive(Debug, Clone)]
pub(crate) struct Master {
    pub ip: IpAddr,
    pub hostname: String,
    pub uid: u32,
    pub prefix_len: u8,
    pub keepalived: bool,
    pub package_manager: Option<&'static str>,
    pub systemd: bool,
    pub files: BTreeMap<String, File>,
    pub running: bool,
    /// The fast profile's apiserver probe runs.
    pub probe_running: bool,
    /// Times keepalived was started from stopped (a restart is an outage; a reload is not).
    pub starts: u32,
    /// Times keepalived re-read its configuration.
    pub reloads: u32,
    pub apiserver_manifest: bool,
    pub apiserver_listening: bool,
    /// Someone answers ping/ARP for the VIP on this master's network.
    pub vip_answers: bool,
    /// `Some(message)`: the TCP connection is refused with it.
    pub connect_error: Option<String>,
    /// The user has no passwordless sudo: every script fails with sudo's complaint.
    pub sudo_denied: bool,
    pub install_fails: bool,
    pub rejects_config: bool,
    pub start_fails: bool,
    /// The stop command of a drill fails in transit.
    pub stop_fails: bool,
    /// After a restart it takes the VIP back (no `nopreempt`).
    pub preempts: bool,
    /// Leaves the VIP on its interface after keepalived stops (a `kill -9`).
    pub stale_vip: bool,
    /// Answers given as they are, by script name, instead of the master's behaviour.
    pub replies: BTreeMap<&'static str, ExecOutput>,
    /// What the package manager says when asked whether it can install keepalived: `Ok`
    /// its candidate version, `Err` its complaint (an unreachable source).
    pub candidate: Result<String, String>,
    /// A process holding the dpkg lock (`PID COMMAND`).
    pub dpkg_lock: Option<String>,
    /// Mode and owner of /etc/keepalived when it exists.
    pub conf_dir: Option<(u32, u32)>,
    /// Its keepalived takes the VIP right after the probe read the addresses (the race of an
    /// earlier apply's keepalived coming up).
    pub takes_vip_after_probe: bool,
    /// The connection dies after this many lines of the named streamed script.
    pub cut: Option<(&'static str, usize)>,
    /// Scripts (by name) whose SSH channel breaks: the run fails in transit.
    pub broken: Vec<&'static str>,
    /// TKEStack's keepalived static pod manifest, in kubelet's directory. A master with one (or
    /// with a parked one) runs keepalived as a pod: `running` is the pod's keepalived.
    pub static_pod: Option<String>,
    /// The manifest as a drill parked it.
    pub parked_pod: Option<String>,
    /// The drill's restore guard is armed on this master.
    pub guard_armed: bool,
    /// PID of the pod's keepalived (a new one at every start).
    pub pod_pid: u32,
    /// kubelet starts no keepalived when the manifest comes back.
    pub kubelet_stuck: bool,
    /// TKEStack's hairpin rule (third-party HA) is present.
    pub tkestack_hairpin: bool,
    /// TKEStack's controller writes this manifest while a drill has the old one parked.
    pub rewrite_during_drill: Option<String>,
}

impl Master {
    /// keepalived runs as TKEStack's static pod here (the manifest in place or parked).
    pub fn pod_managed(&self) -> bool {
        self.static_pod.is_some() || self.parked_pod.is_some()
    }
}

impl Master {
    /// A fresh Debian master without keepalived, reachable as root.
    pub fn fresh(ip: &str, hostname: &str) -> Self {
        Master {
            ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            hostname: hostname.to_string(),
            uid: 0,
            prefix_len: 24,
            keepalived: false,
            package_manager: Some("apt-get"),
            systemd: false,
            files: BTreeMap::new(),
            running: false,
            probe_running: false,
            starts: 0,
            reloads: 0,
            apiserver_manifest: false,
            apiserver_listening: false,
            vip_answers: false,
            connect_error: None,
            sudo_denied: false,
            install_fails: false,
            rejects_config: false,
            start_fails: false,
            stop_fails: false,
            preempts: false,
            stale_vip: false,
            replies: BTreeMap::new(),
            candidate: Ok("1:2.2.7-1+b2".into()),
            dpkg_lock: None,
            conf_dir: None,
            takes_vip_after_probe: false,
            cut: None,
            broken: Vec::new(),
            static_pod: None,
            parked_pod: None,
            guard_armed: false,
            pod_pid: 0,
            kubelet_stuck: false,
            tkestack_hairpin: false,
            rewrite_during_drill: None,
        }
    }
}

/// One script a master received.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub host: usize,
    pub script: Script,
}

#[derive(Debug)]
struct World {
    masters: Vec<Master>,
    vip: IpAddr,
    vrrp: Vrrp,
    holders: BTreeSet<usize>,
    /// The apiserver answers on `VIP:6443` from the provisioner host while someone holds the VIP.
    api_behind_vip: bool,
    /// Every probe from the provisioner host fails with this (a dead proxy).
    probe_error: Option<TransportError>,
    /// The route and address of every probe made from the provisioner host.
    probes: Vec<(Route, SocketAddr)>,
    sent: Vec<Sent>,
    /// Set this interrupt when a master receives the script of this name (a signal mid-run).
    interrupt_on: Option<(&'static str, Interrupt)>,
}

impl World {
    /// Move the VIP as VRRP would after a change.
    fn settle(&mut self) {
        let running: Vec<usize> = (0..self.masters.len())
            .filter(|&i| self.masters[i].running)
            .collect();
        match self.vrrp {
            Vrrp::Nobody => self
                .holders
                .retain(|&i| self.masters[i].stale_vip && !running.contains(&i)),
            Vrrp::SplitBrain => self.holders = running.iter().copied().collect(),
            Vrrp::Normal => {
                let stale: BTreeSet<usize> = self
                    .holders
                    .iter()
                    .copied()
                    .filter(|&i| !self.masters[i].running && self.masters[i].stale_vip)
                    .collect();
                self.holders.retain(|&i| self.masters[i].running);
                if self.holders.is_empty()
                    && let Some(&first) = running.first()
                {
                    self.holders.insert(first);
                }
                self.holders.extend(stale);
            }
        }
    }
}

/// A fleet of fake masters and everything they were sent.
#[derive(Debug, Clone)]
pub(crate) struct Fleet(Arc<Mutex<World>>);

impl Fleet {
    /// Masters 10.0.0.11, .12, ... (`n` of them) behind VIP 10.0.0.100, all fresh.
    pub fn new(n: usize) -> Self {
        let masters = (0..n)
            .map(|i| Master::fresh(&format!("10.0.0.{}", 11 + i), &format!("m{}", i + 1)))
            .collect();
        Fleet(Arc::new(Mutex::new(World {
            masters,
            vip: IpAddr::from([10, 0, 0, 100]),
            vrrp: Vrrp::Normal,
            holders: BTreeSet::new(),
            api_behind_vip: false,
            probe_error: None,
            probes: Vec::new(),
            sent: Vec::new(),
            interrupt_on: None,
        })))
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change master `i` before the run.
    pub fn master(&self, i: usize, change: impl FnOnce(&mut Master)) -> &Self {
        if let Some(m) = self.world().masters.get_mut(i) {
            change(m);
        }
        self
    }

    /// Change every master.
    pub fn every(&self, change: impl Fn(&mut Master)) -> &Self {
        for m in self.world().masters.iter_mut() {
            change(m);
        }
        self
    }

    /// Masters with keepalived configured and running as a previous `apply` left them, and
    /// `holder` holding the VIP.
    pub fn provisioned(&self, plan: &Plan, holder: usize) -> &Self {
        let mut w = self.world();
        let auth = "Ab3dEf7h";
        let n = w.masters.len();
        for i in 0..n {
            let m = &w.masters[i];
            let conf = keepalived::render_conf(&keepalived::ConfParams {
                router_id: keepalived::router_id(&m.hostname, m.ip),
                interface: "eth0".into(),
                vrid: match plan.mode {
                    crate::manifest::Mode::Tke { vrid } => vrid,
                    crate::manifest::Mode::ThirdParty { .. } => 1,
                },
                priority: keepalived::priority_for(i, plan.profile()),
                src_ip: m.ip,
                peers: plan
                    .machines
                    .iter()
                    .filter(|x| x.ip != m.ip)
                    .map(|x| x.ip)
                    .collect(),
                auth_pass: auth.into(),
                vip: plan.vip,
                prefix_len: m.prefix_len,
                profile: plan.profile(),
            });
            let m = &mut w.masters[i];
            m.keepalived = true;
            m.running = true;
            m.conf_dir = Some((0o755, 0));
            m.files.insert(
                CONF_PATH.into(),
                File {
                    mode: 0o600,
                    content: conf,
                },
            );
            if plan.profile() == crate::FailoverProfile::Fast {
                m.files.insert(
                    PROBE_SCRIPT_PATH.into(),
                    File {
                        mode: 0o755,
                        content: keepalived::probe_script(),
                    },
                );
                if m.systemd {
                    m.files.insert(
                        PROBE_UNIT_PATH.into(),
                        File {
                            mode: 0o644,
                            content: keepalived::probe_unit(),
                        },
                    );
                }
                m.probe_running = true;
            } else {
                m.files.insert(
                    CHECK_SCRIPT_PATH.into(),
                    File {
                        mode: 0o755,
                        content: keepalived::check_script(),
                    },
                );
            }
        }
        w.holders = BTreeSet::from([holder]);
        self
    }

    /// Masters as TKEStack's controller leaves them: its keepalived.conf (from its template, VIP
    /// and VRID of `plan`) and its static pod, keepalived running in the pod, `holder` holding
    /// the VIP. keepalived is not installed on the host (it runs in the container).
    pub fn tkestack(&self, plan: &Plan, holder: usize) -> &Self {
        let vrid = match plan.mode {
            crate::manifest::Mode::Tke { vrid } => vrid,
            crate::manifest::Mode::ThirdParty { .. } => 1,
        };
        let conf = tkestack_conf("eth0", vrid, &plan.vip.to_string());
        let mut w = self.world();
        for (i, m) in w.masters.iter_mut().enumerate() {
            m.files.insert(
                CONF_PATH.into(),
                File {
                    mode: 0o644,
                    content: conf.clone(),
                },
            );
            m.static_pod = Some(STATIC_POD.into());
            m.running = true;
            m.pod_pid = 1000 + 100 * u32::try_from(i).unwrap_or(0);
        }
        w.holders = BTreeSet::from([holder]);
        self
    }

    /// The restore guard of master `i` fires (its timer ran out): the parked manifest goes back.
    pub fn fire_guard(&self, i: usize) -> &Self {
        let mut w = self.world();
        if w.masters[i].guard_armed {
            w.masters[i].guard_armed = false;
            restore_manifest(&mut w, i);
        }
        self
    }

    /// Set `interrupt` as soon as any master receives the script named `what`.
    pub fn interrupt_on(&self, what: &'static str, interrupt: Interrupt) -> &Self {
        self.world().interrupt_on = Some((what, interrupt));
        self
    }

    /// Put the VIP on exactly these masters, whatever VRRP would do.
    pub fn set_holders(&self, holders: &[usize]) -> &Self {
        self.world().holders = holders.iter().copied().collect();
        self
    }

    /// How VRRP behaves.
    pub fn vrrp(&self, vrrp: Vrrp) -> &Self {
        self.world().vrrp = vrrp;
        self
    }

    /// Whether `VIP:6443` answers from the provisioner host while the VIP is held.
    pub fn api_behind_vip(&self, answers: bool) -> &Self {
        self.world().api_behind_vip = answers;
        self
    }

    /// Every probe from the provisioner host fails with `e` (the proxy is down), or none.
    pub fn probe_error(&self, e: Option<TransportError>) -> &Self {
        self.world().probe_error = e;
        self
    }

    /// The route and address of every probe made so far from the provisioner host.
    pub fn probes(&self) -> Vec<(Route, SocketAddr)> {
        self.world().probes.clone()
    }

    /// The plan of a Cluster over these masters with `ha` as its `spec.features.ha`.
    pub fn plan(&self, ha: &str) -> Plan {
        self.plan_with_proxies(ha, |_| None)
    }

    /// The same, with `proxy(i)` as master `i`'s `proxy` (JSON), if any.
    pub fn plan_with_proxies(&self, ha: &str, proxy: impl Fn(usize) -> Option<String>) -> Plan {
        let machines: Vec<String> = self
            .world()
            .masters
            .iter()
            .enumerate()
            .map(|(i, m)| match proxy(i) {
                None => format!(
                    r#"{{"ip": "{}", "username": "root", "password": "cm9vdHB3"}}"#,
                    m.ip
                ),
                Some(p) => format!(
                    r#"{{"ip": "{}", "username": "root", "password": "cm9vdHB3", "proxy": {p}}}"#,
                    m.ip
                ),
            })
            .collect();
        let text = format!(
            r#"{{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
                 "metadata": {{"name": "fake"}},
                 "spec": {{"type": "Baremetal", "version": "1.30.0",
                          "features": {{"ha": {ha}}},
                          "machines": [{}]}}}}"#,
            machines.join(", ")
        );
        match plan_from_text(&text, "fake.json") {
            Ok(plan) => plan,
            Err(e) => panic!("the fake's plan is invalid: {e}"),
        }
    }

    /// The default TKE HA plan (VIP 10.0.0.100, vrid 101).
    pub fn tke_plan(&self) -> Plan {
        self.plan(r#"{"tke": {"vip": "10.0.0.100"}}"#)
    }

    /// A provisioner over this fleet.
    pub fn provisioner(&self, wait_timeout: Duration) -> Provisioner<'static> {
        Provisioner::with_parts(self.clone(), self.clone(), wait_timeout)
    }

    /// The masters that received a script named `what`, in the order they received it.
    pub fn order_of(&self, what: &str) -> Vec<usize> {
        self.world()
            .sent
            .iter()
            .filter(|s| s.script.what() == what)
            .map(|s| s.host)
            .collect()
    }

    /// Every script master `i` received, in order.
    pub fn sent(&self, i: usize) -> Vec<Script> {
        self.world()
            .sent
            .iter()
            .filter(|s| s.host == i)
            .map(|s| s.script.clone())
            .collect()
    }

    /// What master `i` was sent, by name (`probe`, `apply`, `VIP watch`, ...).
    pub fn whats(&self, i: usize) -> Vec<String> {
        self.sent(i).iter().map(|s| s.what().to_string()).collect()
    }

    /// A master's state now.
    pub fn state(&self, i: usize) -> Master {
        self.world().masters[i].clone()
    }

    /// Who holds the VIP now.
    pub fn holders(&self) -> Vec<usize> {
        self.world().holders.iter().copied().collect()
    }
}

impl Connector for Fleet {
    fn connect(&self, machine: &Machine) -> Result<Box<dyn Remote>, RemoteError> {
        let w = self.world();
        let index = w
            .masters
            .iter()
            .position(|m| m.ip == machine.ip)
            .ok_or_else(|| RemoteError::Connect {
                addr: format!("{}:{}", machine.ip, machine.port),
                message: "no such fake master".into(),
            })?;
        if let Some(message) = &w.masters[index].connect_error {
            return Err(RemoteError::Connect {
                addr: format!("{}:{}", machine.ip, machine.port),
                message: message.clone(),
            });
        }
        Ok(Box::new(FakeRemote {
            fleet: self.clone(),
            index,
            round_trips: 0,
        }))
    }
}

impl Network for Fleet {
    fn tcp_answers(
        &self,
        route: &Route,
        addr: SocketAddr,
        _timeout: Duration,
    ) -> Result<bool, TransportError> {
        let mut w = self.world();
        w.probes.push((route.clone(), addr));
        if let Some(e) = &w.probe_error {
            return Err(e.clone());
        }
        Ok(addr.ip() == w.vip && addr.port() == 6443 && w.api_behind_vip && !w.holders.is_empty())
    }

    fn exchange(
        &self,
        route: &Route,
        addr: SocketAddr,
        _request: &[u8],
        _connect_timeout: Duration,
        _read_timeout: Duration,
        _limit: usize,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let mut w = self.world();
        w.probes.push((route.clone(), addr));
        match &w.probe_error {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }
}

/// The session to one fake master.
#[derive(Debug)]
struct FakeRemote {
    fleet: Fleet,
    index: usize,
    round_trips: u32,
}

fn out(stdout: String, stderr: &str, status: i32) -> ExecOutput {
    ExecOutput {
        stdout,
        stderr: stderr.to_string(),
        status,
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

impl FakeRemote {
    fn record(&mut self, script: &Script) -> MutexGuard<'_, World> {
        self.round_trips += 1;
        let mut w = self.fleet.world();
        w.sent.push(Sent {
            host: self.index,
            script: script.clone(),
        });
        if let Some((what, interrupt)) = &w.interrupt_on
            && *what == script.what()
        {
            interrupt.trigger();
        }
        w
    }
}

/// The probe's answer, from the master's state.
fn probe(w: &World, i: usize, script: &Script) -> ExecOutput {
    let m = &w.masters[i];
    let mut s = format!(
        "@@hostname={}\n@@uid={}\n@@addr=1: lo    inet 127.0.0.1/8 scope host lo\n\
         @@addr=2: eth0    inet {}/{} brd 10.0.0.255 scope global eth0\n",
        m.hostname, m.uid, m.ip, m.prefix_len
    );
    if w.holders.contains(&i) {
        s.push_str(&format!(
            "@@addr=2: eth0    inet {}/{} scope global secondary eth0:vip\n",
            w.vip, m.prefix_len
        ));
    }
    if m.keepalived {
        s.push_str("@@keepalived=/usr/sbin/keepalived\n");
    }
    if let Some(pm) = m.package_manager {
        s.push_str(&format!("@@pkg={pm}\n"));
    }
    if m.systemd {
        s.push_str("@@systemd=1\n");
    }
    for path in [
        CONF_PATH,
        CHECK_SCRIPT_PATH,
        PROBE_SCRIPT_PATH,
        PROBE_UNIT_PATH,
    ] {
        if let Some(f) = m.files.get(path) {
            s.push_str(&format!("@@file={path} {}\n", b64(&f.content)));
            s.push_str(&format!("@@mode={path} {:o} 0 0\n", f.mode));
        }
    }
    if let Some((mode, uid)) = m.conf_dir {
        s.push_str(&format!("@@mode=/etc/keepalived {mode:o} {uid} 0\n"));
    }
    // The installability check runs when the script asks and keepalived is missing.
    if script.text().contains("@@candidate=") && !m.keepalived && m.package_manager.is_some() {
        if let Some(holder) = &m.dpkg_lock {
            s.push_str(&format!("@@dpkg_lock={holder}\n"));
        }
        match &m.candidate {
            Ok(v) => s.push_str(&format!("@@candidate={v}\n")),
            Err(log) => s.push_str(&format!("@@no_candidate={}\n", b64(log))),
        }
    }
    if m.pod_managed() {
        for (path, pod) in [
            (STATIC_POD_MANIFEST, &m.static_pod),
            (PARKED_MANIFEST, &m.parked_pod),
        ] {
            if let Some(pod) = pod {
                s.push_str(&format!("@@static_pod={path} {}\n", b64(pod)));
            }
        }
        if m.running {
            s.push_str(&format!(
                "@@keepalived_pid={}\n@@keepalived_pid={}\n",
                m.pod_pid,
                m.pod_pid + 1
            ));
        }
    } else if m.running {
        s.push_str("@@running=1\n");
    }
    if m.probe_running {
        s.push_str("@@probe_running=1\n@@probe_reason=ok\n");
    }
    if m.tkestack_hairpin {
        s.push_str("@@tkestack_hairpin=1\n");
    }
    if m.apiserver_manifest {
        s.push_str("@@manifest=1\n");
    }
    if m.apiserver_listening {
        s.push_str("@@listening=1\n");
    }
    if m.files.contains_key(CHECK_SCRIPT_PATH) {
        let pass = !m.apiserver_manifest || m.apiserver_listening;
        s.push_str(&format!("@@health_rc={}\n", if pass { 0 } else { 1 }));
    }
    s.push_str("@@tool=iptables\n@@tool=ping\n");
    if m.vip_answers {
        s.push_str("@@vip_ping=1\n");
    }
    s.push_str("@@end=1\n");
    out(s, "", 0)
}

/// The apply script's effect: install, uploads (with their check), start or reload, as its
/// markers tell: the script installs when it can print `@@installed=`, and reloads a running
/// keepalived only when it can print `@@action=reloaded`.
fn apply(w: &mut World, i: usize, script: &Script) -> ExecOutput {
    let text = script.text();
    let mut s = String::new();
    let m = &mut w.masters[i];
    if text.contains("@@installed=") {
        if m.keepalived {
            s.push_str("@@present=1\n");
        } else if m.install_fails {
            return out(
                s + "@@install_failed=1\n",
                "E: Unable to locate package keepalived\n",
                4,
            );
        } else {
            m.keepalived = true;
            s.push_str(&format!(
                "@@installed={}\n",
                m.candidate.clone().unwrap_or_default()
            ));
        }
    }
    if m.conf_dir.is_none() {
        m.conf_dir = Some((0o755, 0));
    }
    for u in script.uploads() {
        if u.verify.is_some() && m.rejects_config {
            return out(
                s + "@@test_failed=1\n",
                "(/etc/keepalived/keepalived.conf.tkeha-new: Line 20) Unknown keyword 'vrrp_instanc'\n",
                5,
            );
        }
        m.files.insert(
            u.path.clone(),
            File {
                mode: u.mode,
                content: u.content.clone(),
            },
        );
        s.push_str(&format!("@@wrote={}\n", u.path));
    }
    // The probe starts before keepalived reads its config; it is removed after.
    if text.contains("@@probe=restarted") {
        s.push_str(if m.probe_running {
            "@@probe=restarted\n"
        } else {
            "@@probe=started\n"
        });
        m.probe_running = true;
    } else if text.contains("@@probe=started") && !m.probe_running {
        s.push_str("@@probe=started\n");
        m.probe_running = true;
    }
    if m.start_fails && !m.running {
        return out(s, "keepalived did not start\n", 6);
    }
    if !m.running {
        s.push_str("@@action=started\n");
        m.starts += 1;
    } else if text.contains("@@action=reloaded") {
        s.push_str("@@action=reloaded\n");
        m.reloads += 1;
    }
    m.running = true;
    if text.contains("@@probe=removed") {
        m.probe_running = false;
        m.files.remove(PROBE_SCRIPT_PATH);
        m.files.remove(PROBE_UNIT_PATH);
        s.push_str("@@probe=removed\n");
    }
    w.settle();
    out(s + "@@end=1\n", "", 0)
}

/// The uninstall script's effect on a TKE HA master.
fn uninstall(w: &mut World, i: usize) -> ExecOutput {
    let mut s = String::new();
    let m = &mut w.masters[i];
    match m.files.get(CONF_PATH) {
        Some(f) if keepalived::is_ours(&f.content) => {
            if m.running {
                m.running = false;
                s.push_str("@@stopped=1\n");
            }
            m.files.remove(CONF_PATH);
            s.push_str(&format!("@@removed={CONF_PATH}\n"));
        }
        Some(_) => s.push_str("@@foreign_conf=1\n"),
        None => {}
    }
    if m.files
        .get(CHECK_SCRIPT_PATH)
        .is_some_and(|f| keepalived::is_ours(&f.content))
    {
        m.files.remove(CHECK_SCRIPT_PATH);
        s.push_str(&format!("@@removed={CHECK_SCRIPT_PATH}\n"));
    }
    if m.keepalived {
        s.push_str("@@package=1:2.2.7-1+b2\n");
    }
    let stale = m.stale_vip;
    w.settle();
    if w.holders.remove(&i) {
        if stale {
            w.holders.insert(i);
            s.push_str("@@vip_still=1\n");
        } else {
            s.push_str("@@vip_removed=1\n");
        }
    }
    out(s + "@@end=1\n", "", 0)
}

/// The park script's effect: the guard is armed, the manifest parked, kubelet stops the pod.
fn park(w: &mut World, i: usize, script: &Script) -> ExecOutput {
    let m = &mut w.masters[i];
    if m.static_pod.is_none() {
        return out("@@no_manifest=1\n@@end=1\n".into(), "", 0);
    }
    if m.parked_pod.is_some() {
        return out("@@busy=1\n@@end=1\n".into(), "", 0);
    }
    for u in script.uploads() {
        m.files.insert(
            u.path.clone(),
            File {
                mode: u.mode,
                content: u.content.clone(),
            },
        );
    }
    m.guard_armed = true;
    m.parked_pod = m.static_pod.take();
    m.running = false;
    m.static_pod = m.rewrite_during_drill.take();
    let guard = if m.systemd { "timer" } else { "sleep" };
    w.settle();
    out(format!("@@guard={guard}\n@@parked=1\n@@end=1\n"), "", 0)
}

/// What restore.sh does: the parked manifest goes back (an identical copy of one in place is
/// dropped), and kubelet starts the pod again.
fn restore_manifest(w: &mut World, i: usize) {
    let m = &mut w.masters[i];
    match (&m.static_pod, m.parked_pod.take()) {
        (None, Some(parked)) => m.static_pod = Some(parked),
        (Some(now), Some(parked)) if *now != parked => m.parked_pod = Some(parked),
        _ => {}
    }
    if m.static_pod.is_some() && !m.running && !m.kubelet_stuck {
        m.running = true;
        m.pod_pid += 10;
        if m.preempts {
            w.holders = BTreeSet::from([i]);
        }
    }
    w.settle();
}

/// The restore script's effect: the guard is disarmed, then restore.sh's work.
fn restore(w: &mut World, i: usize) -> ExecOutput {
    let m = &mut w.masters[i];
    m.guard_armed = false;
    m.files.remove(RESTORE_SCRIPT);
    restore_manifest(w, i);
    let m = &w.masters[i];
    let mut s = String::new();
    if m.static_pod.is_some() {
        s.push_str("@@in_place=1\n");
    }
    if m.parked_pod.is_some() {
        s.push_str("@@still_parked=1\n");
    }
    if m.static_pod.is_some() && m.running {
        s.push_str(&format!("@@started={}\n", m.pod_pid));
    }
    out(s + "@@end=1\n", "", 0)
}

/// `end=$((SECONDS+N))` and `sleep X` of the watch script: how many samples the real loop takes.
fn samples(script: &Script) -> usize {
    let text = script.text();
    let secs: f64 = text
        .split("SECONDS+")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1.0);
    let interval: f64 = text
        .split("sleep ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.1);
    // Clamped so a slip in the parsing cannot hang a test.
    ((secs / interval) as usize).clamp(1, 2000)
}

impl FakeRemote {
    /// The master's answer to `script` (recorded as sent).
    fn answer(&mut self, script: &Script) -> Result<ExecOutput, RemoteError> {
        let i = self.index;
        let mut w = self.record(script);
        let m = &w.masters[i];
        if m.sudo_denied {
            return Err(RemoteError::Sudo {
                user: "tkeha".into(),
                message: "sudo: a password is required".into(),
            });
        }
        if m.broken.contains(&script.what()) {
            return Err(RemoteError::Exec {
                what: script.what().into(),
                message: "channel closed".into(),
            });
        }
        if let Some(reply) = m.replies.get(script.what()) {
            return Ok(reply.clone());
        }
        Ok(match script.what() {
            "probe" => {
                let answer = probe(&w, i, script);
                if w.masters[i].takes_vip_after_probe {
                    w.holders.insert(i);
                }
                answer
            }
            "apply" => apply(&mut w, i, script),
            "uninstall" => uninstall(&mut w, i),
            "VIP holders" => out(
                format!("@@holds={}\n@@end=1\n", u8::from(w.holders.contains(&i))),
                "",
                0,
            ),
            "park keepalived manifest" => park(&mut w, i, script),
            "restore keepalived manifest" => restore(&mut w, i),
            "stop keepalived" => {
                if m.stop_fails {
                    return Err(RemoteError::Exec {
                        what: script.what().into(),
                        message: "channel closed".into(),
                    });
                }
                let was = w.masters[i].running;
                w.masters[i].running = false;
                w.settle();
                out(
                    format!("{}@@end=1\n", if was { "@@stopped=1\n" } else { "" }),
                    "",
                    0,
                )
            }
            "restart keepalived" => {
                w.masters[i].running = true;
                if w.masters[i].preempts {
                    w.holders = BTreeSet::from([i]);
                }
                w.settle();
                out("@@action=started\n@@end=1\n".into(), "", 0)
            }
            other => out(String::new(), &format!("fake: no answer for {other}"), 127),
        })
    }
}

impl Remote for FakeRemote {
    fn run(&mut self, script: &Script, _timeout: Duration) -> Result<ExecOutput, RemoteError> {
        self.answer(script)
    }

    /// The VIP watch yields its samples; any other script is answered as by `run`, its lines
    /// handed over as a streamed script prints them (stdout, then stderr, then `@@exit=`),
    /// and cut where the master says.
    fn stream(
        &mut self,
        script: &Script,
        _line_timeout: Duration,
        on_line: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), RemoteError> {
        if script.what() != "VIP watch" {
            let answer = self.answer(script)?;
            let cut = self.fleet.world().masters[self.index]
                .cut
                .filter(|(what, _)| *what == script.what())
                .map(|(_, n)| n);
            let exit = format!("@@exit={}", answer.status);
            let lines = answer
                .stdout
                .lines()
                .chain(answer.stderr.lines())
                .chain(std::iter::once(exit.as_str()));
            for (n, line) in lines.enumerate() {
                if cut == Some(n) {
                    return Err(RemoteError::Exec {
                        what: script.what().into(),
                        message: "connection reset by peer".into(),
                    });
                }
                if !on_line(line) {
                    break;
                }
            }
            return Ok(());
        }
        drop(self.record(script));
        // The same number of samples as the real loop, a millisecond apart.
        for _ in 0..samples(script) {
            let holds = self.fleet.world().holders.contains(&self.index);
            if !on_line(if holds { "1" } else { "0" }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    fn round_trips(&self) -> u32 {
        self.round_trips
    }
}

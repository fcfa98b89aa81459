//! The probe: one read-only script per master that gathers everything a plan needs, and its typed result ([`Probe`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;

use super::apply::PackageManager;
use super::hairpin::hairpin_rule;
use super::{Markers, PATH_EXPORT, Script};
use crate::keepalived::{APISERVER_MANIFEST, CHECK_SCRIPT_PATH, CONF_PATH};

/// What the probe should also do besides reading.
#[derive(Debug, Clone, Default)]
pub struct ProbeRequest {
    /// Test whether this address answers (ping and ARP) from the master.
    pub vip_answer_test: Option<IpAddr>,
    /// Third-party check: start a temporary listener on :6443 (if free) answering this token.
    pub listener_token: Option<String>,
    /// Report whether the hairpin rule for (VIP, vport) is present.
    pub hairpin: Option<(IpAddr, u16)>,
}

/// Seconds the VIP-in-use test waits for an ICMP or ARP answer.
pub const VIP_ANSWER_WAIT: &str = "0.5";

/// Seconds a temporary token listener lives at most.
pub const LISTENER_LIFETIME_SECS: u32 = 30;

/// The probe script.
pub fn probe_script(req: &ProbeRequest) -> Script {
    let mut s = String::from("set +e\n");
    s.push_str(PATH_EXPORT);
    if let Some(vip) = req.vip_answer_test {
        // Started first, in the background, so the wait overlaps the reads below. On a LAN an
        // ARP or ICMP answer takes milliseconds; arping only takes whole seconds, so `timeout` cuts it.
        s.push_str(&format!(
            "( ping -c1 -W{w} {vip} >/dev/null 2>&1 && echo \"@@vip_ping=1\" ) &\n\
             ( command -v arping >/dev/null 2>&1 && timeout {w} arping -c1 -w1 {vip} >/dev/null 2>&1 && echo \"@@vip_arp=1\" ) &\n",
            w = VIP_ANSWER_WAIT
        ));
    }
    s.push_str(&format!(
        r#"echo "@@hostname=$(hostname 2>/dev/null)"
echo "@@uid=$(id -u)"
ip -o addr show 2>/dev/null | sed 's/^/@@addr=/'
k=$(command -v keepalived 2>/dev/null) && echo "@@keepalived=$k"
for pm in apt-get dnf yum zypper; do if command -v $pm >/dev/null 2>&1; then echo "@@pkg=$pm"; break; fi; done
[ -d /run/systemd/system ] && echo "@@systemd=1"
for f in {CONF_PATH} {CHECK_SCRIPT_PATH}; do [ -f "$f" ] && echo "@@file=$f $(base64 -w0 "$f")"; done
if [ -d /run/systemd/system ]; then
  systemctl is-active -q keepalived 2>/dev/null && echo "@@running=1"
else
  p=$(cat /run/keepalived.pid 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "@@running=1"
fi
[ -f {APISERVER_MANIFEST} ] && echo "@@manifest=1"
timeout 1 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null && echo "@@listening=1"
if [ -x {CHECK_SCRIPT_PATH} ]; then {CHECK_SCRIPT_PATH} >/dev/null 2>&1; echo "@@health_rc=$?"; fi
for t in socat python3 iptables arping ping; do command -v $t >/dev/null 2>&1 && echo "@@tool=$t"; done
"#
    ));
    if req.vip_answer_test.is_some() {
        s.push_str("wait\n");
    }
    s.push_str(&super::probe_tkestack::snippet(req));
    if let Some((vip, vport)) = req.hairpin {
        s.push_str(&format!(
            "iptables -w 5 -t nat -C {} 2>/dev/null && echo \"@@hairpin=1\"\n",
            hairpin_rule(vip, vport)
        ));
    }
    if let Some(token) = &req.listener_token {
        // socat if present, else python3; both answer every connection with the token and close.
        s.push_str(&format!(
            r#"if ! timeout 1 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null; then
  if command -v socat >/dev/null 2>&1; then
    nohup timeout {life} socat TCP-LISTEN:6443,reuseaddr,fork SYSTEM:'echo {token}' >/dev/null 2>&1 </dev/null &
    echo "@@listener=$!"
  elif command -v python3 >/dev/null 2>&1; then
    nohup timeout {life} python3 -c 'import socket,sys
s=socket.socket(socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(("",6443)); s.listen(64)
while True:
    c,_=s.accept(); c.sendall(sys.argv[1].encode()+b"\n"); c.close()' {token} 0.0.0.0 >/dev/null 2>&1 </dev/null &
    echo "@@listener=$!"
  else
    echo "@@listener_none=1"
  fi
fi
sleep 0.2
"#,
            life = LISTENER_LIFETIME_SECS
        ));
    }
    s.push_str("echo \"@@end=1\"\n");
    Script::shell("probe", s)
}

/// One address line of `ip -o addr show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    pub iface: String,
    pub net: IpNet,
}

/// Parse `ip -o addr show` lines (`2: eth0    inet 10.0.0.1/24 brd ... scope global eth0`).
pub fn parse_ip_addr_line(line: &str) -> Option<IfAddr> {
    let mut it = line.split_whitespace();
    let _idx = it.next()?;
    let iface = it.next()?.split('@').next()?.to_string();
    let family = it.next()?;
    if family != "inet" && family != "inet6" {
        return None;
    }
    let cidr = it.next()?;
    let net: IpNet = cidr.parse().ok()?;
    Some(IfAddr { iface, net })
}

/// The interface and prefix that hold exactly this address (not a substring match).
pub fn find_interface(addrs: &[IfAddr], ip: IpAddr) -> Option<&IfAddr> {
    addrs.iter().find(|a| a.net.addr() == ip)
}

/// Everything the probe learned about one master.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub hostname: String,
    pub uid: Option<u32>,
    pub addrs: Vec<IfAddr>,
    pub keepalived: Option<String>,
    pub package_manager: Option<PackageManager>,
    pub systemd: bool,
    /// Current content of our files (path -> text).
    pub files: BTreeMap<String, String>,
    pub running: bool,
    pub apiserver_manifest: bool,
    pub apiserver_listening: bool,
    pub health_rc: Option<i32>,
    pub tools: Vec<String>,
    pub vip_answers: bool,
    pub hairpin: bool,
    /// PID of a temporary token listener.
    pub listener_pid: Option<u32>,
    /// Neither socat nor python3 was there to listen with.
    pub listener_unavailable: bool,
    /// The script ran to its end.
    pub complete: bool,
    /// TKEStack's keepalived static pod manifest, when it is in kubelet's manifests directory.
    pub static_pod: Option<String>,
    /// The same manifest parked by a tkeha drill (running, or interrupted).
    pub parked_static_pod: Option<String>,
    /// PIDs of the processes named `keepalived` (in a container too).
    pub keepalived_pids: Vec<u32>,
    /// TKEStack's own hairpin rule (third-party HA) is present.
    pub tkestack_hairpin: bool,
    /// Who set up HA on this master (decided from everything above).
    pub manager: super::probe_tkestack::Manager,
}

impl Probe {
    /// Whether an address is assigned to one of this master's interfaces.
    pub fn holds(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.net.addr() == ip)
    }
    pub fn has_tool(&self, t: &str) -> bool {
        self.tools.iter().any(|x| x == t)
    }
    pub fn file(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(String::as_str)
    }
}

/// Parse the probe's output.
pub fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    let markers = Markers::parse(out);
    for (key, value) in markers.iter() {
        match key {
            "hostname" => p.hostname = value.trim().to_string(),
            "uid" => p.uid = value.trim().parse().ok(),
            "addr" => p.addrs.extend(parse_ip_addr_line(value)),
            "keepalived" => p.keepalived = Some(value.trim().to_string()),
            "pkg" => p.package_manager = PackageManager::parse(value),
            "systemd" => p.systemd = true,
            "file" => {
                if let Some((path, b64)) = value.split_once(' ') {
                    let text = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    p.files.insert(path.to_string(), text);
                }
            }
            "running" => p.running = true,
            "manifest" => p.apiserver_manifest = true,
            "listening" => p.apiserver_listening = true,
            "health_rc" => p.health_rc = value.trim().parse().ok(),
            "tool" => p.tools.push(value.trim().to_string()),
            "vip_ping" | "vip_arp" => p.vip_answers = true,
            "hairpin" => p.hairpin = true,
            "listener" => p.listener_pid = value.trim().parse().ok(),
            "listener_none" => p.listener_unavailable = true,
            "end" => p.complete = true,
            _ => {}
        }
    }
    super::probe_tkestack::parse_into(&markers, &mut p);
    p
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const IP_ADDR: &str = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.0.10/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
3: eth1@if7    inet 10.0.0.1/16 brd 10.0.255.255 scope global eth1\\       valid_lft forever preferred_lft forever
3: eth1@if7    inet 10.0.0.100/16 scope global secondary eth1:vip\\       valid_lft forever preferred_lft forever
2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever preferred_lft forever";

    fn addrs() -> Vec<IfAddr> {
        IP_ADDR.lines().filter_map(parse_ip_addr_line).collect()
    }

    #[test]
    fn parses_ip_o_addr() {
        let a = addrs();
        assert_eq!(a.len(), 6);
        assert_eq!(a[2].iface, "eth0");
        assert_eq!(a[2].net.to_string(), "10.0.0.10/24");
        assert_eq!(a[3].iface, "eth1", "the @peer suffix is dropped");
    }

    #[test]
    fn exact_match_not_substring() {
        let a = addrs();
        // 10.0.0.1 is a substring of 10.0.0.10 and 10.0.0.100: only eth1's exact address counts.
        let hit = find_interface(&a, "10.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(hit.iface, "eth1");
        assert_eq!(hit.net.prefix_len(), 16);
        assert_eq!(
            find_interface(&a, "10.0.0.10".parse().unwrap())
                .unwrap()
                .iface,
            "eth0"
        );
        assert!(find_interface(&a, "10.0.0.2".parse().unwrap()).is_none());
    }

    #[test]
    fn parses_probe_output() {
        let conf = base64::engine::general_purpose::STANDARD.encode("auth_pass abc\n");
        let out = format!(
            "@@hostname=m1\n@@uid=0\n@@addr=2: eth0    inet 10.77.0.11/24 brd 10.77.0.255 scope global eth0\n\
             @@keepalived=/usr/sbin/keepalived\n@@pkg=apt-get\n@@file=/etc/keepalived/keepalived.conf {conf}\n\
             @@running=1\n@@health_rc=1\n@@tool=socat\n@@vip_arp=1\n@@listener=4242\nnoise\n@@end=1\n"
        );
        let p = parse_probe(&out);
        assert_eq!(p.hostname, "m1");
        assert_eq!(p.uid, Some(0));
        assert!(p.holds("10.77.0.11".parse().unwrap()));
        assert!(!p.holds("10.77.0.1".parse().unwrap()));
        assert_eq!(p.package_manager, Some(PackageManager::AptGet));
        assert_eq!(
            p.file("/etc/keepalived/keepalived.conf"),
            Some("auth_pass abc\n")
        );
        assert!(p.running && p.vip_answers && p.complete && !p.systemd);
        assert_eq!(p.health_rc, Some(1));
        assert!(p.has_tool("socat"));
        assert_eq!(p.listener_pid, Some(4242));
    }

    #[test]
    fn probe_script_only_does_what_is_asked() {
        let plain = probe_script(&ProbeRequest::default());
        let plain = plain.text();
        assert!(!plain.contains("ping") || !plain.contains("ping -c1"));
        assert!(!plain.contains("TCP-LISTEN"));
        let full = probe_script(&ProbeRequest {
            vip_answer_test: Some("10.0.0.100".parse().unwrap()),
            listener_token: Some("tok123".into()),
            hairpin: Some(("10.0.0.100".parse().unwrap(), 16443)),
        });
        let full = full.text();
        assert!(full.contains("ping -c1 -W0.5 10.0.0.100"));
        assert!(full.contains("timeout 0.5 arping -c1 -w1 10.0.0.100"));
        // The answer test starts before the reads and is waited for before the end marker.
        assert!(full.find("ping -c1").unwrap_or(usize::MAX) < full.find("@@hostname").unwrap_or(0));
        assert!(full.find("\nwait\n").unwrap_or(usize::MAX) < full.find("@@end=1").unwrap_or(0));
        assert!(full.contains("SYSTEM:'echo tok123'"));
        assert!(full.contains(
            "--dport 16443 -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443"
        ));
    }
}

//! The probe: one read-only script per master that gathers everything a plan needs, and its typed result ([`Probe`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;

use super::apply::PackageManager;
use super::hairpin::hairpin_rule;
use super::{Markers, PATH_EXPORT, Script};
use crate::keepalived::{
    APISERVER_MANIFEST, CHECK_SCRIPT_PATH, CONF_PATH, PROBE_PID_PATH, PROBE_SCRIPT_PATH,
    PROBE_UNIT, PROBE_UNIT_PATH, REASON_PATH,
};

/// What the probe should also do besides reading.
#[derive(Debug, Clone, Default)]
pub struct ProbeRequest {
    /// Test whether this address answers (ping and ARP) from the master.
    pub vip_answer_test: Option<IpAddr>,
    /// Third-party check: start a temporary listener on :6443 (if free) answering this token.
    pub listener_token: Option<String>,
    /// Report whether the hairpin rule for (VIP, vport) is present.
    pub hairpin: Option<(IpAddr, u16)>,
    /// When keepalived is missing, ask the package manager whether it can install it (see
    /// [`installable_check`]).
    pub installable: bool,
}

/// Seconds the VIP-in-use test waits for an ICMP or ARP answer.
pub const VIP_ANSWER_WAIT: &str = "0.5";

/// Seconds a temporary token listener lives at most.
pub const LISTENER_LIFETIME_SECS: u32 = 30;

/// Seconds the installability check may take at most (a package index refresh included).
pub const INSTALLABLE_TIMEOUT_SECS: u32 = 120;

/// Lines of the package manager's output kept when keepalived cannot be installed.
pub const INSTALL_LOG_LINES: usize = 8;

/// The dpkg locks apt takes (their holders are reported: the install would wait for them).
const DPKG_LOCKS: [&str; 2] = ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"];

/// The directories we put files in: their mode and owner are reported.
pub const OUR_DIRS: [&str; 1] = ["/etc/keepalived"];

/// Bash that runs when keepalived is missing (`$k` empty) and a package manager was found
/// (`$pm_found`): can the package manager install keepalived now, from its sources as
/// configured? Prints `@@candidate=VERSION`, or `@@no_candidate=` and the base64 of the tail of
/// the package manager's output. Also prints `@@dpkg_lock=PID COMMAND` for a process holding
/// a dpkg lock (read from /proc/locks, without taking the lock).
///
/// apt: `apt-get update` into a private, temporary copy of the package lists (`mktemp -d`,
/// removed at exit; indexes kept compressed, no translations, so a full distribution mirror
/// costs a few MB there), with apt's binary caches off, then `apt-get install --simulate` against
/// those lists. That proves the source answers now and that apt resolves keepalived and its
/// dependencies, and it leaves /var/lib/apt/lists and /var/cache/apt as they were. `apt-get
/// update` exits 0 when a source fails, so only the simulated install is the verdict.
/// dnf, yum and zypper are asked through their own caches (not exercised in the lab).
pub fn installable_check() -> String {
    let locks = DPKG_LOCKS.join(" ");
    format!(
        r#"if [ -z "$k" ] && [ -n "$pm_found" ]; then
  tk_tmp=$(mktemp -d) && chmod 0755 "$tk_tmp" && trap 'rm -rf "$tk_tmp"' EXIT
  if [ -n "$tk_tmp" ]; then
    log="$tk_tmp/log"; cand=
    case $pm_found in
      apt-get)
        for f in {locks}; do
          ino=$(stat -c %i "$f" 2>/dev/null) || continue
          awk -v i=":$ino$" '$2 != "->" && $6 ~ i {{print $5}}' /proc/locks 2>/dev/null | sort -u | while read -r lp; do echo "@@dpkg_lock=$lp $(cat /proc/$lp/comm 2>/dev/null)"; done
        done
        mkdir -p "$tk_tmp/lists"
        o="-o Dir::State::Lists=$tk_tmp/lists -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Acquire::Languages=none -o Acquire::GzipIndexes=true"
        timeout {limit} apt-get -q $o update >"$log" 2>&1
        sim=$(timeout 30 apt-get -q $o install --simulate keepalived 2>&1); echo "$sim" >>"$log"
        cand=$(printf '%s\n' "$sim" | sed -n 's/^Inst keepalived (\([^ ]*\).*/\1/p' | head -n1) ;;
      dnf|yum)
        timeout {limit} $pm_found -q list --available keepalived >"$log" 2>&1 \
          && cand=$(awk '$1 ~ /^keepalived\./ {{print $2; exit}}' "$log") ;;
      zypper)
        timeout {limit} zypper -n -q search -s --match-exact -t package keepalived >"$log" 2>&1 \
          && cand=$(awk -F'|' '$2 ~ /^ *keepalived *$/ {{gsub(/ /, "", $4); print $4; exit}}' "$log") ;;
    esac
    if [ -n "$cand" ]; then echo "@@candidate=$cand"
    else
      tailf=$(grep -E '^(Err|W|E):' "$log" | tail -n {lines}); [ -n "$tailf" ] || tailf=$(tail -n {lines} "$log")
      echo "@@no_candidate=$(printf '%s' "$tailf" | base64 -w0)"
    fi
  fi
fi
"#,
        limit = INSTALLABLE_TIMEOUT_SECS,
        lines = INSTALL_LOG_LINES,
    )
}

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
pm_found=; for pm in apt-get dnf yum zypper; do if command -v $pm >/dev/null 2>&1; then echo "@@pkg=$pm"; pm_found=$pm; break; fi; done
[ -d /run/systemd/system ] && echo "@@systemd=1"
for f in {CONF_PATH} {CHECK_SCRIPT_PATH} {PROBE_SCRIPT_PATH} {PROBE_UNIT_PATH}; do [ -f "$f" ] && echo "@@file=$f $(base64 -w0 "$f")"; done
for f in {CONF_PATH} {CHECK_SCRIPT_PATH} {PROBE_SCRIPT_PATH} {PROBE_UNIT_PATH} {dirs}; do [ -e "$f" ] && echo "@@mode=$f $(stat -c '%a %u %g' "$f")"; done
if [ -d /run/systemd/system ]; then
  systemctl is-active -q keepalived 2>/dev/null && echo "@@running=1"
  systemctl is-active -q {PROBE_UNIT} 2>/dev/null && echo "@@probe_running=1"
else
  p=$(cat /run/keepalived.pid 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "@@running=1"
  p=$(cat {PROBE_PID_PATH} 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "@@probe_running=1"
fi
[ -f {REASON_PATH} ] && echo "@@probe_reason=$(head -c 40 {REASON_PATH} | tr -cd 'a-z-')"
[ -f {APISERVER_MANIFEST} ] && echo "@@manifest=1"
timeout 1 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null && echo "@@listening=1"
if [ -x {CHECK_SCRIPT_PATH} ]; then {CHECK_SCRIPT_PATH} >/dev/null 2>&1; echo "@@health_rc=$?"; fi
for t in socat python3 iptables arping ping; do command -v $t >/dev/null 2>&1 && echo "@@tool=$t"; done
"#,
        dirs = OUR_DIRS.join(" ")
    ));
    if req.installable {
        s.push_str(&installable_check());
    }
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

/// Permission bits and owner of a file or directory on a master (`stat -c '%a %u %g'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode {
    /// Permission bits (`0o600`).
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
}

impl FileMode {
    /// Parse `600 0 0`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut it = text.split_whitespace();
        let mode = u32::from_str_radix(it.next()?, 8).ok()?;
        let uid = it.next()?.parse().ok()?;
        let gid = it.next()?.parse().ok()?;
        Some(FileMode { mode, uid, gid })
    }

    /// Owned by root:root with exactly these permission bits.
    pub fn is_root_owned(self, mode: u32) -> bool {
        self.uid == 0 && self.gid == 0 && self.mode == mode
    }

    /// Someone other than root can change what is inside (a directory) or the file itself:
    /// not root-owned, or writable by its group or by others.
    pub fn writable_by_others(self) -> bool {
        self.uid != 0 || self.mode & 0o022 != 0
    }
}

/// Whether the package manager can install keepalived now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// It would install this version.
    Available(String),
    /// It cannot: the tail of its output says why (an unreachable source, no such package).
    Missing(String),
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
    /// Mode and owner of our files and directories that exist (path -> mode).
    pub modes: BTreeMap<String, FileMode>,
    /// What the package manager said about installing keepalived (asked only when it is
    /// missing and [`ProbeRequest::installable`] was set).
    pub candidate: Option<Candidate>,
    /// Processes holding a dpkg lock (`PID COMMAND`): an install would wait for them.
    pub dpkg_lock_holders: Vec<String>,
    pub running: bool,
    pub apiserver_manifest: bool,
    pub apiserver_listening: bool,
    pub health_rc: Option<i32>,
    /// The fast profile's apiserver probe runs.
    pub probe_running: bool,
    /// Its latest verdict (`ok`, `bootstrap`, `not-running`, `not-answering`).
    pub probe_reason: Option<String>,
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

/// Longest package manager complaint kept, in characters.
const MAX_LOG_CHARS: usize = 1500;

/// Several lines of a tool's output as one line (` | ` between them), bounded, control
/// characters replaced, and the user and password of any `scheme://user:pass@host` URL
/// hidden (a package source can carry them): it goes into a one-line error message.
pub fn one_line(text: &str) -> String {
    let joined = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    let joined = hide_userinfo(&joined);
    let clean: String = joined
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if clean.chars().count() > MAX_LOG_CHARS {
        let tail: String = clean
            .chars()
            .skip(clean.chars().count() - MAX_LOG_CHARS)
            .collect();
        format!("...{tail}")
    } else {
        clean
    }
}

/// `scheme://user:pass@host` becomes `scheme://***@host` wherever it appears.
fn hide_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
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
            "mode" => {
                if let Some((path, m)) = value.split_once(' ')
                    && let Some(m) = FileMode::parse(m)
                {
                    p.modes.insert(path.to_string(), m);
                }
            }
            "candidate" => p.candidate = Some(Candidate::Available(value.trim().to_string())),
            "no_candidate" => {
                let text = base64::engine::general_purpose::STANDARD
                    .decode(value.trim())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                p.candidate = Some(Candidate::Missing(one_line(&text)));
            }
            "dpkg_lock" => p.dpkg_lock_holders.push(value.trim().to_string()),
            "running" => p.running = true,
            "probe_running" => p.probe_running = true,
            "probe_reason" => p.probe_reason = Some(value.trim().to_string()),
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
    fn parses_modes_candidates_and_lock_holders() {
        let log = base64::engine::general_purpose::STANDARD.encode(
            "W: Failed to fetch http://10.77.2.1:80/./InRelease  Could not connect\nE: Unable to locate package keepalived\n",
        );
        let out = format!(
            "@@mode=/etc/keepalived/keepalived.conf 644 0 0\n@@mode=/etc/keepalived 777 1000 0\n\
             @@dpkg_lock=812 unattended-upgr\n@@no_candidate={log}\n@@end=1\n"
        );
        let p = parse_probe(&out);
        let conf = p.modes["/etc/keepalived/keepalived.conf"];
        assert_eq!((conf.mode, conf.uid, conf.gid), (0o644, 0, 0));
        assert!(!conf.is_root_owned(0o600) && conf.is_root_owned(0o644));
        assert!(conf.mode & 0o004 != 0, "world-readable");
        assert!(p.modes["/etc/keepalived"].writable_by_others());
        assert!(!FileMode::parse("755 0 0").unwrap().writable_by_others());
        assert!(FileMode::parse("755 5 0").unwrap().writable_by_others());
        assert_eq!(FileMode::parse("x 0 0"), None);
        assert_eq!(p.dpkg_lock_holders, ["812 unattended-upgr"]);
        assert_eq!(
            p.candidate,
            Some(Candidate::Missing(
                "W: Failed to fetch http://10.77.2.1:80/./InRelease  Could not connect | E: Unable to locate package keepalived".into()
            ))
        );
        let ok = parse_probe("@@candidate=1:2.2.7-1+b2\n@@end=1\n");
        assert_eq!(
            ok.candidate,
            Some(Candidate::Available("1:2.2.7-1+b2".into()))
        );
    }

    #[test]
    fn credentials_in_a_source_url_are_hidden() {
        assert_eq!(
            one_line("W: Failed to fetch http://bob:s3cret@mirror.example/debian/InRelease  401"),
            "W: Failed to fetch http://***@mirror.example/debian/InRelease  401"
        );
        assert_eq!(
            one_line("Err:1 http://10.77.1.1:80 ./ InRelease"),
            "Err:1 http://10.77.1.1:80 ./ InRelease"
        );
    }

    #[test]
    fn one_line_is_bounded_and_clean() {
        assert_eq!(one_line("a\n\n  b \n"), "a | b");
        assert_eq!(one_line("x\u{1b}[8my"), "x?[8my");
        let long = "e".repeat(5000);
        let short = one_line(&long);
        assert!(short.starts_with("...") && short.chars().count() == MAX_LOG_CHARS + 3);
    }

    #[test]
    fn the_installable_check_uses_private_lists_and_the_simulated_install() {
        let plain = probe_script(&ProbeRequest::default());
        assert!(
            !plain.text().contains("--simulate"),
            "asked only when requested"
        );
        let s = probe_script(&ProbeRequest {
            installable: true,
            ..ProbeRequest::default()
        });
        let text = s.text();
        assert!(
            text.contains("tk_tmp=$(mktemp -d)") && text.contains("trap 'rm -rf \"$tk_tmp\"' EXIT")
        );
        assert!(text.contains(
            "-o Dir::State::Lists=$tk_tmp/lists -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache="
        ));
        let update = text.find("apt-get -q $o update").unwrap_or(usize::MAX);
        let simulate = text
            .find("apt-get -q $o install --simulate keepalived")
            .unwrap_or(0);
        assert!(update < simulate, "{text}");
        assert!(
            !text.contains("/var/lib/apt/lists"),
            "the system's lists are not touched"
        );
        assert!(text.contains("/proc/locks"));
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
            installable: true,
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

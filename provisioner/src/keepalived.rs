//! keepalived.conf and the apiserver health-check script: rendering, and reading back the cluster's auth_pass.
//!
//! Timings (measured on the network-namespace lab; current figures in BENCHMARKS.md): advert_int 1
//! with a check every 1 s that must fail twice moves the VIP within 2.5 s of apiserver death
//! (median 1.66 s); a graceful stop (priority-0 advert) moves it in under 1 s. VRRPv2 only accepts
//! whole seconds for advert_int.
//!
//! The health check is a plain TCP connect to 127.0.0.1:6443 (timeout 1 s): it works for a real
//! apiserver (TLS) and for the lab's HTTP stand-in alike, and, like TKEStack's `curl -k` without
//! `-f`, it treats "something answers on 6443" as healthy.

use std::net::IpAddr;

use rand::Rng as _;

use crate::profile::FailoverProfile;

/// keepalived's configuration file (Debian's and RHEL's default path).
pub const CONF_PATH: &str = "/etc/keepalived/keepalived.conf";
/// The apiserver health check keepalived runs.
pub const CHECK_SCRIPT_PATH: &str = "/etc/keepalived/check_apiserver.sh";
/// The kubeadm static-pod manifest that marks a master as running a control plane.
pub const APISERVER_MANIFEST: &str = "/etc/kubernetes/manifests/kube-apiserver.yaml";
/// First line of every file we write, so uninstall only removes our own files.
pub const MARKER: &str = "managed by tkeha-provisioner";
/// The VRRP instance name.
pub const INSTANCE: &str = "VI_TKEHA";
/// The fast profile's resident apiserver probe.
pub const PROBE_SCRIPT_PATH: &str = "/etc/keepalived/tkeha-apiserver-probe.sh";
/// The probe's systemd service (on systemd hosts).
pub const PROBE_UNIT: &str = "tkeha-apiserver-probe.service";
/// Where the probe's unit file lives.
pub const PROBE_UNIT_PATH: &str = "/etc/systemd/system/tkeha-apiserver-probe.service";
/// The probe's pid file where there is no systemd.
pub const PROBE_PID_PATH: &str = "/run/tkeha-apiserver-probe.pid";
/// The track file keepalived watches (inotify): `0` healthy, `1` down.
pub const TRACK_FILE_PATH: &str = "/run/tkeha-apiserver.health";
/// Why the probe says what it says: `bootstrap`, `ok`, `not-running`, `not-answering`.
pub const REASON_PATH: &str = "/run/tkeha-apiserver.reason";
/// The line of keepalived.conf that names the failover profile (read back by `status`).
pub const PROFILE_LINE: &str = "# failover profile: ";
/// Milliseconds between two probes of the apiserver (fast profile).
pub const PROBE_INTERVAL_MS: u32 = 50;
/// Milliseconds the probe waits for the apiserver's first byte before it counts a miss.
pub const PROBE_ANSWER_MS: u32 = 150;
/// Refused connections in a row that mean "not running".
pub const PROBE_FALL_REFUSED: u32 = 2;
/// Unanswered probes in a row that mean "not answering".
pub const PROBE_FALL_SILENT: u32 = 2;
/// Good probes in a row before a down apiserver counts as up again.
pub const PROBE_RISE: u32 = 3;

/// Everything one master's keepalived.conf depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfParams {
    pub router_id: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    pub src_ip: IpAddr,
    pub peers: Vec<IpAddr>,
    pub auth_pass: String,
    pub vip: IpAddr,
    pub prefix_len: u8,
    /// Timings and health check (see [`FailoverProfile`]).
    pub profile: FailoverProfile,
}

/// Distinct priorities in keepalived's valid range for BACKUP instances (1..=254).
///
/// A backup waits a skew time of (256 - priority)/256 advert intervals before it takes over
/// (RFC 3768 §6.1, RFC 5798 §6.1). `standard`: 254, 253, ... (1 s adverts: a skew of about
/// 12 ms, which answers about 0.4 s sooner than priority 150 would). `fast`: 150, 149, ...
/// (0.1 s adverts: a skew of about 41 ms). keepalived sends its priority-0 advert before it
/// removes the VIP; with 254 and 0.1 s adverts the skew is under 1 ms and a backup added the
/// VIP before the old holder had removed it (the bench saw two holders for a sample), so the
/// fast profile leaves the old holder those 41 ms.
pub fn priority_for(index: usize, profile: FailoverProfile) -> u8 {
    let top = match profile {
        FailoverProfile::Standard => 254usize,
        FailoverProfile::Fast => 150,
    };
    let p = top.saturating_sub(index).max(1);
    u8::try_from(p).unwrap_or(1)
}

/// A random 8-character auth_pass (VRRP PASS authentication truncates longer ones).
pub fn random_auth_pass() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The auth_pass in an existing keepalived.conf (to reuse it on reruns).
pub fn parse_auth_pass(conf: &str) -> Option<String> {
    conf.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some("auth_pass"))
            .then(|| it.next().map(str::to_string))
            .flatten()
    })
}

/// Whether a file's content was written by us.
pub fn is_ours(content: &str) -> bool {
    content.lines().take(3).any(|l| l.contains(MARKER))
}

/// A label for the VIP (`eth0:vip`) when it fits the kernel's 15-character limit.
fn vip_label(iface: &str) -> Option<String> {
    let label = format!("{iface}:vip");
    (label.len() <= 15).then_some(label)
}

/// Render keepalived.conf for one master.
///
/// Both profiles accept adverts only from the configured peers (`check_unicast_src`), since
/// VRRPv3 has no authentication and VRRPv2's `auth_pass` travels in clear text.
pub fn render_conf(p: &ConfParams) -> String {
    // A single master has no peers: keepalived rejects `unicast_peer {}` (it would fall back to
    // multicast with a warning), so the unicast lines are left out.
    let unicast = if p.peers.is_empty() {
        String::new()
    } else {
        let peers: String = p.peers.iter().map(|ip| format!("        {ip}\n")).collect();
        format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n{peers}    }}\n    check_unicast_src\n",
            p.src_ip
        )
    };
    let label = vip_label(&p.interface)
        .map(|l| format!(" label {l}"))
        .unwrap_or_default();
    let (check, timing, auth, track) = match p.profile {
        FailoverProfile::Standard => (
            format!(
                "vrrp_script chk_apiserver {{
    script \"{CHECK_SCRIPT_PATH}\"
    interval 1
    timeout 2
    fall 2
    rise 2
}}
"
            ),
            "    advert_int 1\n".to_string(),
            format!(
                "    authentication {{\n        auth_type PASS\n        auth_pass {}\n    }}\n",
                p.auth_pass
            ),
            "    track_script {\n        chk_apiserver\n    }\n",
        ),
        FailoverProfile::Fast => (
            format!(
                "# Written by {PROBE_SCRIPT_PATH} every change: 0 healthy, 1 down (FAULT).
vrrp_track_file tkeha_apiserver {{
    file \"{TRACK_FILE_PATH}\"
    weight 0
    init_file 1
}}
"
            ),
            "    version 3\n    advert_int 0.1\n".to_string(),
            String::new(),
            "    track_file {\n        tkeha_apiserver\n    }\n",
        ),
    };
    format!(
        "# {MARKER}: keepalived for the Kubernetes apiserver VIP. Do not edit: rerun `tkeha-provisioner apply`.
{PROFILE_LINE}{profile}
global_defs {{
    router_id {router_id}
    enable_script_security
    script_user root
    vrrp_garp_master_refresh 10
}}

{check}
vrrp_instance {INSTANCE} {{
    state BACKUP
    interface {iface}
    virtual_router_id {vrid}
    priority {priority}
{timing}    nopreempt
{unicast}{auth}    virtual_ipaddress {{
        {vip}/{prefix} dev {iface}{label}
    }}
{track}}}
",
        profile = p.profile,
        router_id = p.router_id,
        iface = p.interface,
        vrid = p.vrid,
        priority = p.priority,
        vip = p.vip,
        prefix = p.prefix_len,
    )
}

/// The profile a keepalived.conf of ours was rendered for (`None` for a foreign config).
pub fn parse_profile(conf: &str) -> Option<FailoverProfile> {
    if !is_ours(conf) {
        return None;
    }
    conf.lines()
        .take(3)
        .find_map(|l| l.strip_prefix(PROFILE_LINE))
        .and_then(FailoverProfile::parse)
        // A config of ours from before profiles existed is the standard one.
        .or(Some(FailoverProfile::Standard))
}

/// The fast profile's apiserver probe: one bash process that never forks while it runs (its
/// connect, write, read and sleep are bash builtins), so it costs a fraction of a percent of
/// a core at 20 probes a second. Each probe:
/// - no `kube-apiserver.yaml` yet: healthy (`bootstrap`), as the standard check;
/// - connection refused [`PROBE_FALL_REFUSED`] times in a row: `not-running` (nothing listens);
/// - connected, but no byte back within [`PROBE_ANSWER_MS`] ms, [`PROBE_FALL_SILENT`] times in
///   a row: `not-answering` (a hung or stopped process whose socket the kernel still accepts
///   on). It sends a plain HTTP request: kube-apiserver's TLS listener answers it with
///   `400 Bad Request` (Go's net/http does so for HTTP on a TLS port), a plain listener with
///   its page; any byte, or an orderly close, proves the process is serving.
///
/// It writes [`TRACK_FILE_PATH`] (which keepalived watches with inotify) and
/// [`REASON_PATH`] only when the verdict changes, and logs each change on stdout (the journal).
pub fn probe_script() -> String {
    let interval = f64::from(PROBE_INTERVAL_MS) / 1000.0;
    let answer = f64::from(PROBE_ANSWER_MS) / 1000.0;
    format!(
        r#"#!/bin/bash
# {MARKER}: the fast failover profile's probe of the local kube-apiserver, read by keepalived
# through {TRACK_FILE_PATH} (0 healthy, 1 down); {REASON_PATH} says why.
# No static-pod manifest yet: this master runs no control plane, healthy so the VIP can come up for kubeadm.
set +e
umask 022
# An apiserver that closes before the request is written must not kill the probe (SIGPIPE).
trap '' PIPE
# A pipe held open for reading and writing, so `read -t` on it sleeps without forking `sleep`.
exec {{nap}}<> <(:)
last=; refused=0; silent=0; good=0; down=
verdict() {{
  [ "$2" = "$last" ] && return 0
  printf '%s\n' "$1" > {TRACK_FILE_PATH}
  printf '%s\n' "$2" > {REASON_PATH}
  echo "apiserver: $2"
  last=$2
}}
while :; do
  if [ ! -f {APISERVER_MANIFEST} ]; then
    refused=0; silent=0; good=0; down=; verdict 0 bootstrap
  elif {{ exec 3<>/dev/tcp/127.0.0.1/6443; }} 2>/dev/null; then
    refused=0
    printf 'GET /livez HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 2>/dev/null
    read -r -s -n 1 -t {answer} -u 3 _ 2>/dev/null; rc=$?
    exec 3<&- 3>&-
    if [ $rc -gt 128 ]; then
      good=0; silent=$((silent+1))
      [ $silent -ge {fall_silent} ] && down=1 && verdict 1 not-answering
    else
      silent=0; good=$((good+1))
      if [ -z "$down" ] || [ $good -ge {rise} ]; then down=; verdict 0 ok; fi
    fi
  else
    good=0; silent=0; refused=$((refused+1))
    [ $refused -ge {fall_refused} ] && down=1 && verdict 1 not-running
  fi
  read -t {interval} -u $nap _
done
"#,
        fall_silent = PROBE_FALL_SILENT,
        fall_refused = PROBE_FALL_REFUSED,
        rise = PROBE_RISE,
    )
}

/// The probe's systemd service: started before keepalived, restarted if it ever stops.
pub fn probe_unit() -> String {
    format!(
        "# {MARKER}: the apiserver probe of the fast failover profile.
[Unit]
Description=tkeha apiserver probe for keepalived (fast failover profile)
Before=keepalived.service

[Service]
ExecStart=/bin/bash {PROBE_SCRIPT_PATH}
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"
    )
}

/// The health check: passes before kubeadm wrote the apiserver manifest (bootstrap), else a TCP connect to the local apiserver.
pub fn check_script() -> String {
    format!(
        "#!/bin/bash
# {MARKER}: keepalived health check of the local kube-apiserver.
# No static-pod manifest yet: this master runs no control plane, pass so the VIP can come up for kubeadm.
[ -f {APISERVER_MANIFEST} ] || exit 0
exec timeout 1 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null
"
    )
}

/// A keepalived router id from a hostname (or the IP when there is none).
pub fn router_id(hostname: &str, ip: IpAddr) -> String {
    let clean: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
        .collect();
    if clean.is_empty() {
        format!("tkeha-{ip}")
    } else {
        format!("tkeha-{clean}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn params() -> ConfParams {
        ConfParams {
            router_id: "tkeha-m1".into(),
            interface: "eth0".into(),
            vrid: 101,
            priority: 254,
            src_ip: "10.77.0.11".parse().unwrap(),
            peers: vec!["10.77.0.12".parse().unwrap(), "10.77.0.13".parse().unwrap()],
            auth_pass: "Ab3dEf7h".into(),
            vip: "10.77.0.100".parse().unwrap(),
            prefix_len: 24,
            profile: FailoverProfile::Standard,
        }
    }

    #[test]
    fn renders_the_required_settings() {
        let c = render_conf(&params());
        for want in [
            "enable_script_security",
            "script_user root",
            "state BACKUP",
            "nopreempt",
            "interface eth0",
            "virtual_router_id 101",
            "priority 254",
            "unicast_src_ip 10.77.0.11",
            "        10.77.0.12\n        10.77.0.13\n",
            "auth_pass Ab3dEf7h",
            "10.77.0.100/24 dev eth0 label eth0:vip",
            "script \"/etc/keepalived/check_apiserver.sh\"",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        assert!(is_ours(&c));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn both_profiles_accept_adverts_only_from_the_peers() {
        for profile in [FailoverProfile::Standard, FailoverProfile::Fast] {
            let mut p = params();
            p.profile = profile;
            let c = render_conf(&p);
            assert!(c.contains("    check_unicast_src\n"), "{c}");
            assert_eq!(parse_profile(&c), Some(profile));
            assert_eq!(c.matches('{').count(), c.matches('}').count());
        }
    }

    #[test]
    fn the_fast_profile_is_vrrp3_with_sub_second_adverts_and_a_track_file() {
        let mut p = params();
        p.profile = FailoverProfile::Fast;
        let c = render_conf(&p);
        for want in [
            "# failover profile: fast\n",
            "    version 3\n    advert_int 0.1\n",
            "vrrp_track_file tkeha_apiserver {\n    file \"/run/tkeha-apiserver.health\"\n    weight 0\n",
            "    track_file {\n        tkeha_apiserver\n    }\n",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        // VRRPv3 has no authentication field; no script keepalived runs either.
        for absent in ["auth_pass", "vrrp_script", "track_script", "advert_int 1\n"] {
            assert!(!c.contains(absent), "{absent:?} in\n{c}");
        }
        let standard = render_conf(&params());
        assert!(standard.contains("# failover profile: standard\n"));
        assert!(standard.contains("advert_int 1\n") && standard.contains("track_script"));
    }

    #[test]
    fn a_config_from_before_profiles_reads_as_standard() {
        let old = format!("# {MARKER}: keepalived\nglobal_defs {{\n}}\n");
        assert_eq!(parse_profile(&old), Some(FailoverProfile::Standard));
        assert_eq!(parse_profile("global_defs {\n}\n"), None);
    }

    #[test]
    fn the_probe_never_forks_in_its_loop_and_keeps_the_bootstrap_contract() {
        let s = probe_script();
        assert!(s.starts_with("#!/bin/bash\n") && is_ours(&s));
        assert!(s.contains("if [ ! -f /etc/kubernetes/manifests/kube-apiserver.yaml ]; then"));
        assert!(s.contains("verdict 0 bootstrap") && s.contains("verdict 1 not-running"));
        assert!(s.contains("verdict 1 not-answering"));
        let body = s.split("while :; do").nth(1).unwrap_or_default();
        let body = body.replace("$((", "");
        for forks in ["sleep ", "timeout ", "$(", "`", "curl", " | "] {
            assert!(
                !body.contains(forks),
                "{forks:?} forks in the loop:\n{body}"
            );
        }
        assert!(
            probe_unit().contains("ExecStart=/bin/bash /etc/keepalived/tkeha-apiserver-probe.sh")
        );
    }

    /// The probe, run by bash against a port of this test: a listener that answers (`ok`),
    /// one that accepts but never answers (`not-answering`: the kernel completes the handshake
    /// of a hung process), none (`not-running`), and no manifest (`bootstrap`).
    #[test]
    fn the_probe_tells_not_running_from_not_answering() {
        use std::io::{Read as _, Write as _};
        use std::net::TcpListener;
        use std::time::{Duration, Instant};

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let manifest = format!("{d}/kube-apiserver.yaml");
        let script = probe_script()
            .replace(
                "/dev/tcp/127.0.0.1/6443",
                &format!("/dev/tcp/127.0.0.1/{port}"),
            )
            .replace(APISERVER_MANIFEST, &manifest)
            .replace(TRACK_FILE_PATH, &format!("{d}/health"))
            .replace(REASON_PATH, &format!("{d}/reason"));
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .stdout(std::fs::File::create(format!("{d}/log")).unwrap())
            .spawn()
            .unwrap();
        let reason = || std::fs::read_to_string(format!("{d}/reason")).unwrap_or_default();
        let health = || std::fs::read_to_string(format!("{d}/health")).unwrap_or_default();
        let pid = child.id();
        let log = || {
            let proc =
                |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
            format!(
                "{}\nstat: {}\nwchan: {}\nsyscall: {}",
                std::fs::read_to_string(format!("{d}/log")).unwrap_or_default(),
                proc("stat"),
                proc("wchan"),
                proc("syscall")
            )
        };
        let wait_for = |want: &str, value: &str| {
            let t = Instant::now();
            while (reason().trim() != want || health().trim() != value)
                && t.elapsed() < Duration::from_secs(5)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(reason().trim(), want, "probe log:\n{}", log());
            assert_eq!(health().trim(), value, "probe log:\n{}", log());
            t.elapsed()
        };
        wait_for("bootstrap", "0");
        // An answering apiserver: every connection gets a byte back.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let server = {
            let listener = listener.try_clone().unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(mut c) = conn {
                        // Answer only a complete HTTP request, as an HTTP server does.
                        let _ = c.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut seen = Vec::new();
                        let mut buf = [0u8; 256];
                        while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 4096 {
                            match c.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => seen.extend_from_slice(&buf[..n]),
                            }
                        }
                        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                            let _ = c.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
                        }
                    }
                }
            })
        };
        std::fs::write(&manifest, "kind: Pod\n").unwrap();
        wait_for("ok", "0");
        // Hung: the socket still accepts (backlog) but nobody reads or answers.
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", port)); // wake the accept loop
        server.join().unwrap();
        let hung = wait_for("not-answering", "1");
        // Gone: connections are refused.
        drop(listener);
        let gone = wait_for("not-running", "1");
        let _ = child.kill();
        let _ = child.wait();
        // Generous bounds for a loaded test machine; the bench measures the real figures.
        assert!(hung < Duration::from_secs(3), "{hung:?}");
        assert!(gone < Duration::from_secs(3), "{gone:?}");
    }

    #[test]
    fn a_single_master_has_no_unicast_lines() {
        let mut p = params();
        p.peers.clear();
        let c = render_conf(&p);
        assert!(!c.contains("unicast"), "{c}");
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(render_conf(&params()), render_conf(&params()));
    }

    #[test]
    fn long_interface_names_get_no_label() {
        let mut p = params();
        p.interface = "enp0s31f6abcdef".into();
        let c = render_conf(&p);
        assert!(c.contains("10.77.0.100/24 dev enp0s31f6abcdef\n"), "{c}");
    }

    #[test]
    fn auth_pass_round_trips() {
        let pass = random_auth_pass();
        assert_eq!(pass.len(), 8);
        let mut p = params();
        p.auth_pass = pass.clone();
        assert_eq!(parse_auth_pass(&render_conf(&p)), Some(pass));
        assert_eq!(parse_auth_pass("vrrp_instance x {\n}\n"), None);
    }

    #[test]
    fn priorities_are_distinct_and_valid() {
        let ps: Vec<u8> = (0..20)
            .map(|i| priority_for(i, FailoverProfile::Standard))
            .collect();
        let fast: Vec<u8> = (0..20)
            .map(|i| priority_for(i, FailoverProfile::Fast))
            .collect();
        assert_eq!(fast[0], 150);
        assert!(fast.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(ps[0], 254);
        assert!(ps.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(priority_for(1000, FailoverProfile::Standard), 1);
    }

    #[test]
    fn check_script_bootstraps_without_manifest() {
        let s = check_script();
        assert!(s.starts_with("#!/bin/bash\n"));
        assert!(s.contains("[ -f /etc/kubernetes/manifests/kube-apiserver.yaml ] || exit 0"));
        assert!(s.contains("/dev/tcp/127.0.0.1/6443"));
    }

    #[test]
    fn router_id_is_sanitised() {
        let ip = "10.0.0.1".parse().unwrap();
        assert_eq!(router_id("m1", ip), "tkeha-m1");
        assert_eq!(router_id("bad name;rm", ip), "tkeha-badnamerm");
        assert_eq!(router_id("", ip), "tkeha-10.0.0.1");
    }
}

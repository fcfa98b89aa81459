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
}

/// Distinct priorities in keepalived's valid range for BACKUP instances (1..=254): 254, 253, ...
///
/// High on purpose: a backup waits a skew time of (256 - priority)/256 advert intervals before it
/// takes over (RFC 3768 §6.1), so 254 answers about 0.4 s sooner than 150 after every fault.
pub fn priority_for(index: usize) -> u8 {
    let p = 254usize.saturating_sub(index).max(1);
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
pub fn render_conf(p: &ConfParams) -> String {
    // A single master has no peers: keepalived rejects `unicast_peer {}` (it would fall back to
    // multicast with a warning), so the unicast lines are left out.
    let unicast = if p.peers.is_empty() {
        String::new()
    } else {
        let peers: String = p.peers.iter().map(|ip| format!("        {ip}\n")).collect();
        format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n{peers}    }}\n",
            p.src_ip
        )
    };
    let label = vip_label(&p.interface)
        .map(|l| format!(" label {l}"))
        .unwrap_or_default();
    format!(
        "# {MARKER}: keepalived for the Kubernetes apiserver VIP. Do not edit: rerun `tkeha-provisioner apply`.
global_defs {{
    router_id {router_id}
    enable_script_security
    script_user root
    vrrp_garp_master_refresh 10
}}

vrrp_script chk_apiserver {{
    script \"{CHECK_SCRIPT_PATH}\"
    interval 1
    timeout 2
    fall 2
    rise 2
}}

vrrp_instance {INSTANCE} {{
    state BACKUP
    interface {iface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
    nopreempt
{unicast}    authentication {{
        auth_type PASS
        auth_pass {pass}
    }}
    virtual_ipaddress {{
        {vip}/{prefix} dev {iface}{label}
    }}
    track_script {{
        chk_apiserver
    }}
}}
",
        router_id = p.router_id,
        iface = p.interface,
        vrid = p.vrid,
        priority = p.priority,
        pass = p.auth_pass,
        vip = p.vip,
        prefix = p.prefix_len,
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
        let ps: Vec<u8> = (0..20).map(priority_for).collect();
        assert_eq!(ps[0], 254);
        assert!(ps.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(priority_for(1000), 1);
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

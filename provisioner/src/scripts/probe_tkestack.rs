//! The probe's part about keepalived set up by someone else: TKEStack's static pod (in place, or parked by a tkeha drill), the keepalived processes, TKEStack's hairpin rule; and the typed verdict on who manages HA on the master ([`Manager`]).

use std::net::IpAddr;

use base64::Engine as _;

use super::Markers;
use super::probe::{Probe, ProbeRequest};
use crate::keepalived::{self, CONF_PATH};
use crate::tkestack::{self, MAX_FILE_BYTES, PARKED_MANIFEST, STATIC_POD_MANIFEST, TkestackConf};

/// Most keepalived PIDs reported (a container runs two or three).
const MAX_PIDS: usize = 64;

/// TKEStack's hairpin rule for third-party HA, as its `thirdpartyha.Install` adds it (no comment,
/// so it never matches tkeha's own rule).
pub fn tkestack_hairpin_rule(vip: IpAddr, vport: u16) -> String {
    format!("OUTPUT -p tcp -d {vip} --dport {vport} -j REDIRECT --to-ports 6443")
}

/// The probe lines for TKEStack's keepalived (always) and, when the hairpin rule is asked
/// for, TKEStack's own form of it.
pub fn snippet(req: &ProbeRequest) -> String {
    let mut s = format!(
        "for f in {STATIC_POD_MANIFEST} {PARKED_MANIFEST}; do [ -f \"$f\" ] && echo \"@@static_pod=$f $(head -c {MAX_FILE_BYTES} \"$f\" | base64 -w0)\"; done\n\
         pgrep -x keepalived 2>/dev/null | head -n {MAX_PIDS} | sed 's/^/@@keepalived_pid=/'\n"
    );
    if let Some((vip, vport)) = req.hairpin {
        s.push_str(&format!(
            "iptables -w 5 -t nat -C {} 2>/dev/null && echo \"@@tkestack_hairpin=1\"\n",
            tkestack_hairpin_rule(vip, vport)
        ));
    }
    s
}

/// TKEStack's keepalived on one master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TkestackKeepalived {
    /// Its config's variables.
    pub conf: TkestackConf,
    /// The static pod manifest is in kubelet's manifests directory.
    pub in_place: bool,
    /// A tkeha drill parked the manifest (it is running, or was interrupted).
    pub parked: bool,
}

/// Who set up HA on one master, as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Manager {
    /// Nobody yet: no keepalived.conf, no keepalived static pod, no TKEStack hairpin rule.
    #[default]
    Nobody,
    /// tkeha: its own keepalived.conf.
    Tkeha,
    /// TKEStack's keepalived: its static pod (in place or parked by a drill) and a config
    /// that matches its template.
    Tkestack(TkestackKeepalived),
    /// TKEStack's hairpin rule for third-party HA.
    TkestackHairpin,
    /// A keepalived static pod that is not TKEStack's (the reason).
    OtherStaticPod(String),
    /// A keepalived.conf written by neither, with no static pod.
    OtherConf,
}

impl Manager {
    /// TKEStack manages HA here.
    pub fn is_tkestack(&self) -> bool {
        matches!(self, Manager::Tkestack(_) | Manager::TkestackHairpin)
    }
}

/// Read this part's markers into `p` (after the rest of the probe was read) and decide its
/// [`Manager`].
pub fn parse_into(markers: &Markers<'_>, p: &mut Probe) {
    for value in markers.values("static_pod") {
        if let Some((path, b64)) = value.split_once(' ') {
            let text = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            match path {
                STATIC_POD_MANIFEST => p.static_pod = Some(text),
                PARKED_MANIFEST => p.parked_static_pod = Some(text),
                _ => {}
            }
        }
    }
    p.keepalived_pids = markers
        .values("keepalived_pid")
        .filter_map(|v| v.trim().parse().ok())
        .take(MAX_PIDS)
        .collect();
    p.tkestack_hairpin = markers.has("tkestack_hairpin");
    p.manager = manager(p);
}

/// A reason for a message: control characters escaped, at most 300 characters.
fn shown(why: &str) -> String {
    let mut out: String = why
        .chars()
        .take(300)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if why.chars().count() > 300 {
        out.push_str("...");
    }
    out
}

fn manager(p: &Probe) -> Manager {
    let conf = p.file(CONF_PATH);
    if let Some(pod) = p.static_pod.as_deref().or(p.parked_static_pod.as_deref()) {
        if let Err(why) = tkestack::match_static_pod(pod) {
            return Manager::OtherStaticPod(format!(
                "its manifest is not TKEStack's: {}",
                shown(&why)
            ));
        }
        return match conf.map(tkestack::match_conf) {
            Some(Ok(conf)) => Manager::Tkestack(TkestackKeepalived {
                conf,
                in_place: p.static_pod.is_some(),
                parked: p.parked_static_pod.is_some(),
            }),
            Some(Err(why)) => Manager::OtherStaticPod(format!(
                "{CONF_PATH} does not match TKEStack's template: {}",
                shown(&why)
            )),
            None => Manager::OtherStaticPod(format!("{CONF_PATH} is missing")),
        };
    }
    if p.tkestack_hairpin {
        return Manager::TkestackHairpin;
    }
    match conf {
        Some(c) if keepalived::is_ours(c) => Manager::Tkeha,
        Some(_) => Manager::OtherConf,
        None => Manager::Nobody,
    }
}

impl Probe {
    /// keepalived runs on this master: tkeha's service (systemd or its pid file) or, where
    /// TKEStack manages it, a keepalived process (its container's).
    pub fn keepalived_running(&self) -> bool {
        self.running
            || (matches!(self.manager, Manager::Tkestack(_)) && !self.keepalived_pids.is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scripts::probe::parse_probe;
    use crate::tkestack::fixtures::{STATIC_POD, tkestack_conf};

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn probe(conf: Option<&str>, pod: Option<&str>, parked: Option<&str>, extra: &str) -> Probe {
        let mut out = String::from("@@uid=0\n");
        if let Some(c) = conf {
            out.push_str(&format!("@@file={CONF_PATH} {}\n", b64(c)));
        }
        if let Some(m) = pod {
            out.push_str(&format!("@@static_pod={STATIC_POD_MANIFEST} {}\n", b64(m)));
        }
        if let Some(m) = parked {
            out.push_str(&format!("@@static_pod={PARKED_MANIFEST} {}\n", b64(m)));
        }
        out.push_str(extra);
        out.push_str("@@end=1\n");
        parse_probe(&out)
    }

    #[test]
    fn the_static_pod_and_the_template_make_a_tkestack_master() {
        let conf = tkestack_conf("eth0", 101, "10.0.0.100");
        let p = probe(
            Some(&conf),
            Some(STATIC_POD),
            None,
            "@@keepalived_pid=311\n@@keepalived_pid=312\n",
        );
        let Manager::Tkestack(t) = &p.manager else {
            panic!("{:?}", p.manager)
        };
        assert!(t.in_place && !t.parked);
        assert_eq!(t.conf.vrid, 101);
        assert_eq!(p.keepalived_pids, [311, 312]);
        assert!(p.keepalived_running() && !p.running);
        assert!(p.manager.is_tkestack());
    }

    #[test]
    fn a_parked_manifest_still_names_tkestack() {
        let conf = tkestack_conf("eth0", 101, "10.0.0.100");
        let p = probe(Some(&conf), None, Some(STATIC_POD), "");
        let Manager::Tkestack(t) = &p.manager else {
            panic!("{:?}", p.manager)
        };
        assert!(!t.in_place && t.parked);
        assert!(!p.keepalived_running());
    }

    #[test]
    fn the_template_alone_or_the_pod_alone_is_not_tkestack() {
        let conf = tkestack_conf("eth0", 101, "10.0.0.100");
        assert_eq!(
            probe(Some(&conf), None, None, "").manager,
            Manager::OtherConf
        );
        assert_eq!(
            probe(None, Some(STATIC_POD), None, "").manager,
            Manager::OtherStaticPod(format!("{CONF_PATH} is missing"))
        );
        let edited = conf.replace("priority 100", "priority 99");
        let Manager::OtherStaticPod(why) = probe(Some(&edited), Some(STATIC_POD), None, "").manager
        else {
            panic!()
        };
        assert!(why.contains("`priority 99`"), "{why}");
        let not_a_pod = probe(Some(&conf), Some("kind: ConfigMap\n"), None, "");
        assert_eq!(
            not_a_pod.manager,
            Manager::OtherStaticPod("its manifest is not TKEStack's: it is not a Pod".into())
        );
    }

    #[test]
    fn reasons_are_shown_escaped_and_bounded() {
        assert_eq!(shown("bad \u{1b}[2J\nline"), "bad \\u{1b}[2J\\nline");
        let long = shown(&"x".repeat(1000));
        assert_eq!(long.len(), 303);
        assert!(long.ends_with("..."));
    }

    #[test]
    fn ours_nobodys_and_tkestacks_hairpin() {
        let ours = "# managed by tkeha-provisioner: x\nvrrp_instance VI_TKEHA {\n}\n";
        assert_eq!(probe(Some(ours), None, None, "").manager, Manager::Tkeha);
        assert_eq!(probe(None, None, None, "").manager, Manager::Nobody);
        assert_eq!(
            probe(None, None, None, "@@tkestack_hairpin=1\n").manager,
            Manager::TkestackHairpin
        );
        // tkeha's own service running says nothing about TKEStack.
        let p = probe(Some(ours), None, None, "@@running=1\n@@keepalived_pid=9\n");
        assert!(p.keepalived_running());
    }

    #[test]
    fn the_snippet_reads_both_places_and_tkestacks_rule_only_when_asked() {
        let plain = snippet(&ProbeRequest::default());
        assert!(plain.contains(
            "for f in /etc/kubernetes/manifests/keepalived.yaml /etc/kubernetes/tkeha-drill/keepalived.yaml"
        ));
        assert!(plain.contains("head -c 65536"));
        assert!(plain.contains("pgrep -x keepalived"));
        assert!(!plain.contains("iptables"));
        let third = snippet(&ProbeRequest {
            hairpin: Some(("10.0.0.100".parse().unwrap(), 16443)),
            ..ProbeRequest::default()
        });
        assert!(third.contains(
            "iptables -w 5 -t nat -C OUTPUT -p tcp -d 10.0.0.100 --dport 16443 -j REDIRECT --to-ports 6443"
        ));
    }
}

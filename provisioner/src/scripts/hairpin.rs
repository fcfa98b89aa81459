//! Third-party HA on a master: the self-connect test through `VIP:vport`, the hairpin rule (add, remove), and the typed result.

use std::net::IpAddr;

use super::{Markers, PATH_EXPORT, Script};
use crate::remote::ExecOutput;

/// The iptables rule spec of the hairpin workaround (without the chain command).
pub fn hairpin_rule(vip: IpAddr, vport: u16) -> String {
    format!(
        "OUTPUT -d {vip}/32 -p tcp --dport {vport} -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443"
    )
}

/// Test `VIP:vport` from the master, stop the token listener `listener_pid` if there is one,
/// and, when `install`, add the hairpin rule unless it is there.
pub fn self_connect_script(
    vip: IpAddr,
    vport: u16,
    listener_pid: Option<u32>,
    install: bool,
) -> Script {
    let mut s = format!("{PATH_EXPORT}set +e\n");
    s.push_str(&format!(
        "timeout 2 bash -c '</dev/tcp/{vip}/{vport}' 2>/dev/null && echo \"@@self=1\"\n"
    ));
    if let Some(pid) = listener_pid {
        s.push_str(&format!("kill {pid} 2>/dev/null\n"));
    }
    if install {
        let rule = hairpin_rule(vip, vport);
        s.push_str(&format!(
            "if ! iptables -w 5 -t nat -C {rule} 2>/dev/null; then iptables -w 5 -t nat -I {rule} && echo \"@@hairpin_added=1\" || echo \"@@hairpin_failed=1\"; fi\n"
        ));
    }
    s.push_str("echo \"@@end=1\"\n");
    Script::shell("self-connect", s)
}

/// Remove every copy of the hairpin rule (a snippet of the uninstall script).
pub fn remove_rule_script(vip: IpAddr, vport: u16) -> String {
    let rule = hairpin_rule(vip, vport);
    format!(
        "while iptables -w 5 -t nat -C {rule} 2>/dev/null; do iptables -w 5 -t nat -D {rule} && echo \"@@hairpin_removed=1\" || break; done\n"
    )
}

/// What became of the hairpin rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairpinChange {
    /// It was missing and was added.
    Added,
    /// It was missing and iptables refused to add it.
    Failed,
}

/// What the self-connect script reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfConnectOutcome {
    /// The master reached `VIP:vport` itself.
    pub reaches_vip: bool,
    /// `None`: the rule was not asked for, or was there already.
    pub hairpin: Option<HairpinChange>,
    /// Its stderr, trimmed.
    pub stderr: String,
}

impl SelfConnectOutcome {
    /// Read the script's output.
    pub fn parse(out: &ExecOutput) -> Self {
        let m = Markers::parse(&out.stdout);
        let hairpin = if m.has("hairpin_failed") {
            Some(HairpinChange::Failed)
        } else if m.has("hairpin_added") {
            Some(HairpinChange::Added)
        } else {
            None
        };
        SelfConnectOutcome {
            reaches_vip: m.has("self"),
            hairpin,
            stderr: out.stderr.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip() -> IpAddr {
        IpAddr::from([10, 0, 0, 100])
    }

    #[test]
    fn the_rule_is_only_added_when_asked() {
        let check = self_connect_script(vip(), 16443, Some(42), false);
        assert!(check.text().contains("</dev/tcp/10.0.0.100/16443"));
        assert!(check.text().contains("kill 42"));
        assert!(!check.text().contains("iptables"));
        let install = self_connect_script(vip(), 16443, None, true);
        assert!(install.text().contains(
            "iptables -w 5 -t nat -I OUTPUT -d 10.0.0.100/32 -p tcp --dport 16443 -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443"
        ));
        assert!(!install.text().contains("kill "));
    }

    #[test]
    fn outcomes_are_typed() {
        let out = |stdout: &str| ExecOutput {
            stdout: stdout.into(),
            stderr: " iptables: no chain \n".into(),
            status: 0,
        };
        let added = SelfConnectOutcome::parse(&out("@@hairpin_added=1\n@@end=1\n"));
        assert_eq!(added.hairpin, Some(HairpinChange::Added));
        assert!(!added.reaches_vip);
        let failed = SelfConnectOutcome::parse(&out("@@self=1\n@@hairpin_failed=1\n@@end=1\n"));
        assert_eq!(failed.hairpin, Some(HairpinChange::Failed));
        assert!(failed.reaches_vip);
        assert_eq!(failed.stderr, "iptables: no chain");
    }
}

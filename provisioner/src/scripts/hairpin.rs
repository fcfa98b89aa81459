//! Third-party HA on a master: the self-connect test through `VIP:vport`, the hairpin rule (add, remove), and the typed result.

use std::net::IpAddr;

use super::{Markers, PATH_EXPORT, Script};
use crate::remote::ExecOutput;

/// Checks (50 ms apart) for the token listener to be gone after it was sent SIGTERM.
pub const LISTENER_STOP_TRIES: u32 = 40;

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
        // Wait (bounded) until the listener is gone and :6443 is closed: the port must be as the
        // probe found it when this script returns.
        s.push_str(&format!(
            "kill {pid} 2>/dev/null\n\
             gone=0\n\
             for i in $(seq {LISTENER_STOP_TRIES}); do\n\
               if ! kill -0 {pid} 2>/dev/null && ! timeout 0.2 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null; then gone=1; break; fi\n\
               sleep 0.05\n\
             done\n\
             [ $gone = 1 ] || echo \"@@listener_left=1\"\n"
        ));
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
    /// The token listener still ran, or :6443 was still open, after the bounded wait.
    pub listener_left: bool,
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
            listener_left: m.has("listener_left"),
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
        // It returns only once the listener is gone and the port closed (bounded).
        let text = check.text();
        assert!(text.contains("for i in $(seq 40)"), "{text}");
        assert!(text.contains(
            "if ! kill -0 42 2>/dev/null && ! timeout 0.2 bash -c '</dev/tcp/127.0.0.1/6443'"
        ));
        assert!(text.find("kill 42").unwrap_or(usize::MAX) < text.find("@@end=1").unwrap_or(0));
        assert!(!check.text().contains("iptables"));
        let install = self_connect_script(vip(), 16443, None, true);
        assert!(install.text().contains(
            "iptables -w 5 -t nat -I OUTPUT -d 10.0.0.100/32 -p tcp --dport 16443 -m comment --comment tkeha-hairpin -j REDIRECT --to-ports 6443"
        ));
        assert!(!install.text().contains("kill "));
    }

    /// The script itself, in a private network namespace (root, as the lab tests): a token
    /// listener that takes half a second to exit after SIGTERM must be gone, and :6443 closed,
    /// when the script returns (it used to return at once: "a listener was left on m1").
    #[test]
    fn the_script_returns_only_once_the_listener_is_gone() {
        let listener = "import signal, socket, sys, time\n\
                        s = socket.socket()\n\
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                        s.bind(('127.0.0.1', 6443))\n\
                        s.listen(8)\n\
                        def slow_exit(*_):\n    time.sleep(0.5)\n    sys.exit(0)\n\
                        signal.signal(signal.SIGTERM, slow_exit)\n\
                        while True:\n    s.accept()[0].close()\n";
        let probe = "timeout 0.2 bash -c '</dev/tcp/127.0.0.1/6443' 2>/dev/null";
        // The listener's pid is only known at run time: render the script with a placeholder.
        let with_pid = self_connect_script(vip(), 6443, Some(4_000_000), false)
            .text()
            .replace("4000000", "$pid")
            .replace("echo \"@@end=1\"\n", "");
        let test = format!(
            "ip link set lo up\n\
             python3 -c \"$LISTENER\" &\n\
             pid=$!\n\
             for i in $(seq 100); do {probe} && break; sleep 0.05; done\n\
             {probe} || {{ echo NOT-LISTENING; exit 1; }}\n\
             {with_pid}\n\
             if kill -0 $pid 2>/dev/null || {probe}; then echo LEFT; else echo GONE; fi\n"
        );
        let out = std::process::Command::new("unshare")
            .args(["--net", "bash", "-c", &test])
            .env("LISTENER", listener)
            .output()
            .expect("unshare (util-linux) and bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.trim_end().ends_with("GONE"),
            "stdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains("@@listener_left"), "{stdout}");
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
        assert!(!added.listener_left);
        let left = SelfConnectOutcome::parse(&out("@@listener_left=1\n@@end=1\n"));
        assert!(left.listener_left);
        let failed = SelfConnectOutcome::parse(&out("@@self=1\n@@hairpin_failed=1\n@@end=1\n"));
        assert_eq!(failed.hairpin, Some(HairpinChange::Failed));
        assert!(failed.reaches_vip);
        assert_eq!(failed.stderr, "iptables: no chain");
    }
}

//! Shell snippets that control the keepalived service: systemd where present, else the daemon with its pid file in /run.

use super::{PATH_EXPORT, Script};
use crate::keepalived::{
    CONF_PATH, PROBE_PID_PATH, PROBE_SCRIPT_PATH, PROBE_UNIT, PROBE_UNIT_PATH, REASON_PATH,
    TRACK_FILE_PATH,
};

/// What happens to the fast profile's apiserver probe in an apply script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeChange {
    /// Nothing (the standard profile, and no probe of ours left over).
    Keep,
    /// Start it, or restart it to read a new script or unit (`@@probe=started|restarted`).
    StartOrRestart,
    /// Start it if it is not running (`@@probe=started`); leave a running one alone.
    EnsureStarted,
    /// Stop it and remove its files (back to the standard profile): `@@probe=removed`.
    Remove,
}

/// Bash that brings the probe to `change`, with systemd or as a daemon with a pid file. A
/// started probe has written its track file within 2 s (bounded wait), so keepalived, reloaded
/// next, reads a verdict rather than its `init_file`.
pub fn probe(change: ProbeChange, systemd: bool) -> String {
    let wait =
        format!("for i in $(seq 40); do [ -s {TRACK_FILE_PATH} ] && break; sleep 0.05; done\n");
    let daemon_start = format!(
        "rm -f {TRACK_FILE_PATH}\n\
         setsid bash {PROBE_SCRIPT_PATH} </dev/null >/dev/null 2>&1 &\n\
         echo $! > {PROBE_PID_PATH}\n"
    );
    let daemon_running = format!(
        "pp=$(cat {PROBE_PID_PATH} 2>/dev/null || true)\n\
         if [ -n \"$pp\" ] && kill -0 \"$pp\" 2>/dev/null; then probe_up=1; else probe_up=; fi\n"
    );
    match (change, systemd) {
        (ProbeChange::Keep, _) => String::new(),
        (ProbeChange::StartOrRestart, true) => format!(
            "systemctl daemon-reload\n\
             [ \"$(systemctl is-enabled {PROBE_UNIT} 2>/dev/null)\" = enabled ] || systemctl enable -q {PROBE_UNIT}\n\
             if systemctl is-active -q {PROBE_UNIT}; then systemctl restart {PROBE_UNIT} && echo \"@@probe=restarted\";\n\
             else systemctl start {PROBE_UNIT} && echo \"@@probe=started\"; fi\n{wait}"
        ),
        (ProbeChange::EnsureStarted, true) => format!(
            "[ \"$(systemctl is-enabled {PROBE_UNIT} 2>/dev/null)\" = enabled ] || systemctl enable -q {PROBE_UNIT}\n\
             if ! systemctl is-active -q {PROBE_UNIT}; then systemctl start {PROBE_UNIT} && echo \"@@probe=started\"; fi\n{wait}"
        ),
        (ProbeChange::StartOrRestart, false) => format!(
            "{daemon_running}if [ -n \"$probe_up\" ]; then kill \"$pp\"; for i in $(seq 40); do kill -0 \"$pp\" 2>/dev/null || break; sleep 0.05; done; fi\n\
             {daemon_start}{wait}if [ -n \"$probe_up\" ]; then echo \"@@probe=restarted\"; else echo \"@@probe=started\"; fi\n"
        ),
        (ProbeChange::EnsureStarted, false) => format!(
            "{daemon_running}if [ -z \"$probe_up\" ]; then\n{daemon_start}{wait}echo \"@@probe=started\"\nfi\n"
        ),
        (ProbeChange::Remove, _) => format!(
            "if [ -d /run/systemd/system ]; then\n\
               systemctl disable --now -q {PROBE_UNIT} 2>/dev/null || true\n\
               rm -f {PROBE_UNIT_PATH}; systemctl daemon-reload || true\n\
             fi\n\
             {daemon_running}[ -n \"$probe_up\" ] && kill \"$pp\"\n\
             rm -f {PROBE_SCRIPT_PATH} {PROBE_UNIT_PATH} {PROBE_PID_PATH} {TRACK_FILE_PATH} {REASON_PATH}\n\
             echo \"@@probe=removed\"\n"
        ),
    }
}

/// What the apply script did to the probe, from its `@@probe=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeAction {
    /// The probe was not running and was started.
    Started,
    /// The probe was restarted to read a new script or unit.
    Restarted,
    /// The probe was stopped and its files removed.
    Removed,
}

impl ProbeAction {
    /// The value of a `@@probe=` line.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "started" => Some(ProbeAction::Started),
            "restarted" => Some(ProbeAction::Restarted),
            "removed" => Some(ProbeAction::Removed),
            _ => None,
        }
    }
}

/// What [`start_or_reload`] (or [`start`]) did, from its `@@action=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAction {
    /// keepalived was not running and was started.
    Started,
    /// keepalived was running and re-read its configuration (SIGHUP).
    Reloaded,
}

impl ServiceAction {
    /// The value of an `@@action=` line.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "started" => Some(ServiceAction::Started),
            "reloaded" => Some(ServiceAction::Reloaded),
            _ => None,
        }
    }
}

/// Enable keepalived at boot unless it already is. `systemctl enable` is not cheap on Debian
/// even when nothing changes: keepalived also ships an init script, so it runs
/// `systemd-sysv-install` (update-rc.d, perl) and a daemon reload, about a second of CPU per
/// master, which 12 masters on a small machine pay in series.
const ENABLE: &str = "[ \"$(systemctl is-enabled keepalived 2>/dev/null)\" = enabled ] || systemctl enable -q keepalived 2>/dev/null || true\n";

/// Start keepalived if it is not running, else reload it (HUP); prints `@@action=started|reloaded`.
pub fn start_or_reload(systemd: bool) -> String {
    if systemd {
        format!(
            "{ENABLE}if systemctl is-active -q keepalived; then systemctl reload keepalived && echo \"@@action=reloaded\";\n\
             else systemctl start keepalived && echo \"@@action=started\"; fi\n"
        )
    } else {
        format!(
            "p=$(cat /run/keepalived.pid 2>/dev/null || true)\n\
             if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then kill -HUP \"$p\" && echo \"@@action=reloaded\";\n\
             else {start}fi\n",
            start = start_daemon()
        )
    }
}

/// Start keepalived if it is not running (enabled at boot with systemd); leave a running one
/// alone. Prints `@@action=started` when it started it.
pub fn ensure_started(systemd: bool) -> String {
    if systemd {
        format!(
            "{ENABLE}if ! systemctl is-active -q keepalived; then systemctl start keepalived && echo \"@@action=started\"; fi\n"
        )
    } else {
        format!(
            "p=$(cat /run/keepalived.pid 2>/dev/null || true)\n\
             if [ -z \"$p\" ] || ! kill -0 \"$p\" 2>/dev/null; then\n{start}fi\n",
            start = start_daemon()
        )
    }
}

/// Start the daemon without systemd and wait (bounded) for its pid file.
fn start_daemon() -> String {
    format!(
        "rm -f /run/keepalived.pid /run/vrrp.pid\n\
         keepalived -D -f {CONF_PATH} </dev/null >/dev/null 2>&1 || {{ echo 'keepalived did not start' >&2; exit 6; }}\n\
         for i in $(seq 40); do [ -s /run/keepalived.pid ] && break; sleep 0.05; done\n\
         echo \"@@action=started\"\n"
    )
}

/// Start keepalived after a [`stop_nowait`]: wait (bounded) for the old daemon to be gone first.
pub fn start(systemd: bool) -> String {
    if systemd {
        "for i in $(seq 100); do systemctl is-active -q keepalived || break; sleep 0.05; done\n\
         systemctl start keepalived && echo \"@@action=started\"\n"
            .to_string()
    } else {
        format!(
            "p=$(cat /run/keepalived.pid 2>/dev/null || true)\n\
             for i in $(seq 100); do [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null || break; sleep 0.05; done\n{}",
            start_daemon()
        )
    }
}

/// Send keepalived SIGTERM and return at once (a drill's clock must not include its shutdown).
pub fn stop_nowait(systemd: bool) -> String {
    if systemd {
        "systemctl stop --no-block keepalived && echo \"@@stopped=1\"\n".to_string()
    } else {
        "p=$(cat /run/keepalived.pid 2>/dev/null || true)\n\
         [ -n \"$p\" ] && kill \"$p\" 2>/dev/null && echo \"@@stopped=1\"\n"
            .to_string()
    }
}

/// The drill's first step on the VIP holder: [`stop_nowait`] as a script.
pub fn stop_nowait_script(systemd: bool) -> Script {
    Script::shell(
        "stop keepalived",
        format!("{PATH_EXPORT}{}echo \"@@end=1\"\n", stop_nowait(systemd)),
    )
}

/// The drill's last step on the old holder: [`start`] as a script.
pub fn restart_script(systemd: bool) -> Script {
    Script::shell(
        "restart keepalived",
        format!("{PATH_EXPORT}{}echo \"@@end=1\"\n", start(systemd)),
    )
}

/// Gracefully stop keepalived (SIGTERM: it sends a priority-0 advert so a backup takes over at once).
/// Waits (bounded) until it is gone; prints `@@stopped=1` if it was running.
pub fn stop(systemd: bool) -> String {
    if systemd {
        "if systemctl is-active -q keepalived; then systemctl stop keepalived && echo \"@@stopped=1\"; fi\n".to_string()
    } else {
        "p=$(cat /run/keepalived.pid 2>/dev/null || true)\n\
         if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then\n\
           kill \"$p\"; for i in $(seq 100); do kill -0 \"$p\" 2>/dev/null || break; sleep 0.05; done\n\
           echo \"@@stopped=1\"\n\
         fi\n"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_mode_uses_pid_file_and_hup() {
        let s = start_or_reload(false);
        assert!(s.contains("kill -HUP"));
        assert!(s.contains("keepalived -D -f /etc/keepalived/keepalived.conf"));
        assert!(stop(false).contains("kill \"$p\""));
    }

    #[test]
    fn actions_are_read_back() {
        assert_eq!(
            ServiceAction::parse("started"),
            Some(ServiceAction::Started)
        );
        assert_eq!(
            ServiceAction::parse("reloaded"),
            Some(ServiceAction::Reloaded)
        );
        assert_eq!(ServiceAction::parse("restarted"), None);
    }

    #[test]
    fn ensure_started_never_reloads() {
        for systemd in [true, false] {
            let s = ensure_started(systemd);
            assert!(!s.contains("reload") && !s.contains("HUP"), "{s}");
            assert!(s.contains("@@action=started"), "{s}");
        }
    }

    #[test]
    fn an_enabled_unit_is_not_enabled_again() {
        for s in [start_or_reload(true), ensure_started(true)] {
            assert!(
                s.starts_with(
                    "[ \"$(systemctl is-enabled keepalived 2>/dev/null)\" = enabled ] || systemctl enable -q keepalived"
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn systemd_mode_uses_systemctl() {
        assert!(start_or_reload(true).contains("systemctl reload keepalived"));
        assert!(stop(true).contains("systemctl stop keepalived"));
        assert!(start(true).contains("systemctl start keepalived"));
    }
}

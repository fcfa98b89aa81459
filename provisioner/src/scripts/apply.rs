//! The apply script of one master (install keepalived, write the files that differ, test the config, start or reload) and its typed result.

use super::service::{self, ProbeAction, ProbeChange, ServiceAction};
use super::{Markers, PATH_EXPORT, STREAMED_PRELUDE, Script, Upload};
use crate::keepalived::{CHECK_SCRIPT_PATH, CONF_PATH, PROBE_SCRIPT_PATH, PROBE_UNIT_PATH};
use crate::remote::ExecOutput;

/// The package managers the probe looks for, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    /// Debian, Ubuntu.
    AptGet,
    /// Fedora, RHEL 8+.
    Dnf,
    /// RHEL 7, CentOS 7.
    Yum,
    /// SUSE.
    Zypper,
}

impl PackageManager {
    /// From the probe's `@@pkg=` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim() {
            "apt-get" => Some(PackageManager::AptGet),
            "dnf" => Some(PackageManager::Dnf),
            "yum" => Some(PackageManager::Yum),
            "zypper" => Some(PackageManager::Zypper),
            _ => None,
        }
    }

    /// The command's name.
    pub fn name(self) -> &'static str {
        match self {
            PackageManager::AptGet => "apt-get",
            PackageManager::Dnf => "dnf",
            PackageManager::Yum => "yum",
            PackageManager::Zypper => "zypper",
        }
    }

    /// The shell commands that install keepalived non-interactively, appending their output to
    /// `"$log"` and printing `@@step=` lines as they go (the output is read as it arrives, and
    /// a silent install must not look like a dead connection).
    ///
    /// apt first refreshes its package lists (the preflight checked the candidate against fresh
    /// lists, so the install takes what was checked), waiting up to [`LOCK_WAIT_SECS`] for a
    /// lock another process holds (`unattended-upgrades`, say): a bounded retry for the lists
    /// lock, which `apt-get update` does not wait for (apt 2.6), then apt's own
    /// `DPkg::Lock::Timeout` for the dpkg lock.
    fn install_keepalived(self) -> String {
        match self {
            PackageManager::AptGet => format!(
                r#"echo "@@step=update"
end=$((SECONDS+{w})); updated=1
while ! apt-get -q update >>"$log" 2>&1; do
  if ! tail -n 3 "$log" | grep -q 'Could not get lock' || [ $SECONDS -ge $end ]; then updated=; break; fi
  sleep 1
done
[ -n "$updated" ] && echo "@@step=install" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout={w} keepalived >>"$log" 2>&1"#,
                w = LOCK_WAIT_SECS
            ),
            PackageManager::Dnf => "dnf install -y keepalived >>\"$log\" 2>&1".into(),
            PackageManager::Yum => "yum install -y keepalived >>\"$log\" 2>&1".into(),
            PackageManager::Zypper => "zypper -n install keepalived >>\"$log\" 2>&1".into(),
        }
    }
}

/// Seconds an install waits for a package manager lock held by another process.
pub const LOCK_WAIT_SECS: u32 = 120;

/// Lines of the package manager's output shown when the install fails.
pub const INSTALL_LOG_LINES: usize = 20;

/// Where our files live (the package's directory; created root-owned 0755 when missing).
pub const CONF_DIR: &str = "/etc/keepalived";

/// Permission bits of keepalived.conf: it holds `auth_pass`, so root only.
pub const CONF_MODE: u32 = 0o600;

/// Permission bits of the health-check script: root-owned and not writable by anyone else, as
/// keepalived's `enable_script_security` requires; it holds no secret.
pub const CHECK_MODE: u32 = 0o755;

/// Permission bits of the probe's systemd unit.
pub const UNIT_MODE: u32 = 0o644;

/// Permission bits of [`CONF_DIR`] when we create it (Debian's package makes it the same).
pub const CONF_DIR_MODE: u32 = 0o755;

/// What happens to the service at the end of the apply script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceChange {
    /// Start keepalived if it is not running, else reload it (its configuration changed).
    StartOrReload,
    /// Start keepalived if it is not running; leave a running one alone (nothing it reads
    /// changed: a mode was fixed, say).
    EnsureStarted,
}

/// What the apply script must do on one master; `None` skips a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyChanges<'a> {
    /// Install keepalived with this package manager (when it is still missing).
    pub install: Option<PackageManager>,
    /// Write the health-check script with this content.
    pub check: Option<&'a str>,
    /// Write keepalived.conf with this content (tested with `keepalived -t` first).
    pub conf: Option<&'a str>,
    /// Start, or start and reload.
    pub service: ServiceChange,
    /// The master runs systemd.
    pub systemd: bool,
    /// Write the fast profile's apiserver probe with this content.
    pub probe_script: Option<&'a str>,
    /// Write the probe's systemd unit with this content.
    pub probe_unit: Option<&'a str>,
    /// Start, restart or remove the probe (before keepalived reloads; a removal after).
    pub probe: ProbeChange,
}

/// The apply script: only the steps asked for, then start keepalived or reload it. Its output
/// is read as it arrives ([`super::STREAMED_PRELUDE`]).
///
/// No fixed name in a world-writable directory: the install log is a `mktemp` file (mode 0600,
/// removed before the script ends), and every file we write is staged in [`CONF_DIR`], which
/// is root's.
pub fn apply_script(c: &ApplyChanges<'_>) -> Script {
    let mut s = Script::new("apply");
    s.push(STREAMED_PRELUDE);
    s.push("set -e\numask 022\n");
    s.push(PATH_EXPORT);
    if let Some(pm) = c.install {
        s.push(&format!(
            r#"if ! command -v keepalived >/dev/null 2>&1; then
log=$(mktemp)
if ! {{ {cmd}; }}; then
  tail -n {n} "$log"; grep -qE '^(Unpacking|Setting up|Installing|Upgrading) ' "$log" && echo "@@install_touched=1"
  rm -f "$log"; echo "@@install_failed=1"; exit 4
fi
if ! command -v keepalived >/dev/null 2>&1; then tail -n {n} "$log"; rm -f "$log"; echo "@@install_noop=1"; exit 4; fi
rm -f "$log"
echo "@@installed=$(dpkg-query -W -f='${{Version}}' keepalived 2>/dev/null || rpm -q --qf '%{{VERSION}}-%{{RELEASE}}' keepalived 2>/dev/null || true)"
else
echo "@@present=1"
fi
"#,
            cmd = pm.install_keepalived(),
            n = INSTALL_LOG_LINES,
        ));
    }
    s.push(&format!(
        "[ -d {CONF_DIR} ] || install -d -m {CONF_DIR_MODE:04o} -o root -g root {CONF_DIR}\n"
    ));
    // The check script goes first: `keepalived -t` checks that the script it names exists.
    if let Some(check) = c.check {
        s.upload(Upload {
            path: CHECK_SCRIPT_PATH.to_string(),
            mode: CHECK_MODE,
            content: check.to_string(),
            verify: None,
        });
    }
    if let Some(probe) = c.probe_script {
        s.upload(Upload {
            path: PROBE_SCRIPT_PATH.to_string(),
            mode: CHECK_MODE,
            content: probe.to_string(),
            verify: None,
        });
    }
    if let Some(unit) = c.probe_unit {
        s.upload(Upload {
            path: PROBE_UNIT_PATH.to_string(),
            mode: UNIT_MODE,
            content: unit.to_string(),
            verify: None,
        });
    }
    // The probe runs (and has written its verdict) before keepalived reads a config that
    // tracks it; it is removed only after keepalived stopped tracking it.
    if c.probe != ProbeChange::Remove {
        s.push(&service::probe(c.probe, c.systemd));
    }
    if let Some(conf) = c.conf {
        s.upload(Upload {
            path: CONF_PATH.to_string(),
            mode: CONF_MODE,
            content: conf.to_string(),
            verify: Some("keepalived -t -f".to_string()),
        });
    }
    s.push(&match c.service {
        ServiceChange::StartOrReload => service::start_or_reload(c.systemd),
        ServiceChange::EnsureStarted => service::ensure_started(c.systemd),
    });
    if c.probe == ProbeChange::Remove {
        s.push(&service::probe(c.probe, c.systemd));
    }
    s.push("echo \"@@end=1\"\n");
    s
}

/// How the apply script ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyEnd {
    /// Every step ran.
    Done,
    /// `keepalived -t` refused the new config; nothing was moved into place.
    ConfigRejected,
    /// The package manager failed (the tail of its log is in the output).
    InstallFailed,
    /// The package manager succeeded but keepalived is still not there: it changed nothing.
    InstallChangedNothing,
    /// The script stopped elsewhere (a failed command under `set -e`).
    Failed {
        /// Its exit status (`None`: unknown, the script was cut off).
        status: Option<i32>,
    },
}

/// What the apply script reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// keepalived was installed by this run: its version (empty if it could not be read).
    pub installed: Option<String>,
    /// keepalived was missing at the probe but there when the script ran (someone else
    /// installed it in between); this run did not install it.
    pub already_present: bool,
    /// The package manager failed after it had unpacked or set up packages: the master changed.
    pub install_touched: bool,
    /// The files written, in order.
    pub wrote: Vec<String>,
    /// keepalived was started or reloaded.
    pub service: Option<ServiceAction>,
    /// The apiserver probe was started, restarted or removed.
    pub probe: Option<ProbeAction>,
    /// How the script ended.
    pub end: ApplyEnd,
    /// What it said besides its markers (the config test's or the package manager's
    /// complaint), trimmed.
    pub stderr: String,
}

impl ApplyOutcome {
    /// Read the script's output.
    pub fn parse(out: &ExecOutput) -> Self {
        let m = Markers::parse(&out.stdout);
        let end = if m.has("test_failed") {
            ApplyEnd::ConfigRejected
        } else if m.has("install_failed") {
            ApplyEnd::InstallFailed
        } else if m.has("install_noop") {
            ApplyEnd::InstallChangedNothing
        } else if out.status != 0 || !m.has("end") {
            ApplyEnd::Failed {
                status: (out.status >= 0).then_some(out.status),
            }
        } else {
            ApplyEnd::Done
        };
        ApplyOutcome {
            installed: m.value("installed").map(|v| v.trim().to_string()),
            already_present: m.has("present"),
            install_touched: m.has("install_touched"),
            wrote: m.values("wrote").map(str::to_string).collect(),
            service: m.value("action").and_then(ServiceAction::parse),
            probe: m.value("probe").and_then(ProbeAction::parse),
            end,
            stderr: out.stderr.trim().to_string(),
        }
    }

    /// Whether the master was changed: a package installed, a file written, the service
    /// started or reloaded.
    pub fn changed(&self) -> bool {
        self.installed.is_some()
            || self.install_touched
            || !self.wrote.is_empty()
            || self.service.is_some()
            || self.probe.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "# managed by tkeha-provisioner\nglobal_defs {\n}\n";
    const CHECK: &str = "#!/bin/bash\nexit 0\n";

    fn changes(
        install: Option<PackageManager>,
        write: bool,
        systemd: bool,
    ) -> ApplyChanges<'static> {
        ApplyChanges {
            install,
            check: write.then_some(CHECK),
            conf: write.then_some(CONF),
            service: ServiceChange::StartOrReload,
            systemd,
            probe_script: None,
            probe_unit: None,
            probe: ProbeChange::Keep,
        }
    }

    #[test]
    fn script_validates_before_moving() {
        let s = apply_script(&changes(None, true, false));
        let s = s.text();
        let test = s
            .find("keepalived -t -f /etc/keepalived/keepalived.conf.tkeha-new")
            .unwrap_or(usize::MAX);
        let mv = s
            .find("mv -f /etc/keepalived/keepalived.conf.tkeha-new /etc/keepalived/keepalived.conf")
            .unwrap_or(0);
        assert!(test < mv, "{s}");
        // The check script is in place before the config test (keepalived -t checks the script path).
        assert!(
            s.find("mv -f /etc/keepalived/check_apiserver.sh.tkeha-new")
                .unwrap_or(usize::MAX)
                < test
        );
        assert!(!s.contains("apt-get"));
    }

    #[test]
    fn unchanged_files_are_not_written() {
        let s = apply_script(&changes(None, false, false));
        assert!(!s.text().contains("base64 -d"));
        assert!(s.uploads().is_empty());
        assert!(s.text().contains("keepalived -D"));
    }

    #[test]
    fn install_uses_the_package_manager() {
        let dnf = apply_script(&changes(Some(PackageManager::Dnf), true, true));
        assert!(dnf.text().contains("dnf install -y keepalived"));
        let apt = apply_script(&changes(Some(PackageManager::AptGet), true, true));
        let text = apt.text();
        assert!(text.contains("apt-get install -y -q -o DPkg::Lock::Timeout=120 keepalived"));
        // The lists are refreshed first (the preflight checked fresh lists), retrying while
        // another process holds their lock, for a bounded time.
        let update = text.find("apt-get -q update").unwrap_or(usize::MAX);
        let install = text.find("apt-get install").unwrap_or(0);
        assert!(update < install, "{text}");
        assert!(
            text.contains("grep -q 'Could not get lock'") && text.contains("end=$((SECONDS+120))")
        );
        for name in ["apt-get", "dnf", "yum", "zypper"] {
            assert_eq!(
                PackageManager::parse(name).map(PackageManager::name),
                Some(name)
            );
        }
        assert_eq!(PackageManager::parse("pacman"), None);
    }

    #[test]
    fn no_fixed_name_in_a_world_writable_directory() {
        let s = apply_script(&changes(Some(PackageManager::AptGet), true, true));
        let text = s.text();
        for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
            assert!(!text.contains(dir), "{dir} in the apply script:\n{text}");
        }
        assert!(text.contains("log=$(mktemp)"), "{text}");
        assert!(text.starts_with(STREAMED_PRELUDE));
    }

    #[test]
    fn the_config_is_root_only_and_the_check_script_not_writable_by_others() {
        let s = apply_script(&changes(None, true, true));
        let modes: Vec<(&str, u32)> = s
            .uploads()
            .iter()
            .map(|u| (u.path.as_str(), u.mode))
            .collect();
        assert_eq!(modes, [(CHECK_SCRIPT_PATH, 0o755), (CONF_PATH, 0o600)]);
        assert!(
            s.text()
                .contains("chmod 0600 /etc/keepalived/keepalived.conf.tkeha-new")
        );
        assert!(s.text().contains(
            "[ -d /etc/keepalived ] || install -d -m 0755 -o root -g root /etc/keepalived"
        ));
    }

    #[test]
    fn a_running_keepalived_is_only_reloaded_when_asked() {
        let mut c = changes(None, true, true);
        c.service = ServiceChange::EnsureStarted;
        let s = apply_script(&c);
        assert!(!s.text().contains("systemctl reload"), "{}", s.text());
        assert!(s.text().contains("systemctl start keepalived"));
    }

    fn output(stdout: &str, stderr: &str, status: i32) -> ExecOutput {
        ExecOutput {
            stdout: stdout.into(),
            stderr: stderr.into(),
            status,
        }
    }

    #[test]
    fn outcomes_are_read_from_the_markers_and_the_status() {
        let done = ApplyOutcome::parse(&output(
            "@@step=update\n@@installed=1:2.2.7-1+b2\n@@wrote=/etc/keepalived/keepalived.conf\n@@action=started\n@@end=1\n",
            "",
            0,
        ));
        assert_eq!(
            done,
            ApplyOutcome {
                installed: Some("1:2.2.7-1+b2".into()),
                already_present: false,
                install_touched: false,
                wrote: vec!["/etc/keepalived/keepalived.conf".into()],
                service: Some(ServiceAction::Started),
                probe: None,
                end: ApplyEnd::Done,
                stderr: String::new(),
            }
        );
        assert!(done.changed());
        let rejected = ApplyOutcome::parse(&output("@@test_failed=1\n", " bad line 3\n", 5));
        assert_eq!(rejected.end, ApplyEnd::ConfigRejected);
        assert_eq!(rejected.stderr, "bad line 3");
        let install = ApplyOutcome::parse(&output("@@install_failed=1\n", "E: no candidate", 4));
        assert_eq!(install.end, ApplyEnd::InstallFailed);
        assert!(
            !install.changed(),
            "the install failed before anything was written"
        );
        let touched = ApplyOutcome::parse(&output(
            "@@install_touched=1\n@@install_failed=1\n",
            "Setting up libsnmp40 ...\nE: Sub-process /usr/bin/dpkg returned an error code (1)",
            4,
        ));
        assert!(touched.changed(), "apt set up packages before it failed");
        let noop = ApplyOutcome::parse(&output("@@install_noop=1\n", "0 newly installed", 4));
        assert_eq!(noop.end, ApplyEnd::InstallChangedNothing);
        assert!(!noop.changed() && noop.installed.is_none());
        let present = ApplyOutcome::parse(&output("@@present=1\n@@end=1\n", "", 0));
        assert!(present.already_present && present.installed.is_none());
        let cut = ApplyOutcome::parse(&output("@@action=reloaded\n", "", -1));
        assert_eq!(cut.end, ApplyEnd::Failed { status: None }, "no end marker");
        assert_eq!(cut.service, Some(ServiceAction::Reloaded));
        let failed = ApplyOutcome::parse(&output("@@end=1\n", "mkdir: denied", 1));
        assert_eq!(failed.end, ApplyEnd::Failed { status: Some(1) });
    }
}

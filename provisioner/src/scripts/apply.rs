//! The apply script of one master (install keepalived, write the files that differ, test the config, start or reload) and its typed result.

use super::service::{self, ServiceAction};
use super::{Markers, PATH_EXPORT, Script, Upload};
use crate::keepalived::{CHECK_SCRIPT_PATH, CONF_PATH};
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

    /// The shell command that installs keepalived non-interactively.
    fn install_keepalived(self) -> &'static str {
        match self {
            PackageManager::AptGet => {
                "{ DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived; }; }"
            }
            PackageManager::Dnf => "dnf install -y keepalived",
            PackageManager::Yum => "yum install -y keepalived",
            PackageManager::Zypper => "zypper -n install keepalived",
        }
    }
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
    /// The master runs systemd.
    pub systemd: bool,
}

/// The apply script: only the steps asked for, then start keepalived or reload it.
pub fn apply_script(c: &ApplyChanges<'_>) -> Script {
    let mut s = Script::new("apply");
    s.push("set -e\numask 022\n");
    s.push(PATH_EXPORT);
    if let Some(pm) = c.install {
        s.push(&format!(
            "if ! command -v keepalived >/dev/null 2>&1; then\n  if ! {cmd} >/tmp/tkeha-keepalived-install.log 2>&1; then tail -n 20 /tmp/tkeha-keepalived-install.log >&2; echo \"@@install_failed=1\"; exit 4; fi\n  echo \"@@installed=1\"\nfi\n",
            cmd = pm.install_keepalived()
        ));
    }
    s.push("mkdir -p /etc/keepalived\n");
    // The check script goes first: `keepalived -t` checks that the script it names exists.
    if let Some(check) = c.check {
        s.upload(Upload {
            path: CHECK_SCRIPT_PATH.to_string(),
            mode: 0o755,
            content: check.to_string(),
            verify: None,
        });
    }
    if let Some(conf) = c.conf {
        s.upload(Upload {
            path: CONF_PATH.to_string(),
            mode: 0o644,
            content: conf.to_string(),
            verify: Some("keepalived -t -f".to_string()),
        });
    }
    s.push(&service::start_or_reload(c.systemd));
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
    /// The package manager failed (the tail of its log is on stderr).
    InstallFailed,
    /// The script stopped elsewhere (a failed command under `set -e`).
    Failed {
        /// Its exit status.
        status: i32,
    },
}

/// What the apply script reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// keepalived was installed by this run.
    pub installed: bool,
    /// keepalived was started or reloaded.
    pub service: Option<ServiceAction>,
    /// How the script ended.
    pub end: ApplyEnd,
    /// Its stderr, trimmed (the test's or the package manager's complaint).
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
        } else if out.status != 0 || !m.has("end") {
            ApplyEnd::Failed { status: out.status }
        } else {
            ApplyEnd::Done
        };
        ApplyOutcome {
            installed: m.has("installed"),
            service: m.value("action").and_then(ServiceAction::parse),
            end,
            stderr: out.stderr.trim().to_string(),
        }
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
            systemd,
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
        assert!(apt.text().contains("apt-get install -y -q keepalived"));
        for name in ["apt-get", "dnf", "yum", "zypper"] {
            assert_eq!(
                PackageManager::parse(name).map(PackageManager::name),
                Some(name)
            );
        }
        assert_eq!(PackageManager::parse("pacman"), None);
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
        let done =
            ApplyOutcome::parse(&output("@@installed=1\n@@action=started\n@@end=1\n", "", 0));
        assert_eq!(
            done,
            ApplyOutcome {
                installed: true,
                service: Some(ServiceAction::Started),
                end: ApplyEnd::Done,
                stderr: String::new(),
            }
        );
        let rejected = ApplyOutcome::parse(&output("@@test_failed=1\n", " bad line 3\n", 5));
        assert_eq!(rejected.end, ApplyEnd::ConfigRejected);
        assert_eq!(rejected.stderr, "bad line 3");
        let install = ApplyOutcome::parse(&output("@@install_failed=1\n", "E: no candidate", 4));
        assert_eq!(install.end, ApplyEnd::InstallFailed);
        let cut = ApplyOutcome::parse(&output("@@action=reloaded\n", "", 0));
        assert_eq!(cut.end, ApplyEnd::Failed { status: 0 }, "no end marker");
        assert_eq!(cut.service, Some(ServiceAction::Reloaded));
        let failed = ApplyOutcome::parse(&output("@@end=1\n", "mkdir: denied", 1));
        assert_eq!(failed.end, ApplyEnd::Failed { status: 1 });
    }
}

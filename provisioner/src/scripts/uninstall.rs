//! The uninstall script of one master (stop keepalived, remove our files, a stale VIP, the hairpin rule) and its typed result.

use super::hairpin::remove_rule_script;
use super::{Markers, PATH_EXPORT, STAGED_SUFFIX, STREAMED_PRELUDE, Script, service};
use crate::keepalived::{CHECK_SCRIPT_PATH, CONF_PATH, MARKER, PROBE_SCRIPT_PATH};
use crate::manifest::{Mode, Plan};
use crate::remote::ExecOutput;

/// The uninstall script for one master (independent of systemd: both ways are tried). Its
/// output is read as it arrives ([`STREAMED_PRELUDE`]): what it did before a cut is known.
/// The keepalived package stays; the script says which version is installed (`@@package=`).
pub fn uninstall_script(plan: &Plan) -> Script {
    let mut s = format!("{STREAMED_PRELUDE}set +e\n{PATH_EXPORT}");
    let vip = plan.vip;
    match plan.mode {
        Mode::Tke { .. } => {
            s.push_str(&format!(
                "if grep -q '{MARKER}' {CONF_PATH} 2>/dev/null; then\n\
                 if [ -d /run/systemd/system ]; then\n{stop_sd}systemctl disable -q keepalived 2>/dev/null\nelse\n{stop_d}fi\n\
                 rm -f {CONF_PATH} && echo \"@@removed={CONF_PATH}\"\n\
                 elif [ -f {CONF_PATH} ]; then echo \"@@foreign_conf=1\"; fi\n\
                 grep -q '{MARKER}' {CHECK_SCRIPT_PATH} 2>/dev/null && rm -f {CHECK_SCRIPT_PATH} && echo \"@@removed={CHECK_SCRIPT_PATH}\"\n\
                 rm -f {CONF_PATH}{STAGED_SUFFIX} {CHECK_SCRIPT_PATH}{STAGED_SUFFIX}\n\
                 if grep -q '{MARKER}' {PROBE_SCRIPT_PATH} 2>/dev/null; then\n{probe}echo \"@@removed={PROBE_SCRIPT_PATH}\"\nfi\n",
                stop_sd = service::stop(true),
                stop_d = service::stop(false),
                probe = service::probe(service::ProbeChange::Remove, false),
            ));
            // A stale VIP (e.g. after kill -9) is removed by hand.
            s.push_str(&format!(
                "ip -o addr show | awk -v v='{vip}' '{{split($4,a,\"/\"); if (a[1]==v) print $2, $4}}' | \
                 while read dev cidr; do ip addr del \"$cidr\" dev \"${{dev%%@*}}\" && echo \"@@vip_removed=1\"; done\n\
                 ip -o addr show | grep -qF ' {vip}/' && echo \"@@vip_still=1\"\n"
            ));
            s.push_str(
                "v=$(dpkg-query -W -f='${Status} ${Version}' keepalived 2>/dev/null | sed -n 's/^install ok installed //p')\n\
                 [ -n \"$v\" ] || v=$(rpm -q --qf '%{VERSION}-%{RELEASE}' keepalived 2>/dev/null) || v=\n\
                 [ -n \"$v\" ] && echo \"@@package=$v\"\n",
            );
        }
        Mode::ThirdParty { vport } => s.push_str(&remove_rule_script(plan.vip, vport)),
    }
    s.push_str("echo \"@@end=1\"\n");
    Script::shell("uninstall", s)
}

/// What the uninstall script reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UninstallOutcome {
    /// Files of ours it removed.
    pub removed: Vec<String>,
    /// keepalived was running and was stopped.
    pub stopped: bool,
    /// A hairpin rule was deleted.
    pub hairpin_removed: bool,
    /// A stale VIP was deleted from an interface.
    pub vip_removed: bool,
    /// keepalived.conf exists but was not written by tkeha (left alone).
    pub foreign_conf: bool,
    /// The VIP is still assigned after everything.
    pub vip_still: bool,
    /// The keepalived package is installed (its version): it stays.
    pub package: Option<String>,
    /// The script ran to its end.
    pub complete: bool,
    /// Its exit status (-1 when it is not known).
    pub status: i32,
    /// Its stderr, trimmed.
    pub stderr: String,
}

impl UninstallOutcome {
    /// Read the script's output.
    pub fn parse(out: &ExecOutput) -> Self {
        let m = Markers::parse(&out.stdout);
        UninstallOutcome {
            removed: m.values("removed").map(str::to_string).collect(),
            stopped: m.has("stopped"),
            hairpin_removed: m.has("hairpin_removed"),
            vip_removed: m.has("vip_removed"),
            foreign_conf: m.has("foreign_conf"),
            vip_still: m.has("vip_still"),
            package: m.value("package").map(|v| v.trim().to_string()),
            complete: m.has("end"),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        }
    }

    /// Whether the master was changed at all.
    pub fn changed(&self) -> bool {
        !self.removed.is_empty() || self.stopped || self.hairpin_removed || self.vip_removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_has_its_field() {
        let out = ExecOutput {
            stdout: "@@stopped=1\n@@removed=/etc/keepalived/keepalived.conf\n\
                     @@removed=/etc/keepalived/check_apiserver.sh\n@@vip_removed=1\n@@end=1\n"
                .into(),
            stderr: String::new(),
            status: 0,
        };
        let o = UninstallOutcome::parse(&out);
        assert_eq!(
            o.removed,
            [
                "/etc/keepalived/keepalived.conf",
                "/etc/keepalived/check_apiserver.sh"
            ]
        );
        assert!(o.stopped && o.vip_removed && o.complete && o.changed());
        assert!(!o.foreign_conf && !o.vip_still && !o.hairpin_removed);
        assert_eq!(o.package, None);
        let nothing = UninstallOutcome::parse(&ExecOutput {
            stdout: "@@foreign_conf=1\n@@end=1\n".into(),
            ..ExecOutput::default()
        });
        assert!(nothing.foreign_conf && !nothing.changed());
    }

    #[test]
    fn what_a_cut_off_script_did_still_counts() {
        // keepalived was stopped, then the script died before removing anything.
        let cut = UninstallOutcome::parse(&ExecOutput {
            stdout: "@@stopped=1\n".into(),
            stderr: String::new(),
            status: -1,
        });
        assert!(!cut.complete);
        assert!(cut.changed(), "keepalived was stopped: the master changed");
    }

    #[test]
    fn the_package_version_is_read_and_the_script_asks_dpkg_and_rpm() {
        let o = UninstallOutcome::parse(&ExecOutput {
            stdout: "@@package=1:2.2.7-1+b2\n@@end=1\n".into(),
            ..ExecOutput::default()
        });
        assert_eq!(o.package.as_deref(), Some("1:2.2.7-1+b2"));
        let plan = crate::fake::Fleet::new(1).tke_plan();
        let text = uninstall_script(&plan).text().to_string();
        assert!(
            text.contains("dpkg-query -W") && text.contains("rpm -q"),
            "{text}"
        );
        assert!(text.starts_with(STREAMED_PRELUDE), "{text}");
    }
}

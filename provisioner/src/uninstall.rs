//! `uninstall`: stop keepalived, remove our files and the hairpin rule, and make sure the VIP is gone.

use std::time::Instant;

use crate::fleet::{self, Options, SCRIPT_TIMEOUT};
use crate::keepalived::{CHECK_SCRIPT_PATH, CONF_PATH, MARKER};
use crate::manifest::{Mode, Plan};
use crate::probe::PATH_EXPORT;
use crate::report::{Report, VrrpState};
use crate::service;
use crate::thirdparty;

/// The uninstall script for one master (independent of systemd: both ways are tried).
pub fn uninstall_script(plan: &Plan) -> String {
    let mut s = format!("set +e\n{PATH_EXPORT}");
    let vip = plan.vip;
    match plan.mode {
        Mode::Tke { .. } => {
            s.push_str(&format!(
                "if grep -q '{MARKER}' {CONF_PATH} 2>/dev/null; then\n\
                 if [ -d /run/systemd/system ]; then\n{stop_sd}systemctl disable -q keepalived 2>/dev/null\nelse\n{stop_d}fi\n\
                 rm -f {CONF_PATH} && echo \"@@removed={CONF_PATH}\"\n\
                 elif [ -f {CONF_PATH} ]; then echo \"@@foreign_conf=1\"; fi\n\
                 grep -q '{MARKER}' {CHECK_SCRIPT_PATH} 2>/dev/null && rm -f {CHECK_SCRIPT_PATH} && echo \"@@removed={CHECK_SCRIPT_PATH}\"\n\
                 rm -f {CONF_PATH}.tkeha-new {CHECK_SCRIPT_PATH}.tkeha-new\n",
                stop_sd = service::stop(true),
                stop_d = service::stop(false),
            ));
            // A stale VIP (e.g. after kill -9) is removed by hand.
            s.push_str(&format!(
                "ip -o addr show | awk -v v='{vip}' '{{split($4,a,\"/\"); if (a[1]==v) print $2, $4}}' | \
                 while read dev cidr; do ip addr del \"$cidr\" dev \"${{dev%%@*}}\" && echo \"@@vip_removed=1\"; done\n\
                 ip -o addr show | grep -qF ' {vip}/' && echo \"@@vip_still=1\"\n"
            ));
        }
        Mode::ThirdParty { vport } => s.push_str(&thirdparty::remove_rule_script(plan, vport)),
    }
    s.push_str("echo \"@@end=1\"\n");
    s
}

/// Remove everything tkeha installed from every master.
pub fn uninstall(plan: &Plan, opts: &Options) -> Report {
    let t = Instant::now();
    let mut report = Report::new("uninstall", plan.mode.name(), &plan.vip.to_string());
    let mut hosts = fleet::connect_all(plan, opts);
    let script = uninstall_script(plan);
    fleet::each(&mut hosts, opts, "uninstalling", |h| {
        let conn = h.conn.as_mut().ok_or("no session")?;
        let out = conn
            .run("uninstall", &script, SCRIPT_TIMEOUT)
            .map_err(|e| e.to_string())?;
        if !out.stdout.contains("@@end=1") {
            return Err(format!(
                "the uninstall script failed (exit {}): {}",
                out.status,
                out.stderr.trim()
            ));
        }
        h.report.changed = out.stdout.contains("@@removed=")
            || out.stdout.contains("@@stopped=1")
            || out.stdout.contains("@@hairpin_removed=1")
            || out.stdout.contains("@@vip_removed=1");
        h.report.state = VrrpState::Stopped;
        if out.stdout.contains("@@foreign_conf=1") {
            h.report
                .notes
                .push(format!("{CONF_PATH} was not written by tkeha: left alone"));
        }
        if out.stdout.contains("@@vip_still=1") {
            return Err(format!("VIP {} is still assigned on this master", plan.vip));
        }
        Ok(())
    });
    for h in hosts.iter_mut() {
        h.sync_round_trips();
    }
    report.hosts = hosts.into_iter().map(|h| h.report).collect();
    report.elapsed_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.finish();
    report
}

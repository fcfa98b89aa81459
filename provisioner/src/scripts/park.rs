//! The drill of a keepalived static pod (TKEStack's): park its manifest outside kubelet's directory under a restore guard that the master itself runs, and put it back; with the typed results of both scripts.
//!
//! Moving the manifest out of `/etc/kubernetes/manifests/` is what an operator does: kubelet
//! stops the pod, and keepalived gets SIGTERM (and sends its priority-0 advert). The manifest is
//! parked in [`DRILL_DIR`] (root-owned, mode 0700, on the same file system, so both moves are
//! renames), never under a fixed name in a world-writable directory.
//!
//! The restore must happen even if the process that started the drill dies (SIGKILL, a lost
//! SSH connection, a reboot of the provisioner host). So before it moves anything, the park
//! script arms a guard on the master: a transient systemd timer (`systemd-run --on-active`)
//! where systemd runs, which survives the end of the SSH session whatever logind's
//! `KillUserProcesses` says; otherwise a `sleep` job in its own session (`setsid`), detached from
//! the SSH channel. Either runs `restore.sh` from [`DRILL_DIR`] after the guard time. The
//! provisioner's own restore disarms the guard and runs the same commands; both are idempotent.
//! A reboot of the master during a drill loses the guard: the probe then finds the parked
//! manifest and `status` says how to put it back.

use super::{Markers, PATH_EXPORT, Script, Upload};
use crate::remote::ExecOutput;
use crate::tkestack::{DRILL_DIR, PARKED_MANIFEST, STATIC_POD_MANIFEST};

/// Seconds an old keepalived must stay alive after the restore to count as never stopped.
pub const KEPT_SECS: u32 = 5;

/// The guard's transient systemd unit (`.timer` and `.service`).
pub const GUARD_UNIT: &str = "tkeha-drill-restore";
/// The guard's restore script on the master.
pub const RESTORE_SCRIPT: &str = "/etc/kubernetes/tkeha-drill/restore.sh";
/// The process group of a `sleep` guard.
pub const GUARD_PID: &str = "/etc/kubernetes/tkeha-drill/guard.pid";

/// The commands that put the parked manifest back (once; a second run finds nothing to do).
/// If the manifest is in place again (TKEStack wrote it meanwhile), an identical parked copy is
/// dropped and a different one is kept, for a person to look at.
fn restore_commands() -> String {
    format!(
        "p={PARKED_MANIFEST}; m={STATIC_POD_MANIFEST}\n\
         if [ -f \"$p\" ]; then\n\
           if [ -e \"$m\" ]; then cmp -s \"$p\" \"$m\" && rm -f \"$p\"\n\
           else mv -f \"$p\" \"$m\"\n\
           fi\n\
         fi\n"
    )
}

/// The guard's script file.
fn restore_file() -> String {
    format!(
        "#!/bin/sh\n# tkeha drill guard: put TKEStack's keepalived static pod manifest back where kubelet reads it.\n{}",
        restore_commands()
    )
}

/// Park the static pod manifest: make [`DRILL_DIR`], write the guard's script, arm the guard
/// for `guard_secs`, then move the manifest. Prints `@@guard=timer|sleep` and `@@parked=1`, or
/// why it did nothing (`@@no_manifest`, `@@busy`, `@@bad_dir`, `@@guard_failed`).
pub fn park_script(guard_secs: u32) -> Script {
    let mut s = Script::new("park keepalived manifest");
    s.push(&format!(
        "set +e\n{PATH_EXPORT}d={DRILL_DIR}; m={STATIC_POD_MANIFEST}; p={PARKED_MANIFEST}\n\
         stop() {{ echo \"@@$1=1\"; echo \"@@end=1\"; exit 0; }}\n\
         [ -f \"$m\" ] || stop no_manifest\n\
         if [ -L \"$d\" ] || {{ [ -e \"$d\" ] && [ ! -d \"$d\" ]; }}; then stop bad_dir; fi\n\
         mkdir -p \"$d\" && chown root:root \"$d\" && chmod 0700 \"$d\" || stop bad_dir\n\
         [ -e \"$p\" ] && stop busy\n"
    ));
    s.upload(Upload {
        path: RESTORE_SCRIPT.into(),
        mode: 0o700,
        content: restore_file(),
        verify: None,
    });
    s.push(&format!(
        "[ -f {RESTORE_SCRIPT} ] || stop guard_failed\n\
         if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then\n\
           systemctl stop {GUARD_UNIT}.timer 2>/dev/null\n\
           systemd-run --quiet --collect --unit={GUARD_UNIT} --on-active={guard_secs}s \
         --timer-property=AccuracySec=100ms /bin/sh {RESTORE_SCRIPT} >/dev/null 2>&1 || stop guard_failed\n\
           echo \"@@guard=timer\"\n\
         else\n\
           setsid sh -c 'sleep {guard_secs}; exec /bin/sh {RESTORE_SCRIPT}' </dev/null >/dev/null 2>&1 &\n\
           echo $! > {GUARD_PID}\n\
           echo \"@@guard=sleep\"\n\
         fi\n\
         mv -f \"$m\" \"$p\" && echo \"@@parked=1\"\n\
         echo \"@@end=1\"\n"
    ));
    s
}

/// Put the manifest back: disarm the guard, restore, tidy [`DRILL_DIR`], then wait up to
/// `wait_secs` for kubelet to start a keepalived that is not one of `old_pids`. Prints
/// `@@in_place=1`, `@@still_parked=1`, `@@started=PID`; or `@@kept=1` when one of `old_pids`
/// stayed alive for [`KEPT_SECS`] s: kubelet had not stopped the pod yet when its manifest came
/// back (an interrupt right after the park), so the same keepalived runs on.
pub fn restore_script(old_pids: &[u32], wait_secs: u32) -> Script {
    let old: Vec<String> = old_pids.iter().map(u32::to_string).collect();
    Script::shell(
        "restore keepalived manifest",
        format!(
            "set +e\n{PATH_EXPORT}systemctl stop {GUARD_UNIT}.timer 2>/dev/null\n\
             g=$(cat {GUARD_PID} 2>/dev/null); [ -n \"$g\" ] && kill -- -\"$g\" 2>/dev/null\n\
             {restore}\
             rm -f {GUARD_PID} {RESTORE_SCRIPT}\n\
             [ -e {PARKED_MANIFEST} ] || rmdir {DRILL_DIR} 2>/dev/null\n\
             [ -f {STATIC_POD_MANIFEST} ] && echo \"@@in_place=1\"\n\
             [ -f {PARKED_MANIFEST} ] && echo \"@@still_parked=1\"\n\
             old=' {old} '; kept=0; i=0\n\
             if [ -f {STATIC_POD_MANIFEST} ]; then\n\
               while [ $i -lt {tries} ]; do\n\
                 alive=0\n\
                 for q in $(pgrep -x keepalived); do case \"$old\" in *\" $q \"*) alive=1;; *) echo \"@@started=$q\"; break 2;; esac; done\n\
                 if [ $alive = 1 ]; then kept=$((kept+1)); else kept=0; fi\n\
                 [ $kept -ge {kept_tries} ] && {{ echo \"@@kept=1\"; break; }}\n\
                 sleep 0.1; i=$((i+1))\n\
               done\n\
             fi\n\
             echo \"@@end=1\"\n",
            restore = restore_commands(),
            old = old.join(" "),
            tries = wait_secs.saturating_mul(10).max(1),
            kept_tries = KEPT_SECS * 10,
        ),
    )
}

/// The guard the park script armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// A transient systemd timer.
    Timer,
    /// A `sleep` job in its own session.
    Sleep,
}

/// What the park script did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParkOutcome {
    /// The manifest is parked, under this guard.
    Parked(Guard),
    /// Nothing was moved, for this reason (for a message).
    Refused(String),
}

impl ParkOutcome {
    /// Read the park script's output.
    pub fn parse(out: &ExecOutput) -> Self {
        let m = Markers::parse(&out.stdout);
        let guard = match m.value("guard") {
            Some("timer") => Some(Guard::Timer),
            Some("sleep") => Some(Guard::Sleep),
            _ => None,
        };
        if let (true, Some(guard)) = (m.has("parked"), guard) {
            return ParkOutcome::Parked(guard);
        }
        let why = if m.has("no_manifest") {
            format!("{STATIC_POD_MANIFEST} is not there")
        } else if m.has("busy") {
            format!("{PARKED_MANIFEST} exists: another drill runs, or one was interrupted")
        } else if m.has("bad_dir") {
            format!("{DRILL_DIR} cannot be made a root-owned directory")
        } else if m.has("guard_failed") {
            "the restore guard could not be armed, so nothing was moved".into()
        } else {
            format!(
                "the park script failed (exit {}): {}",
                out.status,
                out.stderr.trim()
            )
        };
        ParkOutcome::Refused(why)
    }
}

/// What the restore script did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The manifest is back in kubelet's directory.
    pub in_place: bool,
    /// A parked copy is still there (it differs from the one in place).
    pub still_parked: bool,
    /// A new keepalived process kubelet started.
    pub started: Option<u32>,
    /// kubelet had not stopped the pod: its keepalived runs on.
    pub kept: bool,
    /// The script ran to its end.
    pub complete: bool,
}

impl RestoreOutcome {
    /// Read the restore script's output.
    pub fn parse(out: &ExecOutput) -> Self {
        let m = Markers::parse(&out.stdout);
        RestoreOutcome {
            in_place: m.has("in_place"),
            still_parked: m.has("still_parked"),
            started: m.value("started").and_then(|v| v.trim().parse().ok()),
            kept: m.has("kept"),
            complete: m.has("end"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_is_armed_before_anything_moves() {
        let s = park_script(40);
        let text = s.text();
        let at = |needle: &str| text.find(needle).unwrap_or(usize::MAX);
        assert!(at("chmod 0700 \"$d\"") < at("printf '%s'"));
        assert!(at("mv -f /etc/kubernetes/tkeha-drill/restore.sh.tkeha-new") < at("systemd-run"));
        assert!(at("systemd-run") < at("mv -f \"$m\" \"$p\""));
        assert!(at("setsid sh -c 'sleep 40;") < at("mv -f \"$m\" \"$p\""));
        assert!(text.contains("--on-active=40s"));
        assert!(text.contains("--collect --unit=tkeha-drill-restore"));
        assert_eq!(s.uploads().len(), 1);
        assert_eq!(s.uploads()[0].path, RESTORE_SCRIPT);
        assert_eq!(s.uploads()[0].mode, 0o700);
        assert!(s.uploads()[0].content.contains("mv -f \"$p\" \"$m\""));
        // Nothing in a world-writable place.
        assert!(!text.contains("/tmp") && !text.contains("/var/tmp") && !text.contains("/dev/shm"));
    }

    #[test]
    fn the_restore_disarms_both_guards_and_waits_for_a_new_keepalived() {
        let s = restore_script(&[311, 312], 30);
        let text = s.text();
        assert!(text.contains("systemctl stop tkeha-drill-restore.timer"));
        assert!(text.contains("kill -- -\"$g\""));
        assert!(text.contains("old=' 311 312 '"));
        assert!(text.contains("while [ $i -lt 300 ]"));
        assert!(text.contains("[ $kept -ge 50 ]"));
        assert!(
            text.find("kill -- -").unwrap_or(usize::MAX)
                < text.find("mv -f \"$p\" \"$m\"").unwrap_or(0),
            "the guard is disarmed before the restore"
        );
    }

    #[test]
    fn outcomes_are_typed() {
        let out = |stdout: &str| ExecOutput {
            stdout: stdout.into(),
            stderr: String::new(),
            status: 0,
        };
        assert_eq!(
            ParkOutcome::parse(&out("@@guard=sleep\n@@parked=1\n@@end=1\n")),
            ParkOutcome::Parked(Guard::Sleep)
        );
        assert_eq!(
            ParkOutcome::parse(&out("@@busy=1\n@@end=1\n")),
            ParkOutcome::Refused(
                "/etc/kubernetes/tkeha-drill/keepalived.yaml exists: another drill runs, or one was interrupted"
                    .into()
            )
        );
        let r = RestoreOutcome::parse(&out("@@in_place=1\n@@started=999\n@@end=1\n"));
        assert!(r.in_place && !r.still_parked && r.complete);
        assert_eq!(r.started, Some(999));
    }
}

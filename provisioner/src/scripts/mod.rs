//! Everything that runs on a master: the bash scripts (with the files they upload), and the parsers that turn what they print into typed results.
//!
//! A script reports what it did with `@@key=value` lines on stdout. Those lines are read in this
//! module only, each script's by its own typed parser (`probe::Probe`, `apply::ApplyOutcome`,
//! `uninstall::UninstallOutcome`, `hairpin::SelfConnectOutcome`, `watch::parse_line`): the
//! actions decide on types, never on the text. Every script runs as root (directly, or through
//! `sudo -n` for another user, see [`crate::remote`]).

use std::fmt::Write as _;

use base64::Engine as _;

pub(crate) mod apply;
pub(crate) mod hairpin;
pub(crate) mod park;
pub(crate) mod probe;
pub(crate) mod probe_tkestack;
pub(crate) mod service;
pub(crate) mod uninstall;
pub(crate) mod watch;

/// PATH for every remote script (sbin tools are not on a plain user's PATH).
pub(crate) const PATH_EXPORT: &str =
    "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH\n";

/// First lines of a script whose output is read as it arrives (`crate::fleet::Host::run_streamed`):
/// stderr joins stdout, so nothing it says is lost if the connection dies, and its exit status
/// is printed as `@@exit=N` however it ends (but SIGKILL).
pub(crate) const STREAMED_PRELUDE: &str = "exec 2>&1\ntrap 'echo \"@@exit=$?\"' EXIT\n";

/// Suffix of a file being written: it is moved over the real name only once complete (and checked).
pub(crate) const STAGED_SUFFIX: &str = ".tkeha-new";

/// A file a script puts on a master: written under a temporary name (readable by root only
/// until it is complete), given root ownership and its mode, optionally checked, then moved into
/// place; the script then prints `@@wrote=PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Where it ends up.
    pub path: String,
    /// Its permission bits (`0o644`).
    pub mode: u32,
    /// Its content.
    pub content: String,
    /// A command that must accept the staged file (its path is appended) before it is moved
    /// into place, e.g. `keepalived -t -f`. When it refuses, the staged file is removed, its
    /// output goes to stderr, `@@test_failed=1` is printed and the script exits 5.
    pub verify: Option<String>,
}

/// One bash script for a master, with the files it uploads.
///
/// [`crate::remote::Remote`] implementations run [`Script::text`]; the uploads are part of that
/// text (one round trip), and listed again in [`Script::uploads`] so that a fake remote can see
/// what would be written where, with which mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    what: &'static str,
    text: String,
    uploads: Vec<Upload>,
}

impl Script {
    /// An empty script; `what` names it in errors (`running the apply script failed`).
    pub fn new(what: &'static str) -> Self {
        Script {
            what,
            text: String::new(),
            uploads: Vec::new(),
        }
    }

    /// A script of plain shell text.
    pub fn shell(what: &'static str, text: impl Into<String>) -> Self {
        Script {
            what,
            text: text.into(),
            uploads: Vec::new(),
        }
    }

    /// Append shell text.
    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Append the commands that put `upload` in place.
    pub fn upload(&mut self, upload: Upload) {
        let staged = format!("{}{STAGED_SUFFIX}", upload.path);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&upload.content);
        // Created by this script (a leftover is removed first) with no access for anyone but
        // root until it has its mode: a secret in it is never readable on the way.
        let _ = writeln!(
            self.text,
            "rm -f {staged}\n(umask 077; printf '%s' '{b64}' | base64 -d > {staged})\nchown root:root {staged}\nchmod {mode:04o} {staged}",
            mode = upload.mode
        );
        if let Some(verify) = &upload.verify {
            let _ = writeln!(
                self.text,
                "if ! out=$({verify} {staged} 2>&1); then echo \"$out\" >&2; rm -f {staged}; echo \"@@test_failed=1\"; exit 5; fi"
            );
        }
        let _ = writeln!(
            self.text,
            "mv -f {staged} {path}\necho \"@@wrote={path}\"",
            path = upload.path
        );
        self.uploads.push(upload);
    }

    /// What the script is, for messages.
    pub fn what(&self) -> &str {
        self.what
    }

    /// The bash text to run.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The files the script writes, in order.
    pub fn uploads(&self) -> &[Upload] {
        &self.uploads
    }
}

/// The `@@key=value` lines of a script's stdout, in order. Other lines are ignored; a marker
/// starts its line.
#[derive(Debug, Clone, Default)]
pub(crate) struct Markers<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Markers<'a> {
    /// Read the markers of `stdout`.
    pub(crate) fn parse(stdout: &'a str) -> Self {
        Markers(
            stdout
                .lines()
                .filter_map(|line| line.strip_prefix("@@")?.split_once('='))
                .collect(),
        )
    }

    /// Every `(key, value)` in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.0.iter().copied()
    }

    /// Whether `key` was printed at all.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == key)
    }

    /// The values printed for `key`, in order.
    pub(crate) fn values(&self, key: &'a str) -> impl Iterator<Item = &'a str> + '_ {
        self.0
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The first value printed for `key`.
    pub(crate) fn value(&self, key: &'a str) -> Option<&'a str> {
        self.values(key).next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_start_their_line_and_keep_their_order() {
        let out = "noise @@x=1\n@@removed=/a\n@@stopped=1\n@@removed=/b\n@@end=1\n@@broken\n";
        let m = Markers::parse(out);
        assert!(!m.has("x"), "a marker must start its line");
        assert!(!m.has("broken"), "no '=': not a marker");
        assert_eq!(m.values("removed").collect::<Vec<_>>(), ["/a", "/b"]);
        assert_eq!(m.value("stopped"), Some("1"));
        assert!(m.has("end"));
        assert_eq!(m.iter().count(), 4);
    }

    #[test]
    fn no_script_names_a_file_in_a_world_writable_directory() {
        use std::net::IpAddr;
        let vip: IpAddr = "10.0.0.100".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let fleet = crate::fake::Fleet::new(2);
        let mut scripts = vec![
            probe::probe_script(&probe::ProbeRequest {
                vip_answer_test: Some(vip),
                listener_token: Some("tok".into()),
                hairpin: Some((vip, 16443)),
                installable: true,
            }),
            uninstall::uninstall_script(&fleet.tke_plan()),
            uninstall::uninstall_script(
                &fleet.plan(r#"{"thirdParty": {"vip": "10.0.0.100", "vport": 16443}}"#),
            ),
            watch::watch_script(vip, 100, 5),
            watch::holds_script(vip),
            hairpin::self_connect_script(vip, 16443, Some(4242), true),
        ];
        for systemd in [true, false] {
            for probe in [
                service::ProbeChange::Keep,
                service::ProbeChange::StartOrRestart,
                service::ProbeChange::EnsureStarted,
                service::ProbeChange::Remove,
            ] {
                scripts.push(apply::apply_script(&apply::ApplyChanges {
                    install: Some(apply::PackageManager::AptGet),
                    check: Some("#!/bin/bash\n"),
                    conf: Some("x\n"),
                    service: apply::ServiceChange::StartOrReload,
                    systemd,
                    probe_script: Some("#!/bin/bash\n"),
                    probe_unit: systemd.then_some("[Unit]\n"),
                    probe,
                }));
            }
            scripts.push(service::stop_nowait_script(systemd));
            scripts.push(service::restart_script(systemd));
        }
        for s in &scripts {
            for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
                assert!(
                    !s.text().contains(dir),
                    "the {} script names {dir}:\n{}",
                    s.what(),
                    s.text()
                );
            }
        }
    }

    #[test]
    fn an_upload_is_staged_owned_checked_and_moved() {
        let mut s = Script::new("apply");
        s.upload(Upload {
            path: "/etc/x.conf".into(),
            mode: 0o644,
            content: "a = 1\n".into(),
            verify: Some("x -t -f".into()),
        });
        let text = s.text();
        let write = text
            .find("base64 -d > /etc/x.conf.tkeha-new")
            .unwrap_or(usize::MAX);
        let chown = text
            .find("chown root:root /etc/x.conf.tkeha-new")
            .unwrap_or(usize::MAX);
        let chmod = text
            .find("chmod 0644 /etc/x.conf.tkeha-new")
            .unwrap_or(usize::MAX);
        let verify = text
            .find("x -t -f /etc/x.conf.tkeha-new 2>&1")
            .unwrap_or(usize::MAX);
        let mv = text
            .find("mv -f /etc/x.conf.tkeha-new /etc/x.conf")
            .unwrap_or(0);
        let wrote = text.find("@@wrote=/etc/x.conf").unwrap_or(0);
        assert!(
            write < chown && chown < chmod && chmod < verify && verify < mv && mv < wrote,
            "{text}"
        );
        assert!(
            text.contains("rm -f /etc/x.conf.tkeha-new\n(umask 077; printf"),
            "the staged file is new and private while it is written: {text}"
        );
        assert!(text.contains("'YSA9IDEK'"), "content as base64: {text}");
        assert_eq!(s.uploads().len(), 1);
        assert_eq!(s.uploads()[0].mode, 0o644);
    }
}

//! The command-line surface shared by `tkeha-provisioner` and `kubectl tkeha check|provision|status|drill|uninstall`: the flags, and their conversion into a typed [`Source`] and [`Options`].
//!
//! Nothing here runs or prints: the binaries parse these flags, call [`crate::run`], and render
//! what it returns.

use std::path::PathBuf;
use std::time::Duration;

use tkeha_api::field::escape;

use crate::cluster_api::{CONDITION_TYPE, ClusterApiError, Verdict};
use crate::hostkeys::{self, HostKeyPolicy};
use crate::manifest::PlanError;
use crate::report::Report;
use crate::runner::{Options, RunError, Source};

/// Output format of a provisioner report: `text` (one line per master, then a summary), `json`
/// or `yaml` (the report as one document; its fields are listed in docs/reports.md).
// The variants have no doc comments on purpose: clap would show them as a long `--help` list.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
    Yaml,
}

/// The report as `format` asks, ending in a newline. Text from outside (SSH errors, which can
/// carry a username; a master's output) is escaped in every format ([`Report::shown`]).
pub fn render_report(report: &Report, format: OutputFormat) -> String {
    let mut text = match format {
        OutputFormat::Text => report.to_text(),
        OutputFormat::Json => report.to_json(),
        OutputFormat::Yaml => report.to_yaml(),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// How both binaries print a run that stopped before any master was contacted: a Cluster the
/// rules refuse as the lines `validate` prints (`FILE: FIELD: ...`, then `FILE: invalid (N
/// errors, M warnings)`); anything else as `error: MESSAGE`, one `error: ` per line.
pub fn error_text(error: &RunError) -> String {
    match error {
        RunError::Plan(plan @ PlanError::Invalid { .. }) => format!("{plan}\n"),
        RunError::Cluster(ClusterApiError::Invalid {
            error: plan @ PlanError::Invalid { .. },
            status_write,
        }) => {
            let mut out = format!("{plan}\n");
            if let Some(e) = status_write {
                out.push_str(&prefixed(&format!(
                    "HAReady=False (InvalidCluster) could not be recorded: {e}"
                )));
            }
            out
        }
        other => prefixed(&other.to_string()),
    }
}

/// `error: MESSAGE`: further lines of a message (our own lists of options) indented under the
/// first; control characters in each line escaped, so no line can pass for report output.
pub fn prefixed(message: &str) -> String {
    message
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let lead = if i == 0 { "error: " } else { "       " };
            format!("{lead}{}\n", escape(line))
        })
        .collect()
}

/// The line each binary prints after a run by name: `Cluster NAME: status HAReady=True (Provisioned)`.
pub fn status_line(name: &str, verdict: &Verdict) -> String {
    format!(
        "Cluster {}: status {CONDITION_TYPE}={} ({})\n",
        escape(name),
        verdict.status,
        verdict.reason
    )
}

/// The header a run prints on a terminal once its plan is built: `apply tke HA of 3 master(s), VIP 10.0.0.100`.
pub fn planned_line(action: crate::Action, plan: &crate::Plan) -> String {
    format!(
        "{} {} HA of {} master(s), VIP {}\n",
        action.name(),
        plan.mode.name(),
        plan.machines.len(),
        plan.vip
    )
}

/// What `version` prints: the binary, its version and the platform it was built for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionInfo {
    /// `kubectl-tkeha` or `tkeha-provisioner`.
    pub name: String,
    /// The workspace version (semver), the chart's `appVersion`.
    pub version: String,
    /// `OS/ARCH` as Go and krew spell them (`linux/amd64`).
    pub platform: String,
}

impl VersionInfo {
    /// The running binary's version.
    pub fn of(name: &str) -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        VersionInfo {
            name: name.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            platform: format!("{}/{arch}", std::env::consts::OS),
        }
    }

    /// `text` (`kubectl-tkeha 0.1.0 linux/amd64`), `json` or `yaml`, ending in a newline.
    pub fn render(&self, format: OutputFormat) -> String {
        match format {
            OutputFormat::Text => format!("{} {} {}\n", self.name, self.version, self.platform),
            OutputFormat::Json => {
                let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
                s.push('\n');
                s
            }
            OutputFormat::Yaml => serde_saphyr::to_string(self).unwrap_or_default(),
        }
    }
}

/// The review's warnings, as `validate` prints them: `Warning: ...`, escaped.
pub fn warning_lines(warnings: &[String]) -> String {
    warnings
        .iter()
        .map(|w| format!("Warning: {}\n", escape(w)))
        .collect()
}

/// Default of `--timeout`: seconds to wait for the VIP to settle (apply) or move (drill).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default of `--connect-timeout`: seconds for each SSH connection.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;

/// Flags common to every provisioner action (flattened into the plugin's subcommands).
///
/// The Cluster comes from exactly one of `-f FILE` or a positional `CLUSTER-NAME` (read through
/// the API server).
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("cluster-source")
        .required(true)
        .multiple(false)
        .args(["file", "cluster"])
))]
pub struct HaArgs {
    /// The Cluster manifest (JSON, JSON with // comments, or YAML).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The name of a Cluster object (platform.tkestack.io/v1) to read through the API server
    /// instead of -f FILE; the outcome is written to its status (condition HAReady).
    #[arg(value_name = "CLUSTER-NAME")]
    pub cluster: Option<String>,
    /// Only trust host keys listed in this OpenSSH known_hosts file.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Record host keys seen for the first time (in --known-hosts or ~/.ssh/known_hosts); refuse changed ones.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Do not check host keys at all (lab use only).
    #[arg(long)]
    pub insecure_ignore_host_keys: bool,
    /// Report format: `text` for people, `json` or `yaml` for scripts (the fields are in docs/reports.md).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Seconds to wait for the VIP (each command that waits says what for in its own help).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// Seconds to wait for each SSH connection (TCP connect, handshake, authentication).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
    /// How fast keepalived moves the VIP: `standard` (VRRPv2, 1 s adverts, about 1.7 s after
    /// apiserver death) or `fast` (VRRPv3, 0.1 s adverts, a 50 ms apiserver probe; a few
    /// hundred milliseconds). Overrides the Cluster's annotation
    /// tkeha.tkestack.io/failover-profile; without either, `standard`. Changing it on a running
    /// cluster is a reload: the VIP keeps answering.
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub failover_profile: Option<crate::FailoverProfile>,
}

/// Flags that do not make a run (exit 2 in both binaries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// Neither `-f FILE` nor `CLUSTER-NAME`.
    #[error(
        "no Cluster given: pass -f FILE (a manifest) or CLUSTER-NAME (an object in the API server)"
    )]
    NoCluster,
    /// Both `-f FILE` and `CLUSTER-NAME`.
    #[error("give either -f FILE or CLUSTER-NAME, not both")]
    BothSources,
    /// `CLUSTER-NAME` is the empty string.
    #[error("CLUSTER-NAME is empty: give the Cluster's metadata.name")]
    EmptyName,
    /// `--insecure-ignore-host-keys` together with a checking option.
    #[error(
        "--insecure-ignore-host-keys cannot be combined with --known-hosts or --accept-new-host-keys"
    )]
    ConflictingHostKeyFlags,
    /// No host-key option at all.
    #[error("{}", hostkeys::NO_POLICY_HELP)]
    NoHostKeyPolicy,
    /// `--known-hosts FILE` (without `--accept-new-host-keys`) names no readable file: refused
    /// before any connection, since every host would fail its key check.
    #[error(
        "--known-hosts {}: {reason}; give an OpenSSH known_hosts file that lists the masters' keys, \
         or --accept-new-host-keys to record them on first contact",
        escape(file)
    )]
    KnownHostsUnreadable {
        /// The file as given.
        file: String,
        /// `no such file`, `is a directory`, `permission denied`...
        reason: String,
    },
}

/// Why a known_hosts file cannot be used, in words; `None` when it can be read.
fn unreadable(file: &std::path::Path) -> Option<String> {
    use std::io::ErrorKind;
    match std::fs::File::open(file).and_then(|f| f.metadata()) {
        Ok(m) if m.is_dir() => Some("is a directory, not a file".to_string()),
        Ok(_) => None,
        Err(e) => Some(match e.kind() {
            ErrorKind::NotFound => "no such file".to_string(),
            ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        }),
    }
}

impl HaArgs {
    /// The Cluster source the flags name (clap's group guarantees exactly one; a hand-built
    /// `HaArgs` with neither or both gets the same message clap would print).
    ///
    /// # Errors
    ///
    /// [`ArgsError::NoCluster`], [`ArgsError::BothSources`] or [`ArgsError::EmptyName`].
    pub fn source(&self) -> Result<Source, ArgsError> {
        match (&self.file, &self.cluster) {
            (Some(f), None) => Ok(Source::File(f.clone())),
            (None, Some(n)) if !n.is_empty() => Ok(Source::Cluster(n.clone())),
            (None, Some(_)) => Err(ArgsError::EmptyName),
            (Some(_), Some(_)) => Err(ArgsError::BothSources),
            (None, None) => Err(ArgsError::NoCluster),
        }
    }

    /// The host-key policy the flags ask for.
    ///
    /// # Errors
    ///
    /// [`ArgsError::NoHostKeyPolicy`] (its message teaches the three options),
    /// [`ArgsError::ConflictingHostKeyFlags`], or [`ArgsError::KnownHostsUnreadable`] for a
    /// `--known-hosts` file that cannot be read (it must exist unless new keys are accepted).
    pub fn host_key_policy(&self) -> Result<HostKeyPolicy, ArgsError> {
        let chosen = [
            self.known_hosts.is_some() && !self.accept_new_host_keys,
            self.accept_new_host_keys,
            self.insecure_ignore_host_keys,
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if chosen > 1 {
            return Err(ArgsError::ConflictingHostKeyFlags);
        }
        if self.insecure_ignore_host_keys {
            Ok(HostKeyPolicy::Insecure)
        } else if self.accept_new_host_keys {
            Ok(HostKeyPolicy::AcceptNew(
                self.known_hosts
                    .clone()
                    .unwrap_or_else(hostkeys::default_known_hosts),
            ))
        } else if let Some(f) = &self.known_hosts {
            if let Some(reason) = unreadable(f) {
                return Err(ArgsError::KnownHostsUnreadable {
                    file: f.display().to_string(),
                    reason,
                });
            }
            Ok(HostKeyPolicy::KnownHosts(f.clone()))
        } else {
            Err(ArgsError::NoHostKeyPolicy)
        }
    }

    /// The run's options: the host-key policy and the timeouts (at least one second each).
    ///
    /// # Errors
    ///
    /// See [`HaArgs::host_key_policy`].
    pub fn options(&self) -> Result<Options, ArgsError> {
        let mut options = Options::new(self.host_key_policy()?);
        options.wait_timeout = Duration::from_secs(self.timeout.max(1));
        options.connect_timeout = Duration::from_secs(self.connect_timeout.max(1));
        options.failover_profile = self.failover_profile;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn args() -> HaArgs {
        HaArgs {
            file: Some("c.yaml".into()),
            cluster: None,
            known_hosts: None,
            accept_new_host_keys: false,
            insecure_ignore_host_keys: false,
            output: OutputFormat::Text,
            timeout: 0,
            connect_timeout: 7,
            failover_profile: None,
        }
    }

    #[test]
    fn errors_read_as_one_message() {
        assert_eq!(prefixed("one"), "error: one\n");
        assert_eq!(
            prefixed("no policy: pass one of\n  --a\n  --b \u{1b}[8m"),
            "error: no policy: pass one of\n         --a\n         --b \\u001b[8m\n"
        );
    }

    #[test]
    fn a_missing_known_hosts_file_is_refused_at_once_by_name() {
        let mut a = args();
        a.known_hosts = Some("/nonexistent/known_hosts".into());
        let e = a.options().unwrap_err();
        assert_eq!(
            e.to_string(),
            "--known-hosts /nonexistent/known_hosts: no such file; give an OpenSSH known_hosts file \
             that lists the masters' keys, or --accept-new-host-keys to record them on first contact"
        );
        a.known_hosts = Some("/".into());
        assert!(
            a.options()
                .unwrap_err()
                .to_string()
                .contains("/: is a directory")
        );
        // Accepting new keys may start from no file: it is created on first contact.
        a.known_hosts = Some("/nonexistent/known_hosts".into());
        a.accept_new_host_keys = true;
        assert!(a.options().is_ok());
    }

    #[test]
    fn exactly_one_source() {
        assert_eq!(args().source().unwrap(), Source::File("c.yaml".into()));
        let mut both = args();
        both.cluster = Some("prod".into());
        assert_eq!(both.source(), Err(ArgsError::BothSources));
        let mut name = args();
        name.file = None;
        name.cluster = Some(String::new());
        assert_eq!(name.source(), Err(ArgsError::EmptyName));
        name.cluster = None;
        assert_eq!(name.source(), Err(ArgsError::NoCluster));
    }

    #[test]
    fn one_host_key_policy_and_timeouts_of_at_least_a_second() {
        assert_eq!(args().options().unwrap_err(), ArgsError::NoHostKeyPolicy);
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("kh");
        std::fs::write(&kh, "").unwrap();
        let mut a = args();
        a.known_hosts = Some(kh.clone());
        let o = a.options().unwrap();
        assert_eq!(o.host_keys, HostKeyPolicy::KnownHosts(kh.clone()));
        assert_eq!(o.wait_timeout, Duration::from_secs(1));
        assert_eq!(o.connect_timeout, Duration::from_secs(7));
        a.accept_new_host_keys = true;
        assert_eq!(a.host_key_policy().unwrap(), HostKeyPolicy::AcceptNew(kh));
        a.insecure_ignore_host_keys = true;
        assert_eq!(a.host_key_policy(), Err(ArgsError::ConflictingHostKeyFlags));
    }
}

//! The command-line surface shared by `tkeha-provisioner` and `kubectl tkeha check|provision|status|drill|uninstall`: the flags, and their conversion into a typed [`Source`] and [`Options`].
//!
//! Nothing here runs or prints: the binaries parse these flags, call [`crate::run`], and render
//! what it returns.

use std::path::PathBuf;
use std::time::Duration;

use crate::hostkeys::{self, HostKeyPolicy};
use crate::runner::{Options, Source};

/// Output format of a provisioner report: `text` (one line per master, then a summary) or
/// `json` (the report as one document).
// The variants have no doc comments on purpose: clap would show them as a long `--help` list.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
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
    /// Report format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Seconds to wait for the VIP to settle (apply) or move (drill).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT_SECS)]
    pub timeout: u64,
    /// Seconds to wait for each SSH connection (TCP connect, handshake, authentication).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS)]
    pub connect_timeout: u64,
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
    /// [`ArgsError::NoHostKeyPolicy`] (its message teaches the three options) or
    /// [`ArgsError::ConflictingHostKeyFlags`].
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
        }
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
        let mut a = args();
        a.known_hosts = Some("kh".into());
        let o = a.options().unwrap();
        assert_eq!(o.host_keys, HostKeyPolicy::KnownHosts("kh".into()));
        assert_eq!(o.wait_timeout, Duration::from_secs(1));
        assert_eq!(o.connect_timeout, Duration::from_secs(7));
        a.accept_new_host_keys = true;
        assert_eq!(
            a.host_key_policy().unwrap(),
            HostKeyPolicy::AcceptNew("kh".into())
        );
        a.insecure_ignore_host_keys = true;
        assert_eq!(a.host_key_policy(), Err(ArgsError::ConflictingHostKeyFlags));
    }
}

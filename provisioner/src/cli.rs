//! The command-line surface shared by `tkeha-provisioner` and `kubectl tkeha check|provision|status|drill|uninstall`.

use std::path::PathBuf;

/// What to do to the masters of one Cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Check,
    Apply,
    Status,
    Drill,
    Uninstall,
}

/// Output format of a provisioner report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

/// Flags common to every provisioner action (flattened into the plugin's subcommands).
#[derive(Debug, Clone, clap::Args)]
pub struct HaArgs {
    /// The Cluster manifest (JSON, JSON with // comments, or YAML).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
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
}

/// Run one action and return the process exit code (0 all hosts fine, 1 a host failed, 2 unusable input).
pub fn run(action: Action, args: &HaArgs) -> i32 {
    let _ = (action, args);
    eprintln!("error: the provisioner is not built yet");
    2
}

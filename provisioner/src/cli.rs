//! The command-line surface shared by `tkeha-provisioner` and `kubectl tkeha check|provision|status|drill|uninstall`.

use std::path::PathBuf;
use std::time::Duration;

use crate::fleet::Options;
use crate::hostkeys::{self, HostKeyPolicy};
use crate::manifest::{self, Plan};
use crate::report::Report;
use crate::{apply, check, cluster_api, drill, status, uninstall};
use tkeha_kube::Target;

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

/// Default of `--timeout`: seconds to wait for the VIP to settle (apply) or move (drill).
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// Default of `--connect-timeout`: seconds for each SSH connection.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;

/// Flags common to every provisioner action (flattened into the plugin's subcommands).
///
/// The Cluster comes from exactly one of `-f FILE` or a positional `CLUSTER-NAME` (read through
/// the API server; see [`run_with`] for where the API server is).
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

/// Where the Cluster of one run comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-f FILE`: a manifest on disk; nothing is written back.
    File(PathBuf),
    /// `CLUSTER-NAME`: a Cluster object read through the API server; its status is updated.
    Cluster(String),
}

impl HaArgs {
    /// The Cluster source the flags name (clap's group guarantees exactly one; a hand-built
    /// `HaArgs` with neither or both gets the same message clap would print).
    pub fn source(&self) -> Result<Source, String> {
        match (&self.file, &self.cluster) {
            (Some(f), None) => Ok(Source::File(f.clone())),
            (None, Some(n)) if !n.is_empty() => Ok(Source::Cluster(n.clone())),
            (None, Some(_)) => Err("CLUSTER-NAME is empty: give the Cluster's metadata.name".into()),
            (Some(_), Some(_)) => Err(
                "give either -f FILE or CLUSTER-NAME, not both".into(),
            ),
            (None, None) => Err(
                "no Cluster given: pass -f FILE (a manifest) or CLUSTER-NAME (an object in the API server)".into(),
            ),
        }
    }
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Check => "check",
            Action::Apply => "apply",
            Action::Status => "status",
            Action::Drill => "drill",
            Action::Uninstall => "uninstall",
        }
    }
}

/// The host-key policy the flags ask for, or the help text when none was given.
pub fn host_key_policy(args: &HaArgs) -> Result<HostKeyPolicy, String> {
    let chosen = [
        args.known_hosts.is_some() && !args.accept_new_host_keys,
        args.accept_new_host_keys,
        args.insecure_ignore_host_keys,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen > 1 {
        return Err("--insecure-ignore-host-keys cannot be combined with --known-hosts or --accept-new-host-keys".into());
    }
    if args.insecure_ignore_host_keys {
        Ok(HostKeyPolicy::Insecure)
    } else if args.accept_new_host_keys {
        Ok(HostKeyPolicy::AcceptNew(
            args.known_hosts
                .clone()
                .unwrap_or_else(hostkeys::default_known_hosts),
        ))
    } else if let Some(f) = &args.known_hosts {
        Ok(HostKeyPolicy::KnownHosts(f.clone()))
    } else {
        Err(hostkeys::NO_POLICY_HELP.to_string())
    }
}

/// Run one action on a plan with options: the library entry point behind the CLI.
pub fn run_plan(action: Action, plan: &Plan, opts: &Options) -> Report {
    match action {
        Action::Check => check::check(plan, opts),
        Action::Apply => apply::apply(plan, opts),
        Action::Status => status::status(plan, opts),
        Action::Drill => drill::drill(plan, opts),
        Action::Uninstall => uninstall::uninstall(plan, opts),
    }
}

/// Run one action and return the process exit code (0 all hosts fine, 1 a host failed, 2 unusable
/// input). A `CLUSTER-NAME` is read through the API server found the way kubectl finds it
/// (`$KUBECONFIG`, `~/.kube/config`, else the in-cluster service account); see [`run_with`].
pub fn run(action: Action, args: &HaArgs) -> i32 {
    run_with(action, args, &Target::default())
}

/// [`run`] with an explicit API server target (the `--kubeconfig` / `--context` global flags of
/// `kubectl tkeha` and `tkeha-provisioner`). The target is only used for a `CLUSTER-NAME`; with
/// `-f FILE` nothing is contacted but the masters.
///
/// With a `CLUSTER-NAME`, `apply`, `status`, `drill` and `uninstall` write the outcome to the
/// Cluster's status (condition `HAReady`, `status.ha`), also when the Cluster is refused as
/// invalid; `check` only reads. A failed status write makes the exit code at least 1.
pub fn run_with(action: Action, args: &HaArgs, target: &Target) -> i32 {
    let source = match args.source() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let policy = match host_key_policy(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut opts = Options::new(policy);
    opts.wait_timeout = Duration::from_secs(args.timeout.max(1));
    opts.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    match source {
        Source::File(path) => {
            let plan = match manifest::load_plan(&path) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return 2;
                }
            };
            let report = run_and_print(action, &plan, &opts, args.output);
            report.exit_code()
        }
        Source::Cluster(name) => {
            let outcome = cluster_api::run(target, &name, action, |plan| {
                run_and_print(action, plan, &opts, args.output)
            });
            match outcome {
                Ok(outcome) => {
                    if let Some(c) = &outcome.condition {
                        eprintln!(
                            "Cluster {name}: status {}={} ({})",
                            cluster_api::CONDITION_TYPE,
                            c.status,
                            c.reason
                        );
                    }
                    if let Some(e) = &outcome.status_error {
                        eprintln!("error: {e}");
                    }
                    let code = outcome.report.exit_code();
                    if outcome.status_error.is_some() {
                        code.max(1)
                    } else {
                        code
                    }
                }
                Err(e) => {
                    // Nothing was done on any host: the Cluster could not be read or is invalid.
                    eprintln!("error: {e}");
                    2
                }
            }
        }
    }
}

/// Print the warnings and a progress header, run, print the report.
fn run_and_print(action: Action, plan: &Plan, opts: &Options, output: OutputFormat) -> Report {
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if opts.progress {
        eprintln!(
            "{} {} HA of {} master(s), VIP {}",
            action.name(),
            plan.mode.name(),
            plan.machines.len(),
            plan.vip
        );
    }
    let report = run_plan(action, plan, opts);
    match output {
        OutputFormat::Json => println!("{}", report.to_json()),
        OutputFormat::Text => print!("{}", report.to_text()),
    }
    report
}

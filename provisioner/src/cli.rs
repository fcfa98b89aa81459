//! The command-line surface shared by `tkeha-provisioner` and `kubectl tkeha check|provision|status|drill|uninstall`.

use std::path::PathBuf;
use std::time::Duration;

use crate::fleet::Options;
use crate::hostkeys::{self, HostKeyPolicy};
use crate::manifest::{self, Plan};
use crate::report::Report;
use crate::{apply, check, drill, status, uninstall};

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
    /// Seconds to wait for the VIP to settle (apply) or move (drill).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
    /// Seconds to wait for each SSH connection (TCP connect, handshake, authentication).
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub connect_timeout: u64,
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

/// Run one action and return the process exit code (0 all hosts fine, 1 a host failed, 2 unusable input).
pub fn run(action: Action, args: &HaArgs) -> i32 {
    let policy = match host_key_policy(args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let plan = match manifest::load_plan(&args.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let mut opts = Options::new(policy);
    opts.wait_timeout = Duration::from_secs(args.timeout.max(1));
    opts.connect_timeout = Duration::from_secs(args.connect_timeout.max(1));
    if opts.progress {
        eprintln!(
            "{} {} HA of {} master(s), VIP {}",
            action.name(),
            plan.mode.name(),
            plan.machines.len(),
            plan.vip
        );
    }
    let report = run_plan(action, &plan, &opts);
    match args.output {
        OutputFormat::Json => println!("{}", report.to_json()),
        OutputFormat::Text => print!("{}", report.to_text()),
    }
    report.exit_code()
}

//! The command line: global flags, the command enum and its dispatch. Add a command here by adding a variant.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use tkeha_provisioner::cli::{OutputFormat, VersionInfo};

use crate::{completion, create, encode_password, init, provision, validate};

const ABOUT: &str =
    "Highly available control planes for TKEStack Cluster objects (platform.tkestack.io/v1)";

const AFTER_HELP: &str = "\
Examples:
  # Scaffold a 3-master cluster with a keepalived VIP, password from stdin
  printf '%s' \"$PASS\" | kubectl tkeha init --ha tke --vip 192.168.1.10 \\
      --master 192.168.1.2,192.168.1.3,192.168.1.4 --password-stdin > cluster.yaml

  # Check it offline with the same rules as the admission webhook
  kubectl tkeha validate -f cluster.yaml

  # Create it through the API server (same rules first, defaults filled in)
  kubectl tkeha create -f cluster.yaml --context global

  # Base64 a password for a hand-written manifest
  printf 123456 | kubectl tkeha encode-password        # MTIzNDU2

  # Preflight the masters over SSH, then install keepalived on them
  kubectl tkeha check -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha provision -f cluster.yaml --known-hosts ~/.ssh/known_hosts

  # Or from inside the global cluster: a Job reads Cluster prod and records HAReady in its status
  kubectl tkeha provision prod --in-cluster --known-hosts-configmap prod-known-hosts

Exit codes: 0 success, 1 rejected/failed, 2 unusable input or usage error.";

/// `kubectl tkeha`: scaffold, validate and provision HA TKEStack clusters.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl tkeha",
    bin_name = "kubectl tkeha",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    subcommand_required = true,
    arg_required_else_help = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// kubectl's global flags that a plugin must implement itself.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(Box<init::InitArgs>),
    EncodePassword(encode_password::EncodePasswordArgs),
    Validate(validate::ValidateArgs),
    Create(create::CreateArgs),
    Check(provision::CheckArgs),
    Provision(provision::ProvisionArgs),
    Status(provision::StatusArgs),
    Drill(provision::DrillArgs),
    Uninstall(provision::UninstallArgs),
    Completion(completion::CompletionArgs),
    Version(VersionArgs),
    Help(HelpArgs),
}

/// Print the plugin's version; `-o json` or `-o yaml` for scripts.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha version                 # kubectl-tkeha 0.1.0 linux/amd64
  kubectl tkeha version -o json         # {\"name\", \"version\", \"platform\"}")]
pub struct VersionArgs {
    /// `text` for people, `json` or `yaml` for scripts.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// Print the help of the plugin, or of a command (`kubectl tkeha help init`).
#[derive(Debug, Args)]
#[command(override_usage = "kubectl tkeha help [COMMAND]")]
pub struct HelpArgs {
    /// The command to explain.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

impl Command {
    /// Run the command. `Err` means unusable input (exit 2); a rejection is `Ok(1)`.
    pub fn run(self, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
        match self {
            Command::Init(args) => init::run(&args),
            Command::EncodePassword(args) => encode_password::run(&args),
            Command::Validate(args) => validate::run(&args),
            Command::Create(args) => create::run(&args, global),
            Command::Check(args) => Ok(provision::run_check(&args, global)),
            Command::Provision(args) => provision::run_provision(&args, global),
            Command::Status(args) => Ok(provision::run_status(&args, global)),
            Command::Drill(args) => Ok(provision::run_drill(&args, global)),
            Command::Uninstall(args) => Ok(provision::run_uninstall(&args, global)),
            Command::Completion(args) => completion::run(&args),
            Command::Version(args) => {
                let info = VersionInfo::of("kubectl-tkeha");
                crate::render::to_stdout(info.render(args.output))?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Help(args) => help(args.command.as_deref()),
        }
    }
}

/// `help [COMMAND]`: the long help of the plugin or of one command, exit 0.
fn help(command: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut root = Cli::command();
    root.build();
    let text = match command {
        None => root.render_long_help(),
        Some(name) => match root.find_subcommand_mut(name) {
            Some(sub) => sub.render_long_help(),
            None => anyhow::bail!(
                "unknown command {:?}: `kubectl tkeha --help` lists the commands",
                name
            ),
        },
    };
    crate::render::to_stdout(text.to_string())?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

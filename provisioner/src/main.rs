//! tkeha-provisioner: the command-line front of the provisioner library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tkeha_kube::Target;
use tkeha_provisioner::cli::{Action, HaArgs, run_with};

/// Highly available control planes for TKEStack Clusters: keepalived over SSH, LB checks, failover drills.
///
/// The Cluster comes from a manifest (-f FILE) or, by name, from the API server (CLUSTER-NAME);
/// by name, apply/status/drill/uninstall record the outcome in the Cluster's status (HAReady).
#[derive(Debug, Parser)]
#[command(
    name = "tkeha-provisioner",
    version,
    after_help = "\
Examples:
  tkeha-provisioner apply -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  tkeha-provisioner apply my-cluster --known-hosts /etc/tkeha/known-hosts/known_hosts   # in a Job
  tkeha-provisioner status my-cluster --context prod --known-hosts ~/.ssh/known_hosts -o json"
)]
struct Cli {
    /// Path to the kubeconfig file for CLUSTER-NAME (default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read-only preflight of every master (and of the LB binding in third-party mode).
    Check(HaArgs),
    /// Install and configure keepalived (TKE HA) or the hairpin rule (third-party HA).
    Apply(HaArgs),
    /// Keepalived state, VIP holder and health of every master.
    Status(HaArgs),
    /// Failover drill: stop keepalived on the VIP holder and time the move.
    Drill(HaArgs),
    /// Remove keepalived configuration, check script and hairpin rule.
    Uninstall(HaArgs),
}

fn main() {
    let cli = Cli::parse();
    let (action, args) = match &cli.command {
        Command::Check(a) => (Action::Check, a),
        Command::Apply(a) => (Action::Apply, a),
        Command::Status(a) => (Action::Status, a),
        Command::Drill(a) => (Action::Drill, a),
        Command::Uninstall(a) => (Action::Uninstall, a),
    };
    let target = Target::new(cli.kubeconfig.as_deref(), cli.context.as_deref());
    std::process::exit(run_with(action, args, &target));
}

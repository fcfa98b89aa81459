//! `check`, `provision`, `status`, `drill`, `uninstall`: thin wrappers over the provisioner library.

use std::process::ExitCode;

use clap::Args;
use tkeha_provisioner::cli::{Action, HaArgs};

/// Preflight the masters over SSH: reachability, interfaces, the VIP, the load balancer binding.
///
/// Changes nothing on the hosts. Exit 0 when every host passes, 1 when one fails.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha check -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha check -f cluster.yaml --accept-new-host-keys -o json")]
pub struct CheckArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Make the cluster's masters highly available: keepalived (TKE HA) or the LB hairpin fix (third-party HA).
///
/// Idempotent: a rerun with nothing changed touches nothing. Exit 1 if any host failed.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha provision -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha provision -f cluster.yaml --accept-new-host-keys -o json")]
pub struct ProvisionArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Show which master holds the VIP, keepalived state per host, and whether the VIP answers.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha status -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha status -f cluster.yaml --known-hosts ~/.ssh/known_hosts -o json")]
pub struct StatusArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Failover drill: stop the VIP holder's keepalived, time the VIP move, then restore it.
///
/// Disrupts the control plane endpoint for a few seconds; run it in a maintenance window.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha drill -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha drill -f cluster.yaml --known-hosts ~/.ssh/known_hosts -o json")]
pub struct DrillArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Remove what `provision` installed (keepalived configuration, hairpin rules) from every master.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha uninstall -f cluster.yaml --known-hosts ~/.ssh/known_hosts")]
pub struct UninstallArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

pub fn run_check(args: &CheckArgs) -> ExitCode {
    delegate(Action::Check, &args.ha)
}

pub fn run_provision(args: &ProvisionArgs) -> ExitCode {
    delegate(Action::Apply, &args.ha)
}

pub fn run_status(args: &StatusArgs) -> ExitCode {
    delegate(Action::Status, &args.ha)
}

pub fn run_drill(args: &DrillArgs) -> ExitCode {
    delegate(Action::Drill, &args.ha)
}

pub fn run_uninstall(args: &UninstallArgs) -> ExitCode {
    delegate(Action::Uninstall, &args.ha)
}

fn delegate(action: Action, args: &HaArgs) -> ExitCode {
    exit_code(tkeha_provisioner::cli::run(action, args))
}

/// The library returns an `i32`; anything that does not fit a process exit code counts as a failure.
fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

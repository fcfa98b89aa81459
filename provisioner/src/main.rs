//! tkeha-provisioner: the command-line front of the provisioner library.

use clap::{Parser, Subcommand};
use tkeha_provisioner::cli::{Action, HaArgs, run};

/// Highly available control planes for TKEStack Clusters: keepalived over SSH, LB checks, failover drills.
#[derive(Debug, Parser)]
#[command(name = "tkeha-provisioner", version)]
struct Cli {
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
    std::process::exit(run(action, args));
}

//! tkeha-provisioner: the command-line front of the provisioner library. Parses the flags, runs, prints progress (on a terminal) and the report, and turns the outcome into the exit code.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tkeha_kube::Target;
use tkeha_provisioner::cli::{HaArgs, OutputFormat};
use tkeha_provisioner::cluster_api::CONDITION_TYPE;
use tkeha_provisioner::{Action, Interrupt, Observer, Plan, Report, Source, StepEvent};

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
    ///
    /// Where TKEStack runs keepalived as a static pod, the drill moves its manifest out of
    /// /etc/kubernetes/manifests/ and back, and refuses unless every master is healthy. Ctrl-C
    /// (or SIGTERM) stops the drill and puts keepalived back; if this process dies instead, a
    /// timer armed on the master puts the manifest back after --timeout + 10 s.
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
    std::process::exit(run(action, args, &target));
}

/// Run one action; the exit code: 0 every host fine (and the outcome recorded), 1 a host failed
/// or the status could not be written, 2 unusable input (nothing was done on any host).
fn run(action: Action, args: &HaArgs, target: &Target) -> i32 {
    let (source, mut options) = match args.source().and_then(|s| Ok((s, args.options()?))) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // A drill puts keepalived back before it ends on SIGINT/SIGTERM (a second one exits at once).
    if action == Action::Drill {
        match Interrupt::on_signals() {
            Ok(interrupt) => options.interrupt = interrupt,
            Err(e) => eprintln!("warning: SIGINT/SIGTERM will not stop the drill cleanly: {e}"),
        }
    }
    let console = Console {
        progress: std::io::stderr().is_terminal(),
        output: args.output,
    };
    match tkeha_provisioner::run(action, &source, &options, target, &console) {
        Ok(outcome) => {
            if let (Source::Cluster(name), Some(verdict)) = (&source, &outcome.condition) {
                eprintln!(
                    "Cluster {name}: status {CONDITION_TYPE}={} ({})",
                    verdict.status, verdict.reason
                );
            }
            if let Some(e) = &outcome.status_error {
                eprintln!("error: {e}");
            }
            if outcome.ok() { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// Prints a run: review warnings always, progress lines when stderr is a terminal, the report on stdout.
struct Console {
    progress: bool,
    output: OutputFormat,
}

impl Observer for Console {
    fn planned(&self, action: Action, plan: &Plan) {
        for w in &plan.warnings {
            eprintln!("warning: {w}");
        }
        if self.progress {
            eprintln!(
                "{} {} HA of {} master(s), VIP {}",
                action.name(),
                plan.mode.name(),
                plan.machines.len(),
                plan.vip
            );
        }
    }

    fn step(&self, event: &StepEvent<'_>) {
        if self.progress {
            eprintln!("{event}");
        }
    }

    fn finished(&self, report: &Report) {
        match self.output {
            OutputFormat::Json => println!("{}", report.to_json()),
            OutputFormat::Text => print!("{}", report.to_text()),
        }
    }
}

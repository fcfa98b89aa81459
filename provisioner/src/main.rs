//! tkeha-provisioner: the command-line front of the provisioner library. Parses the flags, runs, prints progress (on a terminal) and the report, and turns the outcome into the exit code.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tkeha_kube::Target;
use tkeha_provisioner::cli::{self, HaArgs, OutputFormat, VersionInfo};
use tkeha_provisioner::{Action, Interrupt, Observer, Plan, Report, Source, StepEvent};

/// Highly available control planes for TKEStack Clusters: keepalived over SSH, LB checks, failover drills.
///
/// The Cluster comes from a manifest (-f FILE) or, by name, from the API server (CLUSTER-NAME);
/// by name, apply/status/drill/uninstall record the outcome in the Cluster's status (HAReady),
/// and check only reads it.
#[derive(Debug, Parser)]
#[command(
    name = "tkeha-provisioner",
    version,
    after_help = "\
Examples:
  tkeha-provisioner apply -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  tkeha-provisioner apply my-cluster --known-hosts /etc/tkeha/known-hosts/known_hosts   # in a Job
  tkeha-provisioner status my-cluster --context prod --known-hosts ~/.ssh/known_hosts -o json

Exit codes: 0 success, 1 a host failed (or the status could not be written), 2 unusable input or usage error."
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

/// The usage line of every action: the Cluster source, the host-key policy, then options.
macro_rules! usage {
    ($action:literal) => {
        concat!(
            "tkeha-provisioner ",
            $action,
            " (-f FILE | CLUSTER-NAME) (--known-hosts FILE | --accept-new-host-keys | --insecure-ignore-host-keys) [OPTIONS]"
        )
    };
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read-only preflight of every master (and of the LB binding in third-party mode).
    ///
    /// Checks SSH login, root or `sudo -n`, the interface that holds the machine IP, the VIP in its
    /// prefix, keepalived installed or installable, and that the VIP is not in use elsewhere
    /// (third-party HA: which masters the load balancer reaches). Changes nothing on any master,
    /// and records nothing: with CLUSTER-NAME the Cluster is only read.
    #[command(
        override_usage = usage!("check"),
        mut_arg("cluster", |a| a.help("The name of a Cluster object to read through the API server instead of -f FILE (only read: check records nothing)")),
        mut_arg("timeout", |a| a.hide(true))
    )]
    Check(HaArgs),
    /// Install and configure keepalived (TKE HA) or the hairpin rule (third-party HA).
    ///
    /// Runs check on every master first and changes nothing anywhere if one fails. Idempotent: a
    /// rerun with nothing changed touches nothing. With CLUSTER-NAME the outcome is recorded in the
    /// Cluster's status (condition HAReady, status.ha).
    #[command(
        override_usage = usage!("apply"),
        mut_arg("timeout", |a| a.help("Seconds to wait, after the change, until exactly one master holds the VIP"))
    )]
    Apply(HaArgs),
    /// Keepalived state, VIP holder and health of every master.
    ///
    /// Read-only on the masters. More than one holder is reported as SPLIT BRAIN and exits 1.
    /// With CLUSTER-NAME the outcome is recorded in the Cluster's status (HAReady).
    #[command(override_usage = usage!("status"), mut_arg("timeout", |a| a.hide(true)))]
    Status(HaArgs),
    /// Failover drill: stop keepalived on the VIP holder and time the move.
    ///
    /// Stops keepalived gracefully on the holder, times how long until the VIP answers from
    /// another master, restores keepalived and checks that the old holder stays BACKUP.
    /// Disrupts the control-plane endpoint for a few seconds: run it in a maintenance window.
    ///
    /// Where TKEStack runs keepalived as a static pod, the drill moves its manifest out of
    /// /etc/kubernetes/manifests/ and back, and refuses unless every master is healthy. Ctrl-C
    /// (or SIGTERM) stops the drill and puts keepalived back; if this process dies instead, a
    /// timer armed on the master puts the manifest back after --timeout + 10 s.
    #[command(
        override_usage = usage!("drill"),
        mut_arg("timeout", |a| a.help("Seconds to wait for the VIP to move to another master"))
    )]
    Drill(HaArgs),
    /// Remove keepalived configuration, check script and hairpin rule.
    ///
    /// Stops keepalived and removes tkeha's files and the hairpin rule from every master, then
    /// checks that the VIP is gone. The keepalived package stays installed. With CLUSTER-NAME
    /// the outcome is recorded in the Cluster's status (HAReady=False, Uninstalled).
    #[command(override_usage = usage!("uninstall"), mut_arg("timeout", |a| a.hide(true)))]
    Uninstall(HaArgs),
    /// Print the version: `-o json` or `-o yaml` for scripts.
    Version {
        /// `text`, `json` or `yaml`.
        #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
}

fn main() {
    let cli = Cli::parse();
    let (action, args) = match &cli.command {
        Command::Check(a) => (Action::Check, a),
        Command::Apply(a) => (Action::Apply, a),
        Command::Status(a) => (Action::Status, a),
        Command::Drill(a) => (Action::Drill, a),
        Command::Uninstall(a) => (Action::Uninstall, a),
        Command::Version { output } => {
            print!("{}", VersionInfo::of("tkeha-provisioner").render(*output));
            return;
        }
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
            eprint!("{}", cli::prefixed(&e.to_string()));
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
                eprint!("{}", cli::status_line(name, verdict));
            }
            if let Some(e) = &outcome.status_error {
                eprint!("{}", cli::prefixed(&e.to_string()));
            }
            if outcome.ok() { 0 } else { 1 }
        }
        Err(e) => {
            eprint!("{}", cli::error_text(&e));
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
        eprint!("{}", cli::warning_lines(&plan.warnings));
        if self.progress {
            eprint!("{}", cli::planned_line(action, plan));
        }
    }

    fn step(&self, event: &StepEvent<'_>) {
        if self.progress {
            eprintln!("{event}");
        }
    }

    fn finished(&self, report: &Report) {
        print!("{}", cli::render_report(report, self.output));
    }
}

//! Running a provisioner action from this machine: the library's events printed (warnings, progress on a terminal, the report), the outcome turned into the exit code.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use tkeha_kube::Target;
use tkeha_provisioner::cli::{HaArgs, OutputFormat};
use tkeha_provisioner::cluster_api::CONDITION_TYPE;
use tkeha_provisioner::{Action, Interrupt, Observer, Plan, Report, Source, StepEvent};

/// Run `action` as `tkeha-provisioner ACTION` does: exit 0 when every host is fine (and, by
/// name, the outcome was recorded), 1 when a host failed or the status could not be written,
/// 2 for unusable input (nothing was done on any host).
pub fn run(action: Action, args: &HaArgs, target: &Target) -> ExitCode {
    let (source, mut options) = match args.source().and_then(|s| Ok((s, args.options()?))) {
        Ok(parts) => parts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
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
            ExitCode::from(if outcome.ok() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
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

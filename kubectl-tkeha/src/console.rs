//! Running a provisioner action from this machine: the library's events printed (warnings, progress on a terminal, the report), the outcome turned into the exit code.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use tkeha_kube::Target;
use tkeha_provisioner::cli::{self, HaArgs, OutputFormat};
use tkeha_provisioner::{Action, Interrupt, Observer, Plan, Report, Source, StepEvent};

/// Run `action` as `tkeha-provisioner ACTION` does, with the same words: exit 0 when every host
/// is fine (and, by name, the outcome was recorded), 1 when a host failed or the status could not
/// be written, 2 for unusable input (nothing was done on any host).
pub fn run(action: Action, args: &HaArgs, target: &Target) -> ExitCode {
    let (source, mut options) = match args.source().and_then(|s| Ok((s, args.options()?))) {
        Ok(parts) => parts,
        Err(e) => {
            eprint!("{}", cli::prefixed(&e.to_string()));
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
                eprint!("{}", cli::status_line(name, verdict));
            }
            if let Some(e) = &outcome.status_error {
                eprint!("{}", cli::prefixed(&e.to_string()));
            }
            ExitCode::from(if outcome.ok() { 0 } else { 1 })
        }
        Err(e) => {
            eprint!("{}", cli::error_text(&e));
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
        // A reader that went away (`| head`) is not an error.
        let _ = crate::render::to_stdout(cli::render_report(report, self.output));
    }
}

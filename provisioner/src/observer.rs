//! What a run tells while it works: the plan it starts from, each step on each master as it ends, and the final report. The binaries render these; the library never prints.

use std::time::Duration;

use crate::Action;
use crate::manifest::Plan;
use crate::report::Report;

/// A step on one master that a progress line is shown for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// TCP connect, host key, login.
    Connect,
    /// The read-only probe script.
    Probe,
    /// Reading again whether the master holds the VIP (after the VIP answered and no probe
    /// saw a holder).
    VipRecheck,
    /// Install, write, test, start or reload keepalived.
    Configure,
    /// Remove what tkeha installed.
    Uninstall,
    /// Test `VIP:vport` from the master (third-party HA).
    SelfConnect,
    /// The same, then add the hairpin rule (third-party `apply`).
    SelfConnectAndHairpin,
}

impl Step {
    /// The words of the progress line (`configuring keepalived`).
    pub fn label(self) -> &'static str {
        match self {
            Step::Connect => "connecting",
            Step::Probe => "probing",
            Step::VipRecheck => "re-reading the VIP holders",
            Step::Configure => "configuring keepalived",
            Step::Uninstall => "uninstalling",
            Step::SelfConnect => "self-connect",
            Step::SelfConnectAndHairpin => "self-connect + hairpin rule",
        }
    }
}

/// One step on one master ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepEvent<'a> {
    /// The master (its IP, as in the report).
    pub host: &'a str,
    /// Which step.
    pub step: Step,
    /// How long it took.
    pub elapsed: Duration,
    /// Why it failed (never a secret); `None` when it succeeded.
    pub error: Option<&'a str>,
}

/// The progress line: `[10.0.0.11] probing... ok (12 ms)` or `[10.0.0.11] probing... FAILED: why`.
impl std::fmt::Display for StepEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (host, label) = (self.host, self.step.label());
        match self.error {
            None => write!(
                f,
                "[{host}] {label}... ok ({} ms)",
                self.elapsed.as_millis()
            ),
            // The error can carry text from outside (a username, a master's output).
            Some(e) => write!(
                f,
                "[{host}] {label}... FAILED: {}",
                tkeha_api::field::escape(e)
            ),
        }
    }
}

/// Receives a run's events. Steps on different masters end on different threads, hence `Sync`.
/// Every method does nothing unless implemented.
pub trait Observer: Sync {
    /// The plan is built (its review warnings included); no master has been contacted yet.
    fn planned(&self, _action: Action, _plan: &Plan) {}
    /// A step ended on one master.
    fn step(&self, _event: &StepEvent<'_>) {}
    /// The action ended on every master. In Job mode the Cluster's status is written after this.
    fn finished(&self, _report: &Report) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_read_as_before() {
        let ok = StepEvent {
            host: "10.0.0.11",
            step: Step::Configure,
            elapsed: Duration::from_millis(1234),
            error: None,
        };
        assert_eq!(
            ok.to_string(),
            "[10.0.0.11] configuring keepalived... ok (1234 ms)"
        );
        let failed = StepEvent {
            error: Some("cannot connect to 10.0.0.11:22: Connection refused"),
            step: Step::Connect,
            ..ok
        };
        assert_eq!(
            failed.to_string(),
            "[10.0.0.11] connecting... FAILED: cannot connect to 10.0.0.11:22: Connection refused"
        );
    }

    #[test]
    fn a_progress_line_shows_a_forged_error_as_one_escaped_line() {
        let event = StepEvent {
            host: "10.0.0.11",
            step: Step::Connect,
            elapsed: Duration::from_millis(3),
            error: Some("auth as root\n[10.0.0.12] connecting... ok (1 ms)\u{1b}[8m"),
        };
        assert_eq!(
            event.to_string(),
            "[10.0.0.11] connecting... FAILED: auth as root\\n[10.0.0.12] connecting... ok (1 ms)\\u001b[8m"
        );
    }
}

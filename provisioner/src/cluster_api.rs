//! Job mode: read a Cluster by name through the API server, provision it like a file, and record the outcome in its status (`HAReady`, `status.ha`).
//!
//! Requests (and the RBAC they need): `GET /apis/platform.tkestack.io/v1/clusters/NAME`
//! (clusters: get), then for `apply`, `status`, `drill` and `uninstall` a fresh GET and
//! `PATCH .../clusters/NAME/status` as `application/merge-patch+json` (clusters/status: patch)
//! carrying `metadata.resourceVersion`, so a concurrent writer makes it fail with 409 and we
//! re-read and retry instead of dropping its conditions. `check` only reads.
//!
//! Credentials come from the Cluster's spec (`spec.machines[].password|privateKey|passPhrase`).
//! Nothing written to the status is taken from them: messages are built from the review's field
//! errors and the report's per-host errors, neither of which carries a secret value.

use serde_json::Value;
use tkeha_api::field::escape;
use tkeha_api::types::{ClusterCondition, ConditionStatus, HaStatus};
use tkeha_kube::{ClusterClient, ClusterError, KubeApiError, Target, now, runtime, status_patch};

use crate::action::Action;
use crate::manifest::{self, Plan, PlanError};
use crate::report::{ManagedBy, Report};
use crate::runner::Outcome;

/// [`escape`] into an owned string, for fields that are stored.
fn escaped(text: &str) -> String {
    escape(text).into_owned()
}

/// The condition type this provisioner owns in `status.conditions`.
pub const CONDITION_TYPE: &str = "HAReady";
/// `fieldManager` of our status patches.
pub const FIELD_MANAGER: &str = "tkeha-provisioner";
/// Conditions' messages are cut to this many bytes (the API server accepts far more; a status
/// is read by people).
const MAX_MESSAGE: usize = 2048;

/// Why a Job-mode run could not start or could not record its outcome.
#[derive(Debug, thiserror::Error)]
pub enum ClusterApiError {
    /// No client for the API server (kubeconfig, context, service account).
    #[error(transparent)]
    Connect(#[from] KubeApiError),
    /// A request about the Cluster failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The Cluster was read but is not valid: refused before any host was contacted.
    #[error("{error}{}", status_note(status_write))]
    Invalid {
        /// The field errors.
        error: PlanError,
        /// Why `HAReady=False` could not be recorded, when it could not.
        status_write: Option<Box<ClusterApiError>>,
    },
}

fn status_note(e: &Option<Box<ClusterApiError>>) -> String {
    match e {
        None => String::new(),
        Some(e) => format!("\n(also: {e})"),
    }
}

/// Why `HAReady` has the status it has: the condition's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `apply` succeeded on every master.
    Provisioned,
    /// `apply` failed on a master or in general.
    ApplyFailed,
    /// `status` found every master healthy and one VIP holder.
    Healthy,
    /// `status` found a master unhealthy, or no VIP holder.
    Unhealthy,
    /// `status` found more than one VIP holder.
    SplitBrain,
    /// `drill` measured a failover and the old holder stayed backup.
    DrillPassed,
    /// `drill` could not run or the failover did not happen as it should.
    DrillFailed,
    /// `uninstall` removed tkeha's HA from every master.
    Uninstalled,
    /// `uninstall` failed on a master.
    UninstallFailed,
    /// The Cluster was refused by the rules before any master was contacted.
    InvalidCluster,
}

impl Reason {
    /// The CamelCase word written to the condition.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Provisioned => "Provisioned",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::Healthy => "Healthy",
            Reason::Unhealthy => "Unhealthy",
            Reason::SplitBrain => "SplitBrain",
            Reason::DrillPassed => "DrillPassed",
            Reason::DrillFailed => "DrillFailed",
            Reason::Uninstalled => "Uninstalled",
            Reason::UninstallFailed => "UninstallFailed",
            Reason::InvalidCluster => "InvalidCluster",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict written as the `HAReady` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `True` when HA is in place and healthy as far as the action could tell.
    pub status: ConditionStatus,
    /// Why.
    pub reason: Reason,
    /// For people: the VIP holder, or what failed where (never a secret).
    pub message: String,
}

impl Verdict {
    /// The `HAReady` condition for this verdict, probed (and, unless the status stays the same,
    /// flipped) at `now`.
    pub fn condition(&self, now: &str) -> ClusterCondition {
        ClusterCondition {
            type_: CONDITION_TYPE.to_string(),
            status: self.status,
            last_probe_time: Some(now.to_string()),
            last_transition_time: Some(now.to_string()),
            reason: Some(self.reason.as_str().to_string()),
            message: Some(self.message.clone()),
        }
    }
}

/// Read Cluster `name` from `target`, build its plan with the shared rules, run `work` on it (the
/// action on the masters), and record the outcome in the Cluster's status unless the action is
/// `check`. An invalid Cluster is refused before any host is contacted; its status gets
/// `HAReady=False` with reason `InvalidCluster` and the field errors.
///
/// # Errors
///
/// [`ClusterApiError`] when no host was contacted: no client, the Cluster cannot be read, or it
/// is invalid. A failed status write after the action is [`Outcome::status_error`].
pub fn run(
    target: &Target,
    name: &str,
    action: Action,
    work: impl FnOnce(&Plan) -> Report,
) -> Result<Outcome, ClusterApiError> {
    let rt = runtime()?;
    // The client spawns its request buffer onto the runtime, so it is built inside it.
    let api = rt.block_on(ClusterClient::new(target))?;
    let object = rt.block_on(api.get(name))?;
    let plan = match plan_from_object(&object, name) {
        Ok(plan) => plan,
        Err(error) => {
            let status_write = if action == Action::Check {
                None
            } else {
                let verdict = Verdict {
                    status: ConditionStatus::False,
                    reason: Reason::InvalidCluster,
                    message: truncate(invalid_message(&error), MAX_MESSAGE),
                };
                rt.block_on(write(&api, name, &verdict, HaFields::Keep))
                    .err()
            };
            return Err(ClusterApiError::Invalid {
                error,
                status_write: status_write.map(Box::new),
            });
        }
    };
    let report = work(&plan);
    let Some(verdict) = verdict_for(action, &plan, &report) else {
        return Ok(Outcome {
            report,
            condition: None,
            status_error: None,
        });
    };
    let ha = match action {
        Action::Apply => HaFields::Apply {
            holder: report.vip_holder.clone(),
            succeeded: report.ok,
        },
        Action::Uninstall => HaFields::Holder(None),
        _ => HaFields::Holder(report.vip_holder.clone()),
    };
    let (condition, status_error) = match rt.block_on(write(&api, name, &verdict, ha)) {
        Ok(()) => (Some(verdict), None),
        Err(e) => (None, Some(e)),
    };
    Ok(Outcome {
        report,
        condition,
        status_error,
    })
}

/// Review a Cluster object read from the API server exactly as a file would be (defaults, every
/// rule) and convert it; `name` names it in errors. A value of the wrong type at a secret's path
/// is reported without the value by the rule engine itself.
pub fn plan_from_object(object: &Value, name: &str) -> Result<Plan, PlanError> {
    manifest::plan_from_object(object, &format!("Cluster {name}"))
}

/// The `HAReady` verdict for one action's report; `None` for `check` (a preflight says nothing
/// about whether HA is in place), and for `apply` or `uninstall` refused because TKEStack
/// manages HA on the masters (they say nothing about TKEStack's setup).
pub fn verdict_for(action: Action, plan: &Plan, report: &Report) -> Option<Verdict> {
    use ConditionStatus::{False, True};
    if report.managed_by == Some(ManagedBy::Tkestack)
        && matches!(action, Action::Apply | Action::Uninstall)
    {
        return None;
    }
    let vip = &plan.vip;
    let what = match &report.vip_holder {
        Some(holder) => format!("VIP {vip} held by {holder}"),
        None => match &report.lb {
            Some(lb) => format!(
                "VIP {vip}: the load balancer reaches {} of {} masters",
                lb.bound.len(),
                plan.machines.len()
            ),
            None => format!("VIP {vip}"),
        },
    };
    let failure = || failure_summary(report);
    let (status, reason, message) = match action {
        Action::Check => return None,
        Action::Apply if report.ok => (
            True,
            Reason::Provisioned,
            format!(
                "{} HA applied on {} master(s); {what}",
                plan.mode.name(),
                plan.machines.len()
            ),
        ),
        Action::Apply => (
            False,
            Reason::ApplyFailed,
            format!("apply failed: {}", failure()),
        ),
        Action::Status if report.ok => (
            True,
            Reason::Healthy,
            format!("{what}; all masters healthy"),
        ),
        Action::Status if report.split_brain => (
            False,
            Reason::SplitBrain,
            format!("more than one master holds VIP {vip}: {}", failure()),
        ),
        Action::Status => (False, Reason::Unhealthy, failure()),
        Action::Drill if report.ok => {
            let figure = report
                .drill
                .as_ref()
                .map(|d| {
                    format!(
                        "; failover drill {} -> {} in {} ms",
                        d.from, d.to, d.failover_ms
                    )
                })
                .unwrap_or_default();
            (True, Reason::DrillPassed, format!("{what}{figure}"))
        }
        Action::Drill => (
            False,
            Reason::DrillFailed,
            format!("drill failed: {}", failure()),
        ),
        Action::Uninstall if report.ok => (
            False,
            Reason::Uninstalled,
            format!("HA removed from {} master(s)", plan.machines.len()),
        ),
        Action::Uninstall => (
            False,
            Reason::UninstallFailed,
            format!("uninstall failed: {}", failure()),
        ),
    };
    Some(Verdict {
        status,
        reason,
        // Host errors can carry text from outside (a username in an SSH error, a master's
        // output): a condition message is read on terminals (`kubectl describe`) too.
        message: truncate(escaped(&message), MAX_MESSAGE),
    })
}

/// The condition message of a Cluster the rules refuse: its field errors on one line, `; `
/// between them, each escaped (a condition message is one line of text).
fn invalid_message(error: &PlanError) -> String {
    match error {
        PlanError::Invalid { errors, .. } => errors
            .iter()
            .map(|e| escaped(e))
            .collect::<Vec<_>>()
            .join("; "),
        other => escaped(&other.to_string()),
    }
}

/// `host: error; host: error; general error` from a report (its errors never carry secrets).
fn failure_summary(report: &Report) -> String {
    let mut parts: Vec<String> = report
        .hosts
        .iter()
        .filter_map(|h| h.error.as_ref().map(|e| format!("{}: {e}", h.host)))
        .collect();
    parts.extend(report.errors.iter().cloned());
    if parts.is_empty() {
        "no detail in the report".into()
    } else {
        parts.join("; ")
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max.saturating_sub(3);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// What to write under `status.ha` besides the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaFields {
    /// Leave `status.ha` as it is (the Cluster was refused before any host was contacted).
    Keep,
    /// Set `vipHolder` (`None` removes it).
    Holder(Option<String>),
    /// After an apply: `vipHolder`, `lastApplyTime` = now, `lastApplySucceeded`.
    Apply {
        /// The VIP holder after the apply.
        holder: Option<String>,
        /// Whether the apply succeeded on every master.
        succeeded: bool,
    },
}

impl HaFields {
    /// `status.ha` as written at `now`; `None` leaves it as stored.
    pub fn status(&self, now: &str) -> Option<HaStatus> {
        match self {
            HaFields::Keep => None,
            HaFields::Holder(holder) => Some(HaStatus {
                vip_holder: holder.clone(),
                ..HaStatus::default()
            }),
            HaFields::Apply { holder, succeeded } => Some(HaStatus {
                vip_holder: holder.clone(),
                last_apply_time: Some(now.to_string()),
                last_apply_succeeded: Some(*succeeded),
            }),
        }
    }
}

/// Record `verdict` and `ha` in the status of Cluster `name` (re-read and retried on 409).
async fn write(
    api: &ClusterClient,
    name: &str,
    verdict: &Verdict,
    ha: HaFields,
) -> Result<(), ClusterApiError> {
    api.patch_status(name, FIELD_MANAGER, |current| {
        let now = now();
        status_patch(current, verdict.condition(&now), ha.status(&now).as_ref())
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn plan() -> Plan {
        let obj = json!({
            "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
            "metadata": {"name": "lab"},
            "spec": {"type": "Baremetal", "version": "1.30.0",
                     "features": {"ha": {"tke": {"vip": "10.0.0.100"}}},
                     "machines": [
                        {"ip": "10.0.0.11", "username": "root", "password": "cm9vdHB3"},
                        {"ip": "10.0.0.12", "username": "root", "password": "cm9vdHB3"},
                        {"ip": "10.0.0.13", "username": "root", "password": "cm9vdHB3"}]}
        });
        plan_from_object(&obj, "lab").unwrap()
    }

    fn report(action: &str) -> Report {
        let mut r = Report::new(action, "tke", "10.0.0.100");
        for h in ["10.0.0.11", "10.0.0.12", "10.0.0.13"] {
            r.hosts.push(crate::report::HostReport::new(h));
        }
        r
    }

    #[test]
    fn verdicts_per_action() {
        let plan = plan();
        assert_eq!(verdict_for(Action::Check, &plan, &report("check")), None);

        let mut ok = report("apply");
        ok.vip_holder = Some("10.0.0.12".into());
        let v = verdict_for(Action::Apply, &plan, &ok).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::True, Reason::Provisioned)
        );
        assert_eq!(
            v.message,
            "tke HA applied on 3 master(s); VIP 10.0.0.100 held by 10.0.0.12"
        );

        let mut bad = report("apply");
        bad.hosts[1].fail("cannot connect to 10.0.0.12:22: timed out");
        bad.fail("preflight failed: nothing was changed on any master");
        bad.finish();
        let v = verdict_for(Action::Apply, &plan, &bad).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::False, Reason::ApplyFailed)
        );
        assert_eq!(
            v.message,
            "apply failed: 10.0.0.12: cannot connect to 10.0.0.12:22: timed out; \
             preflight failed: nothing was changed on any master"
        );

        let mut healthy = report("status");
        healthy.vip_holder = Some("10.0.0.11".into());
        let v = verdict_for(Action::Status, &plan, &healthy).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::True, Reason::Healthy)
        );

        let mut split = report("status");
        split.split_brain = true;
        split.fail("split brain: 10.0.0.11 and 10.0.0.13 hold the VIP");
        let v = verdict_for(Action::Status, &plan, &split).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::False, Reason::SplitBrain)
        );
        assert!(v.message.contains("10.0.0.13"), "{}", v.message);

        let mut drill = report("drill");
        drill.vip_holder = Some("10.0.0.12".into());
        drill.drill = Some(crate::report::DrillReport {
            failover_ms: 812,
            from: "10.0.0.11".into(),
            to: "10.0.0.12".into(),
            oracle: "tcp".into(),
            old_holder_stayed_backup: true,
        });
        let v = verdict_for(Action::Drill, &plan, &drill).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::True, Reason::DrillPassed)
        );
        assert!(
            v.message
                .ends_with("failover drill 10.0.0.11 -> 10.0.0.12 in 812 ms"),
            "{}",
            v.message
        );

        let v = verdict_for(Action::Uninstall, &plan, &report("uninstall")).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (ConditionStatus::False, Reason::Uninstalled)
        );
    }

    #[test]
    fn a_refusal_beside_tkestack_records_nothing_but_status_and_drill_do() {
        let plan = plan();
        for action in [Action::Apply, Action::Uninstall] {
            let mut refused = report(action.name());
            refused.managed_by = Some(ManagedBy::Tkestack);
            refused.fail("TKEStack manages HA on these masters");
            assert_eq!(verdict_for(action, &plan, &refused), None, "{action:?}");
        }
        let mut status = report("status");
        status.managed_by = Some(ManagedBy::Tkestack);
        status.vip_holder = Some("10.0.0.11".into());
        let v = verdict_for(Action::Status, &plan, &status).unwrap();
        assert_eq!(v.reason, Reason::Healthy);
    }

    #[test]
    fn third_party_messages_count_bound_masters() {
        let plan = plan();
        let mut r = report("status");
        r.lb = Some(crate::report::LbReport {
            bound: vec!["10.0.0.11".into(), "10.0.0.12".into()],
            ..Default::default()
        });
        let v = verdict_for(Action::Status, &plan, &r).unwrap();
        assert!(
            v.message
                .starts_with("VIP 10.0.0.100: the load balancer reaches 2 of 3 masters"),
            "{}",
            v.message
        );
    }

    #[test]
    fn an_invalid_clusters_message_is_one_line_of_its_field_errors() {
        let error = PlanError::Invalid {
            path: "Cluster lab".into(),
            errors: vec![
                "spec.a: Required value".into(),
                "spec.b: Invalid value: \"x\ny\"".into(),
            ],
            warnings: vec!["w".into()],
        };
        assert_eq!(
            invalid_message(&error),
            "spec.a: Required value; spec.b: Invalid value: \"x\\ny\""
        );
    }

    #[test]
    fn a_mistyped_secret_is_not_quoted_back() {
        let mut obj = json!({
            "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
            "metadata": {"name": "lab"},
            "spec": {"type": "Baremetal", "version": "1.30.0",
                     "features": {"ha": {"tke": {"vip": "10.0.0.100"}}},
                     "machines": [{"ip": "10.0.0.11", "username": "root", "password": 987654321}]}
        });
        let e = plan_from_object(&obj, "lab").unwrap_err().to_string();
        assert!(!e.contains("987654321"), "{e}");
        assert!(
            e.contains("spec.machines[0].password") && e.contains("(the value is not shown)"),
            "{e}"
        );
        obj["spec"]["machines"][0]["password"] = json!(null);
        obj["spec"]["machines"][0]["port"] = json!("twenty-two");
        let e = plan_from_object(&obj, "lab").unwrap_err().to_string();
        assert_eq!(
            e, "Cluster lab: spec.machines[0].port: must be a number, not a string",
            "other fields are named with what they must be"
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = truncate("é".repeat(3000), MAX_MESSAGE);
        assert!(s.len() <= MAX_MESSAGE && s.ends_with("..."));
        assert_eq!(truncate("short".into(), MAX_MESSAGE), "short");
    }

    #[test]
    fn the_condition_and_ha_status_are_the_typed_ones() {
        let verdict = Verdict {
            status: ConditionStatus::True,
            reason: Reason::DrillPassed,
            message: "VIP 10.0.0.100 held by 10.0.0.12".into(),
        };
        let c = serde_json::to_value(verdict.condition("T")).unwrap();
        assert_eq!(
            c,
            json!({"type": "HAReady", "status": "True", "lastProbeTime": "T",
                   "lastTransitionTime": "T", "reason": "DrillPassed",
                   "message": "VIP 10.0.0.100 held by 10.0.0.12"})
        );
        assert_eq!(HaFields::Keep.status("T"), None);
        assert_eq!(
            serde_json::to_value(HaFields::Holder(None).status("T")).unwrap(),
            json!({"vipHolder": null}),
            "no holder removes the stored one"
        );
        assert_eq!(
            serde_json::to_value(
                HaFields::Apply {
                    holder: Some("10.0.0.11".into()),
                    succeeded: true
                }
                .status("T")
            )
            .unwrap(),
            json!({"vipHolder": "10.0.0.11", "lastApplyTime": "T", "lastApplySucceeded": true})
        );
    }
}

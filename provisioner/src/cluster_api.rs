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

use k8s_openapi::jiff;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Map, Value, json};
use tkeha_api::types::Cluster;

use crate::cli::Action;
use crate::kubeapi::{KubeApiError, Target, describe_error, runtime};
use crate::manifest::{self, Plan, PlanError};
use crate::report::Report;

/// The condition type this provisioner owns in `status.conditions`.
pub const CONDITION_TYPE: &str = "HAReady";
/// `fieldManager` of our status patches.
pub const FIELD_MANAGER: &str = "tkeha-provisioner";
/// Conditions' messages are cut to this many bytes (the API server accepts far more; a status
/// is read by people).
const MAX_MESSAGE: usize = 2048;
/// Status writes retried after a 409 (someone else wrote the Cluster in between).
const CONFLICT_RETRIES: usize = 5;

/// Why a Job-mode run could not start or could not record its outcome.
#[derive(Debug, thiserror::Error)]
pub enum ClusterApiError {
    #[error(transparent)]
    Connect(#[from] KubeApiError),
    #[error(
        "Cluster {name:?} not found: no clusters.platform.tkestack.io object of that name \
         (list them with `kubectl get clusters.platform.tkestack.io`)"
    )]
    NotFound { name: String },
    #[error("reading Cluster {name} from {url}: {}", error_text(error))]
    Get {
        name: String,
        url: String,
        error: kube::Error,
    },
    #[error("Cluster {name}: the object read is not JSON-shaped: {error}")]
    Shape {
        name: String,
        error: serde_json::Error,
    },
    #[error("writing the status of Cluster {name}: {}", error_text(error))]
    Patch { name: String, error: kube::Error },
    #[error(
        "writing the status of Cluster {name}: still conflicting after {CONFLICT_RETRIES} retries \
         (another controller keeps writing it)"
    )]
    Conflict { name: String },
    #[error("{error}{}", status_note(status_write))]
    Invalid {
        error: PlanError,
        /// Why `HAReady=False` could not be recorded, when it could not.
        status_write: Option<Box<ClusterApiError>>,
    },
}

/// The API server's answer as kubectl shows it, or the transport failure with its causes
/// (`client error (Connect): tcp connect error: Connection refused`).
fn error_text(error: &kube::Error) -> String {
    if let kube::Error::Api(_) = error {
        return describe_error(error);
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn status_note(e: &Option<Box<ClusterApiError>>) -> String {
    match e {
        None => String::new(),
        Some(e) => format!("\n(also: {e})"),
    }
}

impl ClusterApiError {
    /// 2: nothing was done on any host (the Cluster could not be read or is invalid);
    /// 1: the hosts were worked on but the outcome could not be recorded.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClusterApiError::Patch { .. } | ClusterApiError::Conflict { .. } => 1,
            _ => 2,
        }
    }
}

/// The verdict written as the `HAReady` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// `True` or `False`.
    pub status: &'static str,
    /// CamelCase reason, e.g. `Provisioned`, `ApplyFailed`, `InvalidCluster`.
    pub reason: &'static str,
    pub message: String,
}

/// What was written to the status.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub status: String,
    pub reason: Option<String>,
    /// The whole `HAReady` entry as sent.
    pub condition: Value,
}

/// The result of a Job-mode run that got as far as the hosts.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// The `HAReady` condition written (`None` for `check`, or when the write failed).
    pub condition: Option<Written>,
    /// Why the status could not be written, when it could not.
    pub status_error: Option<ClusterApiError>,
}

impl Outcome {
    /// The report's exit code, at least 1 when the status could not be recorded.
    pub fn exit_code(&self) -> i32 {
        let code = self.report.exit_code();
        if self.status_error.is_some() {
            code.max(1)
        } else {
            code
        }
    }
}

/// Read Cluster `name` from `target`, build its plan with the shared rules, run `work` on it (the
/// action on the masters), and record the outcome in the Cluster's status unless the action is
/// `check`. An invalid Cluster is refused before any host is contacted; its status gets
/// `HAReady=False` with reason `InvalidCluster` and the field errors.
pub fn run(
    target: &Target,
    name: &str,
    action: Action,
    work: impl FnOnce(&Plan) -> Report,
) -> Result<Outcome, ClusterApiError> {
    let rt = runtime()?;
    let config = rt.block_on(target.config())?;
    let url = config.cluster_url.to_string();
    // The client spawns its request buffer onto the runtime, so it must be built inside it.
    let client = {
        let _inside = rt.enter();
        Client::try_from(config).map_err(|error| KubeApiError::Client { error })?
    };
    let api = ClusterApi::new(client, name, url);
    let object = rt.block_on(api.get())?;
    let plan = match plan_from_object(&object, name) {
        Ok(plan) => plan,
        Err(error) => {
            let status_write = if action == Action::Check {
                None
            } else {
                let verdict = Verdict {
                    status: "False",
                    reason: "InvalidCluster",
                    message: error.to_string(),
                };
                rt.block_on(api.write(&verdict, HaFields::Keep)).err()
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
    let (condition, status_error) = match rt.block_on(api.write(&verdict, ha)) {
        Ok(w) => (Some(w), None),
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
/// about whether HA is in place).
pub fn verdict_for(action: Action, plan: &Plan, report: &Report) -> Option<Verdict> {
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
            "True",
            "Provisioned",
            format!(
                "{} HA applied on {} master(s); {what}",
                plan.mode.name(),
                plan.machines.len()
            ),
        ),
        Action::Apply => (
            "False",
            "ApplyFailed",
            format!("apply failed: {}", failure()),
        ),
        Action::Status if report.ok => ("True", "Healthy", format!("{what}; all masters healthy")),
        Action::Status if report.split_brain => (
            "False",
            "SplitBrain",
            format!("more than one master holds VIP {vip}: {}", failure()),
        ),
        Action::Status => ("False", "Unhealthy", failure()),
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
            ("True", "DrillPassed", format!("{what}{figure}"))
        }
        Action::Drill => (
            "False",
            "DrillFailed",
            format!("drill failed: {}", failure()),
        ),
        Action::Uninstall if report.ok => (
            "False",
            "Uninstalled",
            format!("HA removed from {} master(s)", plan.machines.len()),
        ),
        Action::Uninstall => (
            "False",
            "UninstallFailed",
            format!("uninstall failed: {}", failure()),
        ),
    };
    Some(Verdict {
        status,
        reason,
        message: truncate(message, MAX_MESSAGE),
    })
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
        holder: Option<String>,
        succeeded: bool,
    },
}

/// The current time as Kubernetes writes it (`metav1.Time`: RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The merge patch for `clusters/NAME/status`, given the object as last read: `status.conditions`
/// is a list, which a merge patch replaces whole, so every other condition is copied through
/// unchanged; the `HAReady` entry keeps its `lastTransitionTime` unless its status flips.
pub fn status_patch(current: &Value, verdict: &Verdict, ha: &HaFields, now: &str) -> Value {
    let existing = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let previous = existing
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE));
    let transition = previous
        .filter(|p| p.get("status").and_then(Value::as_str) == Some(verdict.status))
        .and_then(|p| p.get("lastTransitionTime").cloned())
        .unwrap_or_else(|| Value::String(now.to_string()));
    let entry = json!({
        "type": CONDITION_TYPE,
        "status": verdict.status,
        "lastProbeTime": now,
        "lastTransitionTime": transition,
        "reason": verdict.reason,
        "message": verdict.message,
    });
    let mut conditions = Vec::with_capacity(existing.len() + 1);
    let mut placed = false;
    for c in existing {
        if c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE) {
            if !placed {
                conditions.push(entry.clone());
                placed = true;
            }
        } else {
            conditions.push(c);
        }
    }
    if !placed {
        conditions.push(entry);
    }
    let mut status = Map::new();
    status.insert("conditions".into(), Value::Array(conditions));
    let holder = |h: &Option<String>| h.clone().map_or(Value::Null, Value::String);
    match ha {
        HaFields::Keep => {}
        HaFields::Holder(h) => {
            status.insert("ha".into(), json!({ "vipHolder": holder(h) }));
        }
        HaFields::Apply {
            holder: h,
            succeeded,
        } => {
            status.insert(
                "ha".into(),
                json!({
                    "vipHolder": holder(h),
                    "lastApplyTime": now,
                    "lastApplySucceeded": succeeded,
                }),
            );
        }
    }
    let mut patch = json!({ "status": Value::Object(status) });
    if let Some(rv) = current.pointer("/metadata/resourceVersion") {
        patch["metadata"] = json!({ "resourceVersion": rv });
    }
    patch
}

/// The two requests Job mode makes against one Cluster.
struct ClusterApi {
    api: Api<DynamicObject>,
    name: String,
    /// The API server's URL, for error messages.
    url: String,
}

impl ClusterApi {
    fn new(client: Client, name: &str, url: String) -> Self {
        let resource = ApiResource::erase::<Cluster>(&());
        debug_assert_eq!(Cluster::group(&()), "platform.tkestack.io");
        Self {
            api: Api::all_with(client, &resource),
            name: name.to_string(),
            url,
        }
    }

    /// `GET /apis/platform.tkestack.io/v1/clusters/NAME` as JSON.
    async fn get(&self) -> Result<Value, ClusterApiError> {
        let object = self
            .api
            .get(&self.name)
            .await
            .map_err(|error| match &error {
                kube::Error::Api(s) if s.is_not_found() => ClusterApiError::NotFound {
                    name: self.name.clone(),
                },
                _ => ClusterApiError::Get {
                    name: self.name.clone(),
                    url: self.url.clone(),
                    error,
                },
            })?;
        serde_json::to_value(&object).map_err(|error| ClusterApiError::Shape {
            name: self.name.clone(),
            error,
        })
    }

    /// Re-read, then merge-patch the status with the verdict; retry on 409.
    async fn write(&self, verdict: &Verdict, ha: HaFields) -> Result<Written, ClusterApiError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        for _ in 0..CONFLICT_RETRIES {
            let current = self.get().await?;
            let patch = status_patch(&current, verdict, &ha, &now());
            let condition = patch
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONDITION_TYPE))
                })
                .cloned()
                .unwrap_or(Value::Null);
            match self
                .api
                .patch_status(&self.name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    return Ok(Written {
                        status: verdict.status.to_string(),
                        reason: Some(verdict.reason.to_string()),
                        condition,
                    });
                }
                Err(kube::Error::Api(s)) if s.is_conflict() => continue,
                Err(error) => {
                    return Err(ClusterApiError::Patch {
                        name: self.name.clone(),
                        error,
                    });
                }
            }
        }
        Err(ClusterApiError::Conflict {
            name: self.name.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn verdict(status: &'static str) -> Verdict {
        Verdict {
            status,
            reason: "Provisioned",
            message: "ok".into(),
        }
    }

    #[test]
    fn other_conditions_survive_in_order_and_ha_ready_is_replaced_once() {
        let current = json!({
            "metadata": {"name": "c", "resourceVersion": "42"},
            "status": {"conditions": [
                {"type": "EnsureEtcd", "status": "True", "extra": {"kept": 1}},
                {"type": "HAReady", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "EnsureKubeadm", "status": "False"},
                {"type": "HAReady", "status": "False"}
            ]}
        });
        let patch = status_patch(&current, &verdict("True"), &HaFields::Keep, "T");
        let cs = patch["status"]["conditions"].as_array().unwrap();
        let types: Vec<_> = cs.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["EnsureEtcd", "HAReady", "EnsureKubeadm"]);
        assert_eq!(cs[0]["extra"]["kept"], 1);
        assert_eq!(cs[1]["status"], "True");
        assert_eq!(cs[1]["lastTransitionTime"], "T", "status flipped");
        assert_eq!(cs[1]["lastProbeTime"], "T");
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert!(patch["status"].get("ha").is_none(), "Keep leaves status.ha");
    }

    #[test]
    fn the_transition_time_stays_while_the_status_does() {
        let current = json!({"status": {"conditions": [
            {"type": "HAReady", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]}});
        let patch = status_patch(
            &current,
            &verdict("True"),
            &HaFields::Holder(Some("10.0.0.1".into())),
            "2030-01-01T00:00:00Z",
        );
        let c = &patch["status"]["conditions"][0];
        assert_eq!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c["lastProbeTime"], "2030-01-01T00:00:00Z");
        assert_eq!(patch["status"]["ha"], json!({"vipHolder": "10.0.0.1"}));
        assert!(patch.get("metadata").is_none());
    }

    #[test]
    fn apply_fields_and_a_lost_holder_is_removed() {
        let patch = status_patch(
            &json!({}),
            &verdict("False"),
            &HaFields::Apply {
                holder: None,
                succeeded: false,
            },
            "T",
        );
        assert_eq!(
            patch["status"]["ha"],
            json!({"vipHolder": null, "lastApplyTime": "T", "lastApplySucceeded": false})
        );
        assert_eq!(patch["status"]["conditions"].as_array().unwrap().len(), 1);
    }

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
        assert_eq!((v.status, v.reason), ("True", "Provisioned"));
        assert_eq!(
            v.message,
            "tke HA applied on 3 master(s); VIP 10.0.0.100 held by 10.0.0.12"
        );

        let mut bad = report("apply");
        bad.hosts[1].fail("cannot connect to 10.0.0.12:22: timed out");
        bad.fail("preflight failed: nothing was changed on any master");
        bad.finish();
        let v = verdict_for(Action::Apply, &plan, &bad).unwrap();
        assert_eq!((v.status, v.reason), ("False", "ApplyFailed"));
        assert_eq!(
            v.message,
            "apply failed: 10.0.0.12: cannot connect to 10.0.0.12:22: timed out; \
             preflight failed: nothing was changed on any master"
        );

        let mut healthy = report("status");
        healthy.vip_holder = Some("10.0.0.11".into());
        let v = verdict_for(Action::Status, &plan, &healthy).unwrap();
        assert_eq!((v.status, v.reason), ("True", "Healthy"));

        let mut split = report("status");
        split.split_brain = true;
        split.fail("split brain: 10.0.0.11 and 10.0.0.13 hold the VIP");
        let v = verdict_for(Action::Status, &plan, &split).unwrap();
        assert_eq!((v.status, v.reason), ("False", "SplitBrain"));
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
        assert_eq!((v.status, v.reason), ("True", "DrillPassed"));
        assert!(
            v.message
                .ends_with("failover drill 10.0.0.11 -> 10.0.0.12 in 812 ms"),
            "{}",
            v.message
        );

        let v = verdict_for(Action::Uninstall, &plan, &report("uninstall")).unwrap();
        assert_eq!((v.status, v.reason), ("False", "Uninstalled"));
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
        assert!(
            e.contains("twenty-two"),
            "other fields keep their value: {e}"
        );
    }

    #[test]
    fn now_is_a_metav1_time() {
        let t = now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t}");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = truncate("é".repeat(3000), MAX_MESSAGE);
        assert!(s.len() <= MAX_MESSAGE && s.ends_with("..."));
        assert_eq!(truncate("short".into(), MAX_MESSAGE), "short");
    }
}

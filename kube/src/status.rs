//! One writer's part of a Cluster's status as a JSON merge patch: its condition set among other controllers' conditions, and `status.ha`.
//!
//! `status.conditions` is a list, which a merge patch replaces whole: every other condition is
//! copied through exactly as read (other controllers own them, with fields we do not model), and
//! only the writer's own entry is typed ([`ClusterCondition`]). The patch carries the
//! `metadata.resourceVersion` it was computed from, so a concurrent writer makes the API server
//! answer 409 instead of losing its conditions (see [`crate::ClusterClient::patch_status`]).

use k8s_openapi::jiff;
use serde::Serialize;
use serde_json::Value;
use tkeha_api::types::{ClusterCondition, HaStatus};

/// The current time as Kubernetes writes it (`metav1.Time`: RFC 3339, seconds, UTC).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The merge patch body.
#[derive(Serialize)]
struct StatusPatch<'a> {
    status: StatusFields<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Precondition<'a>>,
}

/// The status fields one writer sets.
#[derive(Serialize)]
struct StatusFields<'a> {
    conditions: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ha: Option<&'a HaStatus>,
}

/// Optimistic concurrency: the version the patch was computed from.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Precondition<'a> {
    resource_version: &'a Value,
}

/// The merge patch for `clusters/NAME/status`, given the object as last read:
/// - `status.conditions`: every condition as read, with the first one of `condition`'s type
///   replaced by `condition` (and later ones of that type dropped), or `condition` appended.
///   `condition.last_transition_time` is replaced by the stored one while the status stays the
///   same (Kubernetes' rule: the time of the last flip, not of the last write);
/// - `status.ha` when `ha` is given (a `None` holder is written as `null`, which removes it);
///   left as stored otherwise;
/// - `metadata.resourceVersion` of `current`, when it has one.
///
/// # Errors
///
/// serde's error if the typed parts cannot be encoded (they are plain strings and booleans).
pub fn status_patch(
    current: &Value,
    mut condition: ClusterCondition,
    ha: Option<&HaStatus>,
) -> Result<Value, serde_json::Error> {
    let existing = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = condition.type_.clone();
    let is_ours = |c: &Value| c.get("type").and_then(Value::as_str) == Some(kind.as_str());
    let since = existing
        .iter()
        .find(|c| is_ours(c))
        .filter(|c| c.get("status").and_then(Value::as_str) == Some(condition.status.as_str()))
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if since.is_some() {
        condition.last_transition_time = since;
    }
    let entry = serde_json::to_value(&condition)?;
    let mut conditions = Vec::with_capacity(existing.len() + 1);
    let mut placed = false;
    for c in existing {
        if !is_ours(&c) {
            conditions.push(c);
        } else if !placed {
            conditions.push(entry.clone());
            placed = true;
        }
    }
    if !placed {
        conditions.push(entry);
    }
    serde_json::to_value(StatusPatch {
        status: StatusFields { conditions, ha },
        metadata: current
            .pointer("/metadata/resourceVersion")
            .map(|resource_version| Precondition { resource_version }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;
    use tkeha_api::types::ConditionStatus;

    use super::*;

    fn ha_ready(status: ConditionStatus, now: &str) -> ClusterCondition {
        ClusterCondition {
            type_: "HAReady".into(),
            status,
            last_probe_time: Some(now.into()),
            last_transition_time: Some(now.into()),
            reason: Some("Provisioned".into()),
            message: Some("ok".into()),
        }
    }

    #[test]
    fn other_conditions_survive_in_order_and_ours_is_replaced_once() {
        let current = json!({
            "metadata": {"name": "c", "resourceVersion": "42"},
            "status": {"conditions": [
                {"type": "EnsureEtcd", "status": "True", "extra": {"kept": 1}},
                {"type": "HAReady", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"},
                {"type": "EnsureKubeadm", "status": "False"},
                {"type": "HAReady", "status": "False"}
            ]}
        });
        let patch = status_patch(&current, ha_ready(ConditionStatus::True, "T"), None).unwrap();
        let cs = patch["status"]["conditions"].as_array().unwrap();
        let types: Vec<_> = cs.iter().map(|c| c["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["EnsureEtcd", "HAReady", "EnsureKubeadm"]);
        assert_eq!(cs[0]["extra"]["kept"], 1);
        assert_eq!(cs[1]["status"], "True");
        assert_eq!(cs[1]["lastTransitionTime"], "T", "status flipped");
        assert_eq!(cs[1]["lastProbeTime"], "T");
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert!(
            patch["status"].get("ha").is_none(),
            "no HaStatus leaves status.ha"
        );
    }

    #[test]
    fn the_transition_time_stays_while_the_status_does() {
        let current = json!({"status": {"conditions": [
            {"type": "HAReady", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]}});
        let holder = HaStatus {
            vip_holder: Some("10.0.0.1".into()),
            ..HaStatus::default()
        };
        let now = "2030-01-01T00:00:00Z";
        let patch = status_patch(
            &current,
            ha_ready(ConditionStatus::True, now),
            Some(&holder),
        )
        .unwrap();
        let c = &patch["status"]["conditions"][0];
        assert_eq!(c["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(c["lastProbeTime"], now);
        assert_eq!(patch["status"]["ha"], json!({"vipHolder": "10.0.0.1"}));
        assert!(patch.get("metadata").is_none());
    }

    #[test]
    fn the_patch_is_written_in_the_documented_field_order() {
        let ha = HaStatus {
            vip_holder: None,
            last_apply_time: Some("T".into()),
            last_apply_succeeded: Some(false),
        };
        let patch = status_patch(
            &json!({"metadata": {"resourceVersion": "7"}}),
            ha_ready(ConditionStatus::False, "T"),
            Some(&ha),
        )
        .unwrap();
        assert_eq!(
            patch.to_string(),
            r#"{"status":{"conditions":[{"type":"HAReady","status":"False","lastProbeTime":"T","lastTransitionTime":"T","reason":"Provisioned","message":"ok"}],"ha":{"vipHolder":null,"lastApplyTime":"T","lastApplySucceeded":false}},"metadata":{"resourceVersion":"7"}}"#,
            "a lost holder is removed with null"
        );
    }

    #[test]
    fn now_is_a_metav1_time() {
        let t = now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
        assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t}");
    }
}

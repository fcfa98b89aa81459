//! The failover profile annotation (`tkeha.tkestack.io/failover-profile`): TKEStack's schema
//! has no field for it, so a Cluster chooses its keepalived timings by annotation, and an
//! unknown value is a field error that names the allowed ones.

use serde_json::Value;

use crate::field::{ErrorType, FieldError, quote};

/// The annotation that chooses the failover profile of a Cluster's keepalived.
pub const FAILOVER_PROFILE_ANNOTATION: &str = "tkeha.tkestack.io/failover-profile";

/// The values the annotation may take (`standard`: VRRPv2, 1 s adverts, a 1 s health check;
/// `fast`: VRRPv3, 0.1 s adverts, a 50 ms apiserver probe).
pub const FAILOVER_PROFILES: [&str; 2] = ["standard", "fast"];

/// The field path of the annotation, as the API server writes map keys.
pub fn annotation_path() -> String {
    format!("metadata.annotations[{FAILOVER_PROFILE_ANNOTATION}]")
}

/// The annotation's value in an object (`None` when absent or not a string: the API server
/// itself refuses non-string annotations).
pub fn annotation(object: &Value) -> Option<&str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(FAILOVER_PROFILE_ANNOTATION)?
        .as_str()
}

/// The rule: a value outside [`FAILOVER_PROFILES`] is an error when the object is created or
/// when an update sets or changes it; a bad value already stored and left alone is a warning
/// (the update ratchets, as the spec rules do).
pub fn validate(new: &Value, old: Option<&Value>) -> (Option<FieldError>, Option<String>) {
    let Some(value) = annotation(new) else {
        return (None, None);
    };
    if FAILOVER_PROFILES.contains(&value) {
        return (None, None);
    }
    let error = FieldError::new(
        annotation_path(),
        ErrorType::NotSupported,
        Some(quote(value)),
        format!(
            "supported values: {}",
            FAILOVER_PROFILES.map(|p| format!("\"{p}\"")).join(", ")
        ),
    );
    match old {
        Some(old) if annotation(old) == Some(value) => (None, Some(error.to_string())),
        _ => (Some(error), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(value: &str) -> Value {
        json!({"metadata": {"name": "a", "annotations": {FAILOVER_PROFILE_ANNOTATION: value}}})
    }

    #[test]
    fn known_values_and_absence_pass() {
        for v in FAILOVER_PROFILES {
            assert_eq!(validate(&with(v), None), (None, None));
        }
        assert_eq!(validate(&json!({"metadata": {}}), None), (None, None));
    }

    #[test]
    fn an_unknown_value_names_the_field_and_the_allowed_values() {
        let (error, _) = validate(&with("fastest"), None);
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            text,
            "metadata.annotations[tkeha.tkestack.io/failover-profile]: Unsupported value: \"fastest\": supported values: \"standard\", \"fast\""
        );
    }

    #[test]
    fn an_update_ratchets_a_stored_value_but_refuses_a_new_one() {
        let (error, warning) = validate(&with("turbo"), Some(&with("turbo")));
        assert!(error.is_none() && warning.is_some_and(|w| w.contains("turbo")));
        let (error, _) = validate(&with("turbo"), Some(&with("fast")));
        assert!(error.is_some());
    }

    #[test]
    fn control_characters_are_escaped() {
        let (error, _) = validate(&with("fa\u{1b}[2Jst"), None);
        let text = error.map(|e| e.to_string()).unwrap_or_default();
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}

//! The one entry point: defaults (as a JSON patch), then validation of the defaulted object.

use serde_json::Value;

use crate::field::FieldError;

/// What to do with third-party HA on fewer than 2 masters (LB self-connect limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SingleMasterPolicy {
    /// Deny (the default: most cloud LBs cannot hairpin).
    #[default]
    Error,
    /// Allow with a warning (for LBs that can reach their own backends).
    Warning,
}

/// Knobs the webhook exposes as flags; the plugin uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub third_party_single_master: SingleMasterPolicy,
    /// If set, `spec.version` must be one of these.
    pub version_allow_list: Option<Vec<String>>,
}

/// The result of [`review`].
#[derive(Debug, Clone)]
pub struct Review {
    /// Every field error, all at once. Empty means allowed.
    pub errors: Vec<FieldError>,
    /// Findings that allow the object but deserve the user's attention.
    pub warnings: Vec<String>,
    /// RFC 6902 patch over the object as received: only adds what is missing.
    pub patch: json_patch::Patch,
    /// The object with the patch applied (what validation saw).
    pub defaulted: Value,
}

impl Review {
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The object could not be read as a Cluster at all (wrong JSON types, not an object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// Field path where decoding failed, e.g. `spec.machines[0].port` (`.` for the root).
    pub path: String,
    pub message: String,
}

/// Review a Cluster on create (`old` = None) or update (`old` = the stored object).
pub fn review(new: &Value, old: Option<&Value>, policy: &Policy) -> Result<Review, DecodeError> {
    let _ = (new, old, policy);
    todo!("implemented by the api work")
}

//! AdmissionReview wire types (`admission.k8s.io/v1` and `v1beta1`), our own serde structs.
//!
//! Own types rather than `kube::core::admission` because kube-core 5 serialises
//! `response.patch` as an array of numbers (kube-rs issue 1781); the documented wire form,
//! which these types emit, is a base64 string.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tkeha_api::spectext::DecodedSpec;
use tkeha_api::validation::meta::Names;

/// `apiVersion` of the current AdmissionReview.
pub const V1: &str = "admission.k8s.io/v1";
/// `apiVersion` of the deprecated AdmissionReview still sent by old API servers.
pub const V1BETA1: &str = "admission.k8s.io/v1beta1";

/// An incoming AdmissionReview. Fields are optional so that a malformed review can be
/// reported precisely instead of failing as a whole. `O` is how the objects are read: a
/// `serde_json::Value`, or a [`ClusterObject`] for the fast path of `admit`.
#[derive(Debug, Deserialize)]
pub struct ReviewRequest<O = Value> {
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub request: Option<AdmissionRequest<O>>,
}

/// `request` of an AdmissionReview: the fields we read. `userInfo`, `options` and the rest
/// are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<O = Value> {
    pub uid: String,
    pub kind: GroupVersionKind,
    pub resource: GroupVersionResource,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: String,
    // No `#[serde(default)]`: it would demand `O: Default`; a missing Option is None anyway.
    pub object: Option<O>,
    pub old_object: Option<O>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// A Cluster object as the fast path of `admit` reads it, in the same pass as the envelope:
/// `apiVersion` and `kind` borrowed from the body (a string with escapes does not decode, which
/// sends the request to the general path), the names from `metadata`, `spec` decoded into the
/// typed spec with its unknown fields noted, `status` skipped. An unknown top-level or
/// `metadata` field does not decode either: the general path reports those.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterObject<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    pub api_version: Option<&'a str>,
    #[serde(default, borrow)]
    pub kind: Option<&'a str>,
    #[serde(default)]
    pub metadata: Option<ObjectMeta>,
    #[serde(default, deserialize_with = "tkeha_api::spectext::decoded_spec")]
    pub spec: Option<DecodedSpec>,
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

/// `metadata` as the fast path reads it: the names, every other `ObjectMeta` field skipped,
/// anything else refused (see `tkeha_api::validation::meta::OBJECT_META_FIELDS`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub generate_name: Option<String>,
    namespace: Option<IgnoredAny>,
    self_link: Option<IgnoredAny>,
    uid: Option<IgnoredAny>,
    resource_version: Option<IgnoredAny>,
    generation: Option<IgnoredAny>,
    creation_timestamp: Option<IgnoredAny>,
    deletion_timestamp: Option<IgnoredAny>,
    deletion_grace_period_seconds: Option<IgnoredAny>,
    labels: Option<IgnoredAny>,
    annotations: Option<IgnoredAny>,
    owner_references: Option<IgnoredAny>,
    finalizers: Option<IgnoredAny>,
    managed_fields: Option<IgnoredAny>,
}

impl ObjectMeta {
    /// The names, as the rule engine takes them.
    pub fn names(&self) -> Names {
        Names {
            name: self.name.clone(),
            generate_name: self.generate_name.clone(),
        }
    }
}

/// `group`/`version`/`kind` (the core group is the empty string).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub kind: String,
}

/// `group`/`version`/`resource`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    pub resource: String,
}

/// The AdmissionReview we answer with, in the `apiVersion` we were asked in.
#[derive(Debug, Serialize)]
pub struct ReviewResponse {
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: AdmissionResponse,
}

impl ReviewResponse {
    pub fn new(api_version: &'static str, response: AdmissionResponse) -> Self {
        Self {
            api_version,
            kind: "AdmissionReview",
            response,
        }
    }
}

/// `response` of an AdmissionReview.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 (standard, padded) of the JSON patch document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AdmissionResponse {
    /// Allowed, nothing to change.
    pub fn allow(uid: String) -> Self {
        Self {
            uid,
            allowed: true,
            status: None,
            patch: None,
            patch_type: None,
            warnings: Vec::new(),
        }
    }

    /// Denied with `status`.
    pub fn deny(uid: String, status: Status) -> Self {
        Self {
            allowed: false,
            status: Some(status),
            ..Self::allow(uid)
        }
    }
}

/// A `metav1.Status` as the API server passes it on to the user for a denial.
#[derive(Debug, Serialize)]
pub struct Status {
    pub status: &'static str,
    pub message: String,
    pub reason: &'static str,
    pub code: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

/// `status.details`: which object, and one cause per field error.
#[derive(Debug, Serialize)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub causes: Vec<StatusCause>,
}

/// One `status.details.causes[]` entry (`reason` is a field error type such as `FieldValueInvalid`).
#[derive(Debug, Serialize)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

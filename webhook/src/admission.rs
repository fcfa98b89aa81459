//! AdmissionReview wire types (`admission.k8s.io/v1` and `v1beta1`), our own serde structs, and
//! the builders that make an answer: [`Subject::allow`], then [`AdmissionResponse::deny`],
//! [`AdmissionResponse::with_patch`] or [`AdmissionResponse::with_warnings`].
//!
//! Own types rather than `kube::core::admission` because kube-core 5 serialises
//! `response.patch` as an array of numbers (kube-rs issue 1781); the documented wire form,
//! which these types emit, is a base64 string. The enums follow kube-core's ([`Operation`],
//! [`PatchType`]): a value the API server can send is a variant, not a string compared with
//! literals.

use std::borrow::Cow;

use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tkeha_api::review::DecodeError;
use tkeha_api::spectext::DecodedSpec;
use tkeha_api::validation::meta::Names;
use tkeha_api::{ErrorType, FieldError};

use crate::message::{
    MAX_CAUSE_CHARS, MAX_CAUSES, MAX_FIELD_CHARS, MAX_NAME_CHARS, bounded, invalid_message,
};

/// Largest JSON patch we answer with, in bytes before base64 (a Cluster's defaults take a few
/// hundred).
pub const MAX_PATCH_BYTES: usize = 1024 * 1024;

/// `kind` of every AdmissionReview, asked and answered.
pub const KIND: &str = "AdmissionReview";

/// `apiVersion` of an AdmissionReview: the one we were asked in is the one we answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ApiVersion {
    /// `admission.k8s.io/v1`, the current version.
    #[serde(rename = "admission.k8s.io/v1")]
    V1,
    /// `admission.k8s.io/v1beta1`, still sent by old API servers.
    #[serde(rename = "admission.k8s.io/v1beta1")]
    V1Beta1,
}

impl ApiVersion {
    /// The `apiVersion` text.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "admission.k8s.io/v1",
            ApiVersion::V1Beta1 => "admission.k8s.io/v1beta1",
        }
    }

    /// The version named by `text`, if we speak it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admission.k8s.io/v1" => Some(ApiVersion::V1),
            "admission.k8s.io/v1beta1" => Some(ApiVersion::V1Beta1),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation an AdmissionReview asks about (`request.operation`): the four values of
/// `admission.k8s.io/v1` `Operation`, as kube-core's enum of the same name. Any other text
/// makes the body an unreadable AdmissionReview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    /// An object is being created.
    Create,
    /// An object is being replaced or patched.
    Update,
    /// An object is being deleted.
    Delete,
    /// A connect to a subresource (exec, proxy, ...).
    Connect,
}

impl Operation {
    /// The wire text (`CREATE`, ...), as logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// An incoming AdmissionReview. Fields are optional so that a malformed review can be
/// reported precisely instead of failing as a whole. `O` is how the objects are read: a
/// `serde_json::Value`, or a [`ClusterObject`] for the fast path of `admit`.
#[derive(Debug, Deserialize)]
pub struct ReviewRequest<O = Value> {
    /// `apiVersion` as sent (checked against [`ApiVersion`] by the reader).
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// `kind` as sent (must be [`KIND`]).
    pub kind: Option<String>,
    /// The request; an AdmissionReview without one cannot be answered.
    pub request: Option<AdmissionRequest<O>>,
}

/// `request` of an AdmissionReview: the fields we read. `userInfo`, `options` and the rest
/// are accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<O = Value> {
    /// Identifies this review; echoed in the answer.
    pub uid: String,
    /// Kind of the object.
    pub kind: GroupVersionKind,
    /// Resource being reviewed.
    pub resource: GroupVersionResource,
    /// Subresource (`status`, ...), if the request is for one.
    #[serde(default)]
    pub sub_resource: Option<String>,
    /// Name of the object (empty or absent when the name is generated later).
    #[serde(default)]
    pub name: Option<String>,
    /// Namespace of the object (absent for cluster-scoped objects).
    #[serde(default)]
    pub namespace: Option<String>,
    /// What is being done.
    pub operation: Operation,
    /// The object as submitted (absent on DELETE).
    // No `#[serde(default)]`: it would demand `O: Default`; a missing Option is None anyway.
    pub object: Option<O>,
    /// The stored object (on UPDATE and DELETE).
    pub old_object: Option<O>,
    /// Whether the request will not be persisted.
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
    /// `apiVersion` of the object.
    #[serde(rename = "apiVersion", default, borrow)]
    pub api_version: Option<&'a str>,
    /// `kind` of the object.
    #[serde(default, borrow)]
    pub kind: Option<&'a str>,
    /// The names from `metadata`.
    #[serde(default)]
    pub metadata: Option<ObjectMeta>,
    /// `spec`, decoded straight into the typed spec, its unknown fields noted.
    #[serde(default, deserialize_with = "tkeha_api::spectext::decoded_spec")]
    pub spec: Option<DecodedSpec>,
    /// `status`, skipped: a create's status is not reviewed.
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

/// `metadata` as the fast path reads it: the names, every other `ObjectMeta` field skipped,
/// anything else refused (see `tkeha_api::validation::meta::OBJECT_META_FIELDS`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ObjectMeta {
    /// `metadata.name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `metadata.generateName`.
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
    /// `metadata.annotations`: only whether the failover profile annotation is among them
    /// (its value has a rule, which the general path checks). No key is kept: a body of
    /// millions of tiny annotations costs nothing here.
    #[serde(default, rename = "annotations", deserialize_with = "has_profile_key")]
    pub has_profile: bool,
    owner_references: Option<IgnoredAny>,
    finalizers: Option<IgnoredAny>,
    managed_fields: Option<IgnoredAny>,
}

impl ObjectMeta {
    /// Whether the object carries the failover profile annotation, whose value the general
    /// path checks (`tkeha_api::validation::profile`).
    pub fn has_profile_annotation(&self) -> bool {
        self.has_profile
    }

    /// The names, as the rule engine takes them.
    pub fn names(&self) -> Names {
        Names {
            name: self.name.clone(),
            generate_name: self.generate_name.clone(),
        }
    }
}

/// Whether an `annotations` map (or null) has the failover profile key, reading each key in
/// place and keeping none.
fn has_profile_key<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::de::{DeserializeSeed, MapAccess, Visitor};

    struct IsProfileKey;
    impl<'de> DeserializeSeed<'de> for IsProfileKey {
        type Value = bool;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl Visitor<'_> for IsProfileKey {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an annotation key")
        }
        fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
            Ok(key == tkeha_api::validation::profile::FAILOVER_PROFILE_ANNOTATION)
        }
    }

    struct Annotations;
    impl<'de> Visitor<'de> for Annotations {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(is_profile) = map.next_key_seed(IsProfileKey)? {
                found |= is_profile;
                map.next_value::<IgnoredAny>()?;
            }
            Ok(found)
        }
    }
    d.deserialize_any(Annotations)
}

/// `group`/`version`/`kind` (the core group is the empty string).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionKind {
    /// API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    pub kind: String,
}

/// `group`/`version`/`resource`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GroupVersionResource {
    /// API group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Resource (plural).
    pub resource: String,
}

/// Who and what an answer is about: the review's uid, the object's kind and name, the
/// operation. Every [`AdmissionResponse`] starts from one ([`Subject::allow`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// `request.uid`, echoed in the answer.
    pub uid: String,
    /// `request.kind.kind` (`Cluster`).
    pub kind: String,
    /// `request.kind.group` (`platform.tkestack.io`).
    pub group: String,
    /// The object's name (`request.name`, else `metadata.name`, else empty).
    pub name: String,
    /// `request.operation`.
    pub operation: Operation,
    /// `request.dryRun`.
    pub dry_run: bool,
}

impl Subject {
    /// The subject of `request` (taken apart: take the objects out first), named `name`.
    pub fn from_request<O>(request: AdmissionRequest<O>, name: String) -> Self {
        Self {
            uid: request.uid,
            kind: request.kind.kind,
            group: request.kind.group,
            name,
            operation: request.operation,
            dry_run: request.dry_run.unwrap_or(false),
        }
    }

    /// An answer that allows the request unchanged; the start of every answer.
    pub fn allow(&self) -> AdmissionResponse {
        AdmissionResponse {
            uid: self.uid.clone(),
            allowed: true,
            status: None,
            patch: None,
            patch_type: None,
            warnings: Vec::new(),
        }
    }

    /// `Kind.group` as the API server prints a group kind (`Cluster.platform.tkestack.io`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// The AdmissionReview we answer with, in the `apiVersion` we were asked in.
#[derive(Debug, Serialize)]
pub struct ReviewResponse {
    /// The version we were asked in.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always [`KIND`].
    pub kind: &'static str,
    /// The answer.
    pub response: AdmissionResponse,
}

impl ReviewResponse {
    /// Wrap `response` in an AdmissionReview of `api_version`.
    pub fn new(api_version: ApiVersion, response: AdmissionResponse) -> Self {
        Self {
            api_version,
            kind: KIND,
            response,
        }
    }
}

/// How `response.patch` is to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PatchType {
    /// An RFC 6902 JSON patch, the only type admission webhooks may return.
    #[serde(rename = "JSONPatch")]
    JsonPatch,
}

/// `response` of an AdmissionReview. Built by [`Subject::allow`] and the `deny`/`with_*`
/// builders below.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    /// The request's uid.
    pub uid: String,
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why not, for a denial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 (standard, padded) of the JSON patch document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// Set with `patch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<PatchType>,
    /// Shown to the user by kubectl, allowed or not.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AdmissionResponse {
    /// Deny with `status` (a patch, if any, is dropped: a denial changes nothing).
    pub fn deny(mut self, status: Status) -> Self {
        self.allowed = false;
        self.status = Some(status);
        self.patch = None;
        self.patch_type = None;
        self
    }

    /// Allow with `patch` applied (an empty patch leaves the answer as it is).
    ///
    /// # Errors
    ///
    /// [`PatchError::Encode`] if the patch cannot be encoded as JSON, [`PatchError::TooLarge`]
    /// if it encodes to more than [`MAX_PATCH_BYTES`].
    pub fn with_patch(mut self, patch: &json_patch::Patch) -> Result<Self, PatchError> {
        if !patch.0.is_empty() {
            let json = serde_json::to_vec(patch).map_err(PatchError::Encode)?;
            if json.len() > MAX_PATCH_BYTES {
                return Err(PatchError::TooLarge {
                    bytes: json.len(),
                    operations: patch.0.len(),
                });
            }
            self.patch = Some(base64::engine::general_purpose::STANDARD.encode(json));
            self.patch_type = Some(PatchType::JsonPatch);
        }
        Ok(self)
    }

    /// Add `warnings` (already shortened for the API server).
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }
}

/// Why a patch cannot be part of an answer.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// serde_json could not write it.
    #[error("encoding the patch: {0}")]
    Encode(#[source] serde_json::Error),
    /// It is over [`MAX_PATCH_BYTES`].
    #[error(
        "the defaults make a JSON patch of {operations} operations and {bytes} bytes, over the {MAX_PATCH_BYTES}-byte limit: the object is far larger than a Cluster can be"
    )]
    TooLarge {
        /// Encoded size.
        bytes: usize,
        /// Operations in the patch.
        operations: usize,
    },
}

/// `status.status` of a `metav1.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatusState {
    /// The operation succeeded.
    Success,
    /// The operation failed (every denial).
    Failure,
}

/// `status.reason` of a `metav1.Status`, with its HTTP code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum StatusReason {
    /// 422: the object breaks a rule; `details.causes` says which fields.
    Invalid,
    /// 400: the review lacks what it needs (an object, an old object).
    BadRequest,
    /// 500: we failed to build the answer.
    InternalError,
}

impl StatusReason {
    /// The HTTP code that goes with the reason.
    pub fn code(self) -> u16 {
        match self {
            StatusReason::Invalid => 422,
            StatusReason::BadRequest => 400,
            StatusReason::InternalError => 500,
        }
    }
}

/// A `metav1.Status` as the API server passes it on to the user for a denial.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Always [`StatusState::Failure`] for a denial.
    pub status: StatusState,
    /// One line for the user.
    pub message: String,
    /// Machine-readable reason.
    pub reason: StatusReason,
    /// HTTP code of the reason.
    pub code: u16,
    /// The object and one cause per field error, for `Invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

impl Status {
    fn failure(reason: StatusReason, message: String, details: Option<StatusDetails>) -> Self {
        Self {
            status: StatusState::Failure,
            message,
            reason,
            code: reason.code(),
            details,
        }
    }

    /// 422 Invalid for `subject`, one cause per field error, and the message the API server's
    /// own `apierrors.NewInvalid` writes: `Kind.group "NAME" is invalid: CAUSE` (several in
    /// brackets).
    ///
    /// Bounded however many errors there are: at most [`MAX_CAUSES`] causes, then one
    /// `FieldValueTooMany` cause at `.` that says how many more; each cause's field and message
    /// cut (see [`crate::message`]); the message at most `MAX_MESSAGE_BYTES`.
    pub fn invalid<'a, E>(subject: &Subject, errors: &'a [E]) -> Self
    where
        StatusCause: From<&'a E>,
    {
        let shown = errors.len().min(MAX_CAUSES);
        let hidden = errors.len() - shown;
        let mut causes: Vec<StatusCause> = errors[..shown].iter().map(StatusCause::from).collect();
        let message = invalid_message(&subject.qualified_kind(), &subject.name, &causes, hidden);
        if hidden > 0 {
            causes.push(StatusCause {
                reason: CauseType::TooMany,
                message: format!("and {hidden} more errors (not shown)"),
                field: ".".to_string(),
            });
        }
        let details = StatusDetails {
            name: bounded(&subject.name, MAX_NAME_CHARS).into_owned(),
            group: bounded(&subject.group, MAX_NAME_CHARS).into_owned(),
            kind: bounded(&subject.kind, MAX_NAME_CHARS).into_owned(),
            causes,
        };
        Self::failure(StatusReason::Invalid, message, Some(details))
    }

    /// 400 BadRequest with `message`.
    pub fn bad_request(message: String) -> Self {
        Self::failure(StatusReason::BadRequest, message, None)
    }

    /// 500 InternalError with `message`.
    pub fn internal_error(message: String) -> Self {
        Self::failure(StatusReason::InternalError, message, None)
    }
}

/// `status.details`: which object, and one cause per field error.
#[derive(Debug, Serialize)]
pub struct StatusDetails {
    /// The object's name.
    pub name: String,
    /// Its API group.
    pub group: String,
    /// Its kind.
    pub kind: String,
    /// One per field error.
    pub causes: Vec<StatusCause>,
}

/// `causes[].reason`: the type of a field error, or `FieldValueTooMany` for the cause that
/// counts the errors left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    /// A field error's type (`FieldValueInvalid`, ...).
    Field(ErrorType),
    /// `FieldValueTooMany`: more errors than an answer lists.
    TooMany,
}

impl Serialize for CauseType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CauseType::Field(t) => t.serialize(s),
            CauseType::TooMany => s.serialize_str("FieldValueTooMany"),
        }
    }
}

/// One `status.details.causes[]` entry. kubectl prints it as `FIELD: MESSAGE`, so the message
/// does not repeat the path.
#[derive(Debug, Clone, Serialize)]
pub struct StatusCause {
    /// The field error type (`FieldValueInvalid`, ...).
    pub reason: CauseType,
    /// The error without its path (`Invalid value: "x": must be ...`).
    pub message: String,
    /// The field path (`spec.machines[0].ip`).
    pub field: String,
}

/// `text` cut to `max` characters with control characters escaped, reusing `text` when it
/// needs no change.
fn bounded_owned(text: String, max: usize) -> String {
    match bounded(&text, max) {
        Cow::Borrowed(_) => text,
        Cow::Owned(changed) => changed,
    }
}

impl From<&FieldError> for StatusCause {
    fn from(error: &FieldError) -> Self {
        Self {
            reason: CauseType::Field(error.kind),
            message: bounded_owned(error.body(), MAX_CAUSE_CHARS),
            field: bounded(&error.field, MAX_FIELD_CHARS).into_owned(),
        }
    }
}

impl From<&DecodeError> for StatusCause {
    fn from(error: &DecodeError) -> Self {
        Self {
            reason: CauseType::Field(ErrorType::Invalid),
            message: bounded(&error.message, MAX_CAUSE_CHARS).into_owned(),
            field: bounded(&error.path, MAX_FIELD_CHARS).into_owned(),
        }
    }
}

impl From<&StatusCause> for StatusCause {
    fn from(cause: &StatusCause) -> Self {
        cause.clone()
    }
}

/// `FIELD: MESSAGE`, the cause as one line of the status message (the form of the field
/// error's own `Display`).
impl std::fmt::Display for StatusCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_profile_annotation_is_noticed_and_no_key_is_kept() {
        let meta = |annotations: Value| -> ObjectMeta {
            serde_json::from_value(json!({"name": "a", "annotations": annotations})).unwrap()
        };
        assert!(meta(json!({"x": "1", "tkeha.tkestack.io/failover-profile": "fast"})).has_profile);
        assert!(!meta(json!({"tkeha.tkestack.io/failover-profilex": "fast"})).has_profile);
        assert!(!meta(json!({})).has_profile);
        assert!(!meta(Value::Null).has_profile);
        let none: ObjectMeta = serde_json::from_value(json!({"name": "a"})).unwrap();
        assert!(!none.has_profile);
        assert!(serde_json::from_value::<ObjectMeta>(json!({"annotations": "x"})).is_err());
    }

    fn subject() -> Subject {
        Subject {
            uid: "u-1".into(),
            kind: "Cluster".into(),
            group: "platform.tkestack.io".into(),
            name: "cls-a".into(),
            operation: Operation::Create,
            dry_run: false,
        }
    }

    #[test]
    fn operations_are_the_four_wire_values_and_nothing_else() {
        for (text, op) in [
            ("CREATE", Operation::Create),
            ("UPDATE", Operation::Update),
            ("DELETE", Operation::Delete),
            ("CONNECT", Operation::Connect),
        ] {
            assert_eq!(
                serde_json::from_value::<Operation>(json!(text)).unwrap(),
                op
            );
            assert_eq!(op.as_str(), text);
            assert_eq!(serde_json::to_value(op).unwrap(), json!(text));
        }
        assert!(serde_json::from_value::<Operation>(json!("create")).is_err());
        assert!(serde_json::from_value::<Operation>(json!("PATCH")).is_err());
    }

    #[test]
    fn a_core_group_kind_is_unqualified() {
        let pod = Subject {
            kind: "Pod".into(),
            group: String::new(),
            ..subject()
        };
        assert_eq!(pod.qualified_kind(), "Pod");
        assert_eq!(subject().qualified_kind(), "Cluster.platform.tkestack.io");
    }

    #[test]
    fn api_versions_round_trip() {
        for v in [ApiVersion::V1, ApiVersion::V1Beta1] {
            assert_eq!(ApiVersion::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
        }
        assert_eq!(ApiVersion::parse("admission.k8s.io/v2"), None);
    }

    #[test]
    fn builders_give_the_documented_wire_form() {
        let s = subject();
        let patch: json_patch::Patch =
            serde_json::from_value(json!([{"op": "add", "path": "/a", "value": 1}])).unwrap();
        let allowed = s.allow().with_patch(&patch).unwrap();
        let v = serde_json::to_value(&allowed).unwrap();
        assert_eq!(v["allowed"], true);
        assert_eq!(v["patchType"], "JSONPatch");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v["patch"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).unwrap(),
            json!([{"op": "add", "path": "/a", "value": 1}])
        );
        // An empty patch adds nothing; a denial drops a patch.
        let v = serde_json::to_value(s.allow().with_patch(&json_patch::Patch(vec![])).unwrap())
            .unwrap();
        assert_eq!(v, json!({"uid": "u-1", "allowed": true}));
        let denied = allowed.deny(Status::bad_request("no".into()));
        let v = serde_json::to_value(&denied).unwrap();
        assert_eq!(
            v,
            json!({"uid": "u-1", "allowed": false,
                   "status": {"status": "Failure", "message": "no", "reason": "BadRequest", "code": 400}})
        );
    }

    #[test]
    fn field_and_decode_errors_make_the_same_shape_of_invalid_status() {
        let s = subject();
        let field = FieldError::required("spec.machines[0].username", "set a user");
        let decode = DecodeError {
            path: "spec.machines[0].port".into(),
            message: "invalid type: string \"x\", expected u16".into(),
        };
        let causes: Vec<StatusCause> = vec![(&field).into(), (&decode).into()];
        let status = Status::invalid(&s, &causes);
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(v["code"], 422);
        assert_eq!(v["reason"], "Invalid");
        assert_eq!(
            v["message"],
            format!(r#"Cluster.platform.tkestack.io "cls-a" is invalid: [{field}, {decode}]"#)
        );
        assert_eq!(v["details"]["group"], "platform.tkestack.io");
        assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(v["details"]["causes"][0]["message"], field.body());
        assert_eq!(v["details"]["causes"][1]["reason"], "FieldValueInvalid");
        assert_eq!(v["details"]["causes"][1]["field"], "spec.machines[0].port");
    }
}

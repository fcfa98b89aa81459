//! The admission decision: an AdmissionReview body in, an AdmissionReview (or a 400 reason) out.
//!
//! Pure apart from the rule engine it calls: `tkeha_api::review`, the same function the
//! plugin's `validate` uses, so the API server and `kubectl tkeha validate` always agree.

use base64::Engine as _;
use serde_json::Value;
use tkeha_api::review::DecodeError;
use tkeha_api::{FieldError, Policy};

use crate::admission::{
    AdmissionRequest, AdmissionResponse, ReviewRequest, ReviewResponse, Status, StatusCause,
    StatusDetails, V1, V1BETA1,
};
use crate::message::{cause_reason, invalid_message, limit_warning, qualified_kind};

/// API group of the objects we review.
pub const GROUP: &str = "platform.tkestack.io";
/// Resource (plural) of the objects we review.
pub const RESOURCE: &str = "clusters";

/// Which webhook was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Mutating: answers with the defaults as a patch; leaves denial to `/validate`, which
    /// sees the final object (only an undecodable object is denied here).
    Mutate,
    /// Validating: denies with every field error, allows with warnings.
    Validate,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Mutate => "mutate",
            Endpoint::Validate => "validate",
        }
    }
}

/// Why a body is not an AdmissionReview we can answer (HTTP 400: the API server then applies
/// the webhook's failurePolicy, since there is no uid to answer for).
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("request body is not a JSON AdmissionReview: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("unsupported AdmissionReview apiVersion {0:?} (want {V1} or {V1BETA1})")]
    ApiVersion(String),
    #[error("kind must be \"AdmissionReview\", got {0:?}")]
    Kind(String),
    #[error("AdmissionReview has no request")]
    NoRequest,
}

/// What was decided, for the one log line per review. Never the object body.
#[derive(Debug, Clone)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub name: String,
    pub operation: String,
    pub dry_run: bool,
    pub allowed: bool,
    /// Whether the rule engine ran (a Cluster CREATE/UPDATE).
    pub reviewed: bool,
    pub patch_ops: usize,
    pub warnings: usize,
}

/// The AdmissionReview to send back, and what to log about it.
#[derive(Debug)]
pub struct Answer {
    pub review: ReviewResponse,
    pub summary: Summary,
}

/// Answer the AdmissionReview in `body` for `endpoint`.
pub fn admit(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Result<Answer, Rejection> {
    let (api_version, request) = parse(body)?;
    let (response, summary) = decide(endpoint, request, policy);
    Ok(Answer {
        review: ReviewResponse::new(api_version, response),
        summary,
    })
}

fn parse(body: &[u8]) -> Result<(&'static str, AdmissionRequest), Rejection> {
    let review: ReviewRequest = serde_json::from_slice(body).map_err(Rejection::NotJson)?;
    let api_version = match review.api_version.as_deref() {
        Some(V1) => V1,
        Some(V1BETA1) => V1BETA1,
        other => return Err(Rejection::ApiVersion(other.unwrap_or_default().to_string())),
    };
    match review.kind.as_deref() {
        Some("AdmissionReview") => {}
        other => return Err(Rejection::Kind(other.unwrap_or_default().to_string())),
    }
    let request = review.request.ok_or(Rejection::NoRequest)?;
    Ok((api_version, request))
}

fn is_cluster(request: &AdmissionRequest) -> bool {
    request.resource.group == GROUP
        && request.resource.resource == RESOURCE
        && request.sub_resource.as_deref().unwrap_or("").is_empty()
}

fn decide(
    endpoint: Endpoint,
    mut request: AdmissionRequest,
    policy: &Policy,
) -> (AdmissionResponse, Summary) {
    let is_cluster = is_cluster(&request);
    // Given to the rule engine, which patches it in place instead of copying it.
    let object = request.object.take();
    let AdmissionRequest {
        uid,
        kind,
        resource: _,
        sub_resource: _,
        name,
        namespace: _,
        operation,
        object: _,
        old_object,
        dry_run,
    } = &request;
    let name = name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| object_name(object.as_ref()))
        .unwrap_or_default();
    let mut summary = Summary {
        uid: uid.clone(),
        kind: kind.kind.clone(),
        name,
        operation: operation.clone(),
        dry_run: dry_run.unwrap_or(false),
        allowed: true,
        reviewed: false,
        patch_ops: 0,
        warnings: 0,
    };
    let is_update = operation == "UPDATE";
    if !is_cluster || !(operation == "CREATE" || is_update) {
        return (AdmissionResponse::allow(uid.clone()), summary);
    }
    let qualified = qualified_kind(&kind.kind, &kind.group);
    let Some(object) = object else {
        summary.allowed = false;
        let status = bad_request(format!("{operation} of {qualified} without request.object"));
        return (AdmissionResponse::deny(uid.clone(), status), summary);
    };
    if is_update && old_object.is_none() {
        summary.allowed = false;
        let status = bad_request(format!("UPDATE of {qualified} without request.oldObject"));
        return (AdmissionResponse::deny(uid.clone(), status), summary);
    }
    summary.reviewed = true;
    let old = if is_update { old_object.as_ref() } else { None };
    let response = match tkeha_api::review_owned(object, old, policy) {
        Err(decode) => {
            let status = decode_denial(&qualified, &kind.kind, &summary.name, &decode);
            AdmissionResponse::deny(uid.clone(), status)
        }
        Ok(review) => match endpoint {
            Endpoint::Mutate => {
                let mut response = AdmissionResponse::allow(uid.clone());
                if !review.patch.0.is_empty() {
                    summary.patch_ops = review.patch.0.len();
                    match serde_json::to_vec(&review.patch) {
                        Ok(json) => {
                            response.patch =
                                Some(base64::engine::general_purpose::STANDARD.encode(json));
                            response.patch_type = Some("JSONPatch");
                        }
                        Err(e) => {
                            let status = internal_error(format!("encoding the patch: {e}"));
                            response = AdmissionResponse::deny(uid.clone(), status);
                        }
                    }
                }
                response
            }
            Endpoint::Validate => {
                let warnings: Vec<String> =
                    review.warnings.iter().map(|w| limit_warning(w)).collect();
                let mut response = if review.errors.is_empty() {
                    AdmissionResponse::allow(uid.clone())
                } else {
                    let status =
                        invalid_denial(&qualified, &kind.kind, &summary.name, &review.errors);
                    AdmissionResponse::deny(uid.clone(), status)
                };
                summary.warnings = warnings.len();
                response.warnings = warnings;
                response
            }
        },
    };
    summary.allowed = response.allowed;
    (response, summary)
}

fn object_name(object: Option<&Value>) -> Option<String> {
    let name = object?.get("metadata")?.get("name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

fn invalid_denial(qualified: &str, kind: &str, name: &str, errors: &[FieldError]) -> Status {
    Status {
        status: "Failure",
        message: invalid_message(qualified, name, errors),
        reason: "Invalid",
        code: 422,
        details: Some(StatusDetails {
            name: name.to_string(),
            group: GROUP.to_string(),
            kind: kind.to_string(),
            causes: errors
                .iter()
                .map(|e| StatusCause {
                    reason: cause_reason(e),
                    // kubectl prints `FIELD: MESSAGE` per cause: the path must not be in both.
                    message: e.body(),
                    field: e.field.clone(),
                })
                .collect(),
        }),
    }
}

fn decode_denial(qualified: &str, kind: &str, name: &str, error: &DecodeError) -> Status {
    Status {
        status: "Failure",
        message: invalid_message(qualified, name, std::slice::from_ref(error)),
        reason: "Invalid",
        code: 422,
        details: Some(StatusDetails {
            name: name.to_string(),
            group: GROUP.to_string(),
            kind: kind.to_string(),
            causes: vec![StatusCause {
                reason: "FieldValueInvalid".to_string(),
                message: error.message.clone(),
                field: error.path.clone(),
            }],
        }),
    }
}

fn bad_request(message: String) -> Status {
    Status {
        status: "Failure",
        message,
        reason: "BadRequest",
        code: 400,
        details: None,
    }
}

fn internal_error(message: String) -> Status {
    Status {
        status: "Failure",
        message,
        reason: "InternalError",
        code: 500,
        details: None,
    }
}

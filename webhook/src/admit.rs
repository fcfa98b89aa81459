//! The admission decision: an AdmissionReview body in, an AdmissionReview (or a 400 reason) out.
//!
//! Pure apart from the rule engine it calls: `tkeha_api::review`, the same function the
//! plugin's `validate` uses, so the API server and `kubectl tkeha validate` always agree.

use base64::Engine as _;
use serde_json::Value;
use tkeha_api::review::DecodeError;
use tkeha_api::{FieldError, Policy};

use crate::admission::{
    AdmissionRequest, AdmissionResponse, ClusterObject, ReviewRequest, ReviewResponse, Status,
    StatusCause, StatusDetails, V1, V1BETA1,
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
    if let Some(answer) = admit_fast(endpoint, body, policy) {
        return Ok(answer);
    }
    let (api_version, request) = parse(body)?;
    let (response, summary) = decide(endpoint, request, policy);
    Ok(Answer {
        review: ReviewResponse::new(api_version, response),
        summary,
    })
}

/// The AdmissionReview envelope checked, with its objects read as `O`.
fn parse<'a, O: serde::Deserialize<'a>>(
    body: &'a [u8],
) -> Result<(&'static str, AdmissionRequest<O>), Rejection> {
    let review: ReviewRequest<O> = serde_json::from_slice(body).map_err(Rejection::NotJson)?;
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

fn is_cluster<O>(request: &AdmissionRequest<O>) -> bool {
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
        Ok(review) => respond(
            endpoint,
            &review.errors,
            &review.warnings,
            &review.patch,
            uid,
            &qualified,
            &kind.kind,
            &mut summary,
        ),
    };
    summary.allowed = response.allowed;
    (response, summary)
}

/// The answer to a reviewed Cluster: the patch (mutate), or allowed/denied with warnings
/// (validate).
#[allow(clippy::too_many_arguments)]
fn respond(
    endpoint: Endpoint,
    errors: &[FieldError],
    warnings: &[String],
    patch: &json_patch::Patch,
    uid: &str,
    qualified: &str,
    kind: &str,
    summary: &mut Summary,
) -> AdmissionResponse {
    match endpoint {
        Endpoint::Mutate => {
            let mut response = AdmissionResponse::allow(uid.to_string());
            if !patch.0.is_empty() {
                summary.patch_ops = patch.0.len();
                match serde_json::to_vec(patch) {
                    Ok(json) => {
                        response.patch =
                            Some(base64::engine::general_purpose::STANDARD.encode(json));
                        response.patch_type = Some("JSONPatch");
                    }
                    Err(e) => {
                        let status = internal_error(format!("encoding the patch: {e}"));
                        response = AdmissionResponse::deny(uid.to_string(), status);
                    }
                }
            }
            response
        }
        Endpoint::Validate => {
            let warnings: Vec<String> = warnings.iter().map(|w| limit_warning(w)).collect();
            let mut response = if errors.is_empty() {
                AdmissionResponse::allow(uid.to_string())
            } else {
                let status = invalid_denial(qualified, kind, &summary.name, errors);
                AdmissionResponse::deny(uid.to_string(), status)
            };
            summary.warnings = warnings.len();
            response.warnings = warnings;
            response
        }
    }
}

/// The common case without a `serde_json::Value` of the object: a Cluster CREATE named in the
/// request, whose object is `{"apiVersion":"platform.tkestack.io/v1","kind":"Cluster",
/// "spec":{...},...}` in plain JSON, read in one pass with the spec decoded straight into the
/// typed spec (`tkeha_api::spectext`). `None` (anything unusual, any doubt) leaves the request
/// to the general path, which gives the same answer for everything this path answers.
fn admit_fast(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Option<Answer> {
    // `\u` escapes are where a JSON text and serde_json's typed paths can part (lone
    // surrogates); such a body takes the general path.
    if memchr::memmem::find(body, b"\\u").is_some() {
        return None;
    }
    let (api_version, request) = parse::<ClusterObject<'_>>(body).ok()?;
    if !is_cluster(&request) || request.operation != "CREATE" {
        return None;
    }
    let name = request.name.filter(|n| !n.is_empty())?;
    let object = request.object?;
    if object.api_version? != tkeha_api::review::API_VERSION || object.kind? != "Cluster" {
        return None;
    }
    let names = object
        .metadata
        .as_ref()
        .map(|m| m.names())
        .unwrap_or_default();
    if names.needs_generate_name() {
        return None; // the general path defaults generateName
    }
    let verdict = tkeha_api::spectext::review_create_spec(object.spec?, &names, policy);
    let mut summary = Summary {
        uid: request.uid,
        kind: request.kind.kind,
        name,
        operation: request.operation,
        dry_run: request.dry_run.unwrap_or(false),
        allowed: true,
        reviewed: true,
        patch_ops: 0,
        warnings: 0,
    };
    let qualified = qualified_kind(&summary.kind, &request.kind.group);
    let kind = summary.kind.clone();
    let uid = summary.uid.clone();
    let response = respond(
        endpoint,
        &verdict.errors,
        &verdict.warnings,
        &verdict.patch,
        &uid,
        &qualified,
        &kind,
        &mut summary,
    );
    summary.allowed = response.allowed;
    Some(Answer {
        review: ReviewResponse::new(api_version, response),
        summary,
    })
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The general path only (what `admit` did before the fast path).
    fn general(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Result<Answer, Rejection> {
        let (api_version, request) = parse(body)?;
        let (response, summary) = decide(endpoint, request, policy);
        Ok(Answer {
            review: ReviewResponse::new(api_version, response),
            summary,
        })
    }

    fn same(endpoint: Endpoint, body: &[u8], policy: &Policy) -> bool {
        let fast = admit_fast(endpoint, body, policy);
        let slow = general(endpoint, body, policy);
        let Some(fast) = fast else { return false };
        let slow = slow.unwrap();
        assert_eq!(
            serde_json::to_string(&fast.review).unwrap(),
            serde_json::to_string(&slow.review).unwrap(),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(format!("{:?}", fast.summary), format!("{:?}", slow.summary));
        true
    }

    /// One change to a review.
    type Edit = fn(&mut Value);

    /// Bodies built from the create fixtures with one change each to the object.
    fn variants() -> Vec<(Value, bool)> {
        let mut out = Vec::new();
        for name in [
            "review-create-third-party-ha.json",
            "review-create-tke-ha.json",
            "review-create-broken.json",
        ] {
            let mut base = fixture(name);
            // As the API server sends a create of a named object.
            base["request"]["name"] = json!("cls-a");
            base["request"]["object"]["metadata"] = json!({"name": "cls-a"});
            let edits: Vec<(Edit, bool)> = vec![
                (|_| {}, true),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("port");
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"] = json!([]);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"] = json!("x");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"] =
                            json!([{"ip": "192.168.1.9"}, [1]]);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["features"] = json!([]);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["features"] = json!(null);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["features"]["ha"] =
                            json!({"tke": {"vip": "10.0.0.9"}});
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["features"]["ha"] =
                            json!({"tke": [], "thirdParty": null});
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]["taints"] =
                            json!([{"key": "a", "effect": "NoSchedule"}, []]);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]["taints"] =
                            json!([{"key": "a", "value": "b", "effect": "NoSchedule"}]);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["properties"] = json!(5);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["version"] = json!(5);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["publicAlternativeNames"] = json!(null);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["publicAlternativeNames"] =
                            json!(["a.example", "192.168.1.5"]);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["unknownField"] =
                            json!({"x": [1, {"y": null}]});
                    },
                    true,
                ),
                // Unknown fields: inside the spec the fast path finds them as the general path
                // does; outside it (top level, metadata) it leaves them to the general path.
                (
                    |r| {
                        r["request"]["object"]["spec"]["clusterCidr"] = json!("10.0.0.0/8");
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]["usernme"] = json!("root");
                        r["request"]["object"]["spec"]["features"]["ha"]["tke"] =
                            json!({"vip": "10.0.0.9", "vird": 3});
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]["proxy"] =
                            json!({"type": "SOCKS5", "ip": "10.0.0.7", "prot": 1080});
                    },
                    true,
                ),
                (
                    |r| {
                        // Free-form maps take any key.
                        r["request"]["object"]["spec"]["kubeletExtraArgs"] =
                            json!({"any-flag": "x"});
                        r["request"]["object"]["spec"]["machines"][0]["labels"] =
                            json!({"whatever": "y"});
                        r["request"]["object"]["spec"]["bootstrapApps"] =
                            json!([{"app": {"spec": {"anything": 1}}}]);
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["sepc"] = json!({});
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"]["nmae"] = json!("x");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"] = json!({"name": "cls-a", "labels": {"a": "b"}, "annotations": {}, "finalizers": ["x"]});
                        r["request"]["object"]["status"] = json!({"phase": "Initializing"});
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"] = json!({"name": "prod"});
                        r["request"]["name"] = json!("prod");
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"] = json!({"name": "Prod"});
                        r["request"]["name"] = json!("Prod");
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"] = json!({"name": 5});
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]
                            .as_object_mut()
                            .unwrap()
                            .remove("metadata");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"] = json!(null);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"] = json!([]);
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["kind"] = json!("Pod");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]
                            .as_object_mut()
                            .unwrap()
                            .remove("apiVersion");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["object"]["spec"]["machines"][0]["ip"] = json!("\u{e9}\n\"x");
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["name"] = json!("");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["operation"] = json!("DELETE");
                    },
                    false,
                ),
                (
                    |r| {
                        r["request"]["dryRun"] = json!(true);
                    },
                    true,
                ),
                (
                    |r| {
                        r["apiVersion"] = json!("admission.k8s.io/v1beta1");
                    },
                    true,
                ),
            ];
            for (edit, fast) in edits {
                let mut review = base.clone();
                edit(&mut review);
                out.push((review, fast));
            }
        }
        out
    }

    #[test]
    fn the_fast_path_answers_exactly_as_the_general_path_or_not_at_all() {
        let policies = [
            Policy::default(),
            Policy {
                third_party_single_master: tkeha_api::SingleMasterPolicy::Warning,
                version_allow_list: Some(vec!["1.20.4".into()]),
                ..Policy::default()
            },
            Policy {
                field_validation: tkeha_api::FieldValidation::Strict,
                ..Policy::default()
            },
        ];
        for (review, expect_fast) in variants() {
            for body in [
                serde_json::to_vec(&review).unwrap(),
                serde_json::to_vec_pretty(&review).unwrap(),
            ] {
                for policy in &policies {
                    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                        let answered = same(endpoint, &body, policy);
                        assert_eq!(answered, expect_fast, "{review}");
                    }
                }
            }
        }
    }

    #[test]
    fn duplicate_keys_and_unicode_escapes_take_the_general_path() {
        let mut review = fixture("review-create-third-party-ha.json");
        review["request"]["name"] = json!("cls-a");
        review["request"]["object"]["metadata"] = json!({"name": "cls-a"});
        let body = serde_json::to_string(&review).unwrap();
        let policy = Policy::default();
        let dup = body.replacen("\"spec\":{", "\"spec\":{\"version\":\"1.0\",", 1);
        assert!(admit_fast(Endpoint::Validate, dup.as_bytes(), &policy).is_none());
        let dup_top = body.replacen("\"spec\":{", "\"kind\":\"Cluster\",\"spec\":{", 1);
        assert!(admit_fast(Endpoint::Validate, dup_top.as_bytes(), &policy).is_none());
        let escaped = body.replacen("\"spec\":{", "\"spec\":{\"x\":\"\\ud800\",", 1);
        assert!(admit_fast(Endpoint::Validate, escaped.as_bytes(), &policy).is_none());
        assert!(general(Endpoint::Validate, escaped.as_bytes(), &policy).is_err());
        assert!(admit_fast(Endpoint::Validate, body.as_bytes(), &policy).is_some());
    }
}

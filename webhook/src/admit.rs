//! The admission service: an AdmissionReview body in, an AdmissionReview (or a 400 reason) out.
//!
//! No HTTP here (the handlers in `api` read the body and call [`admit`]). Pure apart from the
//! rule engine it calls: `tkeha_api::review`, the same function the plugin's `validate` uses,
//! so the API server and `kubectl tkeha validate` always agree.

use serde_json::Value;
use tkeha_api::Policy;
use tkeha_api::spectext::Verdict;

use crate::admission::{
    AdmissionRequest, AdmissionResponse, ApiVersion, CauseType, ClusterObject, KIND, ObjectMeta,
    Operation, PatchError, ReviewRequest, ReviewResponse, Status, StatusCause, Subject,
};
use crate::message::{MAX_NAME_CHARS, bounded, limit_warnings};
use crate::valuecount::{Counted, MAX_JSON_VALUES, count_values};

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
    /// The path without its slash, as in logs and metric labels (`mutate`, `validate`).
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
    /// Not JSON, or JSON of the wrong shape (a missing uid, an unknown operation, ...).
    #[error("request body is not a JSON AdmissionReview: {0}")]
    NotJson(#[source] serde_json::Error),
    /// An `apiVersion` we do not speak.
    #[error(
        "unsupported AdmissionReview apiVersion {0:?} (want admission.k8s.io/v1 or admission.k8s.io/v1beta1)"
    )]
    ApiVersion(String),
    /// Another `kind` than AdmissionReview.
    #[error("kind must be \"AdmissionReview\", got {0:?}")]
    Kind(String),
    /// No `request` to answer.
    #[error("AdmissionReview has no request")]
    NoRequest,
    /// More JSON values than a Cluster review holds: refused before it is read into memory.
    #[error(
        "AdmissionReview holds more than {limit} JSON values; a Cluster review holds a few thousand"
    )]
    TooManyValues {
        /// The bound ([`crate::MAX_JSON_VALUES`]).
        limit: usize,
    },
}

/// What was decided, for the one log line per review. Never the object body.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Who and what the answer is about.
    pub subject: Subject,
    /// Whether the answer allows the request.
    pub allowed: bool,
    /// Whether the rule engine ran (a Cluster CREATE/UPDATE).
    pub reviewed: bool,
    /// Operations in the patch (mutate).
    pub patch_ops: usize,
    /// Warnings in the answer (validate).
    pub warnings: usize,
}

impl Summary {
    fn new(subject: Subject) -> Self {
        Self {
            subject,
            allowed: true,
            reviewed: false,
            patch_ops: 0,
            warnings: 0,
        }
    }

    /// The answer to send: `response` in `api_version`, and this summary of it.
    fn answer(mut self, api_version: ApiVersion, response: AdmissionResponse) -> Answer {
        self.allowed = response.allowed;
        Answer {
            review: ReviewResponse::new(api_version, response),
            summary: self,
        }
    }
}

/// The AdmissionReview to send back, and what to log about it.
#[derive(Debug)]
pub struct Answer {
    /// The AdmissionReview to send, in the version asked.
    pub review: ReviewResponse,
    /// What to log and count.
    pub summary: Summary,
}

/// Answer the AdmissionReview in `body` for `endpoint`.
///
/// Only CREATE and UPDATE of `clusters.platform.tkestack.io` (not its subresources) are
/// reviewed; any other request is allowed untouched. A reviewed Cluster gets, from
/// [`Endpoint::Mutate`], its defaults as a JSON patch and, from [`Endpoint::Validate`], a 422
/// denial with every field error or an allowance with warnings.
///
/// # Errors
///
/// [`Rejection`] when `body` is not an AdmissionReview we can answer (not JSON, another
/// `apiVersion` or `kind`, no `request`): there is no uid to answer for, so the caller answers
/// HTTP 400 and the API server applies the webhook's `failurePolicy`.
///
/// # Example
///
/// ```
/// use tkeha_webhook::{Endpoint, Rejection, admit};
///
/// let body = br#"{
///   "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
///   "request": {
///     "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
///     "kind": {"group": "platform.tkestack.io", "version": "v1", "kind": "Cluster"},
///     "resource": {"group": "platform.tkestack.io", "version": "v1", "resource": "clusters"},
///     "name": "demo", "operation": "CREATE",
///     "object": {
///       "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
///       "metadata": {"name": "demo"},
///       "spec": {"type": "Baremetal", "version": "1.30.4",
///                "features": {"ha": {"tke": {"vip": "192.168.1.300"}}},
///                "machines": [{"ip": "192.168.1.10", "username": "root", "password": "MTIzNDU2"}]}
///     }
///   }
/// }"#;
/// let answer = admit(Endpoint::Validate, body, &tkeha_api::Policy::default())?;
/// let response = &answer.review.response;
/// assert!(!response.allowed);
/// let status = response.status.as_ref().expect("a denial carries a status");
/// assert_eq!(status.code, 422);
/// assert!(status.message.contains("spec.features.ha.tke.vip"), "{}", status.message);
///
/// // Not an AdmissionReview: no answer, a reason for an HTTP 400.
/// let err = admit(Endpoint::Validate, b"hello", &tkeha_api::Policy::default()).unwrap_err();
/// assert!(matches!(err, Rejection::NotJson(_)));
/// # Ok::<(), Rejection>(())
/// ```
pub fn admit(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Result<Answer, Rejection> {
    if let Some(answer) = admit_fast(endpoint, body, policy) {
        return Ok(answer);
    }
    admit_general(endpoint, body, policy)
}

/// Every review: the envelope and the objects as `serde_json::Value`s, once the body is known
/// to hold at most [`MAX_JSON_VALUES`] values (a `Value` costs about 100 bytes per value).
fn admit_general(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Result<Answer, Rejection> {
    if let Counted::TooMany = count_values(body, MAX_JSON_VALUES) {
        return Err(Rejection::TooManyValues {
            limit: MAX_JSON_VALUES,
        });
    }
    let (api_version, request) = parse(body)?;
    let (summary, response) = decide(endpoint, request, policy);
    Ok(summary.answer(api_version, response))
}

/// The AdmissionReview envelope checked, with its objects read as `O`.
fn parse<'a, O: serde::Deserialize<'a>>(
    body: &'a [u8],
) -> Result<(ApiVersion, AdmissionRequest<O>), Rejection> {
    let review: ReviewRequest<O> = serde_json::from_slice(body).map_err(Rejection::NotJson)?;
    let api_version = match review.api_version.as_deref().and_then(ApiVersion::parse) {
        Some(v) => v,
        None => {
            return Err(Rejection::ApiVersion(
                review.api_version.unwrap_or_default(),
            ));
        }
    };
    if review.kind.as_deref() != Some(KIND) {
        return Err(Rejection::Kind(review.kind.unwrap_or_default()));
    }
    let request = review.request.ok_or(Rejection::NoRequest)?;
    Ok((api_version, request))
}

fn is_cluster<O>(request: &AdmissionRequest<O>) -> bool {
    request.resource.group == GROUP
        && request.resource.resource == RESOURCE
        && request.sub_resource.as_deref().unwrap_or("").is_empty()
}

/// The general path's answer to a parsed request.
fn decide(
    endpoint: Endpoint,
    mut request: AdmissionRequest,
    policy: &Policy,
) -> (Summary, AdmissionResponse) {
    let is_cluster = is_cluster(&request);
    // Given to the rule engine, which patches it in place instead of copying it.
    let object = request.object.take();
    let old_object = request.old_object.take();
    let name = request
        .name
        .take()
        .filter(|n| !n.is_empty())
        .or_else(|| object_name(object.as_ref()))
        .unwrap_or_default();
    let mut summary = Summary::new(Subject::from_request(request, name));
    let subject = &summary.subject;
    let operation = subject.operation;
    if !is_cluster || !matches!(operation, Operation::Create | Operation::Update) {
        let response = subject.allow();
        return (summary, response);
    }
    let missing = |what: &str| {
        let message = format!(
            "{} of {} without {what}",
            operation.as_str(),
            bounded(&subject.qualified_kind(), MAX_NAME_CHARS * 2)
        );
        subject.allow().deny(Status::bad_request(message))
    };
    let Some(object) = object else {
        let response = missing("request.object");
        return (summary, response);
    };
    let old = match (operation, &old_object) {
        (Operation::Update, None) => {
            let response = missing("request.oldObject");
            return (summary, response);
        }
        (Operation::Update, Some(old)) => Some(old),
        _ => None,
    };
    summary.reviewed = true;
    let response = match tkeha_api::review_owned(object, old, policy) {
        Err(decode) => {
            let status = Status::invalid(&summary.subject, std::slice::from_ref(&decode));
            summary.subject.allow().deny(status)
        }
        Ok(review) => {
            let verdict = Verdict {
                errors: review.errors,
                warnings: review.warnings,
                unknown_fields: review.unknown_fields,
                patch: review.patch,
            };
            respond(endpoint, &mut summary, verdict)
        }
    };
    (summary, response)
}

/// The answer to a reviewed Cluster: the patch (mutate), or allowed/denied with warnings
/// (validate).
fn respond(endpoint: Endpoint, summary: &mut Summary, verdict: Verdict) -> AdmissionResponse {
    let subject = &summary.subject;
    match endpoint {
        Endpoint::Mutate => {
            summary.patch_ops = verdict.patch.0.len();
            match subject.allow().with_patch(&verdict.patch) {
                Ok(response) => response,
                Err(e @ PatchError::Encode(_)) => {
                    subject.allow().deny(Status::internal_error(e.to_string()))
                }
                Err(e @ PatchError::TooLarge { .. }) => {
                    let cause = StatusCause {
                        reason: CauseType::TooMany,
                        message: e.to_string(),
                        field: "spec".to_string(),
                    };
                    subject
                        .allow()
                        .deny(Status::invalid(subject, std::slice::from_ref(&cause)))
                }
            }
        }
        Endpoint::Validate => {
            let warnings = limit_warnings(&verdict.warnings);
            summary.warnings = warnings.len();
            let response = subject.allow().with_warnings(warnings);
            if verdict.errors.is_empty() {
                response
            } else {
                response.deny(Status::invalid(subject, &verdict.errors))
            }
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
    let (api_version, mut request) = parse::<ClusterObject<'_>>(body).ok()?;
    if !is_cluster(&request) || request.operation != Operation::Create {
        return None;
    }
    let name = request.name.take().filter(|n| !n.is_empty())?;
    let object = request.object.take()?;
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
    if object
        .metadata
        .as_ref()
        .is_some_and(ObjectMeta::has_profile_annotation)
    {
        return None; // the general path checks the annotation's value
    }
    let verdict = tkeha_api::spectext::review_create_spec(object.spec?, &names, policy);
    let mut summary = Summary::new(Subject::from_request(request, name));
    summary.reviewed = true;
    let response = respond(endpoint, &mut summary, verdict);
    Some(summary.answer(api_version, response))
}

fn object_name(object: Option<&Value>) -> Option<String> {
    let name = object?.get("metadata")?.get("name")?.as_str()?;
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use tkeha_api::FieldError;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A key file made once with ssh-keygen (the rule engine's fixtures), base64-encoded as
    /// `privateKey` holds it.
    fn key(name: &str) -> String {
        let path = format!(
            "{}/../api/tests/fixtures/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        tkeha_api::secret::encode(&std::fs::read(path).unwrap())
    }

    /// The general path only (what `admit` did before the fast path).
    fn general(endpoint: Endpoint, body: &[u8], policy: &Policy) -> Result<Answer, Rejection> {
        admit_general(endpoint, body, policy)
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
                        r["request"]["object"]["metadata"] =
                            json!({"name": "cls-a", "annotations": {"a": "b"}});
                    },
                    true,
                ),
                (
                    |r| {
                        r["request"]["object"]["metadata"] = json!({"name": "cls-a", "annotations": {"tkeha.tkestack.io/failover-profile": "fastest"}});
                    },
                    false,
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
                        // A private key: allowed.
                        r["request"]["object"]["spec"]["machines"][0]["privateKey"] =
                            json!(key("id_ed25519"));
                    },
                    true,
                ),
                (
                    |r| {
                        // A public key, and a jump server's encrypted key without its
                        // passphrase: refused.
                        let m = &mut r["request"]["object"]["spec"]["machines"][0];
                        m["privateKey"] = json!(key("id_ed25519.pub"));
                        m["proxy"] = json!({"type": "SSHJumpServer", "ip": "10.0.0.1",
                            "username": "jump", "privateKey": key("id_ed25519_enc")});
                    },
                    true,
                ),
                (
                    |r| {
                        // A passphrase for a key without one: a warning.
                        let m = &mut r["request"]["object"]["spec"]["machines"][0];
                        m["privateKey"] = json!(key("id_rsa_pem"));
                        m["passPhrase"] = json!("czNjcmV0");
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
    fn a_public_key_as_private_key_is_denied_without_being_shown() {
        let mut review = fixture("review-create-tke-ha.json");
        review["request"]["name"] = json!("cls-a");
        review["request"]["object"]["metadata"] = json!({"name": "cls-a"});
        let public = key("id_ed25519.pub");
        review["request"]["object"]["spec"]["machines"][0]["privateKey"] = json!(public);
        let body = serde_json::to_vec(&review).unwrap();
        let answer = admit(Endpoint::Validate, &body, &Policy::default()).unwrap();
        let v = serde_json::to_value(&answer.review).unwrap();
        assert_eq!(v["response"]["allowed"], false, "{v}");
        let cause = &v["response"]["status"]["details"]["causes"][0];
        assert_eq!(cause["field"], "spec.machines[0].privateKey", "{v}");
        assert!(
            cause["message"]
                .as_str()
                .unwrap()
                .contains("this is a public key; give the private key file"),
            "{cause}"
        );
        let text = v.to_string();
        assert!(
            !text.contains(&public[..24]) && !text.contains("AAAAC3NzaC1lZDI1NTE5"),
            "{text}"
        );
    }

    fn summary() -> Summary {
        Summary::new(Subject {
            uid: "u-1".into(),
            kind: "Cluster".into(),
            group: GROUP.into(),
            name: "cls-a".into(),
            operation: Operation::Create,
            dry_run: false,
        })
    }

    /// Whatever the rule engine returns, the answer stays bounded.
    #[test]
    fn answers_are_bounded_whatever_the_rule_engine_returns() {
        // 70 KB usernames with a terminal escape in every listed error, and many more errors.
        let long = format!("\"{}\u{1b}[8m\"", "u".repeat(70_000));
        let errors: Vec<FieldError> = (0..100_000)
            .map(|i| {
                let value = if i < 100 {
                    long.clone()
                } else {
                    "\"x\"".into()
                };
                FieldError::invalid(
                    format!("spec.machines[{i}].username"),
                    Some(value),
                    "must be a POSIX login name",
                )
            })
            .collect();
        let warnings: Vec<String> = (0..1000).map(|i| format!("warning {i}")).collect();
        let verdict = Verdict {
            errors,
            warnings,
            unknown_fields: Vec::new(),
            patch: json_patch::Patch(Vec::new()),
        };
        let mut summary = summary();
        let response = respond(Endpoint::Validate, &mut summary, verdict);
        let json = serde_json::to_string(&response).unwrap();
        assert!(json.len() < 64 * 1024, "{} bytes", json.len());
        assert!(!json.contains('\u{1b}'), "control characters escaped");
        let v: Value = serde_json::from_str(&json).unwrap();
        let causes = v["status"]["details"]["causes"].as_array().unwrap();
        assert_eq!(causes.len(), crate::message::MAX_CAUSES + 1);
        assert_eq!(
            causes.last().unwrap()["message"],
            format!(
                "and {} more errors (not shown)",
                100_000 - crate::message::MAX_CAUSES
            )
        );
        assert_eq!(
            v["warnings"].as_array().unwrap().len(),
            crate::message::MAX_WARNINGS
        );
        assert_eq!(summary.warnings, crate::message::MAX_WARNINGS);
    }

    #[test]
    fn a_patch_over_its_limit_is_a_clear_denial_not_a_huge_answer() {
        let ops: Vec<json_patch::PatchOperation> = (0..40_000)
            .map(|i| {
                serde_json::from_value(json!({
                    "op": "add", "path": format!("/spec/machines/{i}/port"), "value": 22
                }))
                .unwrap()
            })
            .collect();
        let verdict = Verdict {
            errors: Vec::new(),
            warnings: Vec::new(),
            unknown_fields: Vec::new(),
            patch: json_patch::Patch(ops),
        };
        let mut summary = summary();
        let response = respond(Endpoint::Mutate, &mut summary, verdict);
        let v = serde_json::to_value(&response).unwrap();
        assert_eq!(v["allowed"], false);
        assert!(v.get("patch").is_none());
        assert_eq!(v["status"]["code"], 422);
        let cause = &v["status"]["details"]["causes"][0];
        assert_eq!(cause["reason"], "FieldValueTooMany");
        assert_eq!(cause["field"], "spec");
        assert!(
            cause["message"]
                .as_str()
                .unwrap()
                .contains("40000 operations"),
            "{cause}"
        );
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

    #[test]
    fn an_update_of_tiny_objects_is_refused_before_it_is_read_into_memory() {
        let mut review = fixture("review-update-third-party-vip.json");
        let tiny = json!({"ip": "1", "port": 0, "username": "", "password": "!"});
        let policy = Policy::default();
        // Within the bound: reviewed as before (denied for its machines, not refused).
        review["request"]["object"]["spec"]["machines"] = json!(vec![tiny.clone(); 1_000]);
        let body = serde_json::to_vec(&review).unwrap();
        let answer = admit(Endpoint::Validate, &body, &policy).unwrap();
        assert!(!answer.review.response.allowed);
        // Past it: a 400-class refusal that says why, with no Value built.
        review["request"]["object"]["spec"]["machines"] =
            json!(vec![tiny; crate::MAX_JSON_VALUES / 5 + 1]);
        let body = serde_json::to_vec(&review).unwrap();
        assert!(body.len() < crate::BODY_LIMIT, "{}", body.len());
        let err = admit(Endpoint::Validate, &body, &policy).unwrap_err();
        assert!(
            matches!(err, Rejection::TooManyValues { limit } if limit == crate::MAX_JSON_VALUES),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("more than 50000 JSON values"),
            "{err}"
        );
        // Not JSON stays "not JSON", with serde's position.
        let err = admit(Endpoint::Validate, b"{\"kind\":", &policy).unwrap_err();
        assert!(matches!(err, Rejection::NotJson(_)), "{err:?}");
    }
}

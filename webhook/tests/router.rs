//! In-process router tests (`tower::ServiceExt::oneshot`) with API-server-shaped AdmissionReviews:
//! allowed, warned, denied, mutated, updates, other kinds and operations, policy flags.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use tkeha_api::{Policy, SingleMasterPolicy};

fn router() -> axum::Router {
    router_with(Policy::default()).0
}

#[tokio::test]
async fn fixtures_carry_the_seed_manifests_verbatim() {
    assert_eq!(
        fixture("review-create-tke-ha.json")["request"]["object"],
        seed("seed-tke-ha.jsonc")
    );
    assert_eq!(
        fixture("review-create-third-party-ha.json")["request"]["object"],
        seed("seed-third-party-ha.jsonc")
    );
}

#[tokio::test]
async fn third_party_seed_is_allowed_without_warnings() {
    let review = fixture("review-create-third-party-ha.json");
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(answer["response"].get("status").is_none(), "{answer}");
    assert!(answer["response"].get("warnings").is_none(), "{answer}");
    assert!(answer["response"].get("patch").is_none());
}

#[tokio::test]
async fn tke_seed_with_one_master_is_allowed_with_a_warning() {
    let review = fixture("review-create-tke-ha.json");
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{answer}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("master"),
        "{answer}"
    );
    assert_short_warnings(&answer);
    // Validating never patches.
    assert!(answer["response"].get("patch").is_none());
}

#[tokio::test]
async fn broken_cluster_is_denied_with_every_field_error() {
    let review = fixture("review-create-broken.json");
    let object = &review["request"]["object"];
    let expected = tkeha_api::review(object, None, &Policy::default()).unwrap();
    assert!(expected.errors.len() >= 3, "{:?}", expected.errors);

    let answer = post_review(&router(), "/validate", &review).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 422);
    assert_eq!(response["status"]["reason"], "Invalid");
    assert_eq!(response["status"]["status"], "Failure");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"Cluster.platform.tkestack.io "cls-broken" is invalid: ["#),
        "{message}"
    );
    assert!(message.ends_with(']'), "{message}");
    for error in &expected.errors {
        assert!(
            message.contains(&error.to_string()),
            "{message} lacks {error}"
        );
    }
    assert!(message.contains("spec.features.ha.tke.vip"), "{message}");
    assert!(message.contains("spec.machines[1].ip"), "{message}");
    assert!(message.contains("spec.machines[0].password"), "{message}");
    // The secret itself is only quoted if the rule engine chose to; never the whole object.
    assert!(!message.contains("MTIzNDU2"), "{message}");
    let causes = response["status"]["details"]["causes"].as_array().unwrap();
    assert_eq!(causes.len(), expected.errors.len());
    assert_eq!(response["status"]["details"]["kind"], "Cluster");
    assert_eq!(
        response["status"]["details"]["group"],
        "platform.tkestack.io"
    );
    assert!(
        causes
            .iter()
            .any(|c| c["field"] == "spec.features.ha.tke.vip")
    );
    // kubectl prints each cause as `FIELD: MESSAGE`: the message must not repeat the path.
    for (cause, error) in causes.iter().zip(&expected.errors) {
        assert_eq!(cause["field"], error.field.as_str());
        assert_eq!(cause["message"], error.body().as_str());
        let message = cause["message"].as_str().unwrap();
        assert!(!message.starts_with(&error.field), "{message}");
    }
    // Warnings travel with denials too (two masters is even).
    assert_short_warnings(&answer);
}

#[tokio::test]
async fn mutate_returns_a_base64_json_patch_that_yields_the_defaulted_object() {
    let review = fixture("review-create-tke-ha.json");
    let object = review["request"]["object"].clone();
    let answer = post_review(&router(), "/mutate", &review).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    // kube-rs#1781: the wire form is a base64 string, never an array of numbers.
    assert!(response["patch"].is_string(), "{answer}");
    // Warnings come from /validate only, so kubectl does not print them twice.
    assert!(response.get("warnings").is_none());

    let patch = decoded_patch(&answer);
    let patched = apply(&object, &patch);
    let expected = tkeha_api::review(&object, None, &Policy::default()).unwrap();
    assert_eq!(patched, expected.defaulted);
    // The seed's VIP 192.168.1.3 gives vrid 3 % 255 + 1 = 4 and lands in the SANs.
    assert_eq!(
        patched.pointer("/spec/features/ha/tke/vrid"),
        Some(&json!(4))
    );
    assert!(
        patched["spec"]["publicAlternativeNames"]
            .as_array()
            .unwrap()
            .contains(&json!("192.168.1.3"))
    );
    // Only adds.
    for op in serde_json::to_value(&patch).unwrap().as_array().unwrap() {
        assert_eq!(op["op"], "add", "{op}");
    }

    // Reinvocation: the patched object needs no further patch, and carries no patch fields.
    let again = cluster_review("uid-2", "CREATE", patched, None);
    let answer = post_review(&router(), "/mutate", &again).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert!(answer["response"].get("patch").is_none(), "{answer}");
    assert!(answer["response"].get("patchType").is_none(), "{answer}");
}

#[tokio::test]
async fn mutate_keeps_unknown_fields_and_user_values() {
    let mut object = seed("seed-tke-ha.jsonc");
    object["metadata"] = json!({"name": "cls-x", "annotations": {"team": "infra"}});
    object["spec"]["someFutureField"] = json!({"nested": [1, 2, 3]});
    object["spec"]["features"]["ha"]["tke"]["vrid"] = json!(77);
    object["status"] = json!({"phase": "Initializing"});
    let review = cluster_review("uid-u", "CREATE", object.clone(), None);
    let answer = post_review(&router(), "/mutate", &review).await;
    let patched = apply(&object, &decoded_patch(&answer));
    assert_eq!(
        patched["spec"]["someFutureField"],
        object["spec"]["someFutureField"]
    );
    assert_eq!(patched["metadata"], object["metadata"]);
    assert_eq!(patched["status"], object["status"]);
    assert_eq!(
        patched.pointer("/spec/features/ha/tke/vrid"),
        Some(&json!(77))
    );
}

#[tokio::test]
async fn mutate_leaves_denial_to_validate_but_still_defaults() {
    let review = fixture("review-create-broken.json");
    let answer = post_review(&router(), "/mutate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test]
async fn update_changing_the_vip_is_denied() {
    let review = fixture("review-update-third-party-vip.json");
    let answer = post_review(&router(), "/validate", &review).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], false, "{answer}");
    assert_eq!(response["status"]["code"], 422);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"Cluster.platform.tkestack.io "cls-3p" is invalid: "#),
        "{message}"
    );
    assert!(message.contains("spec.features.ha"), "{message}");
}

#[tokio::test]
async fn update_with_nothing_changed_is_allowed() {
    let review = fixture("review-update-third-party-vip.json");
    let old = review["request"]["oldObject"].clone();
    let same = cluster_review("uid-same", "UPDATE", old.clone(), Some(old));
    let answer = post_review(&router(), "/validate", &same).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test]
async fn dry_run_is_reviewed_the_same() {
    let mut review = fixture("review-create-broken.json");
    review["request"]["dryRun"] = json!(true);
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], false);
    let mut review = fixture("review-create-tke-ha.json");
    review["request"]["dryRun"] = json!(true);
    let answer = post_review(&router(), "/mutate", &review).await;
    assert!(answer["response"]["patch"].is_string());
}

#[tokio::test]
async fn v1beta1_is_answered_in_v1beta1() {
    let mut review = fixture("review-create-broken.json");
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["allowed"], false);
}

#[tokio::test]
async fn v1beta1_mutation_is_answered_in_v1beta1_with_the_same_base64_patch() {
    let v1 = fixture("review-create-tke-ha.json");
    let mut beta = v1.clone();
    beta["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let a1 = post_review(&router(), "/mutate", &v1).await;
    let ab = post_review(&router(), "/mutate", &beta).await;
    assert_eq!(ab["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(ab["kind"], "AdmissionReview");
    assert_eq!(ab["response"]["uid"], v1["request"]["uid"]);
    assert_eq!(ab["response"]["patchType"], "JSONPatch");
    assert!(ab["response"]["patch"].is_string(), "{ab}");
    assert_eq!(ab["response"], a1["response"]);
}

#[tokio::test]
async fn the_patch_is_standard_padded_base64_of_a_json_array_never_a_byte_array() {
    // kube-core 5 emits `"patch": [91, 123, ...]` (kube-rs issue 1781); the API server wants
    // the documented base64 string. Pin the exact wire text.
    use base64::Engine as _;
    let review = fixture("review-create-third-party-ha.json");
    let (status, body) = post_raw(&router(), "/mutate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    let expected_patch = serde_json::to_vec(&json!([
        {"op": "add", "path": "/spec/dnsDomain", "value": "cluster.local"},
        {"op": "add", "path": "/spec/publicAlternativeNames", "value": ["192.168.1.5"]},
        {"op": "add", "path": "/metadata", "value": {"generateName": "cls-"}}
    ]))
    .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(expected_patch);
    assert!(
        text.contains(&format!(r#""patch":"{encoded}","patchType":"JSONPatch""#)),
        "{text}"
    );
    assert!(!text.contains(r#""patch":["#), "{text}");
}

#[tokio::test]
async fn other_kinds_operations_and_subresources_pass_untouched() {
    let r = router();
    // A Pod (namespaced, core group).
    let pod = json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "pod-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default", "name": "p", "operation": "CREATE",
            "userInfo": {"username": "u"},
            "object": {"apiVersion": "v1", "kind": "Pod", "spec": "not even an object"},
            "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    });
    for path in ["/mutate", "/validate"] {
        let answer = post_review(&r, path, &pod).await;
        assert_eq!(answer["response"]["uid"], "pod-1");
        assert_eq!(answer["response"]["allowed"], true);
        assert!(answer["response"].get("patch").is_none());
    }
    // DELETE of a Cluster: object null, oldObject set.
    let broken = fixture("review-create-broken.json")["request"]["object"].clone();
    let mut delete = cluster_review("del-1", "DELETE", Value::Null, Some(broken.clone()));
    delete["request"]["name"] = json!("cls-broken");
    let answer = post_review(&r, "/validate", &delete).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    // Status subresource updates are not spec changes.
    let mut status = cluster_review("st-1", "UPDATE", broken.clone(), Some(broken));
    status["request"]["subResource"] = json!("status");
    let answer = post_review(&r, "/validate", &status).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test]
async fn undecodable_object_is_a_well_formed_422_with_the_path() {
    let mut object = seed("seed-third-party-ha.jsonc");
    object["spec"]["machines"][0]["port"] = json!("twenty-two");
    let review = cluster_review("dec-1", "CREATE", object, None);
    for path in ["/validate", "/mutate"] {
        let answer = post_review(&router(), path, &review).await;
        let response = &answer["response"];
        assert_eq!(response["uid"], "dec-1");
        assert_eq!(response["allowed"], false, "{answer}");
        assert_eq!(response["status"]["code"], 422);
        assert_eq!(response["status"]["reason"], "Invalid");
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains("spec.machines[0].port"), "{message}");
        assert!(message.starts_with(r#"Cluster.platform.tkestack.io "" is invalid: "#));
    }
    // Not an object at all.
    let review = cluster_review("dec-2", "CREATE", json!([1, 2]), None);
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
}

#[tokio::test]
async fn third_party_single_master_follows_the_policy_flag() {
    let mut object = seed("seed-third-party-ha.jsonc");
    object["spec"]["machines"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    let review = cluster_review("tp-1", "CREATE", object, None);

    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(answer["response"]["status"]["code"], 422);

    let (lenient, _) = router_with(Policy {
        third_party_single_master: SingleMasterPolicy::Warning,
        ..Policy::default()
    });
    let answer = post_review(&lenient, "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        !answer["response"]["warnings"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_short_warnings(&answer);
}

#[tokio::test]
async fn version_allow_list_is_enforced() {
    let (strict, _) = router_with(Policy {
        version_allow_list: Some(vec!["1.30.4".into()]),
        ..Policy::default()
    });
    let review = fixture("review-create-third-party-ha.json");
    let answer = post_review(&strict, "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("spec.version"), "{message}");

    let (loose, _) = router_with(Policy {
        version_allow_list: Some(vec!["1.14.10".into()]),
        ..Policy::default()
    });
    let answer = post_review(&loose, "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test]
async fn long_warnings_are_shortened() {
    // Many masters (even count) and a non-default vport: several warnings, all short.
    let mut object = seed("seed-third-party-ha.jsonc");
    let machine = object["spec"]["machines"][0].clone();
    let machines = object["spec"]["machines"].as_array_mut().unwrap();
    let mut extra = machine;
    extra["ip"] = json!("192.168.1.9");
    machines.push(extra);
    object["spec"]["features"]["ha"]["thirdParty"]["vport"] = json!(16443);
    let review = cluster_review("w-1", "CREATE", object, None);
    let answer = post_review(&router(), "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        answer["response"]["warnings"].as_array().unwrap().len() >= 2,
        "{answer}"
    );
    assert_short_warnings(&answer);
}

#[tokio::test]
async fn metrics_count_requests_by_endpoint_and_result() {
    let (r, metrics) = router_with(Policy::default());
    post_review(&r, "/validate", &fixture("review-create-broken.json")).await;
    post_review(&r, "/validate", &fixture("review-create-tke-ha.json")).await;
    post_review(&r, "/mutate", &fixture("review-create-tke-ha.json")).await;
    post_raw(&r, "/validate", "not json").await;
    let text = metrics.render();
    for line in [
        r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="denied"} 1"#,
        r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="allowed"} 1"#,
        r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="error"} 1"#,
        r#"tkeha_webhook_admission_requests_total{endpoint="mutate",result="allowed"} 1"#,
        r#"tkeha_webhook_admission_duration_seconds_count{endpoint="validate"} 3"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn health_router_reports_liveness_readiness_and_metrics() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let ready = tkeha_webhook::Readiness::default();
    let metrics = std::sync::Arc::new(tkeha_webhook::Metrics::new());
    let health = tkeha_webhook::health_router(ready.clone(), metrics);
    let get = |path: &'static str| {
        let health = health.clone();
        async move {
            let response = health
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, StatusCode::OK);
    assert_eq!(get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
    ready.set(true);
    assert_eq!(get("/readyz").await.0, StatusCode::OK);
    let (status, text) = get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("tkeha_webhook_admission_requests_total"),
        "{text}"
    );
}

/// The broken create fixture as a stored object (stored before the webhook was installed).
fn stored_broken() -> Value {
    let mut old = fixture("review-create-broken.json")["request"]["object"].clone();
    old["metadata"]["finalizers"] = json!(["cluster"]);
    old
}

async fn update(router: &axum::Router, new: Value, old: Value) -> Value {
    let review = cluster_review("upd-1", "UPDATE", new, Some(old));
    post_review(router, "/validate", &review).await
}

fn warnings(answer: &Value) -> Vec<String> {
    answer["response"]["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn updates_of_a_stored_invalid_cluster_ratchet() {
    let r = router();
    let old = stored_broken();
    let create = cluster_review("c-1", "CREATE", old.clone(), None);
    let answer = post_review(&r, "/validate", &create).await;
    assert_eq!(answer["response"]["allowed"], false, "invalid as a create");

    // A label edit, a finalizer removal: allowed, the old problems as warnings.
    let mut label = old.clone();
    label["metadata"]["labels"] = json!({"team": "infra"});
    let mut unfinalized = old.clone();
    unfinalized["metadata"]["finalizers"] = json!([]);
    let mut unrelated = old.clone();
    unrelated["spec"]["displayName"] = json!("renamed");
    for new in [label, unfinalized, unrelated] {
        let answer = update(&r, new, old.clone()).await;
        assert_eq!(answer["response"]["allowed"], true, "{answer}");
        let w = warnings(&answer);
        let ratcheted = w
            .iter()
            .filter(|w| w.starts_with("already invalid before this update: "))
            .count();
        // The broken fixture's three errors: a bad password, a duplicate address, a bad VIP.
        assert_eq!(ratcheted, 3, "{w:?}");
        assert_short_warnings(&answer);
    }

    // Touching a bad field and leaving it bad: denied, with that one cause.
    let mut port = old.clone();
    port["spec"]["machines"][0]["port"] = json!(0);
    let answer = update(&r, port.clone(), old.clone()).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let causes = answer["response"]["status"]["details"]["causes"]
        .as_array()
        .unwrap();
    assert_eq!(causes.len(), 1, "{answer}");
    assert_eq!(causes[0]["field"], "spec.machines[0].port", "{answer}");

    // The update rules keep applying.
    let mut retyped = old.clone();
    retyped["spec"]["type"] = json!("Imported");
    let answer = update(&r, retyped, old.clone()).await;
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.type: Invalid value: \"Imported\": field is immutable: it was"),
        "{answer}"
    );
}

#[tokio::test]
async fn the_mutated_defaults_of_an_update_are_no_change() {
    // Stored without the fields the mutating webhook now defaults; the update carries them.
    let r = router();
    let mut old = seed("seed-tke-ha.jsonc");
    old["metadata"] = json!({"name": "cls-a"});
    old["spec"].as_object_mut().unwrap().remove("clusterCIDR");
    let review = cluster_review("m-1", "UPDATE", old.clone(), Some(old.clone()));
    let answer = post_review(&r, "/mutate", &review).await;
    let patched = apply(&old, &decoded_patch(&answer));
    assert_eq!(patched["spec"]["clusterCIDR"], "10.244.0.0/16");
    assert_eq!(patched["spec"]["dnsDomain"], "cluster.local");
    assert!(
        patched["metadata"].get("generateName").is_none(),
        "{patched}"
    );
    let answer = update(&r, patched, old).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
}

#[tokio::test]
async fn unknown_fields_come_back_as_admission_warnings() {
    let r = router();
    let mut object = seed("seed-third-party-ha.jsonc");
    object["metadata"] = json!({"name": "cls-a"});
    object["spec"]["clusterCidr"] = json!("10.0.0.0/8");
    object["spec"]["kubeletExtraArgs"] = json!({"any-flag": "free-form"});
    let review = cluster_review("u-1", "CREATE", object, None);
    let answer = post_review(&r, "/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(
        warnings(&answer),
        [r#"unknown field "spec.clusterCidr" (did you mean "spec.clusterCIDR"?)"#],
        "{answer}"
    );
}

/// DELETE is never sent to the webhook: the chart registers CREATE and UPDATE only (and the
/// webhook allows any other operation untouched, see above).
#[test]
fn the_chart_never_intercepts_delete() {
    let helpers = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../charts/tkeha/templates/_helpers.tpl"
    ))
    .unwrap();
    let operations: Vec<&str> = helpers
        .lines()
        .filter(|l| l.trim_start().starts_with("operations:"))
        .collect();
    assert_eq!(operations, [r#"    operations: ["CREATE", "UPDATE"]"#]);
}

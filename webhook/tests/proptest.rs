//! Property tests over request bodies: never a panic, always an answer; mutation patches
//! always apply and are idempotent.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tkeha_api::Policy;
use tkeha_webhook::{Endpoint, admit};

/// Keys that steer values into the places the rule engine reads.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "spec",
    "type",
    "version",
    "clusterCIDR",
    "serviceCIDR",
    "machines",
    "ip",
    "port",
    "username",
    "password",
    "privateKey",
    "passPhrase",
    "features",
    "ha",
    "tke",
    "thirdParty",
    "vip",
    "vrid",
    "vport",
    "ipvs",
    "properties",
    "maxNodePodNum",
    "maxClusterServiceNum",
    "publicAlternativeNames",
    "dnsDomain",
    "networkDevice",
    "labels",
    "taints",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![
            Just("192.168.1.3".to_string()),
            Just("10.244.0.0/16".to_string()),
            Just("MTIzNDU2".to_string()),
            Just("1.14.10".to_string()),
            Just("::1".to_string()),
            "\\PC{0,40}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Paths inside a seed where a random value is planted.
const PATHS: &[&str] = &[
    "/spec",
    "/spec/type",
    "/spec/version",
    "/spec/clusterCIDR",
    "/spec/serviceCIDR",
    "/spec/machines",
    "/spec/machines/0",
    "/spec/machines/0/ip",
    "/spec/machines/0/port",
    "/spec/machines/0/password",
    "/spec/machines/1/ip",
    "/spec/features",
    "/spec/features/ha",
    "/spec/features/ha/tke",
    "/spec/features/ha/tke/vip",
    "/spec/features/ha/tke/vrid",
    "/spec/features/ha/thirdParty/vport",
    "/spec/publicAlternativeNames",
    "/metadata",
    "/spec/properties",
];

fn plant(mut object: Value, path: &str, value: Value) -> Value {
    if let Some(slot) = object.pointer_mut(path) {
        *slot = value;
    } else if let Some((parent, key)) = path.rsplit_once('/')
        && let Some(Value::Object(map)) = object.pointer_mut(parent)
    {
        map.insert(key.to_string(), value);
    }
    object
}

fn check_answer(endpoint: Endpoint, body: &[u8], uid: Option<&str>) {
    match admit(endpoint, body, &Policy::default()) {
        Ok(answer) => {
            let v = serde_json::to_value(&answer.review).unwrap();
            if let Some(uid) = uid {
                assert_eq!(v["response"]["uid"], uid);
            }
            if v["response"]["allowed"] == false {
                let code = v["response"]["status"]["code"].as_u64().unwrap();
                assert!(code == 400 || code == 422, "{v}");
                assert!(
                    !v["response"]["status"]["message"]
                        .as_str()
                        .unwrap()
                        .is_empty()
                );
            }
            assert_short_warnings(&v);
        }
        Err(rejection) => assert!(uid.is_none(), "a framed review was rejected: {rejection}"),
    }
}

proptest! {
    // No regression files in the tree; failures print their minimal case.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_answer(Endpoint::Validate, &body, None);
        check_answer(Endpoint::Mutate, &body, None);
    }

    #[test]
    fn arbitrary_json_objects_in_a_real_review_get_an_answer(object in json_value(), update in any::<bool>(), old in json_value()) {
        let review = if update {
            cluster_review("p-1", "UPDATE", object, Some(old))
        } else {
            cluster_review("p-1", "CREATE", object, None)
        };
        let body = serde_json::to_vec(&review).unwrap();
        check_answer(Endpoint::Validate, &body, Some("p-1"));
        check_answer(Endpoint::Mutate, &body, Some("p-1"));
    }

    #[test]
    fn damaged_seeds_get_answers_and_patches_apply_idempotently(
        third_party in any::<bool>(),
        plants in prop::collection::vec((prop::sample::select(PATHS), json_value()), 1..3),
    ) {
        let mut object = if third_party { seed("seed-third-party-ha.jsonc") } else { seed("seed-tke-ha.jsonc") };
        for (path, value) in plants {
            object = plant(object, path, value);
        }
        let body = serde_json::to_vec(&cluster_review("p-2", "CREATE", object.clone(), None)).unwrap();
        check_answer(Endpoint::Validate, &body, Some("p-2"));
        let answer = serde_json::to_value(&admit(Endpoint::Mutate, &body, &Policy::default()).unwrap().review).unwrap();
        if answer["response"].get("patch").is_some() {
            let mut patched = object.clone();
            json_patch::patch(&mut patched, &decoded_patch(&answer)).unwrap();
            let again = serde_json::to_vec(&cluster_review("p-3", "CREATE", patched, None)).unwrap();
            let second = serde_json::to_value(&admit(Endpoint::Mutate, &again, &Policy::default()).unwrap().review).unwrap();
            prop_assert!(second["response"].get("patch").is_none(), "second pass patched again: {second}");
        }
    }

    #[test]
    fn the_router_always_answers(body in prop::collection::vec(any::<u8>(), 0..512), frame in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (router, _) = router_with(Policy::default());
        let body = if frame {
            // Random bytes spliced into a real review's object.
            let text = String::from_utf8_lossy(&body).into_owned();
            serde_json::to_vec(&cluster_review("p-4", "CREATE", json!({"spec": text}), None)).unwrap()
        } else {
            body
        };
        let (status, _) = runtime.block_on(post_raw(&router, "/validate", body));
        prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST, "{status}");
    }
}

//! Where the time of one review goes, on one thread without TLS or sockets: parsing the
//! AdmissionReview, the rule engine (`tkeha_api::review`, and from the spec text as `admit`'s
//! fast path runs it), the whole `admit`, and the in-process
//! router (body read, admit, response, metrics, log line formatted into a discarded sink).
//!
//! `cargo run --release -p tkeha-webhook --example bench_admit -- [SECONDS_PER_CASE]`
//! Uses the binary's allocator (mimalloc) so the figures match the server.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use tkeha_api::Policy;
use tkeha_webhook::admission::ReviewRequest;
use tkeha_webhook::{AppState, Endpoint, Metrics, admit, webhook_router};
use tower::ServiceExt as _;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn body() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/review-create-third-party-ha.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut review: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    review["request"]["name"] = "cls-bench".into();
    review["request"]["object"]["metadata"] = serde_json::json!({"name": "cls-bench"});
    serde_json::to_vec(&review).unwrap_or_else(|e| panic!("{e}"))
}

/// Best of 5 rounds of about `secs / 5` seconds each: ns per call.
fn measure(name: &str, secs: f64, mut f: impl FnMut()) {
    let round = Duration::from_secs_f64(secs / 5.0);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < round {
            for _ in 0..100 {
                f();
            }
            n += 100;
        }
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name:<44} {:>8.2} µs", best / 1000.0);
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let body = body();
    let policy = Policy::default();
    println!(
        "AdmissionReview: {} bytes (3-master third-party seed)",
        body.len()
    );

    measure("parse AdmissionReview (serde_json)", secs, || {
        let r: ReviewRequest =
            serde_json::from_slice(black_box(&body)).unwrap_or_else(|e| panic!("{e}"));
        black_box(r);
    });
    let review: ReviewRequest = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{e}"));
    let object = review
        .request
        .and_then(|r| r.object)
        .unwrap_or_else(|| panic!("fixture has an object"));
    let object_json = serde_json::to_vec(&object).unwrap_or_else(|e| panic!("{e}"));
    measure("  of which: the object alone as a Value", secs, || {
        let v: serde_json::Value =
            serde_json::from_slice(black_box(&object_json)).unwrap_or_else(|e| panic!("{e}"));
        black_box(v);
    });
    measure("tkeha_api::review (rule engine, shared)", secs, || {
        black_box(tkeha_api::review(black_box(&object), None, &policy).ok());
    });
    let spec_json = serde_json::to_string(&object["spec"]).unwrap_or_else(|e| panic!("{e}"));
    measure("decode the spec text into the typed spec", secs, || {
        let spec: tkeha_api::spectext::DecodedSpec =
            serde_json::from_str(black_box(&spec_json)).unwrap_or_else(|e| panic!("{e}"));
        black_box(spec);
    });
    let spec: tkeha_api::spectext::DecodedSpec =
        serde_json::from_str(&spec_json).unwrap_or_else(|e| panic!("{e}"));
    let names = tkeha_api::validation::meta::Names {
        name: Some("cls-bench".into()),
        generate_name: None,
    };
    measure("rule engine on the typed spec (fast path)", secs, || {
        black_box(tkeha_api::spectext::review_create_spec(
            black_box(spec.clone()),
            &names,
            &policy,
        ));
    });
    measure("admit /validate (parse + rules + answer)", secs, || {
        black_box(admit(Endpoint::Validate, black_box(&body), &policy).ok());
    });
    measure("admit /mutate", secs, || {
        black_box(admit(Endpoint::Mutate, black_box(&body), &policy).ok());
    });
    let answer = admit(Endpoint::Validate, &body, &policy).unwrap_or_else(|e| panic!("{e}"));
    measure("encode the answer (serde_json)", secs, || {
        black_box(serde_json::to_vec(black_box(&answer.review)).ok());
    });

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let body = axum::body::Bytes::from(body);
    let router = webhook_router(AppState::new(policy.clone(), Arc::new(Metrics::new())));
    let route = |path: &'static str| {
        let router = router.clone();
        let body = body.clone();
        let runtime = &runtime;
        move || {
            let request = if path == "/livez" {
                Request::get(path).body(Body::empty())
            } else {
                Request::post(path)
                    .header("content-type", "application/json")
                    .body(Body::from(body.clone()))
            }
            .unwrap_or_else(|e| panic!("{e}"));
            let response = runtime
                .block_on(router.clone().oneshot(request))
                .unwrap_or_else(|e| match e {});
            black_box(response);
        }
    };
    measure(
        "router /validate, no log subscriber",
        secs,
        route("/validate"),
    );

    // The router as the server runs it, log line formatted as JSON into a sink.
    let json = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_writer(std::io::sink)
        .finish();
    let guard = tracing::subscriber::set_default(json);
    measure(
        "router /validate, tracing-subscriber json()",
        secs,
        route("/validate"),
    );
    drop(guard);
    let lines = tracing_subscriber::fmt()
        .event_format(tkeha_webhook::JsonLines)
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(lines);
    measure(
        "router /validate (incl. log line, metrics)",
        secs,
        route("/validate"),
    );
    measure("router /livez", secs, route("/livez"));
}

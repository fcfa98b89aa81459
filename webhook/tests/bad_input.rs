//! Bad input: not JSON, wrong apiVersion, missing request or object, a 10 MiB body, slow
//! clients. Always a 4xx or a well-formed denial, never a crash; the server keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tkeha_api::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TEN_MIB: usize = 10 * 1024 * 1024;
const GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn unreadable_reviews_get_400_with_a_reason() {
    let (r, _) = router_with(Policy::default());
    let mut wrong_version = fixture("review-create-tke-ha.json");
    wrong_version["apiVersion"] = json!("admission.k8s.io/v2");
    let mut wrong_kind = fixture("review-create-tke-ha.json");
    wrong_kind["kind"] = json!("TokenReview");
    let mut no_request = fixture("review-create-tke-ha.json");
    no_request.as_object_mut().unwrap().remove("request");
    let mut no_uid = fixture("review-create-tke-ha.json");
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    // Not one of admission.k8s.io/v1's four operations.
    let mut bad_operation = fixture("review-create-tke-ha.json");
    bad_operation["request"]["operation"] = json!("PATCH");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not json", b"hello".to_vec(), "not a JSON AdmissionReview"),
        ("empty", Vec::new(), "not a JSON AdmissionReview"),
        (
            "json array",
            b"[1,2]".to_vec(),
            "not a JSON AdmissionReview",
        ),
        (
            "truncated",
            b"{\"apiVersion\":\"admission.k8s.io/v1\"".to_vec(),
            "not a JSON",
        ),
        (
            "wrong apiVersion",
            serde_json::to_vec(&wrong_version).unwrap(),
            "apiVersion",
        ),
        (
            "wrong kind",
            serde_json::to_vec(&wrong_kind).unwrap(),
            "kind",
        ),
        (
            "no request",
            serde_json::to_vec(&no_request).unwrap(),
            "no request",
        ),
        ("no uid", serde_json::to_vec(&no_uid).unwrap(), "uid"),
        (
            "unknown operation",
            serde_json::to_vec(&bad_operation).unwrap(),
            "unknown variant `PATCH`",
        ),
        ("invalid utf-8", vec![0xff, 0xfe, b'{'], "not a JSON"),
    ];
    for (name, body, reason) in cases {
        for path in ["/validate", "/mutate"] {
            let (status, text) = post_raw(&r, path, body.clone()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{name} {path}");
            let text = String::from_utf8_lossy(&text);
            assert!(text.contains(reason), "{name}: {text}");
        }
    }
}

#[tokio::test]
async fn a_reason_never_echoes_more_than_a_line_of_the_input() {
    let (r, _) = router_with(Policy::default());
    for field in ["apiVersion", "kind"] {
        let mut review = fixture("review-create-tke-ha.json");
        review[field] = json!(format!("{}\u{1b}[8m", "x".repeat(1024 * 1024)));
        let (status, text) = post_raw(&r, "/validate", serde_json::to_vec(&review).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.len() < 4096, "{field}: {} bytes", text.len());
        assert!(!text.contains(&0x1b), "{field}: control character echoed");
    }
    // serde_json quotes a value of the wrong type: cut too.
    let mut review = fixture("review-create-tke-ha.json");
    review["request"]["uid"] = json!(["x".repeat(1024 * 1024)]);
    let (status, text) = post_raw(&r, "/validate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.len() < 4096, "{} bytes", text.len());
}

#[tokio::test]
async fn a_review_without_its_object_is_a_well_formed_denial() {
    let (r, _) = router_with(Policy::default());
    let mut review = fixture("review-create-tke-ha.json");
    review["request"].as_object_mut().unwrap().remove("object");
    let answer = post_review(&r, "/validate", &review).await;
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 400);
    assert!(
        answer["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("request.object")
    );
    // An UPDATE without its old object.
    let mut update = fixture("review-update-third-party-vip.json");
    update["request"]["oldObject"] = json!(null);
    let answer = post_review(&r, "/mutate", &update).await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 400);
}

#[tokio::test]
async fn bodies_over_3_mib_get_413_with_or_without_content_length() {
    let (r, metrics) = router_with(Policy::default());
    let big = vec![b' '; TEN_MIB];
    let (status, _) = post_raw(&r, "/validate", big.clone()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Chunked (no length known up front): cut off once over the limit.
    let chunks = big
        .chunks(64 * 1024)
        .map(axum::body::Bytes::copy_from_slice)
        .collect::<Vec<_>>();
    let (status, _) = post_raw(&r, "/mutate", Body::new(Chunked(chunks.into_iter()))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and then rejected as not an AdmissionReview).
    let (status, _) = post_raw(&r, "/validate", vec![b' '; tkeha_webhook::BODY_LIMIT - 1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(metrics.render().contains(
        r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="error"} 2"#
    ));
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_408_and_counts_as_an_error() {
    let metrics = std::sync::Arc::new(tkeha_webhook::Metrics::new());
    let r = tkeha_webhook::webhook_router(tkeha_webhook::AppState {
        body_read_timeout: Duration::from_millis(200),
        ..tkeha_webhook::AppState::new(Policy::default(), metrics.clone())
    });
    let half = axum::body::Bytes::from_static(br#"{"apiVersion":"admission.k8s.io/v1","#);
    let (status, text) = post_raw(&r, "/validate", Body::new(Stalled(Some(half)))).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(String::from_utf8_lossy(&text).contains("200 ms"));
    assert!(metrics.render().contains(
        r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="error"} 1"#
    ));
}

/// A body that sends one chunk and then never another.
struct Stalled(Option<axum::body::Bytes>);

impl axum::body::HttpBody for Stalled {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match self.0.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// A body with no length known up front (sent chunked), yielding ready chunks.
struct Chunked(std::vec::IntoIter<axum::body::Bytes>);

impl axum::body::HttpBody for Chunked {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(self.0.next().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_tls_never_stops_the_server() {
    let server = TestServer::start().await;
    let c = &server.client;

    let a = c
        .request("POST", "/validate", b"not json".to_vec())
        .await
        .unwrap();
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = c.request("GET", "/validate", Vec::new()).await.unwrap();
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = c.request("POST", "/nowhere", Vec::new()).await.unwrap();
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // A 10 MiB announcement is refused from the headers alone, before the body is sent.
    let mut tls = c.connect().await.unwrap();
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {TEN_MIB}\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(GUARD, tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    drop(tls);

    // A slow client that never finishes its headers is disconnected.
    let mut tls = c.connect().await.unwrap();
    tls.write_all(b"POST /validate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(GUARD, tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "slow client was never disconnected");
    // hyper may answer 408 before closing; it never answers with a review.
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "{rest}"
    );

    // A client that sends its headers and half the body, then stalls, gets 408.
    let mut tls = c.connect().await.unwrap();
    tls.write_all(
        b"POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"apiVersion\":",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(GUARD, tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "slow body was never answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A client that connects and never starts TLS is dropped after the handshake timeout.
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut sink = Vec::new();
    let closed = tokio::time::timeout(GUARD, tcp.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "silent TCP client was never disconnected");

    // Still serving, correctly.
    let answer = c
        .review("/validate", &fixture("review-create-broken.json"))
        .await;
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    server.stop().await;
}

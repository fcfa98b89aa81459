//! Over real TLS on loopback: a client that verifies the server against the CA (as the API
//! server does with caBundle), HTTP/1.1 and HTTP/2, certificate rotation under load, and graceful
//! shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use tkeha_api::Policy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GUARD: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_over_verified_tls() {
    let server = TestServer::start().await;
    let c = &server.client;

    // Mutate: uid echo, base64 patch that gives the defaulted object.
    let review = fixture("review-create-tke-ha.json");
    let object = review["request"]["object"].clone();
    let answer = c.review("/mutate", &review).await;
    assert_eq!(answer["response"]["uid"], review["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    let patched = apply(&object, &decoded_patch(&answer));
    let expected = tkeha_api::review(&object, None, &Policy::default()).unwrap();
    assert_eq!(patched, expected.defaulted);

    // Validate: warnings on the allowed single-master seed.
    let answer = c.review("/validate", &review).await;
    assert_eq!(answer["response"]["allowed"], true);
    assert_eq!(answer["response"]["warnings"].as_array().unwrap().len(), 1);
    assert_short_warnings(&answer);

    // Validate: denial with code and every error.
    let broken = fixture("review-create-broken.json");
    let answer = c.review("/validate", &broken).await;
    assert_eq!(answer["response"]["uid"], broken["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);
    assert_eq!(answer["response"]["status"]["reason"], "Invalid");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.starts_with(r#"Cluster.platform.tkestack.io "cls-broken" is invalid: ["#));
    assert!(message.contains("spec.features.ha.tke.vip"), "{message}");

    // Update of that stored invalid object: a label edit goes through, the old problems as
    // warnings (ratcheting); an unknown field is an admission warning.
    let old = broken["request"]["object"].clone();
    let mut relabeled = old.clone();
    relabeled["metadata"]["labels"] = serde_json::json!({"team": "infra"});
    relabeled["spec"]["clusterCidr"] = serde_json::json!("x");
    let update = cluster_review("tls-upd", "UPDATE", relabeled, Some(old));
    let answer = c.review("/validate", &update).await;
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let warnings = answer["response"]["warnings"].as_array().unwrap();
    assert_eq!(
        warnings[0],
        r#"unknown field "spec.clusterCidr" (did you mean "spec.clusterCIDR"?)"#
    );
    let ratcheted = warnings
        .iter()
        .filter(|w| {
            w.as_str()
                .unwrap()
                .starts_with("already invalid before this update: ")
        })
        .count();
    assert_eq!(ratcheted, 3, "{answer}");

    // The cheap transport endpoint.
    let livez = c.request("GET", "/livez", Vec::new()).await.unwrap();
    assert_eq!(livez.status, StatusCode::OK);

    // Health listener (plain HTTP) sees it all.
    assert_eq!(
        plain_get(server.health_addr, "/healthz").await.0,
        StatusCode::OK
    );
    assert_eq!(
        plain_get(server.health_addr, "/readyz").await.0,
        StatusCode::OK
    );
    let (status, text) = plain_get(server.health_addr, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains(
            r#"tkeha_webhook_admission_requests_total{endpoint="validate",result="denied"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"tkeha_webhook_admission_requests_total{endpoint="mutate",result="allowed"} 1"#
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_another_ca_is_refused() {
    let server = TestServer::start().await;
    let other = tkeha_webhook::certs::CertAuthority::new("someone else").unwrap();
    let stranger = TlsClient::new(&other.ca_pem(), server.addr);
    let err = stranger
        .request("GET", "/livez", Vec::new())
        .await
        .err()
        .unwrap();
    assert!(err.starts_with("tls:"), "{err}");
    // The server is unaffected.
    assert!(
        server
            .client
            .request("GET", "/livez", Vec::new())
            .await
            .is_ok()
    );
    server.stop().await;
}

/// Sends reviews on a fresh connection each time until stopped; records the certificate
/// generation (index in `certs`) each connection saw, and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<(Vec<usize>, Vec<String>)>>,
}

impl Load {
    fn start(
        client: &TlsClient,
        certs: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
        workers: usize,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let body = serde_json::to_vec(&fixture("review-create-third-party-ha.json")).unwrap();
        let tasks = (0..workers)
            .map(|_| {
                let (client, certs, stop, done, body) = (
                    client.clone(),
                    certs.clone(),
                    stop.clone(),
                    done.clone(),
                    body.clone(),
                );
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        match client.request("POST", "/validate", body.clone()).await {
                            Ok(a) if a.status == StatusCode::OK => {
                                let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
                                if v["response"]["allowed"] != true {
                                    failures.push(format!("not allowed: {v}"));
                                }
                                let generation =
                                    certs.lock().unwrap().iter().position(|c| *c == a.peer_cert);
                                match generation {
                                    Some(g) => seen.push(g),
                                    None => failures.push("unknown certificate".into()),
                                }
                            }
                            Ok(a) => failures.push(format!("HTTP {}", a.status)),
                            Err(e) => failures.push(e),
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    (seen, failures)
                })
            })
            .collect();
        Self { stop, done, tasks }
    }

    async fn wait_for_more(&self, n: usize) {
        let target = self.done.load(Ordering::SeqCst) + n;
        let done = self.done.clone();
        eventually(GUARD, "load requests", || {
            let d = done.load(Ordering::SeqCst);
            async move { d >= target }
        })
        .await;
    }

    async fn finish(self) -> (Vec<Vec<usize>>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let mut seen = Vec::new();
        let mut failures = Vec::new();
        for t in self.tasks {
            let (s, f) = t.await.unwrap();
            seen.push(s);
            failures.extend(f);
        }
        (seen, failures)
    }
}

async fn wait_for_cert(client: &TlsClient, der: &[u8]) {
    eventually(
        GUARD,
        "new connections to present the new certificate",
        || {
            let client = client.clone();
            async move {
                let a = client.request("GET", "/livez", Vec::new()).await.unwrap();
                a.peer_cert == der
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request_and_new_connections_see_the_new_certificate() {
    let mut server = TestServer::start().await;
    let hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let first = server
        .client
        .request("GET", "/livez", Vec::new())
        .await
        .unwrap();
    let certs = Arc::new(std::sync::Mutex::new(vec![first.peer_cert.clone()]));
    let load = Load::start(&server.client, certs.clone(), 3);
    load.wait_for_more(30).await;

    // 1. A Secret-style update: new files in a new dir, `..data` symlink swapped.
    let second = server
        .secret
        .ca
        .issue("tkeha-webhook gen2", &hosts, 2)
        .unwrap();
    certs.lock().unwrap().push(second.cert_der.clone());
    server.secret.publish(&second.cert_pem, &second.key_pem);
    wait_for_cert(&server.client, &second.cert_der).await;
    load.wait_for_more(30).await;

    // 2. An in-place rewrite, certificate first: the half-updated pair (new cert, old key) is
    //    rejected and the old one kept; once the key follows, the new pair is served.
    let third = server
        .secret
        .ca
        .issue("tkeha-webhook gen3", &hosts, 3)
        .unwrap();
    certs.lock().unwrap().push(third.cert_der.clone());
    let files = server.secret.files();
    std::fs::write(&files.cert, &third.cert_pem).unwrap();
    eventually(GUARD, "the mismatched pair to be rejected", || {
        let text = server.metrics();
        async move { text.contains(r#"tkeha_webhook_tls_reloads_total{result="failed"} 1"#) }
    })
    .await;
    load.wait_for_more(30).await;
    let still = server
        .client
        .request("GET", "/livez", Vec::new())
        .await
        .unwrap();
    assert_eq!(still.peer_cert, second.cert_der, "old pair must be kept");
    std::fs::write(&files.key, &third.key_pem).unwrap();
    wait_for_cert(&server.client, &third.cert_der).await;
    load.wait_for_more(30).await;

    let (seen, failures) = load.finish().await;
    assert!(
        failures.is_empty(),
        "failed requests during rotation: {failures:?}"
    );
    for worker in &seen {
        assert!(!worker.is_empty());
        // Per worker, connections are sequential: generations never go back.
        assert!(worker.windows(2).all(|w| w[0] <= w[1]), "{worker:?}");
    }
    let all: Vec<usize> = seen.concat();
    for generation in 0..3 {
        assert!(
            all.contains(&generation),
            "no request saw generation {generation}"
        );
    }
    let text = server.metrics();
    assert!(
        text.contains(r#"tkeha_webhook_tls_reloads_total{result="ok"} 2"#),
        "{text}"
    );
    server.trigger_shutdown();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_certificate_is_logged_and_the_old_one_kept() {
    let mut server = TestServer::start().await;
    let before = server
        .client
        .request("GET", "/livez", Vec::new())
        .await
        .unwrap();
    server.secret.publish(
        "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n",
        "junk",
    );
    eventually(GUARD, "the garbage pair to be rejected", || {
        let text = server.metrics();
        async move { text.contains(r#"tkeha_webhook_tls_reloads_total{result="failed"} 1"#) }
    })
    .await;
    let after = server
        .client
        .request("GET", "/livez", Vec::new())
        .await
        .unwrap();
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.peer_cert, before.peer_cert);
    // Files that vanish (a broken mount) also keep the old certificate.
    std::fs::remove_file(server.secret.path().join("..data")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = server
        .client
        .request("GET", "/livez", Vec::new())
        .await
        .unwrap();
    assert_eq!(after.peer_cert, before.peer_cert);
    server.stop().await;
}

/// Read a whole HTTP/1.1 response from a stream the server closes afterwards.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> (String, String) {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_and_finishes_the_in_flight_request() {
    let mut server = TestServer::start_with(|mut s| {
        s.shutdown_delay = Duration::from_millis(200);
        s
    })
    .await;
    let body = serde_json::to_vec(&fixture("review-create-broken.json")).unwrap();
    let (first_half, second_half) = body.split_at(body.len() / 2);

    // A request in flight: headers and half the body sent.
    let mut tls = server.client.connect().await.unwrap();
    let head = format!(
        "POST /validate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(first_half).await.unwrap();
    tls.flush().await.unwrap();

    server.trigger_shutdown();
    let health = server.health_addr;
    eventually(GUARD, "/readyz to fail", || async move {
        plain_get(health, "/readyz").await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    // After the delay the listener stops accepting new connections.
    let addr = server.addr;
    eventually(GUARD, "the TLS listener to close", || async move {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;

    // The in-flight request still completes.
    tls.write_all(second_half).await.unwrap();
    tls.flush().await.unwrap();
    let (head, body) = read_response(&mut tls).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], json!(false));
    assert_eq!(answer["response"]["status"]["code"], 422);
    server.stop().await;
}

/// An HTTP/2 client over verified TLS (ALPN h2), as the API server speaks when the webhook
/// offers it.
async fn h2_sender(
    server: &TestServer,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<axum::body::Bytes>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls_pki_types::CertificateDer::pem_slice_iter(server.secret.ca.ca_pem().as_bytes())
    {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

async fn h2_post(
    sender: &mut hyper::client::conn::http2::SendRequest<http_body_util::Full<axum::body::Bytes>>,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, axum::body::Bytes) {
    use http_body_util::BodyExt;
    let request = hyper::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(axum::body::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_over_http2_on_one_connection_including_an_oversized_body() {
    let server = TestServer::start().await;
    let mut sender = h2_sender(&server).await;

    let broken = fixture("review-create-broken.json");
    let (status, body) = h2_post(
        &mut sender,
        "/validate",
        serde_json::to_vec(&broken).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["response"]["uid"], broken["request"]["uid"]);
    assert_eq!(answer["response"]["allowed"], false);
    assert_eq!(answer["response"]["status"]["code"], 422);

    // Over the limit on a stream: 413 for that stream, the connection keeps serving.
    let (status, _) = h2_post(&mut sender, "/validate", vec![b' '; 4 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let tke = fixture("review-create-tke-ha.json");
    let (status, body) = h2_post(&mut sender, "/mutate", serde_json::to_vec(&tke).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let patched = apply(&tke["request"]["object"], &decoded_patch(&answer));
    let expected = tkeha_api::review(&tke["request"]["object"], None, &Policy::default()).unwrap();
    assert_eq!(patched, expected.defaulted);
    server.stop().await;
}

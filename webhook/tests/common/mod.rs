//! Shared test helpers: API-server-shaped AdmissionReview fixtures, an in-process caller, and
//! a TLS client that verifies the server against a CA like the API server does with caBundle.
#![allow(dead_code, clippy::unwrap_used)]

pub mod attack;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tkeha_api::Policy;
use tkeha_webhook::CertFiles;
use tkeha_webhook::certs::{CertAuthority, ServingCert};
use tkeha_webhook::{AppState, Metrics, Settings, webhook_router};
use tower::ServiceExt as _;

/// A fixture file under `webhook/tests/fixtures`.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// One of the seed manifests in `api/tests/fixtures` (JSON with `//` comments).
pub fn seed(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../api/tests/fixtures")
        .join(name);
    tkeha_api::parse_manifest(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// An AdmissionReview as the API server sends it for a cluster-scoped Cluster.
pub fn cluster_review(uid: &str, operation: &str, object: Value, old: Option<Value>) -> Value {
    let gvk = json!({"group": "platform.tkestack.io", "version": "v1", "kind": "Cluster"});
    let gvr = json!({"group": "platform.tkestack.io", "version": "v1", "resource": "clusters"});
    // The API server always sends a string name (empty when the name is generated later).
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let options_kind = match operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        _ => "DeleteOptions",
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": name,
            "operation": operation,
            "userInfo": {
                "username": "kubernetes-admin",
                "groups": ["kubeadm:cluster-admins", "system:authenticated"]
            },
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"}
        }
    })
}

/// The router with `policy`, and its metrics.
pub fn router_with(policy: Policy) -> (axum::Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let router = webhook_router(AppState::new(policy, metrics.clone()));
    (router, metrics)
}

/// POST raw bytes in-process.
pub async fn post_raw(
    router: &axum::Router,
    path: &str,
    body: impl Into<Body>,
) -> (StatusCode, Bytes) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes)
}

/// POST a review in-process and decode the AdmissionReview answer (must be HTTP 200).
pub async fn post_review(router: &axum::Router, path: &str, review: &Value) -> Value {
    let (status, body) = post_raw(router, path, serde_json::to_vec(review).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// Decode `response.patch` (must be a base64 string) into a JSON patch.
pub fn decoded_patch(answer: &Value) -> json_patch::Patch {
    let text = answer["response"]["patch"]
        .as_str()
        .unwrap_or_else(|| panic!("patch must be a base64 string: {answer}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Apply a patch to a copy of `object`.
pub fn apply(object: &Value, patch: &json_patch::Patch) -> Value {
    let mut out = object.clone();
    json_patch::patch(&mut out, patch).unwrap();
    out
}

/// Every warning in an answer is under 120 characters.
pub fn assert_short_warnings(answer: &Value) {
    if let Some(warnings) = answer["response"]["warnings"].as_array() {
        for w in warnings {
            let w = w.as_str().unwrap();
            assert!(w.chars().count() < 120, "warning too long: {w}");
        }
    }
}

/// A CA and serving certificate files in a temp dir, laid out like a mounted Secret:
/// `dir/tls.crt -> ..data/tls.crt`, `..data -> ..<generation>` (swapped atomically).
pub struct SecretDir {
    pub dir: tempfile::TempDir,
    pub ca: CertAuthority,
    generation: u32,
}

impl SecretDir {
    pub fn new(initial: &ServingCert, ca: CertAuthority) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Self {
            dir,
            ca,
            generation: 0,
        };
        std::os::unix::fs::symlink("..data/tls.crt", s.dir.path().join("tls.crt")).unwrap();
        std::os::unix::fs::symlink("..data/tls.key", s.dir.path().join("tls.key")).unwrap();
        s.publish(&initial.cert_pem, &initial.key_pem);
        s
    }

    pub fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }

    /// Write a new generation and swap `..data` to it in one rename, as the kubelet does.
    pub fn publish(&mut self, cert_pem: &str, key_pem: &str) {
        self.generation += 1;
        let gen_name = format!("..gen{}", self.generation);
        let gen_dir = self.dir.path().join(&gen_name);
        std::fs::create_dir(&gen_dir).unwrap();
        std::fs::write(gen_dir.join("tls.crt"), cert_pem).unwrap();
        std::fs::write(gen_dir.join("tls.key"), key_pem).unwrap();
        let tmp = self.dir.path().join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&gen_name, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("..data")).unwrap();
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Settings on 127.0.0.1 port 0 with short timers for tests.
pub fn test_settings(files: CertFiles) -> Settings {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Settings {
        cert_reload_interval: Duration::from_millis(100),
        header_read_timeout: Duration::from_millis(500),
        handshake_timeout: Duration::from_millis(500),
        body_read_timeout: Duration::from_millis(500),
        shutdown_delay: Duration::from_millis(300),
        shutdown_timeout: Duration::from_secs(10),
        ..Settings::new(local, local, files)
    }
}

/// A client that trusts only `ca_pem` and checks the server name `localhost`.
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    addr: SocketAddr,
}

/// One HTTP answer over TLS, with the certificate the server presented.
pub struct TlsAnswer {
    pub status: StatusCode,
    pub body: Bytes,
    pub peer_cert: Vec<u8>,
}

impl TlsClient {
    pub fn new(ca_pem: &str, addr: SocketAddr) -> Self {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            addr,
        }
    }

    /// A verified TLS connection (errors instead of panics, for load loops).
    pub async fn connect(
        &self,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        self.connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))
    }

    /// One request on a new connection.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<TlsAnswer, String> {
        let tls = self.connect().await?;
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let io = hyper_util::rt::TokioIo::new(tls);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(TlsAnswer {
            status,
            body,
            peer_cert,
        })
    }

    /// POST a review and decode the AdmissionReview answer (must be HTTP 200).
    pub async fn review(&self, path: &str, review: &Value) -> Value {
        let answer = self
            .request("POST", path, serde_json::to_vec(review).unwrap())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        serde_json::from_slice(&answer.body).unwrap()
    }
}

/// A started server with its Secret-like cert dir, a verifying client and a shutdown trigger.
pub struct TestServer {
    pub secret: SecretDir,
    pub client: TlsClient,
    pub running: Option<tkeha_webhook::Running>,
    pub addr: SocketAddr,
    pub health_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|s| s).await
    }

    pub async fn start_with(tweak: impl FnOnce(Settings) -> Settings) -> Self {
        let ca = CertAuthority::new("tkeha test CA").unwrap();
        let first = ca
            .issue(
                "tkeha-webhook gen1",
                &["localhost".into(), "127.0.0.1".into()],
                1,
            )
            .unwrap();
        let secret = SecretDir::new(&first, ca);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let settings = tweak(test_settings(secret.files()));
        let running = tkeha_webhook::start(settings, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        let client = TlsClient::new(&secret.ca.ca_pem(), running.addr);
        Self {
            addr: running.addr,
            health_addr: running.health_addr,
            secret,
            client,
            running: Some(running),
            stop: Some(tx),
        }
    }

    /// Trigger the shutdown (as SIGTERM would).
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Shut down and wait for the server to finish.
    pub async fn stop(mut self) {
        self.trigger_shutdown();
        if let Some(running) = self.running.take() {
            running.wait().await.unwrap();
        }
    }

    pub fn metrics(&self) -> String {
        self.running.as_ref().unwrap().metrics.render()
    }
}

/// Plain HTTP/1.1 GET (health listener).
pub async fn plain_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Poll `check` until it is true; panics after `limit` (a hang guard, not a timing assertion).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

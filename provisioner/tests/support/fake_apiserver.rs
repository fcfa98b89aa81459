//! A stand-in for kube-apiserver in tests: a plain-HTTP listener on 127.0.0.1 that records every
//! request (method, path, query, content type, body) and answers from a test-supplied script.
//!
//! No API server can run on the build machines, so the kube-client code of `kubectl tkeha create`,
//! `provision --in-cluster` and the provisioner's Job mode is tested at this boundary. Shared by
//! the provisioner's and the plugin's tests (the plugin includes this file by path).

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::loopback::Loopback;

/// One request as the fake API server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when there was none).
    pub query: String,
    pub content_type: String,
    /// The `Authorization` header (empty when there was none).
    pub authorization: String,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body parsed as JSON (panics in the test when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// `METHOD /path` for assertions and failure messages.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain",
            body: body.to_string(),
        }
    }

    /// A `metav1.Status` failure, as the API server sends for a refused request.
    pub fn status(code: u16, reason: &str, message: &str) -> Self {
        Self::json(
            code,
            serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": reason,
                "code": code,
            }),
        )
    }

    pub fn not_found(what: &str) -> Self {
        Self::status(404, "NotFound", &format!("{what} not found"))
    }
}

type Script = dyn Fn(&Recorded) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Script>,
}

/// The running listener; stops when dropped.
pub struct FakeApiServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    server: Loopback,
}

impl FakeApiServer {
    /// Listen on an ephemeral loopback port, answering every request with `script`.
    pub fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            requests: requests.clone(),
            script: Arc::new(script),
        };
        let server = Loopback::serve(|listener| async move {
            let app = Router::new().fallback(handle).with_state(shared);
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{}", server.addr),
            requests,
            server,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Write a kubeconfig with two contexts: `fake` (this server) and `decoy` (127.0.0.1:9, where
    /// nothing listens), `current` being the current context. Returns its path.
    pub fn kubeconfig(&self, dir: &Path, current: &str) -> PathBuf {
        let path = dir.join(format!("kubeconfig-{current}"));
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {current}\n\
             clusters:\n\
             - name: fake\n  cluster:\n    server: {url}\n\
             - name: decoy\n  cluster:\n    server: http://127.0.0.1:9\n\
             contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: tester\n    namespace: default\n\
             - name: decoy\n  context:\n    cluster: decoy\n    user: tester\n\
             users:\n- name: tester\n  user:\n    token: test-token-not-a-secret\n",
            url = self.url
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body,
    };
    let reply = (shared.script)(&recorded);
    shared.requests.lock().unwrap().push(recorded);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

//! HTTP routes of the TLS listener: `POST /mutate`, `POST /validate`, and `GET /livez` (the
//! cheapest answer, used to measure the transport ceiling). One log line per review.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tkeha_api::Policy;

use crate::admit::{Answer, Endpoint, admit};
use crate::metrics::{Metrics, RequestResult};

/// Largest AdmissionReview body accepted (over it: 413). A review carries the object and the
/// old object; the API server caps objects well below this.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// Default longest wait for a request body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What every admission handler shares. The router needs a Tokio runtime with timers (body
/// read timeout).
#[derive(Debug, Clone)]
pub struct AppState {
    pub policy: Arc<Policy>,
    pub metrics: Arc<Metrics>,
    /// Longest wait for the whole body (a client trickling it is answered 408).
    pub body_read_timeout: Duration,
}

impl AppState {
    pub fn new(policy: Policy, metrics: Arc<Metrics>) -> Self {
        Self {
            policy: Arc::new(policy),
            metrics,
            body_read_timeout: BODY_READ_TIMEOUT,
        }
    }
}

/// The router served on the TLS listener.
pub fn webhook_router(state: AppState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/livez", get(|| async { "ok" }))
        .with_state(state)
}

async fn mutate(State(state): State<AppState>, request: Request) -> Response {
    handle(Endpoint::Mutate, &state, request).await
}

async fn validate(State(state): State<AppState>, request: Request) -> Response {
    handle(Endpoint::Validate, &state, request).await
}

/// Why a body was not read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    Slow,
    Read(String),
}

/// Read the body, refusing an announced length over the limit before reading anything,
/// stopping a chunked body as soon as it passes the limit, and giving up on a slow one.
async fn read_body(request: Request, timeout: Duration) -> Result<Bytes, BodyError> {
    if announced_length(request.headers()).is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut read = std::pin::pin!(axum::body::to_bytes(request.into_body(), BODY_LIMIT));
    // A ~1 KB review usually arrives with its headers, so the first poll completes it; only
    // a body still in flight arms the timer (a timer-wheel entry per request is measurable).
    let read = match futures_poll_once(read.as_mut()).await {
        Some(read) => read,
        None => match tokio::time::timeout(timeout, read).await {
            Ok(read) => read,
            Err(_) => return Err(BodyError::Slow),
        },
    };
    read.map_err(|e| {
        let inner = e.into_inner();
        if is_length_limit(inner.as_ref()) {
            BodyError::TooLarge
        } else {
            BodyError::Read(inner.to_string())
        }
    })
}

/// Poll `future` once: its output if it is ready now, `None` if it would wait.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_length_limit(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        match error.source() {
            Some(next) => error = next,
            None => return false,
        }
    }
}

async fn handle(endpoint: Endpoint, state: &AppState, request: Request) -> Response {
    let start = Instant::now();
    let body = match read_body(request, state.body_read_timeout).await {
        Ok(body) => body,
        Err(e) => {
            let (status, message) = match e {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("AdmissionReview larger than {BODY_LIMIT} bytes"),
                ),
                BodyError::Slow => (
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not received within {} ms",
                        state.body_read_timeout.as_millis()
                    ),
                ),
                BodyError::Read(reason) => (
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {reason}"),
                ),
            };
            let seconds = start.elapsed().as_secs_f64();
            state
                .metrics
                .observe(endpoint, RequestResult::Error, seconds);
            tracing::warn!(
                endpoint = endpoint.as_str(),
                status = status.as_u16(),
                error = %message,
                "admission request body rejected"
            );
            return (status, message).into_response();
        }
    };
    match admit(endpoint, &body, &state.policy) {
        Ok(Answer { review, summary }) => {
            let (status, response) = match serde_json::to_vec(&review) {
                Ok(json) => (
                    StatusCode::OK,
                    ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
                ),
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("encoding the response: {e}"),
                    )
                        .into_response(),
                ),
            };
            let result = match (status.is_success(), summary.allowed) {
                (false, _) => RequestResult::Error,
                (true, true) => RequestResult::Allowed,
                (true, false) => RequestResult::Denied,
            };
            let latency = start.elapsed();
            state
                .metrics
                .observe(endpoint, result, latency.as_secs_f64());
            tracing::info!(
                endpoint = endpoint.as_str(),
                // As &str (not `%`): recorded directly, without the formatting machinery.
                uid = summary.uid.as_str(),
                kind = summary.kind.as_str(),
                name = summary.name.as_str(),
                operation = summary.operation.as_str(),
                dry_run = summary.dry_run,
                allowed = summary.allowed,
                patch_ops = summary.patch_ops,
                warnings = summary.warnings,
                latency_us = latency.as_micros() as u64,
                "review"
            );
            response
        }
        Err(rejection) => {
            let latency = start.elapsed();
            state
                .metrics
                .observe(endpoint, RequestResult::Error, latency.as_secs_f64());
            let message = rejection.to_string();
            tracing::warn!(endpoint = endpoint.as_str(), error = %message, "bad admission request");
            (StatusCode::BAD_REQUEST, message).into_response()
        }
    }
}

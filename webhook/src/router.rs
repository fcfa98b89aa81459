//! HTTP routes of the TLS listener: `POST /mutate`, `POST /validate`, and `GET /livez` (the
//! cheapest answer, used to measure the transport ceiling). One log line per review.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tkeha_api::Policy;

use crate::admit::{Answer, Endpoint, admit};
use crate::metrics::{Metrics, RequestResult};

/// Largest AdmissionReview body accepted (over it: 413). A review carries the object and the
/// old object; the API server caps objects well below this.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// What every admission handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub policy: Arc<Policy>,
    pub metrics: Arc<Metrics>,
}

/// The router served on the TLS listener.
pub fn webhook_router(state: AppState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/livez", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn mutate(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    handle(Endpoint::Mutate, &state, body)
}

async fn validate(State(state): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    handle(Endpoint::Validate, &state, body)
}

fn handle(endpoint: Endpoint, state: &AppState, body: Result<Bytes, BytesRejection>) -> Response {
    let start = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let response = rejection.into_response();
            state.metrics.observe(
                endpoint,
                RequestResult::Error,
                start.elapsed().as_secs_f64(),
            );
            tracing::warn!(
                endpoint = endpoint.as_str(),
                status = response.status().as_u16(),
                "admission request body rejected"
            );
            return response;
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
                uid = %summary.uid,
                kind = %summary.kind,
                name = %summary.name,
                operation = %summary.operation,
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

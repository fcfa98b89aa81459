//! Why an admission request got no AdmissionReview back, as an HTTP answer: each error is its
//! own response (`IntoResponse`), a status and a one-line reason the API server logs.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::budget::OverBudget;
use crate::admit::Rejection;
use crate::message::bounded;

/// An admission request answered without an AdmissionReview.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// Over the body limit, announced or read (413).
    #[error("AdmissionReview larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Taking the body would pass the budget for bodies in flight (503, retry after a second).
    #[error(
        "tkeha-webhook is at its memory budget for request bodies in flight ({} bytes in all; this body: {} bytes); retry shortly",
        .0.limit,
        .0.wanted
    )]
    Busy(OverBudget),
    /// The body did not arrive in time (408).
    #[error("request body not received within {} ms", .0.as_millis())]
    SlowBody(Duration),
    /// The connection failed while the body was read (400).
    #[error("reading the request body: {0}")]
    ReadBody(String),
    /// The body is not an AdmissionReview we can answer (400).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The answer could not be encoded (500).
    #[error("encoding the response: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Which part of the request failed, for the log line the observing layer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailedAt {
    /// Reading the body.
    Body,
    /// Reading the AdmissionReview in it.
    Review,
    /// Encoding our answer.
    Answer,
}

/// What the observing layer learns from a failed request (a response extension).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Where it failed.
    pub(crate) at: FailedAt,
    /// The reason sent to the client.
    pub(crate) message: String,
}

impl ApiError {
    /// The HTTP status of the answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::TooLarge { .. } | ApiError::Rejected(Rejection::TooManyValues { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::ReadBody(_) | ApiError::Rejected(_) => StatusCode::BAD_REQUEST,
            ApiError::Encode(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn failed_at(&self) -> FailedAt {
        match self {
            ApiError::TooLarge { .. }
            | ApiError::Busy(_)
            | ApiError::SlowBody(_)
            | ApiError::ReadBody(_) => FailedAt::Body,
            ApiError::Rejected(_) => FailedAt::Review,
            ApiError::Encode(_) => FailedAt::Answer,
        }
    }
}

/// Longest reason sent with an error, in characters: serde_json's messages quote the input.
const MAX_REASON_CHARS: usize = 1024;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let message = match bounded(&message, MAX_REASON_CHARS) {
            Cow::Borrowed(_) => message,
            Cow::Owned(cut) => cut,
        };
        let failure = Failure {
            at: self.failed_at(),
            message: message.clone(),
        };
        let mut response = (self.status(), message).into_response();
        if matches!(self, ApiError::Busy(_)) {
            // Bodies in flight finish or time out within the body timeout; most within a second.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(failure);
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_reason_quoting_the_input_is_cut_and_escaped() {
        let huge = format!("{{\"apiVersion\": \"{}\u{1b}\"}}", "v".repeat(100_000));
        let not_json = serde_json::from_str::<u8>(&huge).unwrap_err();
        let response = ApiError::Rejected(Rejection::NotJson(not_json)).into_response();
        let failure = response.extensions().get::<Failure>().unwrap();
        assert!(failure.message.chars().count() <= MAX_REASON_CHARS);
        assert!(!failure.message.contains('\u{1b}'));
    }

    #[test]
    fn each_error_has_its_status_and_says_why() {
        let not_json = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let cases = [
            (
                ApiError::TooLarge { limit: 10 },
                413,
                "larger than 10 bytes",
            ),
            (
                ApiError::SlowBody(Duration::from_millis(200)),
                408,
                "within 200 ms",
            ),
            (ApiError::ReadBody("reset".into()), 400, "reset"),
            (
                ApiError::Busy(OverBudget {
                    limit: 100,
                    wanted: 60,
                }),
                503,
                "budget for request bodies in flight (100 bytes in all; this body: 60 bytes)",
            ),
            (
                ApiError::Rejected(Rejection::NoRequest),
                400,
                "has no request",
            ),
            (
                ApiError::Rejected(Rejection::TooManyValues { limit: 50 }),
                413,
                "more than 50 JSON values",
            ),
            (ApiError::Encode(not_json), 500, "encoding the response"),
        ];
        for (error, code, text) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), code);
            if code == 503 {
                assert_eq!(response.headers()[header::RETRY_AFTER], "1");
            }
            let failure = response.extensions().get::<Failure>().unwrap();
            assert!(failure.message.contains(text), "{}", failure.message);
        }
    }
}

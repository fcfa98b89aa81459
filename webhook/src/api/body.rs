//! The request body of an admission request, read within its limits: [`ReviewBody`], an axum
//! extractor whose rejection is an [`ApiError`].

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use super::api_error::ApiError;
use super::state::AppState;

/// Largest AdmissionReview body accepted (over it: 413). A review carries the object and the
/// old object; the API server caps objects well below this.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The whole body of an admission request.
#[derive(Debug)]
pub(crate) struct ReviewBody(pub(crate) Bytes);

impl FromRequest<AppState> for ReviewBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        read_body(request, state.body_read_timeout).await.map(Self)
    }
}

/// Read the body, refusing an announced length over the limit before reading anything,
/// stopping a chunked body as soon as it passes the limit, and giving up on a slow one.
async fn read_body(request: Request, timeout: Duration) -> Result<Bytes, ApiError> {
    if announced_length(request.headers()).is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(ApiError::TooLarge { limit: BODY_LIMIT });
    }
    let mut read = std::pin::pin!(axum::body::to_bytes(request.into_body(), BODY_LIMIT));
    // A ~1 KB review usually arrives with its headers, so the first poll completes it; only
    // a body still in flight arms the timer (a timer-wheel entry per request is measurable).
    let read = match poll_once(read.as_mut()).await {
        Some(read) => read,
        None => match tokio::time::timeout(timeout, read).await {
            Ok(read) => read,
            Err(_) => return Err(ApiError::SlowBody(timeout)),
        },
    };
    read.map_err(|e| {
        let inner = e.into_inner();
        if is_length_limit(inner.as_ref()) {
            ApiError::TooLarge { limit: BODY_LIMIT }
        } else {
            ApiError::ReadBody(inner.to_string())
        }
    })
}

/// Poll `future` once: its output if it is ready now, `None` if it would wait.
async fn poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
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

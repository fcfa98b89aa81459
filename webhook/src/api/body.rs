//! The request body of an admission request, read within its limits: [`ReviewBody`], an axum
//! extractor whose rejection is an [`ApiError`]. A body is refused over [`BODY_LIMIT`] (413),
//! past the shared [`BodyBudget`](super::budget::BodyBudget) (503), or when it stops arriving
//! (408).

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;

use super::api_error::ApiError;
use super::budget::Reservation;
use super::state::AppState;

/// Largest AdmissionReview body accepted (over it: 413). A review carries the object and the
/// old object; the API server caps objects well below this.
pub const BODY_LIMIT: usize = 3 * 1024 * 1024;

/// The whole body of an admission request, and its share of the body budget (given back when
/// this is dropped, after the answer is built).
#[derive(Debug)]
pub(crate) struct ReviewBody {
    pub(crate) bytes: Bytes,
    _share: Reservation,
}

impl FromRequest<AppState> for ReviewBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        read_body(request, state).await
    }
}

/// Read the body: refuse an announced length over the limit or past the budget before reading
/// anything, stop a body of unknown length as soon as it passes either, and give up on a slow
/// one.
async fn read_body(request: Request, state: &AppState) -> Result<ReviewBody, ApiError> {
    let announced = match announced_length(request.headers()) {
        Some(n) if n > BODY_LIMIT as u64 => return Err(ApiError::TooLarge { limit: BODY_LIMIT }),
        Some(n) => Some(n as usize),
        None => None,
    };
    let share = state
        .budget
        .reserve(announced.unwrap_or(0))
        .map_err(ApiError::Busy)?;
    let timeout = state.body_read_timeout;
    let mut read = std::pin::pin!(collect(request.into_body(), share));
    // A ~1 KB review usually arrives with its headers, so the first poll completes it; only
    // a body still in flight arms the timer (a timer-wheel entry per request is measurable).
    match poll_once(read.as_mut()).await {
        Some(read) => read,
        None => match tokio::time::timeout(timeout, read).await {
            Ok(read) => read,
            Err(_) => Err(ApiError::SlowBody(timeout)),
        },
    }
}

/// Every frame of `body`, its share grown as bytes arrive past what was announced.
async fn collect(mut body: Body, mut share: Reservation) -> Result<ReviewBody, ApiError> {
    let mut frames: Vec<Bytes> = Vec::new();
    let mut len = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::ReadBody(e.into_inner().to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        len += data.len();
        if len > BODY_LIMIT {
            return Err(ApiError::TooLarge { limit: BODY_LIMIT });
        }
        share.grow_to(len).map_err(ApiError::Busy)?;
        frames.push(data);
    }
    let bytes = match frames.len() {
        0 => Bytes::new(),
        1 => frames.pop().unwrap_or_default(),
        _ => {
            let mut all = Vec::with_capacity(len);
            for frame in &frames {
                all.extend_from_slice(frame);
            }
            Bytes::from(all)
        }
    };
    Ok(ReviewBody {
        bytes,
        _share: share,
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

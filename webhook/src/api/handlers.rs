//! The admission handlers: take the body ([`ReviewBody`]), call the service ([`admit`]), hand
//! back the AdmissionReview ([`Reviewed`]) or an [`ApiError`]. Counting and logging happen
//! around them, in the observing layer.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::api_error::ApiError;
use super::body::ReviewBody;
use super::budget::SMALL_BODY;
use super::state::AppState;
use crate::admit::{Answer, Endpoint, admit};

/// `POST /mutate`.
pub(crate) async fn mutate(
    State(state): State<AppState>,
    body: ReviewBody,
) -> Result<Reviewed, ApiError> {
    review(Endpoint::Mutate, &state, &body).await
}

/// `POST /validate`.
pub(crate) async fn validate(
    State(state): State<AppState>,
    body: ReviewBody,
) -> Result<Reviewed, ApiError> {
    review(Endpoint::Validate, &state, &body).await
}

async fn review(
    endpoint: Endpoint,
    state: &AppState,
    body: &ReviewBody,
) -> Result<Reviewed, ApiError> {
    // A large body amplifies into parsed objects and errors: one such review at a time.
    let _lane = if body.bytes.len() > SMALL_BODY {
        state.budget.large_lane().await
    } else {
        None
    };
    Ok(Reviewed(admit(endpoint, &body.bytes, &state.policy)?))
}

/// An answered AdmissionReview: HTTP 200 with the review as JSON, and its summary as a
/// response extension for the observing layer.
#[derive(Debug)]
pub(crate) struct Reviewed(pub(crate) Answer);

impl IntoResponse for Reviewed {
    fn into_response(self) -> Response {
        let Answer { review, summary } = self.0;
        match serde_json::to_vec(&review) {
            Ok(json) => {
                let mut response =
                    ([(header::CONTENT_TYPE, "application/json")], json).into_response();
                response.extensions_mut().insert(summary);
                response
            }
            Err(e) => ApiError::Encode(e).into_response(),
        }
    }
}

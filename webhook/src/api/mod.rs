//! The HTTP side of the admission endpoints on the TLS listener, in layers as kubewarden's
//! policy-server does it: [`handlers`] take the body and call the service (`crate::admit`),
//! [`api_error`] turns every failure into its own response, [`observe`] counts and logs each
//! request in one layer, [`state`] is what they share. `GET /livez` is the cheapest answer
//! (liveness over the serving path, and the transport ceiling in BENCHMARKS.md).

pub(crate) mod api_error;
pub(crate) mod body;
pub(crate) mod budget;
pub(crate) mod handlers;
pub(crate) mod observe;
pub(crate) mod state;

use axum::Router;
use axum::routing::{get, post};

use crate::admit::Endpoint;
use observe::Observe;
use state::AppState;

/// The router served on the TLS listener: `POST /mutate`, `POST /validate`, `GET /livez`.
pub fn webhook_router(state: AppState) -> Router {
    let observe = |endpoint| Observe::new(endpoint, state.metrics.clone());
    Router::new()
        .route(
            "/mutate",
            post(handlers::mutate).route_layer(observe(Endpoint::Mutate)),
        )
        .route(
            "/validate",
            post(handlers::validate).route_layer(observe(Endpoint::Validate)),
        )
        .route("/livez", get(|| async { "ok" }))
        .with_state(state)
}

//! tkeha-webhook: mutating and validating admission for `clusters.platform.tkestack.io` over
//! TLS, using the one rule engine in `tkeha-api`.
//!
//! `main.rs` is thin: [`cli`] parses flags, [`server::start`] runs. The routers are public so
//! tests drive them in-process with `tower::ServiceExt::oneshot`.

pub mod admission;
pub mod admit;
pub mod certs;
pub mod cli;
pub mod health;
pub mod logformat;
pub mod logwriter;
pub mod message;
pub mod metrics;
pub mod router;
pub mod server;
pub mod tls;

pub use admit::{Answer, Endpoint, Rejection, admit};
pub use health::{Readiness, health_router};
pub use metrics::Metrics;
pub use router::{AppState, BODY_LIMIT, webhook_router};
pub use server::{Running, ServerError, Settings, start, start_with};

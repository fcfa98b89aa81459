//! tkeha-webhook: mutating and validating admission for `clusters.platform.tkestack.io` over
//! TLS, using the one rule engine in `tkeha-api`.
//!
//! `main.rs` is thin: [`cli::Args`] parses flags and serves through [`start`]. The layers, from
//! the wire in: [`server`](start) (listeners, TLS, lifecycle), the HTTP API (handlers, errors as
//! responses, one observing layer for metrics and logs: [`webhook_router`]), the admission
//! service [`admit`] (no HTTP), and the rule engine `tkeha_api::review`. The routers are
//! public so tests drive them in-process with `tower::ServiceExt::oneshot`.
//!
//! Public modules are the API: [`admission`] (the AdmissionReview wire types and the answer
//! builders), [`cli`] (the flags), [`certs`] (development certificates). Everything else is
//! re-exported here as far as a caller needs it.

pub mod admission;
pub mod certs;
pub mod cli;

mod admit;
mod api;
mod health;
mod logging;
mod message;
mod metrics;
mod server;
mod tls;
mod valuecount;

pub use admission::MAX_PATCH_BYTES;
pub use admit::{Answer, Endpoint, GROUP, RESOURCE, Rejection, Summary, admit};
pub use api::body::BODY_LIMIT;
pub use api::budget::{BodyBudget, DEFAULT_BODY_BUDGET, SMALL_BODY, SMALL_RESERVE};
pub use api::state::{AppState, BODY_READ_TIMEOUT};
pub use api::webhook_router;
pub use certs::write_dev_certs;
pub use health::{Readiness, health_router};
pub use logging::{JsonLines, LogGuard, init_logging};
pub use message::{
    MAX_CAUSE_CHARS, MAX_CAUSES, MAX_FIELD_CHARS, MAX_MESSAGE_BYTES, MAX_WARNING_CHARS,
    MAX_WARNINGS,
};
pub use metrics::Metrics;
pub use server::{
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS, FdLimitError, Running, ServerError,
    Settings, start, start_with, termination,
};
pub use tls::{CertFiles, TlsError};
pub use valuecount::MAX_JSON_VALUES;

//! What every admission handler shares: the rule-engine policy, the metrics and the body limits.

use std::sync::Arc;
use std::time::Duration;

use tkeha_api::Policy;

use super::budget::{BodyBudget, DEFAULT_BODY_BUDGET};
use crate::metrics::Metrics;

/// Default longest wait for a request body once its headers are in.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What every admission handler shares. The router needs a Tokio runtime with timers (body
/// read timeout).
#[derive(Debug, Clone)]
pub struct AppState {
    /// The rule-engine knobs (flags).
    pub policy: Arc<Policy>,
    /// Where requests are counted and timed.
    pub metrics: Arc<Metrics>,
    /// Longest wait for the whole body (a client trickling it is answered 408).
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held at once, across all connections and streams.
    pub budget: Arc<BodyBudget>,
}

impl AppState {
    /// `policy` and `metrics` with the default body timeout and budget.
    pub fn new(policy: Policy, metrics: Arc<Metrics>) -> Self {
        Self {
            policy: Arc::new(policy),
            metrics: metrics.clone(),
            body_read_timeout: BODY_READ_TIMEOUT,
            budget: Arc::new(
                BodyBudget::new(DEFAULT_BODY_BUDGET).reporting_to(metrics.body_bytes_gauge()),
            ),
        }
    }
}

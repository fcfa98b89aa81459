//! Metrics and logging in one layer around each admission route: times the request, then counts
//! it and writes its one log line from what the handler left in the response's extensions
//! (a [`Summary`] for an answered review, a [`Failure`] for anything else).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::response::Response;
use tower::{Layer, Service};

use super::api_error::{FailedAt, Failure};
use crate::admit::{Endpoint, Summary};
use crate::message::{MAX_NAME_CHARS, bounded};
use crate::metrics::{Metrics, RequestResult};

/// The layer: one per admission route.
#[derive(Debug, Clone)]
pub(crate) struct Observe {
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
}

impl Observe {
    /// Observe requests to `endpoint` into `metrics` and the log.
    pub(crate) fn new(endpoint: Endpoint, metrics: Arc<Metrics>) -> Self {
        Self { endpoint, metrics }
    }
}

impl<S> Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed {
            inner,
            observe: self.clone(),
        }
    }
}

/// A route's service, observed.
#[derive(Debug, Clone)]
pub(crate) struct Observed<S> {
    inner: S,
    observe: Observe,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ObservedFuture {
            start: Instant::now(),
            inner: self.inner.call(request),
            observe: Some(self.observe.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's future; records the request when it completes.
    pub(crate) struct ObservedFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        observe: Option<Observe>,
    }
}

impl<F, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(observe)) = (&mut result, this.observe.take()) {
            observe.record(*this.start, response);
        }
        Poll::Ready(result)
    }
}

impl Observe {
    /// Count the request, time it, and write its log line.
    fn record(&self, start: Instant, response: &mut Response) {
        let latency = start.elapsed();
        let endpoint = self.endpoint.as_str();
        let extensions = response.extensions_mut();
        if let Some(summary) = extensions.remove::<Summary>() {
            let result = if summary.allowed {
                RequestResult::Allowed
            } else {
                RequestResult::Denied
            };
            self.metrics
                .observe(self.endpoint, result, latency.as_secs_f64());
            let subject = &summary.subject;
            // Echoed from the request: bounded and without control characters, like answers.
            let uid = bounded(&subject.uid, MAX_NAME_CHARS);
            let kind = bounded(&subject.kind, MAX_NAME_CHARS);
            let name = bounded(&subject.name, MAX_NAME_CHARS);
            tracing::info!(
                endpoint,
                // As &str (not `%`): recorded directly, without the formatting machinery.
                uid = &*uid,
                kind = &*kind,
                name = &*name,
                operation = subject.operation.as_str(),
                dry_run = subject.dry_run,
                allowed = summary.allowed,
                patch_ops = summary.patch_ops,
                warnings = summary.warnings,
                latency_us = latency.as_micros() as u64,
                "review"
            );
            return;
        }
        self.metrics
            .observe(self.endpoint, RequestResult::Error, latency.as_secs_f64());
        let Some(failure) = extensions.remove::<Failure>() else {
            return;
        };
        if response.status() == axum::http::StatusCode::SERVICE_UNAVAILABLE {
            self.metrics.budget_refused();
        }
        let status = response.status().as_u16();
        let error = failure.message.as_str();
        match failure.at {
            FailedAt::Body => {
                tracing::warn!(endpoint, status, error, "admission request body rejected");
            }
            FailedAt::Review => tracing::warn!(endpoint, error, "bad admission request"),
            FailedAt::Answer => tracing::error!(endpoint, status, error, "answer not encoded"),
        }
    }
}

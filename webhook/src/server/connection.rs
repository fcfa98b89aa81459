//! One accepted connection: HTTP/1.1 or HTTP/2 (hyper-util's auto builder) over an already
//! handshaken stream, and when to close it. A connection is closed gracefully (HTTP/2 GOAWAY,
//! HTTP/1.1 after the response in flight) when no request has been in flight for the idle
//! timeout, when the listener is full and a new connection waits for room (idle ones only), or
//! when the server drains; it is dropped when the server stops.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::Service;

/// Where the server is in its life, as every connection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Serving.
    Serving,
    /// Finish what is in flight, then close.
    Draining,
    /// Close now.
    Stopped,
}

/// The HTTP settings of every connection of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    /// Longest wait for a request's headers (HTTP/1.1).
    pub(crate) header_read_timeout: Duration,
    /// Close a connection with no request in flight for this long.
    pub(crate) idle_timeout: Duration,
    /// Most concurrent HTTP/2 streams per connection.
    pub(crate) max_concurrent_streams: u32,
    /// HTTP/2 keep-alive ping interval (and how long an answer may take).
    pub(crate) keepalive_interval: Duration,
}

/// hyper-util's builder for these settings.
pub(crate) fn builder(http: &Http) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        // Reads of at most 64 KiB at a time: a connection's own buffer stays small, whatever
        // the peer sends; request bodies are accounted in the body budget.
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(http.max_concurrent_streams)
        .keep_alive_interval(http.keepalive_interval)
        .keep_alive_timeout(http.keepalive_interval)
        // Streams a client opens and resets at once (HTTP/2 rapid reset) count against this.
        .max_pending_accept_reset_streams(Some(64));
    builder
}

/// What tells a connection to close.
#[derive(Debug, Clone)]
pub(crate) struct Signals {
    /// The server's phase.
    pub(crate) phase: watch::Receiver<Phase>,
    /// Notified when a new connection waits for room: idle connections close.
    pub(crate) room: Arc<Notify>,
}

/// Requests in flight on one connection, and since when it has had none.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `born` when the last request ended (or the connection opened).
    idle_since_ms: AtomicU64,
    born: Instant,
    went_idle: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            born: Instant::now(),
            went_idle: Notify::new(),
        }
    }

    fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end(&self) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let now = self.born.elapsed().as_millis() as u64;
            self.idle_since_ms.store(now, Ordering::Release);
            self.went_idle.notify_one();
        }
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection will have been idle for `timeout`, if it is idle now.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if !self.is_idle() {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire));
        Some(self.born + since + timeout)
    }
}

/// Ends the request's activity when dropped (finished, or cancelled by a reset stream).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The router, counting requests in flight on its connection.
#[derive(Clone)]
struct Tracked {
    router: Router,
    activity: Arc<Activity>,
}

impl Service<Request<Incoming>> for Tracked {
    type Response = Response;
    type Error = Infallible;
    type Future = TrackedFuture<<Router as Service<Request<Incoming>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request<Incoming>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        self.activity.begin();
        TrackedFuture {
            inner: self.router.call(request),
            _in_flight: InFlight(self.activity.clone()),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's future, holding the request's place among those in flight.
    struct TrackedFuture<F> {
        #[pin]
        inner: F,
        _in_flight: InFlight,
    }
}

impl<F: Future> Future for TrackedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

/// Serve HTTP on `io` with `router` until the peer goes, the connection idles out, or the
/// server stops.
pub(crate) async fn serve<I>(
    io: I,
    router: Router,
    builder: &auto::Builder<TokioExecutor>,
    idle_timeout: Duration,
    mut signals: Signals,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = TowerToHyperService::new(Tracked {
        router,
        activity: activity.clone(),
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = *signals.phase.borrow() != Phase::Serving;
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        // Idle: close at the deadline. Busy: look again when the last request ends.
        let deadline = activity.idle_deadline(idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() && !closing => {
                if activity
                    .idle_deadline(idle_timeout)
                    .is_some_and(|d| d <= Instant::now())
                {
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = activity.went_idle.notified(), if deadline.is_none() => {}
            _ = signals.room.notified(), if activity.is_idle() && !closing => {
                tracing::debug!("closing an idle connection to make room");
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            changed = signals.phase.changed() => {
                let phase = if changed.is_ok() { *signals.phase.borrow() } else { Phase::Stopped };
                match phase {
                    Phase::Serving => {}
                    Phase::Draining => {
                        if !closing {
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                    Phase::Stopped => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_from_its_last_request_on() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(10);
        let opened = Instant::now();
        assert_eq!(activity.idle_deadline(timeout), Some(opened + timeout));
        activity.begin();
        activity.begin();
        assert_eq!(activity.idle_deadline(timeout), None);
        tokio::time::advance(Duration::from_secs(30)).await;
        activity.end();
        assert_eq!(activity.idle_deadline(timeout), None, "one still in flight");
        tokio::time::advance(Duration::from_secs(5)).await;
        activity.end();
        let deadline = activity.idle_deadline(timeout).map(|d| d - opened);
        assert_eq!(deadline, Some(Duration::from_secs(45)));
    }
}

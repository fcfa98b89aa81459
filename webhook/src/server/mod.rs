//! Server lifecycle: bind the TLS and health listeners, serve, watch the certificate files,
//! and shut down gracefully (readiness false first, then drain in-flight requests).
//!
//! [`listener`] accepts within the connection limit, [`connection`] serves one connection and
//! decides when to close it; hyper-util speaks HTTP/1.1 and HTTP/2, tokio-rustls TLS.

mod connection;
mod listener;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tkeha_api::Policy;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::api::budget::{BodyBudget, DEFAULT_BODY_BUDGET};
use crate::api::state::AppState;
use crate::api::webhook_router;
use crate::health::{Readiness, health_router};
use crate::metrics::Metrics;
use crate::tls::{CertFiles, LiveTls, TlsError};
use connection::{Http, Phase, Signals};
pub use listener::FdLimitError;
use listener::{HEALTH_MAX_CONNECTIONS, Limits};

/// Default most TLS connections at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default most concurrent HTTP/2 streams per connection.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 32;

/// Everything the server needs (the CLI builds it from flags; tests build it directly).
#[derive(Debug, Clone)]
pub struct Settings {
    /// TLS listener for the admission endpoints.
    pub listen: SocketAddr,
    /// Plain listener for `/healthz`, `/readyz`, `/metrics`.
    pub health_listen: SocketAddr,
    /// The serving certificate and key files.
    pub tls: CertFiles,
    /// The rule-engine knobs.
    pub policy: Policy,
    /// How often the certificate files are re-read.
    pub cert_reload_interval: Duration,
    /// Longest wait for a request's headers (slow clients are disconnected).
    pub header_read_timeout: Duration,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// Longest wait for a request body once the headers are in (slow clients get 408).
    pub body_read_timeout: Duration,
    /// A connection (HTTP/1.1 or HTTP/2) with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 keep-alive pings: sent this often, and the connection closed if one is not
    /// answered within the same time.
    pub http2_keepalive_interval: Duration,
    /// Most TLS connections at once (a new one waits for room, and idle connections are closed
    /// to make it); held below `RLIMIT_NOFILE`.
    pub max_connections: usize,
    /// Most concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Bytes of request bodies held at once, across all connections and streams (past it: 503).
    pub body_budget: usize,
    /// After SIGTERM: time with `/readyz` failing before the listener stops accepting, so
    /// load balancers stop sending new connections first.
    pub shutdown_delay: Duration,
    /// After that: longest wait for in-flight requests.
    pub shutdown_timeout: Duration,
}

impl Settings {
    /// Defaults for everything but the addresses and files.
    pub fn new(listen: SocketAddr, health_listen: SocketAddr, tls: CertFiles) -> Self {
        Self {
            listen,
            health_listen,
            tls,
            policy: Policy::default(),
            cert_reload_interval: Duration::from_secs(2),
            header_read_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            body_read_timeout: crate::api::state::BODY_READ_TIMEOUT,
            idle_timeout: Duration::from_secs(10),
            http2_keepalive_interval: Duration::from_secs(10),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            body_budget: DEFAULT_BODY_BUDGET,
            shutdown_delay: Duration::from_secs(2),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The certificate files could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener could not be opened.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file descriptor limit leaves no room for connections.
    #[error(transparent)]
    FdLimit(#[from] FdLimitError),
    /// A server task panicked or was cancelled.
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// Bound TLS address (useful with port 0).
    pub addr: SocketAddr,
    /// Bound health address.
    pub health_addr: SocketAddr,
    /// The server's metrics (also on `/metrics`).
    pub metrics: Arc<Metrics>,
    /// What `/readyz` reports (turned off when shutdown begins).
    pub readiness: Readiness,
    /// Most TLS connections at once, after the `RLIMIT_NOFILE` cap.
    pub max_connections: usize,
    lifecycle: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Wait until the server has shut down (after `shutdown` resolved and requests drained).
    ///
    /// # Errors
    ///
    /// [`ServerError::Task`] if a server task panicked.
    pub async fn wait(self) -> Result<(), ServerError> {
        self.lifecycle.await?
    }
}

/// Bind both listeners and serve until `shutdown` resolves: the entry point of the server.
///
/// Loads the certificate pair, binds the TLS listener (admission endpoints) and the plain
/// health listener, starts serving and watching the certificate files, and returns as soon as
/// both listeners accept. When `shutdown` resolves, `/readyz` turns false, and after
/// [`Settings::shutdown_delay`] the listener closes and in-flight requests get up to
/// [`Settings::shutdown_timeout`]; [`Running::wait`] returns then.
///
/// # Errors
///
/// [`ServerError::Tls`] if the certificate files cannot be read or do not form a usable pair,
/// [`ServerError::Bind`] if a listener cannot be opened. Nothing is served then.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use tkeha_webhook::{CertFiles, Settings, start, write_dev_certs};
///
/// let dir = tempfile::tempdir()?;
/// let certs = write_dev_certs(dir.path(), &["localhost".to_string()])?;
/// let files = CertFiles { cert: certs.tls_cert, key: certs.tls_key };
/// let any_port = "127.0.0.1:0".parse()?;
/// let settings = Settings {
///     shutdown_delay: std::time::Duration::ZERO,
///     ..Settings::new(any_port, any_port, files)
/// };
/// // Here the server stops at once; the binary passes `termination()` (SIGTERM, SIGINT).
/// let running = start(settings, async {}).await?;
/// assert_ne!(running.addr.port(), 0);
/// running.wait().await?;
/// # Ok(())
/// # }
/// ```
pub async fn start(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServerError> {
    start_with(settings, Router::new(), shutdown).await
}

/// [`start`] with `extra` routes beside the admission ones on the TLS listener (benchmarks
/// compare the admission endpoints with a reference handler on exactly the same stack).
///
/// # Errors
///
/// As [`start`], and [`ServerError::FdLimit`] when `RLIMIT_NOFILE` is too low for any
/// connection.
pub async fn start_with(
    settings: Settings,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServerError> {
    let (server_config, fingerprint) = settings.tls.load()?;
    let live_tls = LiveTls::new(server_config);
    let max_connections =
        listener::connection_limit(settings.max_connections, listener::nofile_limit())?;
    if max_connections < settings.max_connections {
        tracing::warn!(
            max_connections,
            wanted = settings.max_connections,
            "RLIMIT_NOFILE caps the connection limit"
        );
    }

    let bind = |addr: SocketAddr| async move {
        let bind_err = |source| ServerError::Bind { addr, source };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(bind_err)?;
        let local = listener.local_addr().map_err(bind_err)?;
        Ok::<_, ServerError>((listener, local))
    };
    let (tls_listener, addr) = bind(settings.listen).await?;
    let (health_listener, health_addr) = bind(settings.health_listen).await?;

    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let state = AppState {
        body_read_timeout: settings.body_read_timeout,
        budget: Arc::new(
            BodyBudget::new(settings.body_budget).reporting_to(metrics.body_bytes_gauge()),
        ),
        ..AppState::new(settings.policy.clone(), metrics.clone())
    };
    let http = Http {
        header_read_timeout: settings.header_read_timeout,
        idle_timeout: settings.idle_timeout,
        max_concurrent_streams: settings.max_concurrent_streams,
        keepalive_interval: settings.http2_keepalive_interval,
    };

    let (tls_phase, tls_signals) = signals();
    let tls_task = tokio::spawn(serve_tls(
        tls_listener,
        Limits {
            max_connections,
            signals: tls_signals,
        },
        webhook_router(state).merge(extra),
        http.clone(),
        live_tls.clone(),
        settings.handshake_timeout,
        metrics.clone(),
    ));
    let (health_phase, health_signals) = signals();
    let health_task = tokio::spawn(serve_plain(
        health_listener,
        Limits {
            max_connections: HEALTH_MAX_CONNECTIONS,
            signals: health_signals,
        },
        health_router(readiness.clone(), metrics.clone()),
        http,
        metrics.clone(),
    ));

    let watcher = tokio::spawn(crate::tls::watch(
        settings.tls.clone(),
        live_tls,
        fingerprint,
        settings.cert_reload_interval,
        metrics.clone(),
    ));

    readiness.set(true);
    tracing::info!(%addr, %health_addr, max_connections, "tkeha-webhook serving");

    let lifecycle_ready = readiness.clone();
    let (delay, timeout) = (settings.shutdown_delay, settings.shutdown_timeout);
    let lifecycle = tokio::spawn(async move {
        shutdown.await;
        lifecycle_ready.set(false);
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutdown requested: not ready, draining"
        );
        tokio::time::sleep(delay).await;
        let _ = tls_phase.send(Phase::Draining);
        let mut tls_task = tls_task;
        let drained = tokio::time::timeout(timeout, &mut tls_task).await;
        if drained.is_err() {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "requests still in flight after the shutdown timeout; closing their connections"
            );
            let _ = tls_phase.send(Phase::Stopped);
        }
        let served = match drained {
            Ok(served) => served,
            Err(_) => tls_task.await,
        };
        watcher.abort();
        let _ = health_phase.send(Phase::Stopped);
        let health = health_task.await;
        served?;
        health?;
        tracing::info!("tkeha-webhook stopped");
        Ok(())
    });

    Ok(Running {
        addr,
        health_addr,
        metrics,
        readiness,
        max_connections,
        lifecycle,
    })
}

/// A phase sender and the signals its connections listen to.
fn signals() -> (watch::Sender<Phase>, Signals) {
    let (phase_tx, phase) = watch::channel(Phase::Serving);
    let signals = Signals {
        phase,
        room: Arc::new(Notify::new()),
    };
    (phase_tx, signals)
}

/// The TLS listener: handshake (bounded, with the certificate of the moment), then HTTP.
async fn serve_tls(
    tcp: tokio::net::TcpListener,
    limits: Limits,
    router: Router,
    http: Http,
    live_tls: LiveTls,
    handshake_timeout: Duration,
    metrics: Arc<Metrics>,
) {
    let builder = Arc::new(connection::builder(&http));
    let signals = limits.signals.clone();
    let conn_metrics = metrics.clone();
    listener::run(tcp, limits, metrics, move |stream, slot| {
        let acceptor = tokio_rustls::TlsAcceptor::from(live_tls.current());
        let (router, builder, mut signals, metrics) = (
            router.clone(),
            builder.clone(),
            signals.clone(),
            conn_metrics.clone(),
        );
        let idle_timeout = http.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let _open = metrics.connection_opened();
            let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                },
                _ = signals.phase.wait_for(|p| *p != Phase::Serving) => return,
            };
            connection::serve(tls, router, &builder, idle_timeout, signals).await;
        });
    })
    .await;
}

/// The plain health listener.
async fn serve_plain(
    tcp: tokio::net::TcpListener,
    limits: Limits,
    router: Router,
    http: Http,
    metrics: Arc<Metrics>,
) {
    let builder = Arc::new(connection::builder(&http));
    let signals = limits.signals.clone();
    listener::run(tcp, limits, metrics, move |stream, slot| {
        let (router, builder, signals) = (router.clone(), builder.clone(), signals.clone());
        let idle_timeout = http.idle_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            connection::serve(stream, router, &builder, idle_timeout, signals).await;
        });
    })
    .await;
}

/// Resolves on SIGTERM (kubelet) or SIGINT (Ctrl-C): the usual `shutdown` for [`start`].
pub async fn termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, only Ctrl-C through tokio's fallback remains.
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

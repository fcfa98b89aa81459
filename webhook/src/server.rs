//! Server lifecycle: bind the TLS and health listeners, serve, watch the certificate files,
//! and shut down gracefully (readiness false first, then drain in-flight requests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use tkeha_api::Policy;
use tokio::task::JoinHandle;

use crate::api::state::AppState;
use crate::api::webhook_router;
use crate::health::{Readiness, health_router};
use crate::metrics::Metrics;
use crate::tls::{CertFiles, TlsError};

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
    /// A listener failed while serving.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
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
    lifecycle: JoinHandle<Result<(), ServerError>>,
}

impl Running {
    /// Wait until the server has shut down (after `shutdown` resolved and requests drained).
    ///
    /// # Errors
    ///
    /// [`ServerError::Serve`] if a listener failed, [`ServerError::Task`] if a server task
    /// panicked.
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
/// As [`start`].
pub async fn start_with(
    settings: Settings,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, ServerError> {
    let (server_config, fingerprint) = settings.tls.load()?;
    let live_tls = RustlsConfig::from_config(Arc::new(server_config));

    let bind_err = |addr| move |source| ServerError::Bind { addr, source };
    let tls_listener =
        std::net::TcpListener::bind(settings.listen).map_err(bind_err(settings.listen))?;
    tls_listener
        .set_nonblocking(true)
        .map_err(bind_err(settings.listen))?;
    let addr = tls_listener
        .local_addr()
        .map_err(bind_err(settings.listen))?;
    let health_listener = tokio::net::TcpListener::bind(settings.health_listen)
        .await
        .map_err(bind_err(settings.health_listen))?;
    let health_addr = health_listener
        .local_addr()
        .map_err(bind_err(settings.health_listen))?;

    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let state = AppState {
        body_read_timeout: settings.body_read_timeout,
        ..AppState::new(settings.policy.clone(), metrics.clone())
    };

    let handle = axum_server::Handle::new();
    let handshake_timeout = settings.handshake_timeout;
    let mut server = axum_server::from_tcp_rustls(tls_listener, live_tls.clone())
        .map_err(bind_err(addr))?
        // TCP_NODELAY: without it, Nagle holds a response back until the previous segment
        // (e.g. TLS session tickets) is acknowledged, up to the peer's 40 ms delayed ACK.
        .map(|acceptor| {
            acceptor
                .handshake_timeout(handshake_timeout)
                .acceptor(axum_server::accept::NoDelayAcceptor::new())
        })
        .first_request_timeout(settings.header_read_timeout)
        .handle(handle.clone());
    server
        .http_builder()
        .http1()
        .header_read_timeout(settings.header_read_timeout);
    let app = webhook_router(state).merge(extra);
    let tls_task = tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let (health_stop_tx, health_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let health_app = health_router(readiness.clone(), metrics.clone());
    let health_task = tokio::spawn(async move {
        axum::serve(health_listener, health_app)
            .with_graceful_shutdown(async {
                let _ = health_stop_rx.await;
            })
            .await
    });

    let watcher = tokio::spawn(crate::tls::watch(
        settings.tls.clone(),
        live_tls,
        fingerprint,
        settings.cert_reload_interval,
        metrics.clone(),
    ));

    readiness.set(true);
    tracing::info!(%addr, %health_addr, "tkeha-webhook serving");

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
        handle.graceful_shutdown(Some(timeout));
        let served = tls_task.await;
        watcher.abort();
        let _ = health_stop_tx.send(());
        let health = health_task.await;
        served?.map_err(ServerError::Serve)?;
        health?.map_err(ServerError::Serve)?;
        tracing::info!("tkeha-webhook stopped");
        Ok(())
    });

    Ok(Running {
        addr,
        health_addr,
        metrics,
        readiness,
        lifecycle,
    })
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

//! Command-line flags of `tkeha-webhook` and their translation into [`Settings`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use tkeha_api::{Policy, SingleMasterPolicy};

use crate::server::{ServerError, Settings, start_with};
use crate::tls::CertFiles;

/// Admission webhook for clusters.platform.tkestack.io: defaults (POST /mutate) and HA rules
/// (POST /validate) over TLS; /healthz, /readyz and /metrics on a plain side listener.
#[derive(Debug, Parser)]
#[command(name = "tkeha-webhook", version)]
pub struct Args {
    /// TLS listener for /mutate and /validate.
    #[arg(long, env = "TKEHA_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Plain HTTP listener for /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "TKEHA_WEBHOOK_HEALTH_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub health_listen: SocketAddr,

    /// Serving certificate chain (PEM), re-read when it changes.
    #[arg(
        long,
        env = "TKEHA_WEBHOOK_TLS_CERT",
        required_unless_present = "gen_certs"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Private key of the serving certificate (PEM), re-read when it changes.
    #[arg(
        long,
        env = "TKEHA_WEBHOOK_TLS_KEY",
        required_unless_present = "gen_certs"
    )]
    pub tls_key: Option<PathBuf>,

    /// Third-party HA with fewer than 2 masters: deny (most cloud LBs cannot reach their own
    /// backend through the VIP) or only warn (for LBs that can).
    #[arg(long, value_enum, default_value_t = SingleMaster::Error)]
    pub third_party_single_master: SingleMaster,

    /// Kubernetes versions allowed in spec.version (comma separated); any well-formed one if unset.
    #[arg(long, value_delimiter = ',')]
    pub allowed_versions: Option<Vec<String>>,

    /// How often the certificate files are compared with what is served (e.g. 2s, 500ms).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub cert_reload_interval: Duration,

    /// Longest wait for a request's headers before the connection is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Longest TLS handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub tls_handshake_timeout: Duration,

    /// Longest wait for a request body once its headers are in (slower clients get 408).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,

    /// Close a connection (HTTP/1.1 or HTTP/2) with no request in flight for this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// HTTP/2 keep-alive pings: sent this often; a peer that does not answer one within the
    /// same time is disconnected.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// Most TLS connections at once; more wait, and idle ones are closed to make room. Held
    /// below the file descriptor limit (RLIMIT_NOFILE minus 80).
    #[arg(long, default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=65_536).map(|n| n as usize))]
    pub max_connections: usize,

    /// Most concurrent HTTP/2 streams per connection.
    #[arg(long, default_value_t = crate::server::DEFAULT_MAX_CONCURRENT_STREAMS, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub max_concurrent_streams: u32,

    /// Memory for request bodies in flight, shared by all connections and streams (e.g. 16MiB,
    /// 512KiB, or bytes); a body past it is answered 503 with Retry-After. At least 8MiB: 4MiB
    /// kept for ordinary reviews beside one body at the 3MiB limit.
    #[arg(long, default_value = "16MiB", value_parser = parse_budget)]
    pub body_budget: usize,

    /// After SIGTERM, how long /readyz fails before the listener stops accepting.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// After that, the longest wait for in-flight requests.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,

    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    pub worker_threads: Option<usize>,

    /// Development: write a fresh CA (ca.crt) and a serving pair (tls.crt, tls.key) into DIR
    /// for --gen-certs-host names, then exit.
    #[arg(long, value_name = "DIR")]
    pub gen_certs: Option<PathBuf>,

    /// DNS names or IPs the generated serving certificate covers.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub gen_certs_host: Vec<String>,
}

/// `--third-party-single-master`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SingleMaster {
    /// Deny.
    Error,
    /// Allow with a warning.
    Warning,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for collectors).
    Json,
    /// tracing-subscriber's compact text (for people).
    Compact,
}

impl Args {
    /// The rule-engine policy the flags ask for.
    pub fn policy(&self) -> Policy {
        Policy {
            third_party_single_master: match self.third_party_single_master {
                SingleMaster::Error => SingleMasterPolicy::Error,
                SingleMaster::Warning => SingleMasterPolicy::Warning,
            },
            version_allow_list: self.allowed_versions.as_ref().map(|versions| {
                versions
                    .iter()
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect()
            }),
            ..Policy::default()
        }
    }

    /// Server settings; `None` if the TLS files are missing (only allowed with --gen-certs).
    pub fn settings(&self) -> Option<Settings> {
        let tls = CertFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        };
        Some(Settings {
            policy: self.policy(),
            cert_reload_interval: self.cert_reload_interval,
            header_read_timeout: self.header_read_timeout,
            handshake_timeout: self.tls_handshake_timeout,
            body_read_timeout: self.body_read_timeout,
            idle_timeout: self.idle_timeout,
            http2_keepalive_interval: self.http2_keepalive_interval,
            max_connections: self.max_connections,
            max_concurrent_streams: self.max_concurrent_streams,
            body_budget: self.body_budget,
            shutdown_delay: self.shutdown_delay,
            shutdown_timeout: self.shutdown_timeout,
            ..Settings::new(self.listen, self.health_listen, tls)
        })
    }

    /// Serve with these flags until `shutdown` resolves, with `extra` routes beside the
    /// admission ones: ring as the process's crypto provider, a multi-threaded Tokio runtime
    /// (`--worker-threads`, default one worker per core), then [`start_with`].
    ///
    /// # Errors
    ///
    /// [`ServeError`]: no certificate files, no runtime, the server did not start (its
    /// certificates or listeners), or it stopped with an error.
    pub fn serve(
        &self,
        extra: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        // ring is the only provider in the tree; make it the process default for any rustls user.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = self.settings().ok_or(ServeError::NoTlsFiles)?;
        let mut runtime = tokio::runtime::Builder::new_multi_thread();
        runtime.enable_all();
        if let Some(n) = self.worker_threads {
            runtime.worker_threads(n.max(1));
        }
        let runtime = runtime.build().map_err(ServeError::Runtime)?;
        runtime.block_on(async move {
            let running = start_with(settings, extra, shutdown)
                .await
                .map_err(ServeError::Start)?;
            running.wait().await.map_err(ServeError::Failed)
        })
    }
}

/// Why [`Args::serve`] did not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// No certificate files were given.
    #[error("--tls-cert and --tls-key are required")]
    NoTlsFiles,
    /// The Tokio runtime could not be built.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The server did not start (certificates, listeners).
    #[error("starting tkeha-webhook")]
    Start(#[source] ServerError),
    /// The server stopped with an error.
    #[error("tkeha-webhook failed")]
    Failed(#[source] ServerError),
}

/// `16MiB`, `512KiB`, or a bare number of bytes; at least [`MIN_BODY_BUDGET`].
pub fn parse_budget(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (like 16MiB, 512KiB, or bytes)"))?;
    let scale = match unit {
        "" | "B" => 1,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (KiB, MiB, GiB)")),
    };
    let bytes = value
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes < MIN_BODY_BUDGET {
        return Err(format!(
            "{text:?} is below 8MiB: the budget keeps 4MiB for ordinary reviews and needs room for one body at the 3MiB limit"
        ));
    }
    Ok(bytes)
}

/// Smallest `--body-budget`: the small-review reserve plus one body at the limit, rounded up.
pub const MIN_BODY_BUDGET: usize = 8 * 1024 * 1024;

/// `500ms`, `2s`, `1m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(format!("{text:?} is out of range (0 < d <= 24h)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_budget("16MiB").unwrap(), 16 * 1024 * 1024);
        assert_eq!(parse_budget("8192KiB").unwrap(), 8 * 1024 * 1024);
        assert_eq!(parse_budget("8388608").unwrap(), 8 * 1024 * 1024);
        assert!(parse_budget("1MiB").unwrap_err().contains("below 8MiB"));
        assert!(parse_budget("16MB").unwrap_err().contains("unknown unit"));
        assert!(parse_budget("lots").is_err());
        assert!(parse_budget("99999999999999999999GiB").is_err());
    }

    #[test]
    fn defaults_and_policy_flags() {
        let args = Args::parse_from(["tkeha-webhook", "--tls-cert", "c", "--tls-key", "k"]);
        let s = args.settings().unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(s.health_listen.to_string(), "0.0.0.0:8080");
        assert_eq!(
            s.policy.third_party_single_master,
            SingleMasterPolicy::Error
        );
        assert_eq!(s.policy.version_allow_list, None);
        assert_eq!(s.body_budget, crate::DEFAULT_BODY_BUDGET);
        assert_eq!(s.max_connections, 256);
        assert_eq!(s.max_concurrent_streams, 32);
        assert_eq!(s.idle_timeout, Duration::from_secs(10));

        let args = Args::parse_from([
            "tkeha-webhook",
            "--tls-cert=c",
            "--tls-key=k",
            "--third-party-single-master=warning",
            "--allowed-versions=1.30.4, 1.31.2",
            "--cert-reload-interval=1s",
            "--body-read-timeout=750ms",
            "--body-budget=32MiB",
            "--max-connections=64",
            "--max-concurrent-streams=8",
            "--idle-timeout=30s",
        ]);
        let s = args.settings().unwrap();
        assert_eq!(
            s.policy.third_party_single_master,
            SingleMasterPolicy::Warning
        );
        assert_eq!(
            s.policy.version_allow_list,
            Some(vec!["1.30.4".to_string(), "1.31.2".to_string()])
        );
        assert_eq!(s.cert_reload_interval, Duration::from_secs(1));
        assert_eq!(s.body_read_timeout, Duration::from_millis(750));
        assert_eq!(s.body_budget, 32 * 1024 * 1024);
        assert_eq!(s.max_connections, 64);
        assert_eq!(s.max_concurrent_streams, 8);
        assert_eq!(s.idle_timeout, Duration::from_secs(30));
        assert!(
            Args::try_parse_from(["tkeha-webhook", "--max-connections=0"]).is_err(),
            "zero connections"
        );
    }

    #[test]
    fn tls_files_are_required_unless_generating_certs() {
        assert!(Args::try_parse_from(["tkeha-webhook"]).is_err());
        let args = Args::try_parse_from(["tkeha-webhook", "--gen-certs", "/tmp/x"]).unwrap();
        assert!(args.settings().is_none());
    }
}

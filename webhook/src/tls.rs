//! Serving certificate: load a PEM pair into a rustls config (ring provider) and re-read the
//! files when their content changes, without a restart.
//!
//! Polls file *content* (hash compare) rather than using inotify: a Kubernetes Secret volume
//! is updated by swapping a `..data` symlink, which file watches on the old inode miss. A pair
//! that fails to load (half-written, mismatched key, garbage) is logged and the current
//! certificate is kept; the same broken content is not retried until it changes again.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::metrics::Metrics;

/// Why a certificate/key pair could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{path}: no PEM CERTIFICATE block")]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The certificate file is not valid PEM.
    #[error("{path}: invalid certificate PEM: {message}")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong (never the file's content).
        message: String,
    },
    /// The key file holds no key we can use.
    #[error("{path}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {message}")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never key material).
        message: String,
    },
    /// The key does not belong to the certificate, or rustls refuses the pair.
    #[error("certificate {cert} and key {key} do not form a usable pair: {source}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        #[source]
        source: rustls::Error,
    },
}

/// Where the serving certificate chain and its key live.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate chain, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
}

/// The bytes of both files, read once.
struct PairBytes {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl PairBytes {
    fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.cert.hash(&mut h);
        self.key.hash(&mut h);
        h.finish()
    }
}

impl CertFiles {
    fn read(&self) -> Result<PairBytes, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok(PairBytes {
            cert: read(&self.cert)?,
            key: read(&self.key)?,
        })
    }

    fn build(&self, bytes: &PairBytes) -> Result<ServerConfig, TlsError> {
        server_config(&bytes.cert, &bytes.key).map_err(|e| e.with_paths(self))
    }

    /// Read and check the pair now (startup: a broken pair is fatal).
    pub fn load(&self) -> Result<(ServerConfig, u64), TlsError> {
        let bytes = self.read()?;
        let config = self.build(&bytes)?;
        Ok((config, bytes.fingerprint()))
    }
}

/// The rustls config new connections are handshaken with, swapped when the files change.
#[derive(Debug, Clone)]
pub(crate) struct LiveTls(Arc<RwLock<Arc<ServerConfig>>>);

impl LiveTls {
    /// Serve `config` until replaced.
    pub(crate) fn new(config: ServerConfig) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(config))))
    }

    /// The config for the next handshake.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, config: ServerConfig) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }
}

/// A pair error before we know which files it came from.
enum PemError {
    NoCertificate,
    BadCertificate(String),
    BadKey(String),
    Pair(rustls::Error),
}

impl PemError {
    fn with_paths(self, files: &CertFiles) -> TlsError {
        match self {
            PemError::NoCertificate => TlsError::NoCertificate {
                path: files.cert.clone(),
            },
            PemError::BadCertificate(message) => TlsError::BadCertificate {
                path: files.cert.clone(),
                message,
            },
            PemError::BadKey(message) => TlsError::BadKey {
                path: files.key.clone(),
                message,
            },
            PemError::Pair(source) => TlsError::Pair {
                cert: files.cert.clone(),
                key: files.key.clone(),
                source,
            },
        }
    }
}

/// A rustls server config (ring, TLS 1.2 and 1.3, ALPN h2 and http/1.1) from PEM bytes.
/// Fails if the key does not belong to the first certificate.
fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, PemError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| PemError::BadCertificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(PemError::NoCertificate);
    }
    // The pem error never contains key material, only what kind of section was wrong.
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| PemError::BadKey(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(PemError::Pair)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(PemError::Pair)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Poll `files` every `interval` and swap the served certificate into `live` when the
/// content changed and loads cleanly. Runs until the task is dropped.
///
/// Reading the files takes a file descriptor; the server keeps descriptors in reserve for this
/// (its connection limit stays below `RLIMIT_NOFILE`), so a reload works even when every
/// connection slot is taken.
pub(crate) async fn watch(
    files: CertFiles,
    live: LiveTls,
    mut current: u64,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_failed: Option<u64> = None;
    let mut read_failing = false;
    loop {
        ticker.tick().await;
        let files2 = files.clone();
        // Small files; a blocking read keeps the async workers free of slow disks anyway.
        let read = tokio::task::spawn_blocking(move || files2.read()).await;
        let bytes = match read {
            Ok(Ok(bytes)) => {
                read_failing = false;
                bytes
            }
            Ok(Err(e)) => {
                // A symlink swap can briefly hide a file: warn once, keep serving.
                if !read_failing {
                    tracing::warn!(error = %e, "cannot read TLS files; keeping the current certificate");
                }
                read_failing = true;
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS file read task failed");
                continue;
            }
        };
        let fingerprint = bytes.fingerprint();
        if fingerprint == current || Some(fingerprint) == last_failed {
            continue;
        }
        match files.build(&bytes) {
            Ok(config) => {
                live.replace(config);
                current = fingerprint;
                last_failed = None;
                metrics.tls_reload(true);
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                last_failed = Some(fingerprint);
                metrics.tls_reload(false);
                tracing::error!(error = %e, "new TLS certificate/key rejected; keeping the current one");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::certs::CertAuthority;

    #[test]
    fn loads_a_matching_pair() {
        let ca = CertAuthority::new("ca").unwrap();
        let s = ca.issue("srv", &["localhost".into()], 7).unwrap();
        let config = server_config(s.cert_pem.as_bytes(), s.key_pem.as_bytes());
        assert!(config.is_ok());
    }

    #[test]
    fn rejects_a_key_from_another_certificate() {
        let ca = CertAuthority::new("ca").unwrap();
        let a = ca.issue("a", &["localhost".into()], 1).unwrap();
        let b = ca.issue("b", &["localhost".into()], 2).unwrap();
        let err = server_config(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).err();
        assert!(matches!(err, Some(PemError::Pair(_))));
    }

    #[test]
    fn rejects_garbage_and_empty_files_without_echoing_them() {
        let ca = CertAuthority::new("ca").unwrap();
        let a = ca.issue("a", &["localhost".into()], 1).unwrap();
        assert!(matches!(
            server_config(b"", a.key_pem.as_bytes()).err(),
            Some(PemError::NoCertificate)
        ));
        let files = CertFiles {
            cert: "c.pem".into(),
            key: "k.pem".into(),
        };
        let err = server_config(a.cert_pem.as_bytes(), b"not a key SECRETSECRET")
            .err()
            .unwrap()
            .with_paths(&files);
        let text = err.to_string();
        assert!(text.contains("k.pem"), "{text}");
        assert!(!text.contains("SECRETSECRET"), "{text}");
    }
}

//! Finding the API server the way kubectl does (`--kubeconfig`, `--context`, `$KUBECONFIG`, in-cluster), and the small runtime the blocking callers use.

use std::path::{Path, PathBuf};

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

/// Why no client could be made for a [`Target`]. Messages name the file or context to fix.
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    /// The `--kubeconfig` file could not be read or parsed.
    #[error("kubeconfig {path}: {}", kubeconfig_words(error))]
    ReadKubeconfig {
        /// The file given.
        path: String,
        /// What was wrong with it.
        error: KubeconfigError,
    },
    /// The kubeconfig was read but the context (or its cluster or user) is unusable.
    #[error("kubeconfig {what}: {}", kubeconfig_words(error))]
    Kubeconfig {
        /// The file and context, as far as they were named.
        what: String,
        /// What was wrong.
        error: KubeconfigError,
    },
    /// No `--kubeconfig`, no `--context`, and neither a kubeconfig nor a pod environment was found.
    #[error(
        "no usable kubeconfig ({}) and not running in a pod (no KUBERNETES_SERVICE_HOST): \
         pass --kubeconfig FILE or set $KUBECONFIG",
        infer_words(error)
    )]
    Infer {
        /// Why neither source worked.
        error: InferConfigError,
    },
    /// The configuration was found but no client could be built from it (TLS settings, proxy).
    #[error("building the Kubernetes client: {error}")]
    Client {
        /// kube's error.
        error: kube::Error,
    },
    /// The tokio runtime could not be started.
    #[error("starting the async runtime: {error}")]
    Runtime {
        /// The OS error.
        error: std::io::Error,
    },
}

/// A kubeconfig problem in one sentence: the OS's words without their error number, the file
/// named once (by the caller), no chain of causes.
fn kubeconfig_words(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::ReadConfig(io, _) => io_words(io),
        KubeconfigError::Parse(e) => {
            let text = e.without_snippet().to_string();
            let first = text.lines().next().unwrap_or("").trim();
            format!("not a kubeconfig: invalid YAML: {first}")
        }
        KubeconfigError::CurrentContextNotSet => {
            "no current-context set: pass --context NAME (`kubectl config get-contexts` lists them)"
                .to_string()
        }
        KubeconfigError::LoadContext(name) => {
            format!("no context named {name:?} (`kubectl config get-contexts` lists them)")
        }
        KubeconfigError::LoadClusterOfContext(name) => {
            format!("the context's cluster {name:?} is not defined in the file")
        }
        KubeconfigError::MissingClusterUrl => {
            "the context's cluster has no server URL (clusters[].cluster.server)".to_string()
        }
        other => {
            // kube's own words, without Rust's debug quoting of paths (`'"/x"'`).
            let text = other.to_string().replace("'\"", "'").replace("\"'", "'");
            match text.find(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// Why neither `$KUBECONFIG`/`~/.kube/config` nor the pod environment worked.
fn infer_words(error: &InferConfigError) -> String {
    match std::error::Error::source(error).and_then(|s| s.downcast_ref::<KubeconfigError>()) {
        Some(KubeconfigError::ReadConfig(io, path)) => {
            format!("{}: {}", path.display(), io_words(io))
        }
        Some(KubeconfigError::FindPath) => "$HOME is not set, so no ~/.kube/config".to_string(),
        Some(other) => kubeconfig_words(other),
        None => "none found".to_string(),
    }
}

fn io_words(io: &std::io::Error) -> String {
    match io.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "is a directory, not a file".to_string(),
        _ => {
            let text = io.to_string();
            match text.find(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

/// Where to find the cluster: kubectl's global flags, which a plugin must implement itself.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `--kubeconfig FILE`; `None` means `$KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// `--context NAME`; `None` means the kubeconfig's current context.
    pub context: Option<String>,
}

impl Target {
    /// A target from kubectl's `--kubeconfig` and `--context` flags (either may be absent).
    pub fn new(kubeconfig: Option<&Path>, context: Option<&str>) -> Self {
        Self {
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: context.map(str::to_string),
        }
    }

    /// The client configuration for this target. Reads files; contacts nothing.
    ///
    /// # Errors
    ///
    /// [`KubeApiError::ReadKubeconfig`], [`KubeApiError::Kubeconfig`] or [`KubeApiError::Infer`],
    /// naming the file or context to fix.
    pub async fn config(&self) -> Result<Config, KubeApiError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: None,
            user: None,
        };
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|error| KubeApiError::ReadKubeconfig {
                        path: path.display().to_string(),
                        error,
                    })?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|error| KubeApiError::Kubeconfig {
                        what: match &self.context {
                            Some(context) => format!("{}: context {context}", path.display()),
                            None => path.display().to_string(),
                        },
                        error,
                    })
            }
            (None, Some(context)) => {
                Config::from_kubeconfig(&options)
                    .await
                    .map_err(|error| KubeApiError::Kubeconfig {
                        what: format!("($KUBECONFIG or ~/.kube/config): context {context}"),
                        error,
                    })
            }
            (None, None) => Config::infer()
                .await
                .map_err(|error| KubeApiError::Infer { error }),
        }
    }

    /// A client for this target. Contacts nothing until the first request; call it inside the
    /// runtime that will run the requests.
    ///
    /// # Errors
    ///
    /// As [`Target::config`], and [`KubeApiError::Client`] when no client can be built from it.
    pub async fn client(&self) -> Result<Client, KubeApiError> {
        let config = self.config().await?;
        Client::try_from(config).map_err(|error| KubeApiError::Client { error })
    }
}

/// A small single-threaded runtime: the plugin makes a handful of requests, one at a time.
///
/// # Errors
///
/// [`KubeApiError::Runtime`] when the OS refuses its resources.
pub fn runtime() -> Result<tokio::runtime::Runtime, KubeApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| KubeApiError::Runtime { error })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn kubeconfig(dir: &Path) -> PathBuf {
        let path = dir.join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: one\n\
             clusters:\n\
             - name: one\n  cluster:\n    server: http://127.0.0.1:1001\n\
             - name: two\n  cluster:\n    server: http://127.0.0.1:1002\n\
             contexts:\n\
             - name: one\n  context:\n    cluster: one\n    user: u\n\
             - name: two\n  context:\n    cluster: two\n    user: u\n\
             users:\n- name: u\n  user:\n    token: not-a-secret\n",
        )
        .unwrap();
        path
    }

    #[test]
    fn the_current_context_is_the_default_and_context_selects_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let rt = runtime().unwrap();
        let current = rt
            .block_on(Target::new(Some(&path), None).config())
            .unwrap();
        assert_eq!(current.cluster_url.to_string(), "http://127.0.0.1:1001/");
        let two = rt
            .block_on(Target::new(Some(&path), Some("two")).config())
            .unwrap();
        assert_eq!(two.cluster_url.to_string(), "http://127.0.0.1:1002/");
    }

    #[test]
    fn an_unknown_context_or_missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = kubeconfig(dir.path());
        let rt = runtime().unwrap();
        let err = rt
            .block_on(Target::new(Some(&path), Some("three")).config())
            .unwrap_err();
        assert!(format!("{err:#}").contains("context three"), "{err:#}");
        let missing = dir.path().join("absent");
        let err = rt
            .block_on(Target::new(Some(&missing), None).config())
            .unwrap_err();
        assert!(format!("{err:#}").contains("absent"), "{err:#}");
    }

    #[test]
    fn kubeconfig_errors_are_one_sentence_without_doubled_quotes_or_chains() {
        let dir = tempfile::tempdir().unwrap();
        let rt = runtime().unwrap();
        let missing = dir.path().join("absent");
        let err = rt
            .block_on(Target::new(Some(&missing), None).config())
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!("kubeconfig {}: no such file", missing.display())
        );
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "garbage: [\n").unwrap();
        let err = rt
            .block_on(Target::new(Some(&garbage), None).config())
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with(&format!(
                "kubeconfig {}: not a kubeconfig: invalid YAML: ",
                garbage.display()
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        let path = kubeconfig(dir.path());
        let err = rt
            .block_on(Target::new(Some(&path), Some("three")).config())
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            format!(
                "kubeconfig {}: context three: no context named \"three\" (`kubectl config get-contexts` lists them)",
                path.display()
            )
        );
    }
}

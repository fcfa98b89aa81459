//! Connecting to the API server the way kubectl does (`--kubeconfig`, `--context`, `$KUBECONFIG`, in-cluster); shared by the plugin and Job mode.

use std::path::{Path, PathBuf};

use kube::config::{InferConfigError, KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

/// Why no client could be made for a [`Target`]. Messages name the file or context to fix.
#[derive(Debug, thiserror::Error)]
pub enum KubeApiError {
    #[error("reading kubeconfig {path}: {error}")]
    ReadKubeconfig {
        path: String,
        error: KubeconfigError,
    },
    #[error("kubeconfig {what}: {error}")]
    Kubeconfig {
        what: String,
        error: KubeconfigError,
    },
    #[error(
        "no usable kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in a cluster \
         (KUBERNETES_SERVICE_HOST/PORT and the service account under \
         /var/run/secrets/kubernetes.io/serviceaccount): pass --kubeconfig or run in a pod: {error}"
    )]
    Infer { error: InferConfigError },
    #[error("building the Kubernetes client: {error}")]
    Client { error: kube::Error },
    #[error("starting the async runtime: {error}")]
    Runtime { error: std::io::Error },
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
    pub fn new(kubeconfig: Option<&Path>, context: Option<&str>) -> Self {
        Self {
            kubeconfig: kubeconfig.map(Path::to_path_buf),
            context: context.map(str::to_string),
        }
    }

    /// The client configuration for this target. Reads files; contacts nothing.
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

    /// A client for this target. Contacts nothing until the first request.
    pub async fn client(&self) -> Result<Client, KubeApiError> {
        let config = self.config().await?;
        Client::try_from(config).map_err(|error| KubeApiError::Client { error })
    }
}

/// A small single-threaded runtime: the plugin makes a handful of requests, one at a time.
pub fn runtime() -> Result<tokio::runtime::Runtime, KubeApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| KubeApiError::Runtime { error })
}

/// How kubectl shows a failed request (`checkErr` in kubectl's cmd/util/helpers.go): a 422
/// `Invalid` as `The KIND "NAME" is invalid:` with one `* FIELD: MESSAGE` line per cause, any
/// other failure as `Error from server (Reason): message`. No trailing newline.
pub fn describe_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.is_invalid() => describe_invalid(status),
        kube::Error::Api(status) if status.reason.is_empty() => {
            format!("Error from server: {}", status.message)
        }
        kube::Error::Api(status) => {
            format!("Error from server ({}): {}", status.reason, status.message)
        }
        other => format!("error: talking to the API server: {other}"),
    }
}

fn describe_invalid(status: &kube::core::Status) -> String {
    let Some(details) = &status.details else {
        return if status.message.is_empty() {
            "The request is invalid".to_string()
        } else {
            format!("The request is invalid: {}", status.message)
        };
    };
    let head = if details.kind.is_empty() && details.name.is_empty() {
        "The request is invalid".to_string()
    } else {
        format!("The {} {:?} is invalid", details.kind, details.name)
    };
    // kubectl drops repeated causes and prints a single one on the head line.
    let mut causes: Vec<String> = Vec::new();
    for cause in &details.causes {
        let line = format!("{}: {}", cause.field, cause.message);
        if !causes.contains(&line) {
            causes.push(line);
        }
    }
    match causes.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|c| format!("* {c}")).collect();
            format!("{head}: \n{}", lines.join("\n"))
        }
    }
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

    fn cause(field: &str, message: &str) -> kube::core::response::StatusCause {
        kube::core::response::StatusCause {
            reason: "FieldValueInvalid".into(),
            message: message.into(),
            field: field.into(),
        }
    }

    #[test]
    fn api_errors_read_like_kubectl() {
        let status =
            kube::core::Status::failure("admission webhook denied the request", "Forbidden");
        assert_eq!(
            describe_error(&kube::Error::Api(status.boxed())),
            "Error from server (Forbidden): admission webhook denied the request"
        );
        let mut invalid = kube::core::Status::failure("denied", "Invalid").with_code(422);
        invalid.details = Some(kube::core::response::StatusDetails {
            name: "prod".into(),
            kind: "Cluster".into(),
            causes: vec![
                cause("spec.a", "Required value"),
                cause("spec.b", "Invalid value: \"x\""),
                cause("spec.a", "Required value"),
            ],
            group: "platform.tkestack.io".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.clone().boxed())),
            "The Cluster \"prod\" is invalid: \n* spec.a: Required value\n* spec.b: Invalid value: \"x\""
        );
        if let Some(d) = invalid.details.as_mut() {
            d.causes.truncate(1);
        }
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.clone().boxed())),
            "The Cluster \"prod\" is invalid: spec.a: Required value"
        );
        invalid.details = None;
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.boxed())),
            "The request is invalid: denied"
        );
        let bare = kube::core::Status::failure("boom", "");
        assert_eq!(
            describe_error(&kube::Error::Api(bare.boxed())),
            "Error from server: boom"
        );
    }
}

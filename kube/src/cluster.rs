//! The Cluster object through the API server: read it by name, create it, and merge-patch its status (re-read and retried on 409).
//!
//! Requests (and the RBAC they need): `GET /apis/platform.tkestack.io/v1/clusters/NAME`
//! (clusters: get), `POST /apis/platform.tkestack.io/v1/clusters` (clusters: create), and
//! `PATCH .../clusters/NAME/status` as `application/merge-patch+json` (clusters/status: patch).

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::Value;
use tkeha_api::types::Cluster;

use crate::describe::error_text;
use crate::target::{KubeApiError, Target};

/// Status writes retried after a 409 (someone else wrote the Cluster in between).
pub const CONFLICT_RETRIES: usize = 5;

/// A request about one Cluster failed. Messages name the Cluster and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `GET` answered 404.
    #[error(
        "Cluster {name:?} not found: no clusters.platform.tkestack.io object of that name \
         (list them with `kubectl get clusters.platform.tkestack.io`)"
    )]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// `GET` failed otherwise (refused, forbidden, unreachable).
    #[error("reading Cluster {name} from {url}: {}", error_text(error))]
    Get {
        /// The Cluster's name.
        name: String,
        /// The API server's URL.
        url: String,
        /// kube's error.
        error: kube::Error,
    },
    /// The object read could not be turned into JSON.
    #[error("Cluster {name}: the object read is not JSON-shaped: {error}")]
    Shape {
        /// The Cluster's name.
        name: String,
        /// serde's error.
        error: serde_json::Error,
    },
    /// The status patch could not be encoded.
    #[error("writing the status of Cluster {name}: encoding the patch: {error}")]
    Encode {
        /// The Cluster's name.
        name: String,
        /// serde's error.
        error: serde_json::Error,
    },
    /// `PATCH .../status` failed (forbidden, invalid, unreachable).
    #[error("writing the status of Cluster {name}: {}", error_text(error))]
    Patch {
        /// The Cluster's name.
        name: String,
        /// kube's error.
        error: kube::Error,
    },
    /// Every attempt of a status write met a 409.
    #[error(
        "writing the status of Cluster {name}: still conflicting after {CONFLICT_RETRIES} retries \
         (another controller keeps writing it)"
    )]
    Conflict {
        /// The Cluster's name.
        name: String,
    },
}

/// The `clusters.platform.tkestack.io` resource of one API server.
#[derive(Clone)]
pub struct ClusterClient {
    api: Api<DynamicObject>,
    /// The API server's URL, for error messages.
    url: String,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("url", &self.url)
            .finish()
    }
}

impl ClusterClient {
    /// A client for the API server of `target`. Reads the kubeconfig or the pod's service
    /// account; contacts nothing. Call it inside the tokio runtime that will run the requests.
    ///
    /// # Errors
    ///
    /// [`KubeApiError`] when no configuration is found or no client can be built from it.
    pub async fn new(target: &Target) -> Result<Self, KubeApiError> {
        let config = target.config().await?;
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|error| KubeApiError::Client { error })?;
        Ok(Self::from_client(client, url))
    }

    /// A client over an existing kube client; `url` names the server in error messages.
    pub fn from_client(client: Client, url: String) -> Self {
        let resource = ApiResource::erase::<Cluster>(&());
        debug_assert_eq!(Cluster::group(&()), "platform.tkestack.io");
        Self {
            api: Api::all_with(client, &resource),
            url,
        }
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `GET /apis/platform.tkestack.io/v1/clusters/NAME` as JSON.
    ///
    /// # Errors
    ///
    /// [`ClusterError::NotFound`] on 404, [`ClusterError::Get`] for any other failure,
    /// [`ClusterError::Shape`] when the answer cannot be read as JSON.
    pub async fn get(&self, name: &str) -> Result<Value, ClusterError> {
        let object = self.api.get(name).await.map_err(|error| match &error {
            kube::Error::Api(s) if s.is_not_found() => ClusterError::NotFound {
                name: name.to_string(),
            },
            _ => ClusterError::Get {
                name: name.to_string(),
                url: self.url.clone(),
                error,
            },
        })?;
        serde_json::to_value(&object).map_err(|error| ClusterError::Shape {
            name: name.to_string(),
            error,
        })
    }

    /// `POST /apis/platform.tkestack.io/v1/clusters` (`dryRun=All` when `dry_run`) as
    /// `field_manager`; the API server's answer.
    ///
    /// # Errors
    ///
    /// kube's error as the API server or the transport gave it (describe it with
    /// [`crate::describe_error`]).
    pub async fn create(
        &self,
        object: &DynamicObject,
        dry_run: bool,
        field_manager: &str,
    ) -> Result<DynamicObject, kube::Error> {
        let params = PostParams {
            dry_run,
            field_manager: Some(field_manager.to_string()),
        };
        self.api.create(&params, object).await
    }

    /// Re-read Cluster `name`, compute a merge patch from the object read (`patch_for`, see
    /// [`crate::status_patch`]) and send it to `.../clusters/NAME/status` as `field_manager`. A
    /// patch that carries the `metadata.resourceVersion` it was computed from fails with 409 when
    /// another writer came in between; then the Cluster is read again and the patch recomputed,
    /// at most [`CONFLICT_RETRIES`] times. Returns the patch the server accepted.
    ///
    /// # Errors
    ///
    /// The read's errors (see [`ClusterClient::get`]), [`ClusterError::Encode`] when `patch_for`
    /// fails, [`ClusterError::Patch`] when the server refuses the patch, and
    /// [`ClusterError::Conflict`] when every attempt conflicted.
    pub async fn patch_status(
        &self,
        name: &str,
        field_manager: &str,
        patch_for: impl Fn(&Value) -> Result<Value, serde_json::Error>,
    ) -> Result<Value, ClusterError> {
        let params = PatchParams {
            field_manager: Some(field_manager.to_string()),
            ..PatchParams::default()
        };
        for _ in 0..CONFLICT_RETRIES {
            let current = self.get(name).await?;
            let patch = patch_for(&current).map_err(|error| ClusterError::Encode {
                name: name.to_string(),
                error,
            })?;
            match self
                .api
                .patch_status(name, &params, &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(patch),
                Err(kube::Error::Api(s)) if s.is_conflict() => continue,
                Err(error) => {
                    return Err(ClusterError::Patch {
                        name: name.to_string(),
                        error,
                    });
                }
            }
        }
        Err(ClusterError::Conflict {
            name: name.to_string(),
        })
    }
}

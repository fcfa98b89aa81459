//! tkeha-kube: how tkeha talks to the Kubernetes API server. Used by the plugin (`create`,
//! `provision --in-cluster`) and by the provisioner's Job mode (a Cluster by name).
//!
//! - [`Target`]: find the API server the way kubectl does (`--kubeconfig`, `--context`,
//!   `$KUBECONFIG`, `~/.kube/config`, else the pod's service account); [`runtime`] for blocking
//!   callers.
//! - [`ClusterClient`]: `GET` a Cluster, `POST` one, and merge-patch its status with
//!   optimistic concurrency; [`status_patch`] builds that patch from a typed condition and
//!   `status.ha`, passing other controllers' conditions through untouched.
//! - [`job`]: submit a batch/v1 Job and follow its pod's log to a result.
//! - [`describe_error`]: a failed request in kubectl's words.
//!
//! Nothing here prints: events go to the caller's observer, failures are typed errors.
//!
//! No kube-apiserver runs where tkeha is tested: these requests are tested at their boundary
//! against a recording fake API server (`provisioner/tests/support/fake_apiserver.rs` and the
//! plugin's copy), as docs/testing.md says.

#![warn(missing_docs)]

mod cluster;
mod describe;
pub mod job;
mod status;
mod target;

pub use cluster::{CONFLICT_RETRIES, ClusterClient, ClusterError};
pub use describe::{describe_error, error_text};
pub use status::{now, status_patch};
pub use target::{KubeApiError, Target, runtime};

//! tkeha-api: the `platform.tkestack.io/v1` Cluster types and the one rule engine shared by the plugin and the webhook.
//!
//! Pure: no I/O. Entry points: [`parse_manifest`] (JSON, JSON with `//` comments, YAML) and
//! [`review`] (defaults as an RFC 6902 patch, then validation of the defaulted object; on
//! update, KEP-4008 ratcheting and the update rules).
//!
//! ```
//! use tkeha_api::{Policy, parse_manifest, review};
//!
//! let manifest = r#"
//! apiVersion: platform.tkestack.io/v1
//! kind: Cluster
//! spec:
//!   type: Baremetal
//!   version: 1.30.0
//!   clusterCidr: 10.244.0.0/16   # misspelt: an unknown field
//!   machines:
//!   - {ip: 192.168.1.2, username: root, password: MTIzNDU2}
//!   - {ip: 192.168.1.3, username: root, password: MTIzNDU2}
//!   - {ip: 192.168.1.4, username: root, password: MTIzNDU2}
//!   features: {ha: {tke: {vip: 192.168.1.10}}}
//! "#;
//! let cluster = parse_manifest(manifest)?;
//! let r = review(&cluster, None, &Policy::default())?;
//! assert!(r.allowed());
//! assert_eq!(
//!     r.warnings[0],
//!     r#"unknown field "spec.clusterCidr" (did you mean "spec.clusterCIDR"?)"#
//! );
//! assert_eq!(r.defaulted["spec"]["features"]["ha"]["tke"]["vrid"], 11);
//! assert_eq!(r.defaulted["metadata"]["generateName"], "cls-");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod defaults;
pub mod field;
pub mod limits;
pub mod manifest;
pub mod objects;
pub mod review;
pub mod secret;
pub mod spectext;
pub mod sshkey;
pub mod types;
pub mod unknown;
pub mod validation;

pub use field::{ErrorType, FieldError};
pub use manifest::{ManifestError, parse_manifest};
pub use review::{FieldValidation, Policy, Review, SingleMasterPolicy, review, review_owned};
pub use unknown::UnknownField;

//! tkeha-api: the `platform.tkestack.io/v1` Cluster types and the one rule engine shared by the plugin and the webhook.
//!
//! Pure: no I/O. Entry points: [`parse_manifest`] (JSON, JSON with `//` comments, YAML) and
//! [`review`] (defaults as an RFC 6902 patch, then validation of the defaulted object).

pub mod defaults;
pub mod display;
pub mod field;
pub mod manifest;
pub mod objects;
pub mod review;
pub mod secret;
pub mod spectext;
pub mod types;
pub mod validation;

pub use field::{ErrorType, FieldError};
pub use manifest::{ManifestError, parse_manifest};
pub use review::{Policy, Review, SingleMasterPolicy, review, review_owned};

//! [`review_create_spec`]: the rules over a create's already decoded `spec`, for callers that
//! decode the spec straight from JSON text without building a `serde_json::Value` of it.
//!
//! The webhook's per-request fast path for creates. The types' own decode is as strict as
//! [`crate::review`]'s checks of object positions (see [`crate::objects`]), so a spec that
//! decodes gets the same defaults, errors and warnings here as there. A spec that does not
//! decode must take [`crate::review`], which also words the error.

use crate::defaults::apply_defaults;
use crate::field::FieldError;
use crate::review::Policy;
use crate::types::ClusterSpec;
use crate::validation::{Ctx, validate_spec};

/// What [`crate::review`] decides for a create, without the defaulted object.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
    pub patch: json_patch::Patch,
}

/// [`crate::review`] of a create whose object has `apiVersion: platform.tkestack.io/v1`,
/// `kind: Cluster` and this `spec`, decoded by [`ClusterSpec`]'s `Deserialize` from JSON text
/// without `\u` escapes (where a text and a `serde_json::Value` of it can part: lone
/// surrogates).
pub fn review_create_spec(mut spec: ClusterSpec, policy: &Policy) -> Verdict {
    let ops = apply_defaults(&mut spec);
    let mut ctx = Ctx::new(&spec, policy);
    validate_spec(&mut ctx);
    Verdict {
        errors: ctx.errors,
        warnings: ctx.warnings,
        patch: json_patch::Patch(ops),
    }
}

//! [`review_create_spec`]: the rules over a create's already decoded `spec`, for callers that
//! decode the spec straight from JSON text without building a `serde_json::Value` of it.
//!
//! The webhook's per-request fast path for creates. The types' own decode is as strict as
//! [`crate::review`]'s checks of object positions (see [`crate::objects`]), and the same decode
//! ([`DecodedSpec`]) notes the unknown fields, so a spec that decodes gets the same defaults,
//! errors and warnings here as there. A spec that does not decode, or an object with unknown
//! fields outside its spec or without a name, must take [`crate::review`], which also words
//! the error and defaults `generateName`.

use crate::field::FieldError;
use crate::review::{Policy, create_findings};
use crate::unknown::UnknownField;
use crate::validation::meta::Names;

pub use crate::unknown::{DecodedSpec, decoded_spec};

/// What [`crate::review`] decides for a create, without the defaulted object.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Every error; empty means allowed.
    pub errors: Vec<FieldError>,
    /// Every warning (unknown fields first, under the default field validation).
    pub warnings: Vec<String>,
    /// The unknown fields of the spec.
    pub unknown_fields: Vec<UnknownField>,
    /// The defaults, as an RFC 6902 patch.
    pub patch: json_patch::Patch,
}

/// [`crate::review`] of a create whose object has `apiVersion: platform.tkestack.io/v1`,
/// `kind: Cluster`, only known top-level and `metadata` fields, the given names (a name or a
/// `generateName`: with neither, `review` also defaults `generateName`), and this `spec`,
/// decoded by [`DecodedSpec`]'s `Deserialize` from JSON text without `\u` escapes (where a
/// text and a `serde_json::Value` of it can part: lone surrogates).
pub fn review_create_spec(decoded: DecodedSpec, names: &Names, policy: &Policy) -> Verdict {
    let DecodedSpec {
        mut spec,
        unknown,
        lengths,
    } = decoded;
    let ops = crate::defaults::apply_defaults(&mut spec);
    let findings = create_findings(&spec, Some(names), &unknown, &lengths, policy);
    Verdict {
        errors: findings.errors,
        warnings: findings.warnings,
        unknown_fields: unknown,
        patch: json_patch::Patch(ops),
    }
}

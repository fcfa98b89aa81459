//! The one entry point: defaults (as a JSON patch), then validation of the defaulted object.

use std::borrow::Cow;

use serde::Deserialize as _;
use serde_json::Value;

use crate::defaults::{apply_adds, apply_defaults};
use crate::field::FieldError;
use crate::types::ClusterSpec;
use crate::validation::{Ctx, update, validate_spec};

/// What to do with third-party HA on fewer than 2 masters (LB self-connect limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SingleMasterPolicy {
    /// Deny (the default: most cloud LBs cannot hairpin).
    #[default]
    Error,
    /// Allow with a warning (for LBs that can reach their own backends).
    Warning,
}

/// Knobs the webhook exposes as flags; the plugin uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub third_party_single_master: SingleMasterPolicy,
    /// If set, `spec.version` must be one of these.
    pub version_allow_list: Option<Vec<String>>,
}

/// The result of [`review`].
#[derive(Debug, Clone)]
pub struct Review {
    /// Every field error, all at once. Empty means allowed.
    pub errors: Vec<FieldError>,
    /// Findings that allow the object but deserve the user's attention.
    pub warnings: Vec<String>,
    /// RFC 6902 patch over the object as received: only adds what is missing.
    pub patch: json_patch::Patch,
    /// The object with the patch applied (what validation saw).
    pub defaulted: Value,
}

impl Review {
    pub fn allowed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The object could not be read as a Cluster at all (wrong JSON types, not an object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DecodeError {
    /// Field path where decoding failed, e.g. `spec.machines[0].port` (`.` for the root).
    pub path: String,
    pub message: String,
}

/// Review a Cluster on create (`old` = None) or update (`old` = the stored object).
///
/// Defaults first (as the API server runs mutating before validating webhooks), then every
/// rule over the defaulted object. `Err` only when `new` can't be read as a Cluster at all
/// (not an object, or a field of the wrong JSON type). An `old` that can't be decoded skips the
/// update rules with a warning rather than blocking a fix of a broken stored object.
pub fn review(new: &Value, old: Option<&Value>, policy: &Policy) -> Result<Review, DecodeError> {
    review_cow(Cow::Borrowed(new), old, policy)
}

/// [`review`] of an object the caller gives away: the same result, but `Review::defaulted` is
/// `new` patched in place instead of a copy (the webhook's per-request path).
pub fn review_owned(
    new: Value,
    old: Option<&Value>,
    policy: &Policy,
) -> Result<Review, DecodeError> {
    review_cow(Cow::Owned(new), old, policy)
}

fn review_cow(
    new: Cow<'_, Value>,
    old: Option<&Value>,
    policy: &Policy,
) -> Result<Review, DecodeError> {
    let Value::Object(root) = &*new else {
        return Err(DecodeError {
            path: ".".to_string(),
            message: format!("a Cluster must be a JSON object, got {}", kind_of(&new)),
        });
    };
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    check_header(root, &mut errors);

    let Some(mut spec) = decode_spec(&new)? else {
        errors.push(FieldError::required(
            "spec",
            "a Cluster needs a spec with type, version, machines and features",
        ));
        return Ok(Review {
            errors,
            warnings,
            patch: json_patch::Patch(Vec::new()),
            defaulted: new.into_owned(),
        });
    };

    let ops = apply_defaults(&mut spec);
    let mut defaulted = new.into_owned();
    if !apply_adds(&mut defaulted, &ops) {
        // Unreachable by construction (decode_spec checked every object on the patched paths);
        // should it happen, RFC 6902 decides (apply_adds left the object as received) and any
        // error is reported rather than a panic.
        if let Err(e) = json_patch::patch(&mut defaulted, &ops) {
            return Err(DecodeError {
                path: "spec".to_string(),
                message: format!("could not apply defaults: {e}"),
            });
        }
    }

    let mut ctx = Ctx::new(&spec, policy);
    validate_spec(&mut ctx);
    if let Some(old) = old {
        match decode_spec(old) {
            Ok(Some(old_spec)) => update::validate(&mut ctx, &old_spec),
            Ok(None) => {}
            Err(e) => ctx.warn(
                "oldObject",
                format!("stored Cluster could not be read ({e}); update rules skipped"),
            ),
        }
    }
    errors.append(&mut ctx.errors);
    warnings.append(&mut ctx.warnings);
    Ok(Review {
        errors,
        warnings,
        patch: json_patch::Patch(ops),
        defaulted,
    })
}

/// Decode a review from manifest text: parse, then [`review`] as a create.
pub fn review_text(text: &str, policy: &Policy) -> Result<Review, ReviewTextError> {
    let value = crate::manifest::parse_manifest(text)?;
    Ok(review(&value, None, policy)?)
}

/// Why [`review_text`] could not produce a review.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewTextError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `apiVersion` and `kind`, when present, must name a platform.tkestack.io/v1 Cluster.
fn check_header(root: &serde_json::Map<String, Value>, errors: &mut Vec<FieldError>) {
    if let Some(v) = root.get("apiVersion")
        && v.as_str() != Some(API_VERSION)
    {
        errors.push(FieldError::invalid(
            "apiVersion",
            Some(v.to_string()),
            format!("must be \"{API_VERSION}\""),
        ));
    }
    if let Some(v) = root.get("kind")
        && v.as_str() != Some("Cluster")
    {
        errors.push(FieldError::invalid(
            "kind",
            Some(v.to_string()),
            "must be \"Cluster\"",
        ));
    }
}

/// The group/version this crate validates.
pub const API_VERSION: &str = "platform.tkestack.io/v1";

/// Decode `spec` (None when missing or null) with the failing field's path on error.
pub fn decode_spec(root: &Value) -> Result<Option<ClusterSpec>, DecodeError> {
    let spec = match root.get("spec") {
        None | Some(Value::Null) => return Ok(None),
        Some(s) => s,
    };
    check_objects(spec)?;
    // Fast path without path tracking; on failure decode again to learn where it failed.
    if let Ok(decoded) = ClusterSpec::deserialize(spec) {
        return Ok(Some(decoded));
    }
    serde_path_to_error::deserialize::<_, ClusterSpec>(spec)
        .map(Some)
        .map_err(|e| {
            let p = e.path().to_string();
            // serde quotes a scalar it could not use; at a secret's path that would be the secret.
            let secret = crate::secret::FIELDS.iter().any(|f| p.ends_with(&format!(".{f}")));
            DecodeError {
                path: if p == "." {
                    "spec".to_string()
                } else {
                    format!("spec.{p}")
                },
                message: if secret {
                    "must be a base64 string (the value is not shown); encode it with `kubectl tkeha encode-password`".to_string()
                } else {
                    crate::manifest::type_error_words(&e.into_inner().to_string())
                },
            }
        })
}

/// serde's derived structs also accept arrays (fields by position); a Cluster never uses that
/// form and our patch paths need objects, so every struct position must hold an object or null.
fn check_objects(spec: &Value) -> Result<(), DecodeError> {
    fn obj(v: Option<&Value>, path: &str) -> Result<(), DecodeError> {
        match v {
            None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
            Some(other) => Err(DecodeError {
                path: path.to_string(),
                message: format!("must be an object, not {}", kind_of(other)),
            }),
        }
    }
    obj(Some(spec), "spec")?;
    let features = spec.get("features");
    obj(features, "spec.features")?;
    obj(spec.get("properties"), "spec.properties")?;
    if let Some(f) = features {
        let ha = f.get("ha");
        obj(ha, "spec.features.ha")?;
        if let Some(ha) = ha {
            obj(ha.get("tke"), "spec.features.ha.tke")?;
            obj(ha.get("thirdParty"), "spec.features.ha.thirdParty")?;
        }
    }
    if let Some(Value::Array(ms)) = spec.get("machines") {
        for (i, m) in ms.iter().enumerate() {
            if !m.is_object() {
                return Err(DecodeError {
                    path: format!("spec.machines[{i}]"),
                    message: format!("must be an object, not {}", kind_of(m)),
                });
            }
            if let Some(Value::Array(ts)) = m.get("taints") {
                for (j, t) in ts.iter().enumerate() {
                    if !t.is_object() {
                        return Err(DecodeError {
                            path: format!("spec.machines[{i}].taints[{j}]"),
                            message: format!("must be an object, not {}", kind_of(t)),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

//! The one entry point: defaults (as a JSON patch), then validation of the defaulted object;
//! on update, the create rules ratchet and the update rules apply.
//!
//! Ratcheting follows Kubernetes' CRD validation ratcheting (KEP-4008): on an UPDATE, an error
//! of a create rule counts only when the field it is about changed or the stored object did
//! not have it; an error the stored object already had, on a field this update left alone, is
//! reported as a warning (`already invalid before this update: ...`). So a stored Cluster that
//! breaks a rule (stored before the webhook was installed, or before a rule got stricter) can
//! still have its labels, finalizers or status changed, or an unrelated spec field fixed. The
//! update-only rules (immutable fields, master changes) always apply.

use std::borrow::Cow;

use serde_json::Value;

use crate::defaults::{apply_adds, apply_defaults};
use crate::field::{ErrorType, FieldError, escape};
use crate::types::ClusterSpec;
use crate::unknown::{DecodedSpec, Lengths, UnknownField};
use crate::validation::meta::{self, Names};
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

/// What to do with fields the schema does not know, as kubectl's `--validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Say nothing (kubectl `--validate=ignore`).
    Ignore,
    /// A warning per unknown field (kubectl `--validate=warn`; the default here).
    #[default]
    Warn,
    /// An error per unknown field (kubectl `--validate=strict`).
    Strict,
}

/// Knobs the webhook exposes as flags, and the plugin's `--strict` / `--validate`.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Third-party HA on one master: an error (default) or a warning.
    pub third_party_single_master: SingleMasterPolicy,
    /// If set, `spec.version` must be one of these.
    pub version_allow_list: Option<Vec<String>>,
    /// Unknown fields: warnings (default), errors, or nothing.
    pub field_validation: FieldValidation,
}

/// The result of [`review`].
#[derive(Debug, Clone)]
pub struct Review {
    /// Every field error, all at once. Empty means allowed.
    pub errors: Vec<FieldError>,
    /// Findings that allow the object but deserve the user's attention.
    pub warnings: Vec<String>,
    /// Fields the schema does not know (also in `warnings` or `errors` per
    /// [`Policy::field_validation`]).
    pub unknown_fields: Vec<UnknownField>,
    /// RFC 6902 patch over the object as received: only adds what is missing.
    pub patch: json_patch::Patch,
    /// The object with the patch applied (what validation saw).
    pub defaulted: Value,
}

impl Review {
    /// The review of an object whose spec could not be read: what was found so far, no
    /// defaults, no unknown fields.
    fn unreviewed(errors: Vec<FieldError>, warnings: Vec<String>, object: Value) -> Self {
        Review {
            errors,
            warnings,
            unknown_fields: Vec::new(),
            patch: json_patch::Patch(Vec::new()),
            defaulted: object,
        }
    }

    /// Whether the object is allowed (no errors; warnings allowed).
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
    /// What was wrong there (escaped; a secret's value is never in it).
    pub message: String,
}

/// The prefix of a ratcheted error turned warning.
pub const ALREADY_INVALID: &str = "already invalid before this update: ";

/// Review a Cluster on create (`old` = None) or update (`old` = the stored object).
///
/// Defaults first (as the API server runs mutating before validating webhooks), then every
/// rule over the defaulted object. On update the create rules ratchet (see the module
/// documentation) and the update rules apply.
///
/// # Errors
///
/// [`DecodeError`] when `new` can't be read as a Cluster at all: not a JSON object, or a field
/// of the wrong JSON type (a string where a number belongs, an array where an object does).
/// On an update that leaves such a spec as it was stored, the problem is a warning instead. An
/// `old` that can't be decoded skips the update rules with a warning rather than blocking a
/// fix of a broken stored object. Rule violations are not errors of this function: they are
/// [`Review::errors`].
///
/// # Example
///
/// ```
/// use serde_json::json;
/// use tkeha_api::{Policy, review};
///
/// let cluster = json!({
///     "apiVersion": "platform.tkestack.io/v1",
///     "kind": "Cluster",
///     "metadata": {"name": "cls-prod"},
///     "spec": {
///         "type": "Baremetal",
///         "version": "1.30.0",
///         "machines": [{"ip": "10.0.0.2", "username": "root", "password": "MTIzNDU2"}],
///         "features": {"ha": {"tke": {"vip": "10.0.0.2"}}}
///     }
/// });
/// let r = review(&cluster, None, &Policy::default())?;
/// assert!(!r.allowed());
/// assert_eq!(r.errors[0].field, "spec.features.ha.tke.vip");
/// assert!(r.errors[0].to_string().contains("must not equal spec.machines[0].ip"));
/// // The defaults the mutating webhook would add: port 22, vrid, the VIP as a SAN, ...
/// assert!(r.defaulted["spec"]["machines"][0]["port"] == 22);
/// # Ok::<(), tkeha_api::review::DecodeError>(())
/// ```
pub fn review(new: &Value, old: Option<&Value>, policy: &Policy) -> Result<Review, DecodeError> {
    review_cow(Cow::Borrowed(new), old, policy)
}

/// [`review`] of an object the caller gives away: the same result, but `Review::defaulted` is
/// `new` patched in place instead of a copy (the webhook's per-request path).
///
/// # Errors
///
/// As [`review`].
pub fn review_owned(
    new: Value,
    old: Option<&Value>,
    policy: &Policy,
) -> Result<Review, DecodeError> {
    review_cow(Cow::Owned(new), old, policy)
}

/// The create findings of one spec: unknown fields per the policy, the name rules (on
/// create), then every create rule. Shared by [`review`] and the webhook's fast path
/// ([`crate::spectext`]), so both say the same.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

pub(crate) fn create_findings(
    spec: &ClusterSpec,
    names: Option<&Names>,
    unknown: &[UnknownField],
    lengths: &Lengths,
    policy: &Policy,
) -> Findings {
    let mut f = Findings::default();
    for u in unknown {
        match policy.field_validation {
            FieldValidation::Ignore => {}
            FieldValidation::Warn => f.warnings.push(u.to_string()),
            FieldValidation::Strict => f.errors.push(FieldError::new(
                u.path.clone(),
                ErrorType::Unknown,
                None,
                u.hint(),
            )),
        }
    }
    if let Some(names) = names {
        let warnings = &mut f.warnings;
        meta::validate(names, &mut f.errors, &mut |path, text| {
            warnings.push(escape(&format!("{path}: {text}")).into_owned());
        });
    }
    let mut ctx = Ctx::new(spec, policy).with_lengths(lengths);
    validate_spec(&mut ctx);
    f.errors.append(&mut ctx.errors);
    f.warnings.append(&mut ctx.warnings);
    f
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
    let names = read_names(root)?;
    let same_spec = || old.is_some_and(|o| o.get("spec") == new.get("spec"));

    let decoded = match decode_spec(&new) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => {
            let missing = FieldError::required(
                "spec",
                "a Cluster needs a spec with type, version, machines and features",
            );
            if same_spec() {
                warnings.push(format!("{ALREADY_INVALID}{missing}"));
            } else {
                errors.push(missing);
            }
            return Ok(Review::unreviewed(errors, warnings, new.into_owned()));
        }
        Err(e) if same_spec() => {
            warnings.push(format!("{ALREADY_INVALID}{e}"));
            return Ok(Review::unreviewed(errors, warnings, new.into_owned()));
        }
        Err(e) => return Err(e),
    };
    let DecodedSpec {
        mut spec,
        unknown: spec_unknown,
        lengths,
    } = decoded;
    let mut unknown = crate::unknown::outside_spec(root);
    unknown.extend(spec_unknown);

    let mut ops = apply_defaults(&mut spec);
    let is_create = old.is_none();
    if is_create && names.needs_generate_name() {
        ops.push(generate_name_op(root.get("metadata")));
    }
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

    let mut found = create_findings(
        &spec,
        is_create.then_some(&names),
        &unknown,
        &lengths,
        policy,
    );
    if let Some(old) = old {
        match decode_spec(old) {
            Ok(Some(old_decoded)) => {
                let DecodedSpec {
                    spec: mut old_spec,
                    unknown: old_spec_unknown,
                    lengths: old_lengths,
                } = old_decoded;
                let old_ops = apply_defaults(&mut old_spec);
                // Only an update with errors has anything to ratchet.
                if !found.errors.is_empty() {
                    let mut old_unknown = match old {
                        Value::Object(o) => crate::unknown::outside_spec(o),
                        _ => Vec::new(),
                    };
                    old_unknown.extend(old_spec_unknown);
                    let before =
                        create_findings(&old_spec, None, &old_unknown, &old_lengths, policy);
                    let stored = Stored {
                        object: old,
                        ops: &old_ops,
                        spec: &old_spec,
                        findings: &before,
                    };
                    ratchet(&mut found, &defaulted, &spec, &stored);
                }
                let mut ctx = Ctx::new(&spec, policy);
                update::validate(&mut ctx, &old_spec);
                found.errors.append(&mut ctx.errors);
                found.warnings.append(&mut ctx.warnings);
            }
            Ok(None) => {}
            Err(e) => warnings.push(
                escape(&format!(
                    "oldObject: stored Cluster could not be read ({e}); update rules skipped"
                ))
                .into_owned(),
            ),
        }
    }
    errors.append(&mut found.errors);
    warnings.append(&mut found.warnings);
    let (profile_error, profile_warning) = crate::validation::profile::validate(&defaulted, old);
    errors.extend(profile_error);
    warnings.extend(profile_warning.map(|w| format!("{ALREADY_INVALID}{w}")));
    Ok(Review {
        errors,
        warnings,
        unknown_fields: unknown,
        patch: json_patch::Patch(ops),
        defaulted,
    })
}

/// `generateName: cls-` where neither a name nor a generateName is given.
fn generate_name_op(metadata: Option<&Value>) -> json_patch::PatchOperation {
    use json_patch::jsonptr::PointerBuf;
    let prefix = Value::String(meta::NAME_PREFIX.to_string());
    let (path, value) = match metadata {
        Some(Value::Object(_)) => (
            PointerBuf::from_tokens(["metadata", "generateName"]),
            prefix,
        ),
        _ => (
            PointerBuf::from_tokens(["metadata"]),
            serde_json::json!({"generateName": meta::NAME_PREFIX}),
        ),
    };
    json_patch::PatchOperation::Add(json_patch::AddOperation { path, value })
}

/// The stored object of an update, defaulted, with its own create findings.
struct Stored<'a> {
    object: &'a Value,
    ops: &'a [json_patch::PatchOperation],
    spec: &'a ClusterSpec,
    findings: &'a Findings,
}

/// Move each error the stored object already had, on a field this update left as it was, to
/// the warnings (KEP-4008 ratcheting). Machines are matched by address, not position, so
/// removing one master does not re-attribute the others' old problems.
fn ratchet(
    found: &mut Findings,
    new_defaulted: &Value,
    new_spec: &ClusterSpec,
    stored: &Stored<'_>,
) {
    if found.errors.is_empty() || stored.findings.errors.is_empty() {
        return;
    }
    let mut old_defaulted = stored.object.clone();
    if !apply_adds(&mut old_defaulted, stored.ops) {
        let _ = json_patch::patch(&mut old_defaulted, stored.ops);
    }
    let mut kept = Vec::with_capacity(found.errors.len());
    for e in std::mem::take(&mut found.errors) {
        let old_field = stored_path(&e.field, new_spec, stored.spec);
        let ratcheted = old_field.as_deref().is_some_and(|old_field| {
            value_at(new_defaulted, &e.field) == value_at(&old_defaulted, old_field)
                && stored.findings.errors.iter().any(|o| {
                    o.field == old_field
                        && o.kind == e.kind
                        && o.value == e.value
                        && o.detail == e.detail
                })
        });
        if ratcheted {
            found.warnings.push(format!("{ALREADY_INVALID}{e}"));
        } else {
            kept.push(e);
        }
    }
    found.errors = kept;
}

/// Where the field at `path` of the new spec was in the stored spec: the same path, with a
/// `spec.machines[i]` index mapped to the stored machine with the same address (`None`: a new
/// machine).
fn stored_path(path: &str, new: &ClusterSpec, old: &ClusterSpec) -> Option<String> {
    let Some(rest) = path.strip_prefix("spec.machines[") else {
        return Some(path.to_string());
    };
    let (index, tail) = rest.split_once(']')?;
    let i: usize = index.parse().ok()?;
    let new_machines = new.machines.as_ref()?;
    let key = update::ip_key(new_machines.get(i)?.ip.as_deref());
    // The n-th machine with this address (addresses may repeat in an invalid object).
    let nth = new_machines[..i]
        .iter()
        .filter(|m| update::ip_key(m.ip.as_deref()) == key)
        .count();
    let (j, _) = old
        .machines
        .as_ref()?
        .iter()
        .enumerate()
        .filter(|(_, m)| update::ip_key(m.ip.as_deref()) == key)
        .nth(nth)?;
    Some(format!("spec.machines[{j}]{tail}"))
}

/// The value at a field path (`spec.machines[0].labels[a.b/c]`, as the rules write them).
fn value_at<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut node = root;
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let (inner, tail) = after.split_once(']')?;
            node = match node {
                Value::Array(a) => a.get(inner.parse::<usize>().ok()?)?,
                Value::Object(o) => o.get(inner)?,
                _ => return None,
            };
            rest = tail.strip_prefix('.').unwrap_or(tail);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            node = node.get(&rest[..end])?;
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    Some(node)
}

/// Decode a review from manifest text: parse, then [`review`] as a create.
///
/// # Errors
///
/// [`ReviewTextError`] when the text is not a manifest or not a Cluster.
pub fn review_text(text: &str, policy: &Policy) -> Result<Review, ReviewTextError> {
    let value = crate::manifest::parse_manifest(text)?;
    Ok(review(&value, None, policy)?)
}

/// Why [`review_text`] could not produce a review.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewTextError {
    /// The text is not a manifest (syntax, size, nesting).
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    /// The manifest is not a Cluster (wrong JSON types).
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

/// Decode `spec` (None when missing or null) with its unknown fields, and the failing field's
/// path on error.
///
/// # Errors
///
/// [`DecodeError`] with the path of the first field of the wrong JSON type.
pub fn decode_spec(root: &Value) -> Result<Option<DecodedSpec>, DecodeError> {
    use serde::Deserialize as _;
    let spec = match root.get("spec") {
        None | Some(Value::Null) => return Ok(None),
        Some(s) => s,
    };
    check_objects(spec)?;
    // Fast path without path tracking; on failure decode again to learn where it failed.
    // Unknown fields come from a walk of the keys, much cheaper than tracking the decode.
    // The decode keeps the first `limits::decoded(bound) + 1` entries of a longer list or map;
    // the same walk counts them.
    if let Ok(spec_typed) = ClusterSpec::deserialize(spec) {
        let (unknown, lengths) = crate::unknown::in_spec_with_lengths(spec);
        return Ok(Some(DecodedSpec {
            spec: spec_typed,
            unknown,
            lengths,
        }));
    }
    match serde_path_to_error::deserialize::<_, ClusterSpec>(spec) {
        Ok(spec_typed) => {
            let (unknown, lengths) = crate::unknown::in_spec_with_lengths(spec);
            Ok(Some(DecodedSpec {
                spec: spec_typed,
                unknown,
                lengths,
            }))
        }
        Err(e) => {
            let p = e.path().to_string();
            // serde quotes a scalar it could not use; at a secret's path that would be the secret.
            let secret = crate::secret::FIELDS
                .iter()
                .any(|f| p.ends_with(&format!(".{f}")));
            Err(DecodeError {
                path: escape(&if p == "." {
                    "spec".to_string()
                } else {
                    format!("spec.{p}")
                })
                .into_owned(),
                message: if secret {
                    "must be a base64 string (the value is not shown); encode it with `kubectl tkeha encode-password`".to_string()
                } else {
                    escape(&crate::manifest::type_error_words(
                        &e.into_inner().to_string(),
                    ))
                    .into_owned()
                },
            })
        }
    }
}

/// `metadata.name` and `metadata.generateName`.
fn read_names(root: &serde_json::Map<String, Value>) -> Result<Names, DecodeError> {
    let meta = match root.get("metadata") {
        None | Some(Value::Null) => return Ok(Names::default()),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(DecodeError {
                path: "metadata".to_string(),
                message: format!("must be an object, not {}", kind_of(other)),
            });
        }
    };
    let text = |key: &str| match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DecodeError {
            path: format!("metadata.{key}"),
            message: format!("must be a string, not {}", kind_of(other)),
        }),
    };
    Ok(Names {
        name: text("name")?,
        generate_name: text("generateName")?,
    })
}

/// serde's derived structs also accept arrays (fields by position); a Cluster never uses that
/// form and our patch paths need objects, so every struct position must hold an object or null.
/// Like the decode, only the first `limits::decoded(bound) + 1` entries of a list are looked at.
fn check_objects(spec: &Value) -> Result<(), DecodeError> {
    use crate::limits::{MAX_MACHINES, MAX_TAINTS, decoded};
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
        for (i, m) in ms.iter().take(decoded(MAX_MACHINES) + 1).enumerate() {
            if !m.is_object() {
                return Err(DecodeError {
                    path: format!("spec.machines[{i}]"),
                    message: format!("must be an object, not {}", kind_of(m)),
                });
            }
            if let Some(Value::Array(ts)) = m.get("taints") {
                for (j, t) in ts.iter().take(decoded(MAX_TAINTS) + 1).enumerate() {
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

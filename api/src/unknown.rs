//! Unknown fields: what a Cluster holds that TKEStack's schema does not, found while the spec
//! is decoded, with the closest known name.
//!
//! kubectl's field validation says `unknown field "spec.clusterCidr"`: a warning by default, an
//! error under `--validate=strict`. The types in [`crate::types`] carry every field of
//! TKEStack's `ClusterSpec`, so a field the typed decode skips is unknown; `serde_ignored`
//! reports each skipped field in the same pass as the decode, from JSON text (the webhook's
//! fast path) or from a `serde_json::Value` alike. Maps (`labels`, `*ExtraArgs`, `hooks`, ...)
//! and free-form objects (`bootstrapApps`) take any key, so nothing inside them is unknown.
//! The known names for a suggestion come from the generated CRD schema, built once and only
//! when there is an unknown field to explain.

use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer};
use serde_json::Value;

use crate::field::{escape, quote};
use crate::types::ClusterSpec;

/// One field the schema does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// Its path, e.g. `spec.machines[0].usernme`.
    pub path: String,
    /// The closest known field at the same place, as a full path, when one is close.
    pub suggestion: Option<String>,
}

impl UnknownField {
    /// An unknown field at `path` (`parent` + `.` + `key`), with a suggestion from `known`.
    pub fn new(parent: &str, key: &str, known: &[&str]) -> Self {
        let path = join(parent, key);
        let suggestion = closest(key, known).map(|k| join(parent, k));
        UnknownField { path, suggestion }
    }

    /// The detail kubectl would not give: `did you mean "spec.clusterCIDR"?` (or empty).
    pub fn hint(&self) -> String {
        match &self.suggestion {
            Some(s) => format!("did you mean {}?", quote(s)),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for UnknownField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown field {}", quote(&self.path))?;
        if self.suggestion.is_some() {
            write!(f, " ({})", escape(&self.hint()))?;
        }
        Ok(())
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// The known name closest to `key`: the same name in another case, or one within a small
/// edit distance (Damerau-Levenshtein, case-insensitive).
pub fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let lower = key.to_lowercase();
    let limit = (lower.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&lower, &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// The top-level fields of a Cluster.
pub const TOP_LEVEL_FIELDS: [&str; 5] = ["apiVersion", "kind", "metadata", "spec", "status"];

/// A spec decoded along with the paths of the fields the decode skipped.
#[derive(Debug, Clone, Default)]
pub struct DecodedSpec {
    /// The typed spec.
    pub spec: ClusterSpec,
    /// Unknown fields, in document order.
    pub unknown: Vec<UnknownField>,
}

impl<'de> Deserialize<'de> for DecodedSpec {
    /// An object only (as `objects::object` requires), decoded with every skipped field noted.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut paths: Vec<(String, String)> = Vec::new();
        let spec: ClusterSpec = serde_ignored::deserialize(deserializer, |path| {
            let mut parent = String::from("spec");
            let key = render(&path, &mut parent);
            paths.push((parent, key));
        })?;
        let unknown = paths
            .into_iter()
            .map(|(parent, key)| UnknownField::new(&parent, &key, &known_at(&parent)))
            .collect();
        Ok(DecodedSpec { spec, unknown })
    }
}

/// `serde(deserialize_with)` for an optional spec: absent or null is `None`, an object is
/// decoded with its unknown fields, anything else is an error (as [`crate::objects::object`]).
pub fn decoded_spec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DecodedSpec>, D::Error> {
    crate::objects::object(d)
}

/// Write the parent path of a skipped field into `parent` (which starts as `spec`) and return
/// the skipped key.
fn render(path: &serde_ignored::Path<'_>, parent: &mut String) -> String {
    use serde_ignored::Path;
    fn walk(path: &Path<'_>, out: &mut String) {
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                out.push_str(&format!("[{index}]"));
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                out.push('.');
                out.push_str(key);
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    match path {
        Path::Map { parent: p, key } => {
            walk(p, parent);
            key.clone()
        }
        other => {
            walk(other, parent);
            String::new()
        }
    }
}

/// The field names the schema knows at `path` (`spec.machines[2].proxy`: indexes ignored).
pub fn known_at(path: &str) -> Vec<&'static str> {
    let mut node = spec_schema();
    for token in path.split('.').skip(1) {
        let (name, indexes) = match token.find('[') {
            Some(i) => (&token[..i], token[i..].matches('[').count()),
            None => (token, 0),
        };
        let Some(next) = node.get("properties").and_then(|p| p.get(name)) else {
            return Vec::new();
        };
        node = next;
        for _ in 0..indexes {
            let Some(items) = node.get("items") else {
                return Vec::new();
            };
            node = items;
        }
    }
    match node.get("properties").and_then(Value::as_object) {
        Some(props) => props.keys().map(String::as_str).collect(),
        None => Vec::new(),
    }
}

/// The CRD's schema of `spec`, generated from the types once.
fn spec_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        use kube::CustomResourceExt as _;
        let crd = serde_json::to_value(crate::types::Cluster::crd()).unwrap_or(Value::Null);
        crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
            .cloned()
            .unwrap_or(Value::Null)
    })
}

/// Unknown top-level and `metadata` fields of a Cluster object (the spec's are found while
/// decoding it).
pub fn outside_spec(root: &serde_json::Map<String, Value>) -> Vec<UnknownField> {
    let mut out = Vec::new();
    for key in root.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            out.push(UnknownField::new("", key, &TOP_LEVEL_FIELDS));
        }
    }
    if let Some(Value::Object(meta)) = root.get("metadata") {
        for key in meta.keys() {
            if !crate::validation::meta::OBJECT_META_FIELDS.contains(&key.as_str()) {
                out.push(UnknownField::new(
                    "metadata",
                    key,
                    &crate::validation::meta::OBJECT_META_FIELDS,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn unknown(spec: Value) -> Vec<String> {
        let from_value = DecodedSpec::deserialize(&spec).unwrap();
        let from_text: DecodedSpec = serde_json::from_str(&spec.to_string()).unwrap();
        let show = |d: &DecodedSpec| d.unknown.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert_eq!(show(&from_value), show(&from_text));
        show(&from_value)
    }

    #[test]
    fn misspelt_fields_are_found_with_the_closest_name() {
        assert_eq!(
            unknown(json!({"clusterCidr": "10.0.0.0/16"})),
            [r#"unknown field "spec.clusterCidr" (did you mean "spec.clusterCIDR"?)"#]
        );
        assert_eq!(
            unknown(json!({"machines": [{"ip": "a"}, {"usernme": "root"}]})),
            [
                r#"unknown field "spec.machines[1].usernme" (did you mean "spec.machines[1].username"?)"#
            ]
        );
        assert_eq!(
            unknown(json!({"features": {"ha": {"tke": {"vip": "a", "vird": 3}}}})),
            [
                r#"unknown field "spec.features.ha.tke.vird" (did you mean "spec.features.ha.tke.vrid"?)"#
            ]
        );
        assert_eq!(
            unknown(json!({"somethingElse": 1})),
            [r#"unknown field "spec.somethingElse""#]
        );
    }

    #[test]
    fn maps_and_free_form_fields_take_any_key() {
        assert!(
            unknown(json!({
                "kubeletExtraArgs": {"anything": "x"},
                "machines": [{"labels": {"whatever": "y"}}],
                "features": {"hooks": {"PreInstall": "/a"}},
                "properties": {"oversoldRatio": {"cpu": "2"}},
                "bootstrapApps": [{"app": {"metadata": {"x": 1}, "spec": {"y": [1]}}}],
                "etcd": {"local": {"extraArgs": {"k": "v"}}}
            }))
            .is_empty()
        );
    }

    #[test]
    fn outside_the_spec() {
        let root =
            json!({"apiVersion": "v", "kind": "Cluster", "sepc": {}, "metadata": {"nmae": "x"}});
        let found: Vec<String> = outside_spec(root.as_object().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                r#"unknown field "sepc" (did you mean "spec"?)"#,
                r#"unknown field "metadata.nmae" (did you mean "metadata.name"?)"#
            ]
        );
    }
}

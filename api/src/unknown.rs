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
        // A key given twice in the text is one field (a JSON value keeps the last).
        let mut unknown: Vec<UnknownField> = Vec::new();
        for (parent, key) in paths {
            let field = UnknownField::new(&parent, &key, &known_at(&parent));
            if !unknown.iter().any(|u| u.path == field.path) {
                unknown.push(field);
            }
        }
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
    let mut node = spec_tree();
    for token in path.split('.').skip(1) {
        let (name, indexes) = match token.find('[') {
            Some(i) => (&token[..i], token[i..].matches('[').count()),
            None => (token, 0),
        };
        let Some(next) = node.field(name) else {
            return Vec::new();
        };
        node = next;
        for _ in 0..indexes {
            let Node::List(items) = node else {
                return Vec::new();
            };
            node = items;
        }
    }
    match node {
        Node::Struct(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The shape of the spec as far as unknown fields go, built once from the CRD's schema.
#[derive(Debug)]
enum Node {
    /// An object with fixed fields: any other key is unknown.
    Struct(Vec<(String, Node)>),
    /// A list of items of one shape.
    List(Box<Node>),
    /// A map, a free-form object or a scalar: no key in it is unknown.
    Open,
}

impl Node {
    fn from_schema(schema: &Value) -> Node {
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            let fields: Vec<(String, Node)> = props
                .iter()
                .map(|(k, v)| (k.clone(), Node::from_schema(v)))
                .collect();
            return Node::Struct(fields);
        }
        if let Some(items) = schema.get("items") {
            return Node::List(Box::new(Node::from_schema(items)));
        }
        // An object without properties: a struct with no fields (`builtin: {}`), unless it is a
        // map or free-form.
        let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
        let open = schema.get("additionalProperties").is_some()
            || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if is_object && !open {
            Node::Struct(Vec::new())
        } else {
            Node::Open
        }
    }

    fn field(&self, name: &str) -> Option<&Node> {
        match self {
            // Lengths differ for most names, so a scan rejects them without comparing bytes.
            Node::Struct(fields) => fields
                .iter()
                .find(|(k, _)| k.len() == name.len() && k == name)
                .map(|(_, n)| n),
            _ => None,
        }
    }
}

/// The spec's shape, generated from the types once.
fn spec_tree() -> &'static Node {
    static TREE: OnceLock<Node> = OnceLock::new();
    TREE.get_or_init(|| {
        use kube::CustomResourceExt as _;
        let crd = serde_json::to_value(crate::types::Cluster::crd()).unwrap_or(Value::Null);
        let spec = crd
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
            .unwrap_or(&Value::Null);
        Node::from_schema(spec)
    })
}

/// The unknown fields of a spec given as a `serde_json::Value`: the same list, in the same
/// order, as decoding it with [`DecodedSpec`] gives (which the webhook's fast path does from
/// text), found by comparing its keys with the schema instead of through the decoder, which
/// costs a fraction.
pub fn in_spec(spec: &Value) -> Vec<UnknownField> {
    /// One step of the path to where the walk is (rendered only for an unknown field).
    enum Step<'v> {
        Key(&'v str),
        Index(usize),
    }
    fn render(steps: &[Step<'_>]) -> String {
        let mut path = String::from("spec");
        for step in steps {
            match step {
                Step::Key(k) => {
                    path.push('.');
                    path.push_str(k);
                }
                Step::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        path
    }
    fn walk<'v>(
        value: &'v Value,
        node: &Node,
        steps: &mut Vec<Step<'v>>,
        out: &mut Vec<UnknownField>,
    ) {
        match (value, node) {
            (Value::Object(o), Node::Struct(fields)) => {
                for (key, v) in o {
                    match node.field(key) {
                        Some(child) => {
                            steps.push(Step::Key(key));
                            walk(v, child, steps, out);
                            steps.pop();
                        }
                        None => out.push(UnknownField::new(
                            &render(steps),
                            key,
                            &fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                        )),
                    }
                }
            }
            (Value::Array(items), Node::List(node)) => {
                for (i, item) in items.iter().enumerate() {
                    steps.push(Step::Index(i));
                    walk(item, node, steps, out);
                    steps.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, spec_tree(), &mut Vec::with_capacity(8), &mut out);
    out
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
        let show = |u: &[UnknownField]| u.iter().map(|u| u.to_string()).collect::<Vec<_>>();
        assert_eq!(show(&from_value.unknown), show(&from_text.unknown));
        // The schema walk the general path uses finds exactly what the decoder skips.
        assert_eq!(show(&in_spec(&spec)), show(&from_text.unknown), "{spec}");
        show(&from_value.unknown)
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
    fn the_schema_walk_and_the_decoder_agree_everywhere() {
        assert_eq!(
            unknown(json!({
                "a": 1,
                "features": {"b": {"c": 1}, "ha": {"tke": {"d": 1}, "thirdParty": null},
                             "files": [{"src": "/x", "e": 1}], "upgrade": {"strategy": {"f": 1}},
                             "authzWebhookAddr": {"builtin": {"g": 1}, "external": {"h": 1}}},
                "machines": [{"i": 1, "proxy": {"j": 1}, "taints": [{"k": 1, "key": "x"}]}, {}],
                "scalingMachines": [{"l": 1}],
                "etcd": {"local": {"m": 1}, "external": {"n": 1}},
                "clusterCredentialRef": {"o": 1},
                "properties": {"p": 1},
                "features2": null
            }))
            .len(),
            16
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

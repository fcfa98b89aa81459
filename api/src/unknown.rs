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
//!
//! The same pass measures the lists and maps past their bound ([`Lengths`]): the decode keeps
//! only their first entries (see [`crate::objects`]) and skips the rest whole, which the text
//! decode reports here as skipped values under the list or map, and the walk of a value counts
//! directly. Neither looks into a skipped entry.

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
    /// The lengths of the lists and maps longer than the decode keeps (the spec holds their
    /// first `limits::decoded(bound) + 1` entries).
    pub lengths: Lengths,
}

/// How long each list or map longer than the decode keeps really is: `spec.machines` -> 60000.
/// The typed spec holds only the first `limits::decoded(bound) + 1` entries of such a list
/// (enough for the rules to see it is too long); the rules that report a length read it here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lengths(Vec<(String, usize)>);

impl Lengths {
    /// No list past its bound.
    pub const fn new() -> Self {
        Lengths(Vec::new())
    }

    /// The length of the list or map at `path` (as the rules write paths), if it is past its
    /// bound.
    pub fn get(&self, path: &str) -> Option<usize> {
        self.0.iter().find(|(p, _)| p == path).map(|(_, n)| *n)
    }

    /// The length of the list or map at `path` whose decoded part has `decoded` entries.
    pub fn or(&self, path: &str, decoded: usize) -> usize {
        self.get(path).unwrap_or(decoded)
    }

    /// Whether no list or map is past its bound.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Record that the list or map at `path` has `len` entries.
    fn set(&mut self, path: &str, len: usize) {
        match self.0.iter_mut().find(|(p, _)| p == path) {
            Some((_, n)) => *n = len,
            None => self.0.push((path.to_string(), len)),
        }
    }
}

impl<'de> Deserialize<'de> for DecodedSpec {
    /// An object only (as `objects::object` requires), decoded with every skipped field noted.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut paths: Vec<(String, String)> = Vec::new();
        let mut lengths = Lengths::new();
        // Reused for the path of every skipped entry of a list or map past its bound.
        let mut at = String::new();
        let spec: ClusterSpec = serde_ignored::deserialize(deserializer, |path| {
            use serde_ignored::Path;
            match path {
                // An element past a list's bound (nothing else skips a list element whole).
                Path::Seq { parent, index } => {
                    at.clear();
                    at.push_str("spec");
                    walk(parent, &mut at);
                    lengths.set(&at, index + 1);
                }
                // An entry past a map's bound, or an unknown field.
                Path::Map { parent, .. }
                    if {
                        at.clear();
                        at.push_str("spec");
                        walk(parent, &mut at);
                        matches!(node_at(&at), Some(Node::Map(_)))
                    } =>
                {
                    let max = match node_at(&at) {
                        Some(Node::Map(max)) => *max,
                        _ => 0,
                    };
                    // The decode kept `decoded(max) + 1` entries, then skipped this one and any
                    // before it.
                    let kept = crate::limits::decoded(max).saturating_add(1);
                    let len = lengths.get(&at).unwrap_or(kept) + 1;
                    lengths.set(&at, len);
                }
                _ => {
                    let mut parent = String::from("spec");
                    let key = render(&path, &mut parent);
                    paths.push((parent, key));
                }
            }
        })?;
        // A key given twice in the text is one field (a JSON value keeps the last). A set, not
        // a scan of the list: 3 MiB of text holds 400,000 unknown keys.
        let mut unknown: Vec<UnknownField> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        for (parent, key) in paths {
            let field = UnknownField::new(&parent, &key, &known_at(&parent));
            if seen.insert(field.path.clone()) {
                unknown.push(field);
            }
        }
        Ok(DecodedSpec {
            spec,
            unknown,
            lengths,
        })
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

/// Append `path` to `out` as the rules write paths (`.key`, `[index]`).
fn walk(path: &serde_ignored::Path<'_>, out: &mut String) {
    use serde_ignored::Path;
    use std::fmt::Write as _;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            walk(parent, out);
            let _ = write!(out, "[{index}]");
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

/// The field names the schema knows at `path` (`spec.machines[2].proxy`: indexes ignored).
pub fn known_at(path: &str) -> Vec<&'static str> {
    match node_at(path) {
        Some(Node::Struct(fields)) => fields.iter().map(|(k, _)| k.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// The schema's node at `path` (`spec.machines[2].labels`: indexes ignored).
fn node_at(path: &str) -> Option<&'static Node> {
    let mut node = spec_tree();
    for token in path.split('.').skip(1) {
        let (name, indexes) = match token.find('[') {
            Some(i) => (&token[..i], token[i..].matches('[').count()),
            None => (token, 0),
        };
        node = node.field(name)?;
        for _ in 0..indexes {
            let Node::List(items, _) = node else {
                return None;
            };
            node = items;
        }
    }
    Some(node)
}

/// The shape of the spec as far as unknown fields go, built once from the CRD's schema.
#[derive(Debug)]
enum Node {
    /// An object with fixed fields: any other key is unknown.
    Struct(Vec<(String, Node)>),
    /// A list of items of one shape, with its bound (`maxItems`).
    List(Box<Node>, usize),
    /// A map of strings with its bound (`maxProperties`): no key in it is unknown.
    Map(usize),
    /// A free-form object or a scalar: no key in it is unknown.
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
        let bound = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(usize::MAX)
        };
        if let Some(items) = schema.get("items") {
            return Node::List(Box::new(Node::from_schema(items)), bound("maxItems"));
        }
        if schema.get("additionalProperties").is_some() && schema.get("maxProperties").is_some() {
            return Node::Map(bound("maxProperties"));
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
    in_spec_with_lengths(spec).0
}

/// [`in_spec`], and the lengths of the lists and maps longer than the decode keeps, as
/// [`DecodedSpec`] gives them: entries past `decoded(bound) + 1` are counted, never looked into.
pub fn in_spec_with_lengths(spec: &Value) -> (Vec<UnknownField>, Lengths) {
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
        out: &mut (Vec<UnknownField>, Lengths),
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
                        None => out.0.push(UnknownField::new(
                            &render(steps),
                            key,
                            &fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                        )),
                    }
                }
            }
            (Value::Array(items), Node::List(node, max)) => {
                let kept = crate::limits::decoded(*max).saturating_add(1);
                if items.len() > kept {
                    out.1.set(&render(steps), items.len());
                }
                for (i, item) in items.iter().take(kept).enumerate() {
                    steps.push(Step::Index(i));
                    walk(item, node, steps, out);
                    steps.pop();
                }
            }
            (Value::Object(o), Node::Map(max))
                if o.len() > crate::limits::decoded(*max).saturating_add(1) =>
            {
                out.1.set(&render(steps), o.len());
            }
            _ => {}
        }
    }
    let mut out = (Vec::new(), Lengths::new());
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

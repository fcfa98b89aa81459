//! Manifest reading: the seeds verbatim (JSON with `//` comments), YAML, errors with positions, limits.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use tkeha_api::manifest::{MAX_MANIFEST_BYTES, Syntax, parse_manifest_with_syntax};
use tkeha_api::{Policy, parse_manifest, review};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn seed_tke_validates_with_single_master_warning() {
    let text = fixture("seed-tke-ha.jsonc");
    assert!(
        text.contains("// echo -n \"123456\" | base64"),
        "fixture must be verbatim"
    );
    let (v, syntax) = parse_manifest_with_syntax(&text).unwrap();
    assert_eq!(syntax, Syntax::Json);
    assert_eq!(v["spec"]["machines"][0]["password"], "MTIzNDU2");
    let r = review(&v, None, &Policy::default()).unwrap();
    assert!(r.allowed(), "{:?}", r.errors);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].starts_with("spec.features.ha.tke: "));
}

#[test]
fn seed_third_party_validates_clean() {
    let text = fixture("seed-third-party-ha.jsonc");
    assert!(text.contains("// vport is required!"));
    let v = parse_manifest(&text).unwrap();
    let r = review(&v, None, &Policy::default()).unwrap();
    assert!(r.allowed(), "{:?}", r.errors);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(v["spec"]["features"]["ha"]["thirdParty"]["vport"], 6443);
}

#[test]
fn yaml_equals_json() {
    let yaml = r#"
# a comment
apiVersion: platform.tkestack.io/v1
kind: Cluster
spec:
  type: Baremetal
  version: "1.14.10"
  clusterCIDR: 10.244.0.0/16
  machines:
    - ip: 192.168.1.2
      port: 22
      username: root
      password: MTIzNDU2
  features:
    ha:
      tke:
        vip: 192.168.1.3
"#;
    let (y, syntax) = parse_manifest_with_syntax(yaml).unwrap();
    assert_eq!(syntax, Syntax::Yaml);
    let j = parse_manifest(&fixture("seed-tke-ha.jsonc")).unwrap();
    assert_eq!(y, j);
}

#[test]
fn comments_before_json_and_block_comments() {
    let v = parse_manifest("// header\n/* block\n comment */ {\"a\": /* in */ [1, 2] // end\n}")
        .unwrap();
    assert_eq!(v, json!({"a": [1, 2]}));
    // comment markers inside strings are data
    let v = parse_manifest(r#"{"u": "http://x/*y*/", "e": "a\"//b"}"#).unwrap();
    assert_eq!(v["u"], "http://x/*y*/");
    assert_eq!(v["e"], "a\"//b");
}

#[test]
fn json_errors_have_line_and_column() {
    let text = "{\n  \"spec\": {\n    \"type\": \"Baremetal\" // no comma\n    \"version\": \"1.14.10\"\n  }\n}";
    let e = parse_manifest(text).unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert_eq!(e.column, 5, "{e}");
    assert!(e.message.starts_with("invalid JSON: expected"), "{e}");
    assert!(!e.message.contains(" at line "), "{e}");
    assert_eq!(e.to_string(), format!("line 4, column 5: {}", e.message));
}

#[test]
fn yaml_errors_have_line_and_column() {
    let e = parse_manifest("kind: Cluster\nspec:\n  type: [a\n  version: 1\n").unwrap_err();
    assert!(e.line >= 3, "{e}");
    assert!(e.column >= 1, "{e}");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    let e = parse_manifest("a: 1\n  b: 2\nc: 3\n").unwrap_err();
    assert_eq!((e.line, e.column), (2, 4), "{e}");
    assert!(!e.message.contains(" at line "), "{e}");
    let e = parse_manifest("a: 1\na: 2\n").unwrap_err();
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.message
            .contains("duplicate mapping key: a (each key may appear once)"),
        "{e}"
    );
}

#[test]
fn empty_and_oversized() {
    let e = parse_manifest("  \n// only a comment\n").unwrap_err();
    assert!(e.message.contains("empty"), "{e}");
    let big = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_MANIFEST_BYTES));
    let e = parse_manifest(&big).unwrap_err();
    assert!(e.message.contains("3 MiB"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let e = parse_manifest(&deep_json).unwrap_err();
    assert!(e.message.contains("recursion limit"), "{e}");
    let deep_flow = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_manifest(&deep_flow).is_err());
    let mut deep_block = String::new();
    for i in 0..2_000 {
        deep_block.push_str(&" ".repeat(i));
        deep_block.push_str("k:\n");
    }
    assert!(parse_manifest(&deep_block).is_err());
    let deep_seq = "- ".repeat(5_000) + "x\n";
    assert!(parse_manifest(&deep_seq).is_err());
}

#[test]
fn alias_bomb_is_refused() {
    let mut y = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = i - 1;
        y.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let e = parse_manifest(&y).unwrap_err();
    assert!(e.message.starts_with("invalid YAML"), "{e}");
}

#[test]
fn multiple_yaml_documents_refused() {
    assert!(parse_manifest("kind: Cluster\n---\nkind: Cluster\n").is_err());
}

#[test]
fn bom_is_skipped() {
    let v = parse_manifest("\u{feff}{\"a\": 1}").unwrap();
    assert_eq!(v["a"], 1);
}

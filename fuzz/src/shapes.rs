//! Inputs built to a size: the shapes that turn few bytes into many objects (long lists of
//! tiny elements, many keys, unknown fields everywhere), as an AdmissionReview body, a Cluster
//! manifest or a known_hosts file. The tests run every shape at the body limit against its
//! target's bound; `examples/measure.rs` prints what each costs.

use crate::targets::Target;

/// One built input.
#[derive(Debug, Clone)]
pub struct Shape {
    /// What it is, for messages.
    pub name: String,
    /// The target it is for.
    pub target: Target,
    /// The input.
    pub bytes: Vec<u8>,
}

/// `item` repeated, comma-separated, as many times as fit in `room` bytes (at least once).
fn repeated(item: &str, room: usize, numbered: bool) -> String {
    let mut out = String::with_capacity(room + item.len() + 16);
    let mut i = 0usize;
    while out.len() + item.len() + 12 < room || i == 0 {
        if i > 0 {
            out.push(',');
        }
        if numbered {
            out.push_str(&item.replace("{n}", &i.to_string()));
        } else {
            out.push_str(item);
        }
        i += 1;
    }
    out
}

/// A spec whose `hole` is filled with repeated `item`s up to about `size` bytes of spec.
fn spec_with(size: usize, before: &str, item: &str, after: &str, numbered: bool) -> String {
    let base =
        r#""type":"Baremetal","version":"1.30.4","features":{"ha":{"tke":{"vip":"10.0.0.9"}}}"#;
    let fixed = base.len() + before.len() + after.len() + 8;
    let body = repeated(item, size.saturating_sub(fixed), numbered);
    format!("{{{base},{before}{body}{after}}}")
}

/// The spec shapes, each about `size` bytes.
pub fn specs(size: usize) -> Vec<(String, String)> {
    let machine = r#"{"ip":"10.0.0.1","port":22,"username":"root","password":"MTIzNDU2"}"#;
    let sixteen = |inner: &str| {
        // 16 machines (within the bound), the first holding the long list.
        let mut rest = String::new();
        for i in 1..16 {
            rest.push_str(&format!(
                r#",{{"ip":"10.0.0.{}","username":"root","password":"MTIzNDU2"}}"#,
                i + 1
            ));
        }
        (inner.to_string(), rest)
    };
    let (_, rest16) = sixteen("");
    let mut out = vec![
        (
            "machines that each break four rules (issue 13)".to_string(),
            spec_with(
                size,
                r#""machines":["#,
                r#"{"ip":"1","port":0,"username":"","password":"!"}"#,
                "]",
                false,
            ),
        ),
        (
            "empty machines".to_string(),
            spec_with(size, r#""machines":["#, "{}", "]", false),
        ),
        (
            "machines with an unknown field each".to_string(),
            spec_with(size, r#""machines":["#, r#"{"x":1}"#, "]", false),
        ),
        (
            "valid machines past the bound".to_string(),
            spec_with(size, r#""machines":["#, machine, "]", false),
        ),
        (
            "scaling machines".to_string(),
            spec_with(size, r#""scalingMachines":["#, "{}", "]", false),
        ),
        (
            "empty taints on one of 16 machines".to_string(),
            spec_with(
                size,
                r#""machines":[{"ip":"10.0.0.1","username":"root","password":"MTIzNDU2","taints":["#,
                "{}",
                &format!("]}}{rest16}]"),
                false,
            ),
        ),
        (
            "labels on one of 16 machines".to_string(),
            spec_with(
                size,
                r#""machines":[{"ip":"10.0.0.1","username":"root","password":"MTIzNDU2","labels":{"#,
                r#""k{n}":"""#,
                &format!("}}}}{rest16}]"),
                true,
            ),
        ),
        (
            "empty names".to_string(),
            spec_with(size, r#""publicAlternativeNames":["#, r#""""#, "]", false),
        ),
        (
            "empty files".to_string(),
            spec_with(size, r#""features":{"files":["#, "{}", "]},\"x\":0", false),
        ),
        (
            "skip conditions".to_string(),
            spec_with(
                size,
                r#""features":{"skipConditions":["#,
                r#""""#,
                "]},\"x\":0",
                false,
            ),
        ),
        (
            "extra args".to_string(),
            spec_with(size, r#""kubeletExtraArgs":{"#, r#""a{n}":"""#, "}", true),
        ),
        (
            "empty bootstrap apps".to_string(),
            spec_with(size, r#""bootstrapApps":["#, "{}", "]", false),
        ),
        (
            "unknown spec fields".to_string(),
            spec_with(size, r#""unknown":0,"#, r#""u{n}":0"#, "", true),
        ),
        (
            "numbers in a free-form field".to_string(),
            spec_with(size, r#""u":["#, "0", "]", false),
        ),
        (
            "empty lists in a free-form field".to_string(),
            spec_with(size, r#""u":["#, "[]", "]", false),
        ),
    ];
    out.retain(|(_, s)| !s.is_empty());
    out
}

/// A Cluster object around `spec`.
fn object(spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"platform.tkestack.io/v1","kind":"Cluster","metadata":{{"name":"cls-a"}},"spec":{spec}}}"#
    )
}

/// An AdmissionReview of `operation` for `object` (and `old`).
fn review(operation: &str, name: &str, object: &str, old: Option<&str>) -> String {
    let old = old
        .map(|o| format!(r#","oldObject":{o}"#))
        .unwrap_or_default();
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u-1","kind":{{"group":"platform.tkestack.io","version":"v1","kind":"Cluster"}},"resource":{{"group":"platform.tkestack.io","version":"v1","resource":"clusters"}},"name":"{name}","operation":"{operation}","object":{object}{old}}}}}"#
    )
}

/// Every shape at about `size` bytes (at most `size`), for every target it fits.
pub fn all(size: usize) -> Vec<Shape> {
    let mut out = Vec::new();
    // Room for the object, the AdmissionReview and a small stored object around the spec.
    let spec_size = size.saturating_sub(1024);
    let small_old = object(
        r#"{"type":"Baremetal","version":"1.30.4","machines":[{"ip":"10.0.0.1","username":"root","password":"MTIzNDU2"}],"features":{"ha":{"tke":{"vip":"10.0.0.9"}}}}"#,
    );
    for (name, spec) in specs(spec_size) {
        let obj = object(&spec);
        out.push(Shape {
            name: format!("manifest: {name}"),
            target: Target::Review,
            bytes: obj.clone().into_bytes(),
        });
        // The named CREATE takes the webhook's fast path; a `\u` escape, an unnamed object or
        // an UPDATE takes the general path.
        out.push(Shape {
            name: format!("create (fast path): {name}"),
            target: Target::Admit,
            bytes: review("CREATE", "cls-a", &obj, None).into_bytes(),
        });
        out.push(Shape {
            name: format!("create (general path): {name}"),
            target: Target::Admit,
            bytes: review("CREATE", "cls-\\u0061", &obj, None).into_bytes(),
        });
        out.push(Shape {
            name: format!("update: {name}"),
            target: Target::Admit,
            bytes: review("UPDATE", "cls-a", &obj, Some(&small_old)).into_bytes(),
        });
        out.push(Shape {
            name: format!("update of a stored object: {name}"),
            target: Target::Admit,
            bytes: review("UPDATE", "cls-a", &small_old, Some(&obj)).into_bytes(),
        });
    }
    out.push(Shape {
        name: "manifest: JSON numbers".into(),
        target: Target::Manifest,
        bytes: format!("[{}]", repeated("0", size, false)).into_bytes(),
    });
    out.push(Shape {
        name: "manifest: JSON empty lists".into(),
        target: Target::Manifest,
        bytes: format!("[{}]", repeated("[]", size, false)).into_bytes(),
    });
    out.push(Shape {
        name: "manifest: YAML list of numbers".into(),
        target: Target::Manifest,
        bytes: repeated("- 0\n", size, false).replace(",", "").into_bytes(),
    });
    out.push(Shape {
        name: "manifest: YAML flow list".into(),
        target: Target::Manifest,
        bytes: format!("a: [{}]", repeated("0", size, false)).into_bytes(),
    });
    out.push(Shape {
        name: "manifest: YAML keys".into(),
        target: Target::Manifest,
        bytes: repeated("k{n}: 0\n", size, true)
            .replace(",", "")
            .into_bytes(),
    });
    out.push(Shape {
        name: "manifest: YAML aliases".into(),
        target: Target::Manifest,
        bytes: format!(
            "a: &a [0]\nb: [{}]",
            repeated("*a", size.saturating_sub(16), false)
        )
        .into_bytes(),
    });
    let line = "10.0.0.9 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\n";
    out.push(Shape {
        name: "known_hosts: many entries".into(),
        target: Target::KnownHosts,
        bytes: line.repeat(size / line.len()).into_bytes(),
    });
    out.push(Shape {
        name: "known_hosts: one long line".into(),
        target: Target::KnownHosts,
        bytes: format!(
            "10.0.0.1 ssh-ed25519 {}\n",
            "A".repeat(size.saturating_sub(64))
        )
        .into_bytes(),
    });
    out
}

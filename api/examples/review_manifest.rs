//! Review a manifest from Rust: parse a Cluster (JSON, JSON with `//` comments, or YAML),
//! run the same rules as `kubectl tkeha validate` and the admission webhook, and print what
//! they found, the defaults as an RFC 6902 patch, and (with `--old`) the update verdict.
//!
//! ```text
//! cargo run -p tkeha-api --example review_manifest -- cluster.yaml
//! cargo run -p tkeha-api --example review_manifest -- new.yaml --old stored.yaml
//! cargo run -p tkeha-api --example review_manifest            # reviews a built-in example
//! ```
//!
//! Exit status: 0 allowed, 1 refused, 2 unreadable input.

use std::process::ExitCode;

use tkeha_api::{FieldValidation, Policy, Review, parse_manifest, review};

/// Reviewed when no file is given: a misspelt field, a missing version, no name.
const EXAMPLE: &str = r#"
apiVersion: platform.tkestack.io/v1
kind: Cluster
spec:
  type: Baremetal
  clusterCidr: 10.244.0.0/16        # misspelt: reported as an unknown field
  machines:
  - {ip: 192.168.1.2, username: root, password: MTIzNDU2}
  - {ip: 192.168.1.3, username: root, password: MTIzNDU2}
  - {ip: 192.168.1.4, username: root, password: MTIzNDU2}
  features:
    ha:
      tke: {vip: 192.168.1.10}
"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (new_path, old_path) = match args.as_slice() {
        [] => (None, None),
        [new] => (Some(new.as_str()), None),
        [new, flag, old] if flag == "--old" => (Some(new.as_str()), Some(old.as_str())),
        _ => {
            eprintln!("usage: review_manifest [FILE [--old STORED-FILE]]");
            return ExitCode::from(2);
        }
    };
    let read = |path: Option<&str>| -> Result<serde_json::Value, String> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{p}: {e}"))?,
            None => EXAMPLE.to_string(),
        };
        let name = path.unwrap_or("example");
        parse_manifest(&text).map_err(|e| format!("{name}:{}:{}: {}", e.line, e.column, e.message))
    };
    let new = match read(new_path) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let old = match old_path.map(|p| read(Some(p))).transpose() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The webhook's default policy; `Strict` would make unknown fields errors.
    let policy = Policy {
        field_validation: FieldValidation::Warn,
        ..Policy::default()
    };
    match review(&new, old.as_ref(), &policy) {
        Ok(r) => {
            print(&r);
            if r.allowed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("not a Cluster: {e}");
            ExitCode::from(2)
        }
    }
}

fn print(r: &Review) {
    for e in &r.errors {
        println!("error:   {e}");
    }
    for w in &r.warnings {
        println!("warning: {w}");
    }
    for u in &r.unknown_fields {
        if let Some(s) = &u.suggestion {
            println!("fix:     rename {} to {s}", u.path);
        }
    }
    let patch = serde_json::to_string(&r.patch).unwrap_or_default();
    println!("patch:   {patch}");
    println!("{}", if r.allowed() { "allowed" } else { "refused" });
}

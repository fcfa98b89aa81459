//! Shared helpers for the api tests: a valid 3-master Cluster and JSON-pointer mutations.
#![allow(clippy::unwrap_used, dead_code)]

use serde_json::{Value, json};
use tkeha_api::{ErrorType, Policy, Review, review};

/// A valid 3-master keepalived Cluster.
pub fn tke3() -> Value {
    json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "cls-ha"},
        "spec": {
            "type": "Baremetal",
            "version": "1.21.4-tke.3",
            "clusterCIDR": "10.244.0.0/16",
            "dnsDomain": "cluster.local",
            "machines": [
                {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.3", "port": 22, "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.4", "port": 22, "username": "root", "password": "MTIzNDU2"}
            ],
            "features": {"ha": {"tke": {"vip": "192.168.1.10", "vrid": 11}}},
            "publicAlternativeNames": ["192.168.1.10"]
        }
    })
}

/// A valid 3-master third-party Cluster.
pub fn tp3() -> Value {
    let mut v = tke3();
    v["spec"]["features"]["ha"] = json!({"thirdParty": {"vip": "192.168.1.5", "vport": 6443}});
    v["spec"]["publicAlternativeNames"] = json!(["192.168.1.5"]);
    v
}

/// Set the value at a JSON pointer, creating objects on the way; `None` deletes it.
pub fn set(v: &mut Value, ptr: &str, val: Option<Value>) {
    let tokens: Vec<&str> = ptr.trim_start_matches('/').split('/').collect();
    let (last, parents) = tokens.split_last().unwrap();
    let mut cur = v;
    for t in parents {
        cur = match cur {
            Value::Array(a) => &mut a[t.parse::<usize>().unwrap()],
            Value::Object(_) => {
                if cur.get(*t).is_none() {
                    cur[*t] = json!({});
                }
                &mut cur[*t]
            }
            _ => panic!("bad pointer {ptr}"),
        };
    }
    match (cur, val) {
        (Value::Array(a), Some(x)) => {
            let i: usize = last.parse().unwrap();
            if i == a.len() { a.push(x) } else { a[i] = x }
        }
        (Value::Array(a), None) => {
            a.remove(last.parse().unwrap());
        }
        (Value::Object(o), Some(x)) => {
            o.insert((*last).to_string(), x);
        }
        (Value::Object(o), None) => {
            o.remove(*last);
        }
        _ => panic!("bad pointer {ptr}"),
    }
}

/// `base` with the mutations applied.
pub fn with(mut base: Value, muts: &[(&str, Option<Value>)]) -> Value {
    for (p, val) in muts {
        set(&mut base, p, val.clone());
    }
    base
}

/// The bytes of a key file made once with ssh-keygen (`api/tests/fixtures/keys/`: `id_ed25519`,
/// its `.pub`, `id_ed25519_enc` with passphrase `s3cret`, `id_rsa_pem`).
pub fn key_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A key file base64-encoded, as `privateKey` holds it.
pub fn key(name: &str) -> String {
    tkeha_api::secret::encode(&key_file(name))
}

/// Any bytes base64-encoded, as a secret field holds them.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    tkeha_api::secret::encode(bytes.as_ref())
}

pub fn run(v: &Value) -> Review {
    review(v, None, &Policy::default()).unwrap()
}

pub fn run_update(new: &Value, old: &Value) -> Review {
    review(new, Some(old), &Policy::default()).unwrap()
}

/// Errors as (field, type) pairs.
pub fn pairs(r: &Review) -> Vec<(String, ErrorType)> {
    r.errors.iter().map(|e| (e.field.clone(), e.kind)).collect()
}

pub fn dump(r: &Review) -> String {
    let mut s = String::new();
    for e in &r.errors {
        s.push_str(&format!("  error: {e}\n"));
    }
    for w in &r.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    s
}

//! A fixed number of `review` calls, for counting instructions instead of timing them: on a
//! shared, loaded machine wall-clock rates swing by 2x, instruction counts do not.
//!
//! ```text
//! cargo build --release -p tkeha-api --example bench_review_count
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/bench_review_count 2000 [submitted|defaulted|ed25519|rsa]
//! ```
//!
//! Subtract the count of a run with `0` reviews and divide by 2000: instructions per review
//! (with the system allocator). The object is `bench_review`'s 3-master Cluster; `ed25519` and
//! `rsa` give each master a `privateKey` instead of its password (OpenSSH ed25519 keys, or
//! 3072-bit RSA keys in PEM, as ssh-keygen writes them), as submitted.

use std::hint::black_box;

/// The key files the rule engine's tests use (made once with ssh-keygen).
const ED25519: &str = include_str!("../tests/fixtures/keys/id_ed25519");
const RSA: &str = include_str!("../tests/fixtures/keys/id_rsa_pem");

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let which = std::env::args().nth(2).unwrap_or_default();
    let mut v = serde_json::json!({
        "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
        "metadata": {"name": "cls-bench", "labels": {"team": "infra"}},
        "spec": {"type": "Baremetal", "version": "1.21.4-tke.3", "clusterCIDR": "10.244.0.0/16",
            "serviceCIDR": "10.96.0.0/16", "networkDevice": "eth0", "properties": {"maxNodePodNum": 64},
            "machines": [
                {"ip": "192.168.1.2", "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.3", "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.4", "username": "root", "password": "MTIzNDU2"}],
            "features": {"ipvs": true, "ha": {"tke": {"vip": "192.168.1.10"}}}}});
    let key = match which.as_str() {
        "ed25519" => Some(ED25519),
        "rsa" => Some(RSA),
        _ => None,
    };
    if let (Some(key), Some(machines)) = (key, v["spec"]["machines"].as_array_mut()) {
        for m in machines {
            m["privateKey"] = tkeha_api::secret::encode(key.as_bytes()).into();
            if let Some(m) = m.as_object_mut() {
                m.remove("password");
            }
        }
    }
    let p = tkeha_api::Policy::default();
    let d = tkeha_api::review(&v, None, &p)
        .map(|r| r.defaulted)
        .unwrap_or_default();
    assert!(
        tkeha_api::review(&v, None, &p).is_ok_and(|r| r.allowed()),
        "the benchmark's Cluster must be valid"
    );
    let obj = if which == "defaulted" { d } else { v };
    for _ in 0..n {
        black_box(tkeha_api::review(black_box(&obj), None, &p).ok());
    }
}

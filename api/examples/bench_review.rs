//! Throughput of `review` (and `parse_manifest` + `review`) for a 3-master Cluster on one thread.
//!
//! `cargo run --release -p tkeha-api --example bench_review -- [SECONDS_PER_CASE] [--markdown]`
//! prints one line per case: the median and the best of 10 rounds, as reviews/s and µs/review;
//! `--markdown` prints table rows (`| case | median/s | µs | best/s | µs |`) instead.

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tkeha_api::{Policy, parse_manifest, review};

fn cluster(defaulted: bool) -> Value {
    let mut v = json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "cls-bench", "labels": {"team": "infra"}},
        "spec": {
            "type": "Baremetal",
            "version": "1.21.4-tke.3",
            "clusterCIDR": "10.244.0.0/16",
            "serviceCIDR": "10.96.0.0/16",
            "networkDevice": "eth0",
            "properties": {"maxNodePodNum": 64},
            "machines": [
                {"ip": "192.168.1.2", "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.3", "username": "root", "password": "MTIzNDU2"},
                {"ip": "192.168.1.4", "username": "root", "password": "MTIzNDU2"}
            ],
            "features": {"ipvs": true, "ha": {"tke": {"vip": "192.168.1.10"}}}
        }
    });
    if defaulted {
        let r = review(&v, None, &Policy::default()).unwrap_or_else(|e| panic!("bench input: {e}"));
        assert!(r.allowed(), "bench input must be valid: {:?}", r.errors);
        v = r.defaulted;
    }
    v
}

/// Rounds each case is split into: on a shared machine other processes steal whole rounds, so
/// the median shows the typical rate under the current load and the best round the engine's
/// own speed.
const ROUNDS: usize = 10;

/// What [`measure`] found, in calls per second.
struct Rates {
    median: f64,
    best: f64,
}

/// Run `f` for about `secs` seconds in [`ROUNDS`] rounds after a 200 ms warm-up.
fn measure(secs: f64, mut f: impl FnMut()) -> Rates {
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        f();
    }
    let budget = Duration::from_secs_f64(secs / ROUNDS as f64);
    let mut rates: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut n: u64 = 0;
            loop {
                for _ in 0..256 {
                    f();
                }
                n += 256;
                if start.elapsed() >= budget {
                    break;
                }
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    Rates {
        median: (rates[ROUNDS / 2 - 1] + rates[ROUNDS / 2]) / 2.0,
        best: rates[ROUNDS - 1],
    }
}

/// Run the rounds named on the command line and print the table.
pub fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let markdown = args.iter().any(|a| a == "--markdown");
    let secs: f64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(2.0);
    let policy = Policy::default();
    let submitted = cluster(false);
    let stored = cluster(true);
    let json_text = serde_json::to_string_pretty(&submitted).unwrap_or_default();
    let yaml_text = to_yaml(&submitted);
    assert_eq!(
        parse_manifest(&yaml_text).ok().as_ref(),
        Some(&submitted),
        "YAML round trip"
    );

    let mut scaled = stored.clone();
    if let Some(ms) = scaled["spec"]["machines"].as_array_mut() {
        ms.push(
            json!({"ip": "192.168.1.5", "port": 22, "username": "root", "password": "MTIzNDU2"}),
        );
        ms.push(
            json!({"ip": "192.168.1.6", "port": 22, "username": "root", "password": "MTIzNDU2"}),
        );
    }

    type Case<'a> = (&'a str, Box<dyn FnMut() + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "review, create, as submitted (3 defaults in the patch)",
            Box::new(|| {
                black_box(review(black_box(&submitted), None, &policy).ok());
            }),
        ),
        (
            "review, create, already defaulted (empty patch)",
            Box::new(|| {
                black_box(review(black_box(&stored), None, &policy).ok());
            }),
        ),
        (
            "review, update 3 -> 5 masters (old + new)",
            Box::new(|| {
                black_box(review(black_box(&scaled), Some(black_box(&stored)), &policy).ok());
            }),
        ),
        (
            "parse_manifest (JSON text) + review",
            Box::new(|| {
                let v = parse_manifest(black_box(&json_text)).ok();
                black_box(v.map(|v| review(&v, None, &policy).ok()));
            }),
        ),
        (
            "parse_manifest (YAML text) + review",
            Box::new(|| {
                let v = parse_manifest(black_box(&yaml_text)).ok();
                black_box(v.map(|v| review(&v, None, &policy).ok()));
            }),
        ),
    ];
    let mut out = std::io::stdout().lock();
    for (name, mut f) in cases {
        let r = measure(secs, &mut f);
        let us = |rate: f64| 1e6 / rate;
        let line = if markdown {
            format!(
                "| {name} | {:.0} | {:.2} | {:.0} | {:.2} |",
                r.median,
                us(r.median),
                r.best,
                us(r.best)
            )
        } else {
            format!(
                "{name}: median {:.0} reviews/s ({:.2} µs each), best round {:.0}/s ({:.2} µs)",
                r.median,
                us(r.median),
                r.best,
                us(r.best)
            )
        };
        // A closed pipe (`| head`) ends the run quietly instead of panicking.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// A small YAML rendering of a JSON value (block style, strings quoted), for the YAML case.
fn to_yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
            other => other.to_string(),
        }
    }
    fn emit(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    match c {
                        Value::Object(_) | Value::Array(_) => {
                            out.push_str(&format!("{pad}{k}:\n"));
                            emit(c, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(c))),
                    }
                }
            }
            Value::Array(a) => {
                for c in a {
                    match c {
                        Value::Object(_) | Value::Array(_) => {
                            out.push_str(&format!("{pad}-\n"));
                            emit(c, indent + 2, out);
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", scalar(c))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", scalar(other))),
        }
    }
    let mut out = String::new();
    emit(v, 0, &mut out);
    out
}

//! Property tests: no input makes parse_manifest or review panic, and review's patch always
//! applies cleanly to its input, yields `defaulted`, and is idempotent.
#![allow(clippy::unwrap_used)]

mod common;

use common::{tke3, tp3};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};
use tkeha_api::{Policy, SingleMasterPolicy, parse_manifest, review};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        prop_oneof![
            Just("".to_string()),
            Just("192.168.1.2".to_string()),
            Just("192.168.1.255".to_string()),
            Just("::1".to_string()),
            Just("2001:db8::10".to_string()),
            Just("10.244.0.0/16".to_string()),
            Just("MTIzNDU2".to_string()),
            Just("22".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("spec".to_string()),
                        Just("machines".to_string()),
                        Just("features".to_string()),
                        Just("ha".to_string()),
                        Just("tke".to_string()),
                        Just("thirdParty".to_string()),
                        Just("vip".to_string()),
                        Just("vrid".to_string()),
                        Just("ip".to_string()),
                        Just("port".to_string()),
                        Just("publicAlternativeNames".to_string()),
                        "[a-z~/]{1,6}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every JSON pointer in `v` (escaped), including the root "".
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                let k = k.replace('~', "~0").replace('/', "~1");
                pointers(c, format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Replace (or delete, when `new` is None) the node at `ptr`.
fn mutate(v: &mut Value, ptr: &str, new: Option<Value>) {
    if ptr.is_empty() {
        *v = new.unwrap_or(Value::Null);
        return;
    }
    let (parent, last) = ptr.rsplit_once('/').unwrap();
    let last = last.replace("~1", "/").replace("~0", "~");
    let Some(p) = v.pointer_mut(parent) else {
        return;
    };
    match (p, new) {
        (Value::Object(o), Some(n)) => {
            o.insert(last, n);
        }
        (Value::Object(o), None) => {
            o.remove(&last);
        }
        (Value::Array(a), Some(n)) => {
            if let Ok(i) = last.parse::<usize>() {
                a[i] = n;
            }
        }
        (Value::Array(a), None) => {
            if let Ok(i) = last.parse::<usize>() {
                a.remove(i);
            }
        }
        _ => {}
    }
}

fn seeds() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut out = vec![tke3(), tp3()];
    for f in ["seed-tke-ha.jsonc", "seed-third-party-ha.jsonc"] {
        out.push(parse_manifest(&std::fs::read_to_string(format!("{dir}/{f}")).unwrap()).unwrap());
    }
    out
}

/// The invariants every review must keep.
fn check(new: &Value, old: Option<&Value>) -> Result<(), TestCaseError> {
    for policy in [
        Policy::default(),
        Policy {
            third_party_single_master: SingleMasterPolicy::Warning,
            version_allow_list: Some(vec!["1.14.10".into()]),
            ..Policy::default()
        },
    ] {
        let Ok(r) = review(new, old, &policy) else {
            continue;
        };
        let mut applied = new.clone();
        prop_assert!(
            json_patch::patch(&mut applied, &r.patch).is_ok(),
            "patch does not apply"
        );
        prop_assert_eq!(&applied, &r.defaulted);
        let again = review(&applied, old, &policy);
        prop_assert!(again.is_ok(), "defaulted object no longer decodes");
        let again = again.unwrap();
        prop_assert!(
            again.patch.0.is_empty(),
            "second review patched again: {:?}",
            again.patch
        );
        prop_assert_eq!(again.errors.len(), r.errors.len());
        for w in &r.warnings {
            prop_assert!(
                w.len() < 120
                    || w.starts_with("oldObject: ")
                    || w.starts_with(tkeha_api::review::ALREADY_INVALID),
                "long warning {}",
                w
            );
        }
        for e in &r.errors {
            let _ = e.to_string();
            let _ = serde_json::to_string(e).unwrap();
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arb_json()) {
        check(&v, None)?;
        let wrapped = json!({"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster", "spec": v});
        check(&wrapped, None)?;
        let _ = parse_manifest(&v.to_string());
    }

    #[test]
    fn mutated_manifests_keep_invariants(
        seed in 0usize..4,
        edits in prop::collection::vec((any::<Index>(), prop::option::of(arb_json())), 1..4),
        as_update in any::<bool>(),
    ) {
        let base = seeds().swap_remove(seed);
        let mut v = base.clone();
        for (idx, new) in edits {
            let mut ptrs = Vec::new();
            pointers(&v, String::new(), &mut ptrs);
            let ptr = idx.get(&ptrs).clone();
            mutate(&mut v, &ptr, new);
        }
        check(&v, None)?;
        if as_update {
            check(&v, Some(&base))?;
            check(&base, Some(&v))?;
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        let _ = parse_manifest(&s);
        let _ = parse_manifest(&format!("{{{s}"));
    }

    #[test]
    fn mutated_seed_text_never_panics(
        cut in any::<Index>(),
        len in 0usize..20,
        insert in "[\\[\\]{}:,\"/*#&!|>-]{0,4}",
    ) {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/seed-third-party-ha.jsonc")).unwrap();
        let at = cut.index(text.len());
        let end = (at + len).min(text.len());
        let mut t = text.clone();
        if t.is_char_boundary(at) && t.is_char_boundary(end) {
            t.replace_range(at..end, &insert);
        }
        if let Ok(v) = parse_manifest(&t) {
            check(&v, None)?;
        }
    }
}

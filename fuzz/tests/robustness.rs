//! The robustness run of issue 13, in `make test` (nextest): every input boundary of tkeha
//! (`parse_manifest`, `review`, the webhook's AdmissionReview reader, the known_hosts reader) is
//! fed the committed corpus, every committed regression, the amplifying shapes at the body limit
//! and a seeded mutation run, and must not panic nor allocate past its bound
//! (`tkeha_fuzz::targets`).
//!
//! The run is fixed by its seed and its number of steps, so a failure repeats on any machine:
//! `TKEHA_FUZZ_SEED` (default 13) and `TKEHA_FUZZ_STEPS` (default [`STEPS`]) change them for a
//! longer run by hand. A failing input is written under the target dir's tmp directory, and the
//! message says where and how to make it a regression (`fuzz/regressions/<target>/`).
//!
//! Each test runs in its own process under nextest, so the allocation meter sees only its
//! target.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tkeha_fuzz::mutate::Mutator;
use tkeha_fuzz::{Target, shapes};

/// The size of the amplifying shapes in the test.
const SHAPE_SIZE: usize = 64 * 1024;

/// Mutation steps per target by default: 5 to 30 s per target in a debug build on a loaded
/// 2-core machine (400 steps took 1 to 6 s).
const STEPS: usize = 2000;

/// The crate's directory.
fn here() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (sorted by name), or none if it does not exist.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter(|e| e.file_name() != "README.md")
        .map(|e| {
            let path = e.path();
            (
                path.strip_prefix(here())
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The webhook's fixtures: AdmissionReviews, and the objects inside them.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    files(&here().join("../webhook/tests/fixtures"))
}

/// The seeds of `target`: its corpus directory, plus the webhook's fixtures (the reviews for
/// `admit`, the objects in them for `review` and `manifest`).
fn seeds(target: Target) -> Vec<(String, Vec<u8>)> {
    let mut out = files(&here().join("corpus").join(target.name()));
    match target {
        Target::Admit => out.extend(fixtures()),
        Target::Review | Target::Manifest => {
            for (name, bytes) in fixtures() {
                let review: Value = serde_json::from_slice(&bytes).unwrap();
                for key in ["object", "oldObject"] {
                    let object = &review["request"][key];
                    if object.is_object() {
                        out.push((
                            format!("{name} .request.{key}"),
                            serde_json::to_vec_pretty(object).unwrap(),
                        ));
                    }
                }
            }
        }
        Target::KnownHosts => {}
    }
    out
}

/// Run `target` on `bytes`; on a finding, keep the input and say where it is.
fn run(target: Target, what: &str, bytes: &[u8]) -> Result<(), String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| target.run(bytes)));
    let Err(panic) = outcome else { return Ok(()) };
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tkeha-fuzz-findings");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "{}-{:016x}",
        target.name(),
        fnv1a(bytes) // a stable name: the same input is kept once
    ));
    std::fs::write(&file, bytes).unwrap();
    Err(format!(
        "{} on {what} ({} bytes): {message}\n  input kept in {}; once fixed, copy it to fuzz/regressions/{}/",
        target.name(),
        bytes.len(),
        file.display(),
        target.name()
    ))
}

/// FNV-1a, 64 bits: a name for a kept input.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn env_or(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|e| panic!("{name}={v}: not a number ({e})")),
        Err(_) => default,
    }
}

/// Every finding of a run, all at once.
fn assert_none(findings: Vec<String>) {
    assert!(
        findings.is_empty(),
        "{} finding(s):\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[test]
fn the_corpus_and_every_regression_pass() {
    let mut findings = Vec::new();
    let mut count = 0;
    for target in Target::ALL {
        let regressions = files(&here().join("regressions").join(target.name()));
        let all = seeds(target).into_iter().chain(regressions);
        for (name, bytes) in all {
            count += 1;
            if let Err(e) = run(target, &name, &bytes) {
                findings.push(e);
            }
        }
    }
    assert!(count >= 12, "the corpus is missing: {count} inputs");
    assert_none(findings);
}

/// The shapes that turn few bytes into many objects, at 64 KiB (the bounds are per byte, and a
/// debug build takes minutes at the 3 MiB body limit: `examples/measure.rs` measures that in
/// release): each stays within its target's bound. Before the bounded decode, 3 MiB of `{}`
/// machines built a million `ClusterMachine`s, about 200 bytes each, in `review` itself.
#[test]
fn amplifying_shapes_stay_within_their_bounds() {
    let limit = SHAPE_SIZE;
    let mut findings = Vec::new();
    let all = shapes::all(limit);
    assert!(all.len() > 20, "{} shapes", all.len());
    for shape in all {
        assert!(
            shape.bytes.len() <= limit,
            "{}: {} bytes, over the body limit",
            shape.name,
            shape.bytes.len()
        );
        if let Err(e) = run(shape.target, &shape.name, &shape.bytes) {
            findings.push(e);
        }
    }
    assert_none(findings);
}

/// The seeded mutation run of one target: `STEPS` inputs, each a mutation of a seed or of an
/// earlier input of the run.
fn mutation_run(target: Target) {
    let seed = env_or("TKEHA_FUZZ_SEED", 13);
    let steps = usize::try_from(env_or("TKEHA_FUZZ_STEPS", STEPS as u64)).unwrap();
    let seeds: Vec<Vec<u8>> = seeds(target).into_iter().map(|(_, b)| b).collect();
    assert!(!seeds.is_empty(), "no seeds for {}", target.name());
    // One stream of inputs per target, whatever the order the tests run in.
    let mut mutator = Mutator::new(seed ^ fnv1a(target.name().as_bytes()));
    let mut pool = seeds.clone();
    let mut findings = Vec::new();
    for step in 0..steps {
        let parent = &pool[step % pool.len()];
        let input = mutator.mutate(parent, target);
        if let Err(e) = run(
            target,
            &format!("step {step} of seed {seed} (TKEHA_FUZZ_SEED={seed})"),
            &input,
        ) {
            findings.push(e);
            continue;
        }
        // Keep a few inputs to mutate further (deeper into the rules), within a fixed pool.
        if step % 4 == 0 {
            if pool.len() < 64 {
                pool.push(input);
            } else {
                pool[seeds.len() + step % (64 - seeds.len())] = input;
            }
        }
    }
    assert_none(findings);
}

#[test]
fn mutation_run_manifest() {
    mutation_run(Target::Manifest);
}

#[test]
fn mutation_run_review() {
    mutation_run(Target::Review);
}

#[test]
fn mutation_run_admit() {
    mutation_run(Target::Admit);
}

#[test]
fn mutation_run_known_hosts() {
    mutation_run(Target::KnownHosts);
}

/// The bound is real: an input that allocates far past its size is a finding.
#[test]
fn a_target_over_its_bound_is_a_finding() {
    let input = [b'a'; 10];
    let outcome = catch_unwind(|| {
        tkeha_fuzz::within("a test", input.len(), tkeha_fuzz::targets::MANIFEST, || {
            vec![0u8; 4 << 20].len()
        })
    });
    let message = *outcome.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("over the bound"), "{message}");
}

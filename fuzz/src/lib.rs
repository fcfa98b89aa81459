//! tkeha-fuzz: the robustness run over tkeha's input boundaries (`parse_manifest`, `review`,
//! the webhook's AdmissionReview reader, the provisioner's known_hosts reader).
//!
//! [`targets`] holds one function per boundary that takes arbitrary bytes and checks what must
//! hold for every input: no panic, and a peak allocation within `K x input + C`
//! ([`meter`]). Two drivers call them: `tests/robustness.rs` on stable Rust in `make test`
//! (the committed corpus and every regression replayed, then a seeded structure-aware mutation
//! run from [`mutate`]), and the libFuzzer targets in `fuzz/libfuzzer` (coverage-guided, which
//! grow the corpus).

pub mod meter;
pub mod mutate;
pub mod shapes;
pub mod targets;

pub use meter::{Bound, measure, within};
pub use targets::Target;

//! tkeha-fuzz: the robustness run over tkeha's input boundaries (`parse_manifest`, `review`,
//! the webhook's AdmissionReview reader, the provisioner's known_hosts reader).
//!
//! [`targets`] holds one function per boundary that takes arbitrary bytes and checks what must
//! hold for every input: no panic, and a peak allocation within `K x input + C`
//! ([`meter`]). `tests/robustness.rs` drives them in `make test` (nextest): the committed
//! corpus (`fuzz/corpus/<target>/`) and every regression (`fuzz/regressions/<target>/`)
//! replayed, the amplifying [`shapes`], then a seeded structure-aware mutation run from
//! [`mutate`]. `examples/measure.rs` prints what each shape costs at the body limit.

pub mod meter;
pub mod mutate;
pub mod shapes;
pub mod targets;

pub use meter::{Bound, measure, within};
pub use targets::Target;

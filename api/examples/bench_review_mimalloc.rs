//! `bench_review` with mimalloc as the global allocator, as linked into `tkeha-webhook`.
//!
//! The review path allocates many small strings and maps (the defaulted copy of the object), so
//! the allocator is a large part of its cost: this shows the rule engine as the webhook runs it.
//! Same arguments and output as `bench_review`.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "bench_review.rs"]
mod bench_review;

fn main() {
    bench_review::main();
}

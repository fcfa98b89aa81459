//! Reference server for `scripts/bench-webhook.sh`: the tkeha-webhook server (same flags,
//! runtime, TLS, HTTP and router stack, through `Args::serve`) plus `POST /noop`,
//! a handler that reads the request body and answers a constant allowed AdmissionReview without
//! looking at it.
//!
//! `/noop` against `GET /livez` shows what a POST of the review body through a handler costs
//! before any JSON or rule work: the floor under `/validate`'s share of the ceiling.
//! `cargo run --release -p tkeha-webhook --example bench_noop_server -- --tls-cert C --tls-key K`

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use clap::Parser as _;
use tkeha_webhook::cli::Args;
use tkeha_webhook::termination;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The size of a real `/validate` answer to the benchmark's review (uid of the same length).
const ANSWER: &str = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"00000000-0000-0000-0000-000000000000","allowed":true}}"#;

async fn noop(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body);
    ([(header::CONTENT_TYPE, "application/json")], ANSWER)
}

fn main() -> anyhow::Result<()> {
    let extra = Router::new().route("/noop", post(noop));
    Args::parse().serve(extra, termination())?;
    Ok(())
}

//! tkeha-webhook binary: flags and logging; serving (runtime, signals, server) is in the library.

use clap::Parser as _;
use tkeha_webhook::cli::Args;
use tkeha_webhook::{init_logging, termination, write_dev_certs};

/// mimalloc: the review path allocates many small strings and maps (the object as JSON
/// values); measured in BENCHMARKS.md against glibc malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.gen_certs {
        let paths = write_dev_certs(dir, &args.gen_certs_host)?;
        println!(
            "wrote {} {} {}",
            paths.ca_cert.display(),
            paths.tls_cert.display(),
            paths.tls_key.display()
        );
        return Ok(());
    }
    // Held until main returns: flushes the last log lines.
    let _log_guard = init_logging(args.log_format);
    args.serve(axum::Router::new(), termination())?;
    Ok(())
}

//! tkeha-webhook binary: flags and logging; serving (runtime, signals, server) is in the library.

use std::io::IsTerminal as _;
use std::time::Duration;

use axum::Router;
use clap::Parser as _;
use tkeha_webhook::certs::write_dev_certs;
use tkeha_webhook::cli::{Args, LogFormat};
use tkeha_webhook::logformat::JsonLines;
use tkeha_webhook::logwriter::{BatchedWriter, LogGuard};
use tkeha_webhook::server::termination;

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
    args.serve(Router::new(), termination())?;
    Ok(())
}

/// Log lines go to stdout in batches (at least every 100 ms): one review costs no write syscall.
fn init_logging(format: LogFormat) -> LogGuard {
    let (writer, guard) = BatchedWriter::stdout(Duration::from_millis(100));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        // Colours only for a person at a terminal, never into a log file or collector.
        .with_ansi(std::io::stdout().is_terminal())
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.event_format(JsonLines).init(),
        LogFormat::Compact => builder.compact().init(),
    }
    guard
}

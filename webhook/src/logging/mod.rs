//! Logging of the binary: one JSON line per event ([`format`]), written to stdout in batches
//! ([`writer`]) so that answering a review costs no write syscall.

pub(crate) mod format;
pub(crate) mod writer;

use std::io::IsTerminal as _;
use std::time::Duration;

use crate::cli::LogFormat;
pub use format::JsonLines;
use writer::BatchedWriter;
pub use writer::LogGuard;

/// Install the process's log subscriber: `RUST_LOG` filter (default `info`), `format`, stdout
/// in batches written at least every 100 ms. Keep the guard until the process ends: dropping it
/// flushes the last lines.
pub fn init_logging(format: LogFormat) -> LogGuard {
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

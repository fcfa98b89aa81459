//! The JSON log line: `{"timestamp":"…Z","level":"INFO","message":"review","uid":"…",…}`,
//! written field by field straight into tracing-subscriber's line buffer.
//!
//! Same shape as tracing-subscriber's `json().flatten_event(true)` without target and spans (the
//! webhook opens none), at a fraction of its cost per line: one review is one line, so the log
//! format is on the hot path (measured by `examples/bench_admit.rs`).

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// One JSON object per event, one event per line.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, SystemTime::now())?;
        writer.write_str("\",\"level\":\"")?;
        writer.write_str(event.metadata().level().as_str())?;
        writer.write_char('"')?;
        let mut fields = Fields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writer.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`.
struct Fields<'a, W: fmt::Write> {
    out: &'a mut W,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_str(",\"")?;
        write_escaped(self.out, field.name())?;
        self.out.write_str("\":")
    }

    fn raw(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| self.out.write_fmt(value));
        }
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| {
                self.out.write_char('"')?;
                write_escaped(self.out, value)?;
                self.out.write_char('"')
            });
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, format_args!("{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, format_args!("{value}"));
        } else {
            // JSON has no NaN or infinity.
            self.record_str(field, &value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| {
                self.out.write_char('"')?;
                // `message` and `%value` fields arrive here; escape as they are formatted.
                write!(Escaping(self.out), "{value:?}")?;
                self.out.write_char('"')
            });
        }
    }
}

/// A `fmt::Write` adapter that JSON-escapes everything written through it.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_escaped(self.0, s)
    }
}

/// `s` as the inside of a JSON string.
fn write_escaped<W: fmt::Write + ?Sized>(out: &mut W, s: &str) -> fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(out, "\\u{b:04x}")?;
        } else {
            out.write_str(escape)?;
        }
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// RFC 3339 in UTC with microseconds, e.g. `2026-11-26T10:49:20.635070Z`.
const RFC3339_MICROS: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// `now` as [`RFC3339_MICROS`] (a clock before 1970 shows as the epoch).
fn write_timestamp<W: fmt::Write + ?Sized>(out: &mut W, now: SystemTime) -> fmt::Result {
    let now = time::OffsetDateTime::from(now.max(UNIX_EPOCH));
    let text = now.format(RFC3339_MICROS).map_err(|_| fmt::Error)?;
    out.write_str(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn calendar_dates_match_known_days() {
        for (days, date) in [
            (0, "1970-01-01"),
            (59, "1970-03-01"),
            (11_016, "2000-02-29"),
            (20_783, "2026-11-26"),
        ] {
            let mut s = String::new();
            write_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(days * 86_400)).unwrap();
            assert_eq!(s, format!("{date}T00:00:00.000000Z"));
        }
        let mut s = String::new();
        write_timestamp(&mut s, UNIX_EPOCH - Duration::from_secs(86_400)).unwrap();
        assert_eq!(
            s, "1970-01-01T00:00:00.000000Z",
            "a clock before 1970 shows the epoch"
        );
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let t = UNIX_EPOCH + Duration::new(1_795_690_160, 635_070_123);
        let mut s = String::new();
        write_timestamp(&mut s, t).unwrap();
        assert_eq!(s, "2026-11-26T10:49:20.635070Z");
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        write_escaped(&mut s, "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(s, r#"a\"b\\c\nd\u0001é"#);
        let back: String = serde_json::from_str(&format!("\"{s}\"")).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    use crate::logging::writer::MemorySink as Sink;

    #[test]
    fn events_become_one_json_object_per_line() {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let uid = "u-1\"x";
            tracing::info!(
                uid = %uid,
                name = "cls",
                allowed = false,
                latency_us = 42u64,
                delta = -3i64,
                ratio = 0.5f64,
                "review"
            );
            tracing::warn!(error = %"multi\nline", "bad admission request");
        });
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0];
        assert_eq!(first["level"], "INFO");
        assert_eq!(first["message"], "review");
        assert_eq!(first["uid"], "u-1\"x");
        assert_eq!(first["name"], "cls");
        assert_eq!(first["allowed"], false);
        assert_eq!(first["latency_us"], 42);
        assert_eq!(first["delta"], -3);
        assert_eq!(first["ratio"], 0.5);
        let ts = first["timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "multi\nline");
    }
}

//! What the API server shows the user, bounded whatever the rule engine returns: the denial
//! message, its causes and the warnings each have a size and a count limit (a final "and N
//! more" says what was left out), and control characters in echoed text are escaped.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest warning we send, in characters. Kubernetes asks for warnings under 120 characters.
pub const MAX_WARNING_CHARS: usize = 119;
/// Most warnings in one answer (the last one then says how many more there were).
pub const MAX_WARNINGS: usize = 20;
/// Most field errors listed in `status.details.causes` (one more cause then says how many
/// more there were).
pub const MAX_CAUSES: usize = 50;
/// Longest `causes[].field`, in characters.
pub const MAX_FIELD_CHARS: usize = 256;
/// Longest `causes[].message`, in characters.
pub const MAX_CAUSE_CHARS: usize = 512;
/// Longest `status.message`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest object name, kind or group echoed in a message, in characters (a Kubernetes name is
/// at most 253).
pub const MAX_NAME_CHARS: usize = 253;

/// Marker appended to a shortened text.
const ELLIPSIS: &str = "...";

/// `text` with control characters escaped (`\u{1b}`) and cut to at most `max` characters
/// (ending in `...` when cut). Borrowed when nothing needs changing.
pub fn bounded(text: &str, max: usize) -> Cow<'_, str> {
    if !has_control(text) && (text.len() <= max || text.chars().count() <= max) {
        return Cow::Borrowed(text);
    }
    let keep = max.saturating_sub(ELLIPSIS.len());
    let mut out = String::with_capacity(text.len().min(max * 4));
    let mut chars = 0usize;
    // Where the text must be cut if it turns out longer than `max`.
    let mut cut_at = None;
    for c in text.chars() {
        let before = out.len();
        if c.is_control() {
            let escape = c.escape_unicode();
            chars += escape.len();
            out.extend(escape);
        } else {
            out.push(c);
            chars += 1;
        }
        if cut_at.is_none() && chars > keep {
            cut_at = Some(before);
        }
        if chars > max {
            let mut cut = out[..cut_at.unwrap_or(before)].trim_end().to_string();
            cut.push_str(ELLIPSIS);
            return Cow::Owned(cut);
        }
    }
    Cow::Owned(out)
}

/// Whether `text` holds a control character (Unicode `Cc`: C0, DEL, C1), by its UTF-8 bytes.
fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    // No early exit: the loop vectorises, and messages are short.
    bytes.iter().fold(false, |found, &b| found | (b < 0x20) | (b == 0x7f))
        // C1 controls U+0080..U+009F are 0xC2 0x80..0x9F.
        || memchr::memchr_iter(0xc2, bytes).any(|i| matches!(bytes.get(i + 1), Some(0x80..=0x9f)))
}

/// Shorten a warning to at most [`MAX_WARNING_CHARS`] characters, cutting on a char boundary
/// and escaping control characters.
pub fn limit_warning(warning: &str) -> String {
    bounded(warning, MAX_WARNING_CHARS).into_owned()
}

/// At most [`MAX_WARNINGS`] warnings, each shortened; the last says how many were left out.
pub fn limit_warnings(warnings: &[String]) -> Vec<String> {
    if warnings.len() <= MAX_WARNINGS {
        return warnings.iter().map(|w| limit_warning(w)).collect();
    }
    let shown = MAX_WARNINGS - 1;
    let mut out: Vec<String> = warnings[..shown].iter().map(|w| limit_warning(w)).collect();
    out.push(format!(
        "and {} more warnings (not shown)",
        warnings.len() - shown
    ));
    out
}

/// `Cluster.platform.tkestack.io "NAME" is invalid: ERR` or `...: [ERR1, ERR2]`, the form of
/// the API server's own `apierrors.NewInvalid` (one error bare, several in brackets), with at
/// most [`MAX_MESSAGE_BYTES`]: errors that do not fit, and the `hidden` ones not in `shown`,
/// are counted in a final `and N more errors`.
pub fn invalid_message<E: std::fmt::Display>(
    qualified_kind: &str,
    name: &str,
    shown: &[E],
    hidden: usize,
) -> String {
    let mut out = format!(
        "{} {:?} is invalid: ",
        bounded(qualified_kind, MAX_NAME_CHARS * 2),
        bounded(name, MAX_NAME_CHARS)
    );
    if let ([one], 0) = (shown, hidden) {
        let _ = write!(out, "{one}");
        return out;
    }
    // Room for the longest tail: ", and 18446744073709551615 more errors]".
    let budget = MAX_MESSAGE_BYTES.saturating_sub(48);
    out.push('[');
    let mut listed = 0;
    let mut item = String::new();
    for e in shown {
        item.clear();
        let _ = write!(item, "{e}");
        let sep = if listed > 0 { 2 } else { 0 };
        if out.len() + sep + item.len() > budget {
            break;
        }
        if listed > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
        listed += 1;
    }
    let more = shown.len() - listed + hidden;
    if more > 0 {
        if listed > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "and {more} more errors");
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_error_is_bare_and_several_are_bracketed() {
        let kind = "Cluster.platform.tkestack.io";
        assert_eq!(
            invalid_message(kind, "cls-a", &["x: Required value"], 0),
            r#"Cluster.platform.tkestack.io "cls-a" is invalid: x: Required value"#
        );
        assert_eq!(
            invalid_message(kind, "", &["a: bad", "b: worse"], 0),
            r#"Cluster.platform.tkestack.io "" is invalid: [a: bad, b: worse]"#
        );
        assert_eq!(
            invalid_message(kind, "c", &["a: bad"], 3),
            r#"Cluster.platform.tkestack.io "c" is invalid: [a: bad, and 3 more errors]"#
        );
    }

    #[test]
    fn the_message_stops_at_its_byte_limit_and_counts_the_rest() {
        let errors: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    "spec.machines[{i}].ip: Invalid value: \"1\": {}",
                    "x".repeat(100)
                )
            })
            .collect();
        let message = invalid_message("Cluster.platform.tkestack.io", "c", &errors, 59_000);
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        let listed = message.matches("spec.machines[").count();
        assert!(listed > 10, "{listed}");
        assert!(
            message.ends_with(&format!(", and {} more errors]", 1000 - listed + 59_000)),
            "{}",
            &message[message.len() - 60..]
        );
    }

    #[test]
    fn short_warnings_pass_unchanged() {
        let w = "x".repeat(MAX_WARNING_CHARS);
        assert_eq!(limit_warning(&w), w);
        assert!(matches!(bounded(&w, MAX_WARNING_CHARS), Cow::Borrowed(_)));
    }

    #[test]
    fn long_warnings_are_cut_on_a_char_boundary() {
        // Multi-byte characters everywhere: a byte-based cut would panic or split one.
        let w = "é漢".repeat(200);
        let out = limit_warning(&w);
        assert!(
            out.chars().count() <= MAX_WARNING_CHARS,
            "{}",
            out.chars().count()
        );
        assert!(out.ends_with("..."));
        assert!(w.starts_with(out.trim_end_matches("...")));
    }

    #[test]
    fn control_characters_are_escaped_and_count_toward_the_limit() {
        assert_eq!(bounded("a\u{1b}[8mb\n", 100), "a\\u{1b}[8mb\\u{a}");
        let bells = "\u{7}".repeat(100);
        let out = bounded(&bells, 20);
        assert!(out.chars().count() <= 20, "{out}");
        assert!(out.starts_with("\\u{7}") && out.ends_with("..."), "{out}");
        assert!(!out.chars().any(char::is_control));
    }

    #[test]
    fn control_characters_are_found_by_their_bytes() {
        for c in (0u32..0x250).filter_map(char::from_u32) {
            assert_eq!(has_control(&format!("a{c}b")), c.is_control(), "{:?}", c);
        }
    }

    #[test]
    fn many_warnings_end_with_how_many_more() {
        let warnings: Vec<String> = (0..100).map(|i| format!("warning {i}")).collect();
        let out = limit_warnings(&warnings);
        assert_eq!(out.len(), MAX_WARNINGS);
        assert_eq!(out[MAX_WARNINGS - 2], "warning 18");
        assert_eq!(out[MAX_WARNINGS - 1], "and 81 more warnings (not shown)");
        assert_eq!(limit_warnings(&warnings[..3]).len(), 3);
    }
}

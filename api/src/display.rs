//! Showing user-supplied text safely: control characters (newline, ESC, NUL, C1, bidi overrides) become visible escapes.
//!
//! Any text that came from a manifest, an object in the API server, a command-line argument or a
//! remote host (a username in an SSH error, a file name, a master's stderr) may hold bytes a
//! terminal acts on: a newline starts a fake report line, `ESC[8m` hides what follows, a bidi
//! override reorders it, NUL cuts it in some viewers. [`escape_control`] is the one place that
//! turns them into printable escapes; every renderer of messages calls it on text it did not write.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character written as a visible escape: `\n`, `\r`, `\t`, and
/// `\u{1b}`-style for the rest (C0, DEL, C1, and the Unicode bidi and invisible-format controls
/// that reorder or hide text). Printable text, including non-ASCII letters, is unchanged; a
/// string with nothing to escape is returned borrowed.
///
/// ```
/// use tkeha_api::display::escape_control;
///
/// assert_eq!(escape_control("root"), "root");
/// assert_eq!(escape_control("ro\not"), "ro\\not");
/// assert_eq!(escape_control("\u{1b}[8mhidden"), "\\u{1b}[8mhidden");
/// assert_eq!(escape_control("a\0b"), "a\\u{0}b");
/// assert_eq!(escape_control("grüße $(id)"), "grüße $(id)");
/// ```
pub fn escape_control(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape_control`] into an owned `String` (for fields that are stored, such as a report's).
pub fn escaped(text: &str) -> String {
    escape_control(text).into_owned()
}

/// Characters a terminal or viewer acts on instead of showing: C0 and C1 controls, DEL, and the
/// format characters that reorder or hide text (bidi embeddings, overrides and isolates, the
/// zero-width joiners and marks, the BOM, the line and paragraph separators).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{061c}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_a_terminal_acts_on_survives() {
        let attack =
            "root\n[10.0.0.1] ok\ncheck succeeded (3 ms)\u{1b}[8m\0\u{9b}31m\u{202e}x\u{7f}";
        let shown = escape_control(attack);
        assert!(!shown.chars().any(needs_escape), "{shown}");
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{shown}"
        );
        assert_eq!(
            shown,
            "root\\n[10.0.0.1] ok\\ncheck succeeded (3 ms)\\u{1b}[8m\\u{0}\\u{9b}31m\\u{202e}x\\u{7f}"
        );
    }

    proptest::proptest! {
        /// Whatever the input, the output holds nothing a terminal acts on, and text without
        /// such characters comes back unchanged.
        #[test]
        fn no_input_leaves_a_control_character(text in "\\PC*|[\\x00-\\x1f\\x7f-\\u{9f}\\u{200b}-\\u{206f} a-z]{0,64}") {
            let shown = escape_control(&text);
            proptest::prop_assert!(!shown.chars().any(needs_escape), "{:?}", shown);
            if !text.chars().any(needs_escape) {
                proptest::prop_assert_eq!(shown.as_ref(), text.as_str());
            }
        }
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for text in [
            "",
            "root",
            "tkeha-ops_1",
            "$(reboot); `id`",
            "用户",
            "a\\nb",
        ] {
            assert!(matches!(escape_control(text), Cow::Borrowed(t) if t == text));
        }
    }
}

//! What the API server shows the user: the denial message and size-limited warnings.

/// Longest warning we send, in characters. Kubernetes asks for warnings under 120 characters.
pub const MAX_WARNING_CHARS: usize = 119;

/// Marker appended to a shortened warning.
const ELLIPSIS: &str = "...";

/// `Cluster.platform.tkestack.io "NAME" is invalid: ERR` or `...: [ERR1, ERR2]`, the form of
/// the API server's own `apierrors.NewInvalid` (one error bare, several in brackets).
pub fn invalid_message<E: std::fmt::Display>(
    qualified_kind: &str,
    name: &str,
    errors: &[E],
) -> String {
    use std::fmt::Write;
    let mut out = format!("{qualified_kind} {name:?} is invalid: ");
    match errors {
        [one] => {
            let _ = write!(out, "{one}");
        }
        many => {
            out.push('[');
            for (i, e) in many.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{e}");
            }
            out.push(']');
        }
    }
    out
}

/// Shorten a warning to at most [`MAX_WARNING_CHARS`] characters, cutting on a char boundary.
pub fn limit_warning(warning: &str) -> String {
    if warning.chars().count() <= MAX_WARNING_CHARS {
        return warning.to_string();
    }
    let keep = MAX_WARNING_CHARS - ELLIPSIS.len();
    let cut = warning
        .char_indices()
        .nth(keep)
        .map_or(warning.len(), |(i, _)| i);
    let mut out = warning[..cut].trim_end().to_string();
    out.push_str(ELLIPSIS);
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
            invalid_message(kind, "cls-a", &["x: Required value"]),
            r#"Cluster.platform.tkestack.io "cls-a" is invalid: x: Required value"#
        );
        assert_eq!(
            invalid_message(kind, "", &["a: bad", "b: worse"]),
            r#"Cluster.platform.tkestack.io "" is invalid: [a: bad, b: worse]"#
        );
    }

    #[test]
    fn short_warnings_pass_unchanged() {
        let w = "x".repeat(MAX_WARNING_CHARS);
        assert_eq!(limit_warning(&w), w);
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
}

//! Reading manifests: JSON, JSON with `//` comments (the docs' format) and YAML, with line-accurate errors.
//!
//! JSON is recognised by its first significant character (`{` or `[`, after whitespace and
//! comments); anything else is read as YAML. Comments in JSON are blanked out byte for byte
//! (newlines kept), so the parser's line and column still point into the original text.
//! Inputs over [`MAX_MANIFEST_BYTES`] are refused; nesting is bounded by serde_json's
//! recursion limit (128) and by the YAML budget ([`YAML_MAX_DEPTH`], alias and node caps).

use serde_json::Value;

/// Largest manifest accepted (3 MiB, Kubernetes' request size limit).
pub const MAX_MANIFEST_BYTES: usize = 3 * 1024 * 1024;

/// Deepest YAML nesting accepted (sequences + mappings).
pub const YAML_MAX_DEPTH: usize = 64;

/// A manifest that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ManifestError {
    /// 1-based line of the problem.
    pub line: usize,
    /// 1-based column of the problem.
    pub column: usize,
    /// What is wrong there (control characters escaped).
    pub message: String,
}

/// Which syntax a manifest was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// JSON, possibly with `//` or `/* */` comments.
    Json,
    /// YAML (one document).
    Yaml,
}

/// Parse a manifest into a JSON value (unknown fields kept as they are).
///
/// # Errors
///
/// [`ManifestError`] with the 1-based line and column: invalid JSON or YAML, an unterminated
/// `/* */` comment, more than one YAML document, nesting or alias counts over the budget, an
/// empty text, or a text over [`MAX_MANIFEST_BYTES`].
///
/// # Example
///
/// ```
/// let v = tkeha_api::parse_manifest("{\n  // the docs' format\n  \"kind\": \"Cluster\"\n}")?;
/// assert_eq!(v["kind"], "Cluster");
/// let e = tkeha_api::parse_manifest("kind: [").unwrap_err();
/// assert_eq!(e.line, 1);
/// # Ok::<(), tkeha_api::ManifestError>(())
/// ```
pub fn parse_manifest(text: &str) -> Result<Value, ManifestError> {
    parse_manifest_with_syntax(text).map(|(v, _)| v)
}

/// Like [`parse_manifest`], also saying which syntax was detected.
///
/// # Errors
///
/// As [`parse_manifest`].
pub fn parse_manifest_with_syntax(text: &str) -> Result<(Value, Syntax), ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError {
            line: 1,
            column: 1,
            message: format!(
                "manifest is {} bytes, over the {} byte (3 MiB) limit: a Cluster is a few KiB, check the file",
                text.len(),
                MAX_MANIFEST_BYTES
            ),
        });
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match first_significant(text) {
        Some(b'{') | Some(b'[') => parse_json(text).map(|v| (v, Syntax::Json)),
        Some(_) => parse_yaml(text).map(|v| (v, Syntax::Yaml)),
        None => Err(ManifestError {
            line: 1,
            column: 1,
            message: "manifest is empty: expected a Cluster object in JSON or YAML".to_string(),
        }),
    }
}

/// First byte that is not whitespace and not inside a `//` or `/* */` comment.
fn first_significant(text: &str) -> Option<u8> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            c => return Some(c),
        }
    }
    None
}

fn parse_json(text: &str) -> Result<Value, ManifestError> {
    let stripped;
    let src = if text.as_bytes().contains(&b'/') {
        stripped = strip_comments(text)?;
        stripped.as_str()
    } else {
        text
    };
    serde_json::from_str(src).map_err(|e| ManifestError {
        line: e.line().max(1),
        column: e.column().max(1),
        message: format!("invalid JSON: {}", crate::field::escape(&json_message(&e))),
    })
}

/// serde_json's message without its trailing " at line L column C" (we carry those separately).
fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Blank out `//` and `/* */` comments outside strings, keeping every newline and byte offset.
fn strip_comments(text: &str) -> Result<String, ManifestError> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            out.push(c);
            if c == b'\\' {
                if let Some(&n) = b.get(i + 1) {
                    out.push(n);
                    i += 1;
                }
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                out.push(c);
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let start = i;
                out.extend_from_slice(b"  ");
                i += 2;
                loop {
                    if i >= b.len() {
                        let (line, column) = line_col(text, start);
                        return Err(ManifestError {
                            line,
                            column,
                            message: "unterminated /* comment: close it with */".to_string(),
                        });
                    }
                    if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        out.extend_from_slice(b"  ");
                        i += 2;
                        break;
                    }
                    out.push(blank(b[i]));
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Only ASCII bytes outside strings were replaced by ASCII spaces; multi-byte characters
    // inside comments are blanked byte by byte, so the result is still valid UTF-8.
    String::from_utf8(out).map_err(|_| ManifestError {
        line: 1,
        column: 1,
        message: "manifest is not valid UTF-8".to_string(),
    })
}

/// Comment bytes become spaces, newlines stay (so line numbers stay right).
fn blank(c: u8) -> u8 {
    if c == b'\n' || c == b'\r' { c } else { b' ' }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&c| c == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = YAML_MAX_DEPTH;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_nodes = 100_000;
    budget.max_events = 300_000;
    budget.max_documents = 1;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 4 * 1024 * 1024;
    budget.max_total_scalar_bytes = MAX_MANIFEST_BYTES;
    budget.max_merge_keys = 1_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

fn parse_yaml(text: &str) -> Result<Value, ManifestError> {
    let value: Value = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((1, 1));
        ManifestError {
            line: line.max(1),
            column: column.max(1),
            message: format!("invalid YAML: {}", crate::field::escape(&yaml_message(&e))),
        }
    })?;
    Ok(value)
}

/// The first line of saphyr's message, without its rendered snippet.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let s = e.without_snippet().to_string();
    let mut first = s.lines().next().unwrap_or("").trim();
    if let Some(i) = first.rfind(" at line ") {
        first = first[..i].trim_end();
    }
    if first.is_empty() {
        "could not parse".to_string()
    } else {
        first.replace(
            ", set DuplicateKeyPolicy in Options if acceptable",
            " (each key may appear once)",
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strips_line_comments_and_keeps_positions() {
        let v = parse_manifest("{\n \"a\": 1, // one\n \"b\": \"x//y\" /* c */\n}").unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["b"], "x//y");
    }

    #[test]
    fn json_error_position_after_comment() {
        let e = parse_manifest("// head\n{\n  \"a\": 1,, // bad\n}").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.column >= 9, "{e}");
    }

    #[test]
    fn yaml_detected() {
        let (v, s) =
            parse_manifest_with_syntax("# c\nkind: Cluster\nspec:\n  type: Baremetal\n").unwrap();
        assert_eq!(s, Syntax::Yaml);
        assert_eq!(v["spec"]["type"], "Baremetal");
    }

    #[test]
    fn unterminated_block_comment() {
        let e = parse_manifest("{\"a\": 1 /* oops").unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
    }
}

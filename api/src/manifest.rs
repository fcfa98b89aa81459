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

/// A YAML budget limit, as a sentence about the file.
fn budget_words(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Documents { .. } => {
            "the file holds more than one YAML document (a `---` line starts another); one Cluster per file".to_string()
        }
        B::Depth { .. } => format!(
            "nested deeper than {YAML_MAX_DEPTH} levels; a Cluster needs fewer than 10"
        ),
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. }
        | B::MergeKeys { .. } => {
            "too many YAML anchors, aliases or merge keys (over 1000); a Cluster needs none".to_string()
        }
        B::Events { .. } | B::Nodes { .. } => {
            "too many YAML values (over 100000); a Cluster has a few hundred".to_string()
        }
        B::ScalarBytes { .. } | B::InputBytes { .. } => {
            "more than 3 MiB of text; a Cluster is a few KiB".to_string()
        }
        _ => "the YAML is larger or more deeply nested than a Cluster manifest can be".to_string(),
    }
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

/// The first line of saphyr's message, without its rendered snippet; a budget limit in words
/// (never the parser's internal names).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    if let serde_saphyr::Error::Budget { breach, .. } = e.without_snippet() {
        return budget_words(breach);
    }
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

/// serde's words for a value of the wrong type, as a sentence a user can act on:
/// `invalid type: string "22", expected i64` becomes `must be a number, not a string`.
/// Messages of another shape are returned unchanged. Values are not repeated, except numbers and
/// booleans where a string was expected (the fix is to quote them).
///
/// ```
/// use tkeha_api::manifest::type_error_words;
///
/// assert_eq!(type_error_words(r#"invalid type: string "22", expected i64"#), "must be a number, not a string");
/// assert_eq!(type_error_words("invalid type: sequence, expected a string"), "must be a string, not a list");
/// assert_eq!(
///     type_error_words("invalid type: integer `22`, expected a string"),
///     "must be a string, not a number: put it in quotes (\"22\")"
/// );
/// ```
pub fn type_error_words(message: &str) -> String {
    let (found, expected) = if let Some(rest) = message.strip_prefix("invalid type: ") {
        match rest.rsplit_once(", expected ") {
            Some(parts) => parts,
            None => return message.to_string(),
        }
    } else if let Some(rest) = message.strip_prefix("invalid value: ") {
        match rest.rsplit_once(", expected ") {
            Some(parts) => parts,
            None => return message.to_string(),
        }
    } else if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|f| f.strip_suffix('`'))
    {
        return format!("`{field}` is required");
    } else {
        return message.to_string();
    };
    let (found_words, literal) = found_words(found);
    let whole = found.starts_with("floating point");
    let expected_words = expected_words(expected, whole);
    let mut out = format!("must be {expected_words}, not {found_words}");
    if expected_words == "a string"
        && let Some(literal) = literal
    {
        out.push_str(&format!(": put it in quotes (\"{literal}\")"));
    }
    out
}

/// What serde found, in words, and the literal when it is a number or a boolean.
fn found_words(found: &str) -> (String, Option<&str>) {
    let literal = found
        .split_once('`')
        .and_then(|(_, rest)| rest.rsplit_once('`'))
        .map(|(inner, _)| inner);
    let words = if found.starts_with("string") {
        "a string".to_string()
    } else if found.starts_with("integer") || found == "a number" {
        "a number".to_string()
    } else if found.starts_with("floating point") {
        match literal {
            // serde_json reads an integer too large for i64 as a float: say so.
            Some(l) if l.contains('e') => format!("{l}, which is out of range"),
            Some(l) => l.to_string(),
            None => "a fraction".to_string(),
        }
    } else if found.starts_with("boolean") || found == "a boolean" {
        "true/false".to_string()
    } else if found == "sequence" || found == "an array" {
        "a list".to_string()
    } else if found == "map" || found == "an object" {
        "an object".to_string()
    } else if found == "null" || found == "unit value" {
        "null".to_string()
    } else {
        found.to_string()
    };
    let literal = literal.filter(|_| {
        found.starts_with("integer")
            || found.starts_with("floating")
            || found.starts_with("boolean")
    });
    (words, literal)
}

/// What serde expected, in words: Rust type names never reach the user.
fn expected_words(expected: &str, found_fraction: bool) -> String {
    const INTEGERS: [&str; 12] = [
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    ];
    if INTEGERS.contains(&expected) {
        return if found_fraction {
            "a whole number"
        } else {
            "a number"
        }
        .to_string();
    }
    match expected {
        "f32" | "f64" => "a number".to_string(),
        "a string" | "a borrowed string" | "string" | "a character" => "a string".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" | "an array" => "a list".to_string(),
        "an array of objects" => "a list of objects".to_string(),
        "a map" | "an object" => "an object".to_string(),
        other if other.starts_with("struct ") => "an object".to_string(),
        other if other.starts_with("a sequence") => "a list".to_string(),
        other if other.starts_with("a map") => "an object".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn yaml_limits_are_sentences() {
        let e = parse_manifest("spec:\n  type: Baremetal\n---\nspec: {}\n").unwrap_err();
        assert_eq!(
            e.message,
            "invalid YAML: the file holds more than one YAML document (a `---` line starts another); one Cluster per file"
        );
        assert_eq!(e.line, 3, "{e}");
        let deep = format!("a: {}1{}", "[".repeat(70), "]".repeat(70));
        let e = parse_manifest(&deep).unwrap_err();
        assert!(e.message.contains("nested deeper than 64 levels"), "{e}");
        assert!(
            !e.message.contains('{') && !e.message.contains("Budget"),
            "{e}"
        );
    }

    proptest::proptest! {
        /// Any message, however shaped, gives words and never a panic.
        #[test]
        fn type_error_words_never_panic(
            head in "(invalid type: |invalid value: |missing field `|)",
            found in ".{0,40}",
            expected in ".{0,40}",
        ) {
            let _ = type_error_words(&format!("{head}{found}, expected {expected}"));
            let _ = type_error_words(&format!("{head}{found}"));
        }
    }

    #[test]
    fn serde_type_errors_become_sentences() {
        for (serde, words) in [
            (
                r#"invalid type: string "22", expected i64"#,
                "must be a number, not a string",
            ),
            (
                "invalid type: floating point `1.5`, expected i64",
                "must be a whole number, not 1.5",
            ),
            (
                "invalid type: boolean `true`, expected i64",
                "must be a number, not true/false",
            ),
            (
                "invalid type: sequence, expected i64",
                "must be a number, not a list",
            ),
            (
                "invalid type: map, expected a string",
                "must be a string, not an object",
            ),
            (
                "invalid type: null, expected a boolean",
                "must be true or false, not null",
            ),
            (
                r#"invalid type: string "x", expected an array of objects"#,
                "must be a list of objects, not a string",
            ),
            (
                "invalid type: a number, expected an object",
                "must be an object, not a number",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "must be a string, not true/false: put it in quotes (\"true\")",
            ),
            ("missing field `ip`", "`ip` is required"),
            ("something else entirely", "something else entirely"),
        ] {
            assert_eq!(type_error_words(serde), words, "{serde}");
        }
    }

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

//! Kubernetes-style field errors: `spec.features.ha.tke.vip: Invalid value: "1.2.3.300": must be a valid IP address`.
//!
//! Also the one helper every message that shows user-supplied text goes through: [`escape`]
//! (and [`quote`], built on it). [`FieldError`]'s `Display` and the rule engine's warnings
//! escape what they print, so a value holding a newline, an ANSI escape or a bidi override
//! can neither forge lines of a report nor hide them on a terminal.

use std::borrow::Cow;

use serde::Serialize;

/// The kind of a field error, named as in `k8s.io/apimachinery/pkg/util/validation/field`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    /// The field must be set.
    #[serde(rename = "FieldValueRequired")]
    Required,
    /// The value is malformed or out of range.
    #[serde(rename = "FieldValueInvalid")]
    Invalid,
    /// The value repeats another one that must be unique.
    #[serde(rename = "FieldValueDuplicate")]
    Duplicate,
    /// The field may not be set (here, or together with another).
    #[serde(rename = "FieldValueForbidden")]
    Forbidden,
    /// The value is not one of a fixed set.
    #[serde(rename = "FieldValueNotSupported")]
    NotSupported,
    /// A string is longer than allowed.
    #[serde(rename = "FieldValueTooLong")]
    TooLong,
    /// A list or map has more entries than allowed.
    #[serde(rename = "FieldValueTooMany")]
    TooMany,
    /// A field the schema does not know (an error only under strict field validation).
    /// Not an apimachinery type: the API server reports these as `unknown field "PATH"`,
    /// which is how [`FieldError`] displays them.
    #[serde(rename = "FieldValueUnknown")]
    Unknown,
}

impl ErrorType {
    /// The phrase the API server prints for this kind ("Invalid value", "Required value", ...).
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Unknown => "Unknown field",
        }
    }
}

/// One field error. `Display` gives the Kubernetes form; the JSON form is
/// `{"field", "type", "message"}` where `message` is the whole displayed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.machines[1].ip`.
    pub field: String,
    /// What kind of error.
    pub kind: ErrorType,
    /// The offending value as the API server would quote it (`"1.2.3.4"`, `0`), if any.
    pub value: Option<String>,
    /// The detail: what is wrong and how to fix it.
    pub detail: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == ErrorType::Unknown {
            // kubectl's and the API server's wording: `unknown field "spec.x"`.
            return self.write_body(f);
        }
        write!(f, "{}: ", escape(&self.field))?;
        self.write_body(f)
    }
}

impl Serialize for FieldError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("FieldError", 3)?;
        st.serialize_field("field", &self.field)?;
        st.serialize_field("type", &self.kind)?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

impl FieldError {
    /// The error without its field path (`Invalid value: "1.2.3.300": must be ...`), as
    /// apimachinery's `field.Error.ErrorBody()`: what `details.causes[].message` carries next to
    /// `field` in an Invalid status (kubectl prints each cause as `FIELD: MESSAGE`).
    pub fn body(&self) -> String {
        struct Body<'a>(&'a FieldError);
        impl std::fmt::Display for Body<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.write_body(f)
            }
        }
        Body(self).to_string()
    }

    fn write_body(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.kind == ErrorType::Unknown {
            write!(f, "unknown field {}", quote(&self.field))?;
            if !self.detail.is_empty() {
                write!(f, " ({})", escape(&self.detail))?;
            }
            return Ok(());
        }
        f.write_str(self.kind.phrase())?;
        if let Some(v) = &self.value {
            write!(f, ": {}", escape(v))?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", escape(&self.detail))?;
        }
        Ok(())
    }

    /// `Required value`: the field must be set.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, None, detail)
    }
    /// `Invalid value`, with the offending value already quoted (see [`quote`]).
    pub fn invalid(
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(field, ErrorType::Invalid, value, detail)
    }
    /// `Duplicate value`.
    pub fn duplicate(
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(field, ErrorType::Duplicate, value, detail)
    }
    /// `Forbidden`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Forbidden, None, detail)
    }
    /// `Unsupported value`, listing the supported values.
    pub fn not_supported(
        field: impl Into<String>,
        value: Option<String>,
        supported: &[String],
    ) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Self::new(
            field,
            ErrorType::NotSupported,
            value,
            format!("supported values: {}", list.join(", ")),
        )
    }
    /// `Too long`: a string over `max` characters (apimachinery's `field.TooLong` wording, which counts bytes).
    pub fn too_long(field: impl Into<String>, max: usize, detail: &str) -> Self {
        let mut text = format!("may not be more than {max} characters");
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(detail);
        }
        Self::new(field, ErrorType::TooLong, None, text)
    }
    /// `Too many`: `count` entries where at most `max` are allowed (`field.TooMany` wording).
    pub fn too_many(field: impl Into<String>, count: usize, max: usize, detail: &str) -> Self {
        let mut text = format!("must have at most {max} items");
        if !detail.is_empty() {
            text.push_str(": ");
            text.push_str(detail);
        }
        Self::new(field, ErrorType::TooMany, Some(count.to_string()), text)
    }
    /// Any kind, with the value already quoted (see [`quote`]).
    pub fn new(
        field: impl Into<String>,
        kind: ErrorType,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            value,
            detail: detail.into(),
        }
    }
}

/// Quote a string value the way the API server prints it (`"1.2.3.4"`), with `"` and `\\`
/// escaped and every character [`escape`] escapes escaped too.
///
/// A value over [`MAX_QUOTED_CHARS`] characters is cut there and marked `..." (N characters)`:
/// a message names the value, it need not carry 100 KB of it.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_QUOTED_CHARS * 2) + 2);
    out.push('"');
    for (shown, c) in s.chars().enumerate() {
        if shown == MAX_QUOTED_CHARS {
            let total = s.chars().count();
            out.push_str(&format!("...\" ({total} characters)"));
            return out;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => push_escaped(&mut out, c),
        }
    }
    out.push('"');
    out
}

/// The most characters of a value [`quote`] shows.
pub const MAX_QUOTED_CHARS: usize = 256;

/// Whether `c` must not reach a terminal or a log as it is: control characters (C0, DEL, C1:
/// newlines that forge report lines, ESC that starts terminal sequences) and the Unicode
/// line separators and bidirectional controls that reorder what is shown.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    use std::fmt::Write as _;
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `s` with control characters, Unicode line separators and bidi controls written as escapes
/// (`\n`, `\t`, `\u001b`, `\u202e`): the one helper for every message, warning and report
/// line that shows user-supplied text. Borrowed when there is nothing to escape.
///
/// ```
/// assert_eq!(tkeha_api::field::escape("root"), "root");
/// assert_eq!(tkeha_api::field::escape("a\nok\u{1b}[8m"), "a\\nok\\u001b[8m");
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_field_then_body() {
        let e = FieldError::invalid(
            "spec.features.ha.tke.vip",
            Some(quote("1.2.3.300")),
            "must be a valid IP address",
        );
        assert_eq!(
            e.body(),
            r#"Invalid value: "1.2.3.300": must be a valid IP address"#
        );
        assert_eq!(
            e.to_string(),
            format!("spec.features.ha.tke.vip: {}", e.body())
        );
        let r = FieldError::required("spec.type", "");
        assert_eq!(r.body(), "Required value");
        assert_eq!(r.to_string(), "spec.type: Required value");
    }

    #[test]
    fn quote_matches_json_for_ordinary_text_and_escapes_the_rest() {
        for s in [
            "1.2.3.4",
            "",
            "a \"b\" \\ c",
            "\u{e9}t\u{e9}",
            "tab\there\nline",
        ] {
            assert_eq!(
                quote(s),
                serde_json::to_string(s).unwrap_or_default(),
                "{s:?}"
            );
        }
        assert_eq!(quote("\u{1b}[8m"), "\"\\u001b[8m\"");
        assert_eq!(quote("x\u{7f}\u{85}\u{202e}"), "\"x\\u007f\\u0085\\u202e\"");
        let long = "a".repeat(70_000);
        let shown = quote(&long);
        assert!(shown.len() < 300, "{shown}");
        assert!(shown.ends_with("...\" (70000 characters)"), "{shown}");
    }

    #[test]
    fn display_escapes_what_it_prints() {
        let e = FieldError::invalid(
            "spec.machines[0].username",
            Some(quote("a\nspec: ok")),
            "bad\u{1b}[8m detail",
        );
        let shown = e.to_string();
        assert!(!shown.chars().any(char::is_control), "{shown}");
        assert!(shown.contains("\\u001b[8m"), "{shown}");
        let u = FieldError::new("spec.clu\nsterCidr", ErrorType::Unknown, None, "");
        assert_eq!(u.to_string(), "unknown field \"spec.clu\\nsterCidr\"");
    }
}

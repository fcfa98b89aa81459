//! Kubernetes-style field errors: `spec.features.ha.tke.vip: Invalid value: "1.2.3.300": must be a valid IP address`.

use serde::Serialize;

/// The kind of a field error, named as in `k8s.io/apimachinery/pkg/util/validation/field`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorType {
    #[serde(rename = "FieldValueRequired")]
    Required,
    #[serde(rename = "FieldValueInvalid")]
    Invalid,
    #[serde(rename = "FieldValueDuplicate")]
    Duplicate,
    #[serde(rename = "FieldValueForbidden")]
    Forbidden,
    #[serde(rename = "FieldValueNotSupported")]
    NotSupported,
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
        }
    }
}

/// One field error. `Display` gives the Kubernetes form; the JSON form is
/// `{"field", "type", "message"}` where `message` is the whole displayed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field path, e.g. `spec.machines[1].ip`.
    pub field: String,
    pub kind: ErrorType,
    /// The offending value as the API server would quote it (`"1.2.3.4"`, `0`), if any.
    pub value: Option<String>,
    /// The detail: what is wrong and how to fix it.
    pub detail: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.field)?;
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
        f.write_str(self.kind.phrase())?;
        if let Some(v) = &self.value {
            write!(f, ": {v}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
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

/// Quote a string value the way the API server prints it (`"1.2.3.4"`).
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
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
}

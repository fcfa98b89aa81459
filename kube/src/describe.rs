//! Kubernetes API errors in words: kubectl's wording of a failed request, and a transport failure with its causes.

/// How kubectl shows a failed request (`checkErr` in kubectl's cmd/util/helpers.go): a 422
/// `Invalid` as `The KIND "NAME" is invalid:` with one `* FIELD: MESSAGE` line per cause, any
/// other failure as `Error from server (Reason): message`. No trailing newline.
pub fn describe_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.is_invalid() => describe_invalid(status),
        kube::Error::Api(status) if status.reason.is_empty() => {
            format!("Error from server: {}", status.message)
        }
        kube::Error::Api(status) => {
            format!("Error from server ({}): {}", status.reason, status.message)
        }
        other => format!("error: talking to the API server: {other}"),
    }
}

fn describe_invalid(status: &kube::core::Status) -> String {
    let Some(details) = &status.details else {
        return if status.message.is_empty() {
            "The request is invalid".to_string()
        } else {
            format!("The request is invalid: {}", status.message)
        };
    };
    let head = if details.kind.is_empty() && details.name.is_empty() {
        "The request is invalid".to_string()
    } else {
        format!("The {} {:?} is invalid", details.kind, details.name)
    };
    // kubectl drops repeated causes and prints a single one on the head line.
    let mut causes: Vec<String> = Vec::new();
    for cause in &details.causes {
        let line = format!("{}: {}", cause.field, cause.message);
        if !causes.contains(&line) {
            causes.push(line);
        }
    }
    match causes.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|c| format!("* {c}")).collect();
            format!("{head}: \n{}", lines.join("\n"))
        }
    }
}

/// A kube client error as one line: an answer of the API server as [`describe_error`] shows it,
/// or a transport failure followed by each of its causes
/// (`client error (Connect): tcp connect error: Connection refused`).
pub fn error_text(error: &kube::Error) -> String {
    if let kube::Error::Api(_) = error {
        return describe_error(error);
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(field: &str, message: &str) -> kube::core::response::StatusCause {
        kube::core::response::StatusCause {
            reason: "FieldValueInvalid".into(),
            message: message.into(),
            field: field.into(),
        }
    }

    #[test]
    fn api_errors_read_like_kubectl() {
        let status =
            kube::core::Status::failure("admission webhook denied the request", "Forbidden");
        assert_eq!(
            describe_error(&kube::Error::Api(status.boxed())),
            "Error from server (Forbidden): admission webhook denied the request"
        );
        let mut invalid = kube::core::Status::failure("denied", "Invalid").with_code(422);
        invalid.details = Some(kube::core::response::StatusDetails {
            name: "prod".into(),
            kind: "Cluster".into(),
            causes: vec![
                cause("spec.a", "Required value"),
                cause("spec.b", "Invalid value: \"x\""),
                cause("spec.a", "Required value"),
            ],
            group: "platform.tkestack.io".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.clone().boxed())),
            "The Cluster \"prod\" is invalid: \n* spec.a: Required value\n* spec.b: Invalid value: \"x\""
        );
        if let Some(d) = invalid.details.as_mut() {
            d.causes.truncate(1);
        }
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.clone().boxed())),
            "The Cluster \"prod\" is invalid: spec.a: Required value"
        );
        invalid.details = None;
        assert_eq!(
            describe_error(&kube::Error::Api(invalid.boxed())),
            "The request is invalid: denied"
        );
        let bare = kube::core::Status::failure("boom", "");
        assert_eq!(
            describe_error(&kube::Error::Api(bare.boxed())),
            "Error from server: boom"
        );
    }
}

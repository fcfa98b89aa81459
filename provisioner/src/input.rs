//! Reading a Cluster manifest (a file, or `-` for stdin) into a JSON value, and [`InputError`], the one way every command of both binaries reports input it cannot use.
//!
//! `validate`, `create`, `check`, `provision` and the rest all read a manifest here, so the same
//! bad input gets the same words everywhere:
//!
//! - `FILE: no such file`, once (the OS's words, without its error number);
//! - `FILE:LINE:COLUMN: invalid JSON: ...` / `invalid YAML: ...` for a syntax error;
//! - `FILE: spec.machines[0].port: must be a number, not a string` for a value of the wrong type;
//! - `FILE: spec: Required value: not a Cluster manifest (no spec); ...` for the wrong file.
//!
//! File names and values shown in these messages are escaped ([`tkeha_api::display`]).

use std::io::Read as _;
use std::path::Path;

use serde_json::Value;
use tkeha_api::ManifestError;
use tkeha_api::field::escape;
use tkeha_api::review::DecodeError;

/// Largest manifest accepted: the API server's request limit (3 MiB). A Cluster is a few KiB.
pub const MAX_MANIFEST_BYTES: u64 = tkeha_api::manifest::MAX_MANIFEST_BYTES as u64;

/// A manifest's text and the name messages show for it (`<stdin>` for `-`).
#[derive(Debug)]
pub struct Input {
    /// The file name as given (escaped when shown), or `<stdin>`.
    pub name: String,
    /// The whole text.
    pub text: String,
}

/// A parsed manifest and the name messages show for it.
#[derive(Debug)]
pub struct Loaded {
    /// As [`Input::name`].
    pub name: String,
    /// The object as parsed, unknown fields kept.
    pub value: Value,
}

/// Input that cannot be used: nothing was done with it. Both binaries exit 2 on it.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file could not be opened or read.
    #[error("{}: {}", shown(name), io_words(error))]
    Read {
        /// The file.
        name: String,
        /// What the OS said (shown in words, once: it is not a `source`).
        error: std::io::Error,
    },
    /// Over [`MAX_MANIFEST_BYTES`].
    #[error(
        "{}: larger than 3 MiB (the API server's request limit): not a Cluster manifest",
        shown(name)
    )]
    TooLarge {
        /// The file.
        name: String,
    },
    /// Not UTF-8 text.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset})", shown(name))]
    NotUtf8 {
        /// The file.
        name: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// Neither JSON (with or without comments) nor YAML.
    #[error("{}:{}:{}: {}", shown(name), error.line, error.column, shown(&error.message))]
    Syntax {
        /// The file.
        name: String,
        /// Where and why parsing failed.
        error: ManifestError,
    },
    /// Parsed, but a field has a value of the wrong type: the object cannot be read as a Cluster.
    #[error("{}: {}: {}", shown(name), shown(&error.path), shown(&error.message))]
    Decode {
        /// The file, or `Cluster NAME` for an object read from the API server.
        name: String,
        /// The field and what it must be.
        error: DecodeError,
    },
    /// An object without `spec`: the wrong file rather than an invalid Cluster.
    #[error(
        "{}: spec: Required value: not a Cluster manifest (no spec); scaffold one with `kubectl tkeha init`",
        shown(name)
    )]
    NoSpec {
        /// The file.
        name: String,
    },
}

fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    escape(text)
}

/// The OS's error in words, without the `(os error N)` suffix.
fn io_words(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::NotFound => "no such file".to_string(),
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::IsADirectory => "is a directory, not a manifest file".to_string(),
        _ => {
            let text = error.to_string();
            let text = match text.find(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "cannot be read".to_string(),
            }
        }
    }
}

/// How a path is named in messages: `<stdin>` for `-`.
pub fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Read `path` (`-` means stdin), at most [`MAX_MANIFEST_BYTES`], as UTF-8 text.
///
/// # Errors
///
/// [`InputError::Read`], [`InputError::TooLarge`] or [`InputError::NotUtf8`].
pub fn read(path: &Path) -> Result<Input, InputError> {
    let name = display_name(path);
    let mut bytes = Vec::new();
    let result = if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|file| {
            if file.metadata()?.is_dir() {
                return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
            }
            file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes)
        })
    };
    if let Err(error) = result {
        return Err(InputError::Read { name, error });
    }
    decode(name, bytes)
}

fn decode(name: String, bytes: Vec<u8>) -> Result<Input, InputError> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(InputError::TooLarge { name });
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Input { name, text }),
        Err(e) => Err(InputError::NotUtf8 {
            name,
            offset: e.utf8_error().valid_up_to(),
        }),
    }
}

/// Parse a manifest's text (JSON, JSON with `//` comments, or YAML). An object without `spec`
/// is refused: it is the wrong file, not an invalid Cluster.
///
/// # Errors
///
/// [`InputError::Syntax`] or [`InputError::NoSpec`].
pub fn parse(input: Input) -> Result<Loaded, InputError> {
    match tkeha_api::parse_manifest(&input.text) {
        Ok(value) if value.is_object() && value.get("spec").is_none_or(Value::is_null) => {
            Err(InputError::NoSpec { name: input.name })
        }
        Ok(value) => Ok(Loaded {
            name: input.name,
            value,
        }),
        Err(error) => Err(InputError::Syntax {
            name: input.name,
            error,
        }),
    }
}

/// [`read`], then [`parse`].
///
/// # Errors
///
/// As [`read`] and [`parse`].
pub fn load(path: &Path) -> Result<Loaded, InputError> {
    parse(read(path)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn refuses_more_than_three_mebibytes() {
        let big = vec![b' '; (MAX_MANIFEST_BYTES + 1) as usize];
        assert!(matches!(
            decode("x".into(), big),
            Err(InputError::TooLarge { .. })
        ));
        let ok = vec![b' '; MAX_MANIFEST_BYTES as usize];
        assert!(decode("x".into(), ok).is_ok());
    }

    #[test]
    fn reports_the_offset_of_invalid_utf8() {
        let err = decode("f.yaml".into(), b"ab\xffcd".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.yaml: not UTF-8 text (invalid byte at offset 2)"
        );
    }

    #[test]
    fn a_missing_file_is_named_once_in_words() {
        let err = read(Path::new("/nonexistent/cluster.yaml")).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/cluster.yaml: no such file");
        // Nothing chained: `{:#}` (anyhow) must not repeat the OS's words.
        assert!(std::error::Error::source(&err).is_none());
        let dir = read(Path::new("/")).unwrap_err();
        assert_eq!(dir.to_string(), "/: is a directory, not a manifest file");
    }

    #[test]
    fn a_syntax_error_is_file_line_column() {
        let input = Input {
            name: "broken.json".into(),
            text: "{\n  \"spec\": {\n    \"type\": \"Baremetal\"\n  \"version\": 1\n}".into(),
        };
        let err = parse(input).unwrap_err().to_string();
        assert!(err.starts_with("broken.json:4:3: invalid JSON: "), "{err}");
    }

    #[test]
    fn a_file_name_with_control_characters_is_escaped() {
        let err = decode("evil\n[10.0.0.1] ok\u{1b}[8m".into(), b"\xff".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "evil\\n[10.0.0.1] ok\\u001b[8m: not UTF-8 text (invalid byte at offset 0)"
        );
    }

    #[test]
    fn no_spec_is_the_wrong_file() {
        let input = Input {
            name: "kubeconfig".into(),
            text: "apiVersion: v1\nkind: Config\n".into(),
        };
        let err = parse(input).unwrap_err().to_string();
        assert!(err.starts_with("kubeconfig: spec: Required value: not a Cluster manifest"));
    }
}

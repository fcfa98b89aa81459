//! Reading a manifest from a file or stdin (`-`), bounded in size, as UTF-8 text.

use std::io::Read;
use std::path::Path;

/// The API server refuses request bodies above 3 MiB; a bigger file cannot be a Cluster.
pub const MAX_MANIFEST_BYTES: u64 = 3 * 1024 * 1024;

/// A manifest's text and the name to show in messages (`<stdin>` for `-`).
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub text: String,
}

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{name}: {source}")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{name}: larger than 3 MiB (the API server's request limit); not a Cluster manifest")]
    TooLarge { name: String },
    #[error("{name}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 { name: String, offset: usize },
}

/// Read `path` (`-` means stdin).
pub fn read(path: &Path) -> Result<Input, InputError> {
    let name = display_name(path);
    let io = |source| InputError::Io {
        name: name.clone(),
        source,
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
    } else {
        std::fs::File::open(path)
            .map_err(io)?
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
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

/// How a path is named in messages.
pub fn display_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    }
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
    fn missing_file_names_the_file() {
        let err = read(Path::new("/nonexistent/cluster.yaml")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/cluster.yaml: "),
            "{err}"
        );
    }
}

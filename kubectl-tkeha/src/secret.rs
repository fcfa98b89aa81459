//! Secrets (passwords, passphrases): read from stdin or a no-echo terminal prompt, never from a flag value.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use base64::Engine;

/// Longest secret accepted on stdin; anything bigger is not a password.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Secret bytes. `Debug` never shows them and the buffer is cleared on drop.
pub struct Secret(Vec<u8>);

impl Secret {
    /// The bytes, for the one check that needs them (does a passphrase open a key).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Standard base64 with padding: the encoding of Go's `[]byte` fields in the Cluster type.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

/// True when stdin is an interactive terminal (then we prompt instead of reading it).
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Read stdin to EOF and strip one trailing newline (`\n` or `\r\n`), as `echo` adds one.
pub fn from_stdin(what: &str) -> anyhow::Result<Secret> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading the {what} from stdin"))?;
    if buf.len() as u64 > MAX_SECRET_BYTES {
        buf.fill(0);
        bail!("the {what} on stdin is longer than {MAX_SECRET_BYTES} bytes");
    }
    non_empty(strip_one_newline(buf), what)
}

/// Prompt on the terminal (`/dev/tty`) without echo; with `confirm`, ask twice and compare. An
/// empty first answer is refused at once, before the confirmation is asked for.
pub fn from_prompt(what: &str, confirm: bool) -> anyhow::Result<Secret> {
    let first = rpassword::prompt_password(format!("{}: ", capitalise(what)))
        .with_context(|| format!("prompting for the {what} (no terminal? pipe it to stdin)"))?;
    let mut first = Secret(first.into_bytes());
    if first.0.is_empty() {
        bail!("the {what} is empty: nothing was written");
    }
    if confirm {
        let again = rpassword::prompt_password(format!("Repeat {what}: "))
            .with_context(|| format!("prompting for the {what}"))?;
        let again = Secret(again.into_bytes());
        if again.0 != first.0 {
            bail!("the two {what}s do not match");
        }
    }
    non_empty(std::mem::take(&mut first.0), what)
}

/// Remove exactly one trailing line ending: `\n` or `\r\n`. Other whitespace is part of the secret.
pub fn strip_one_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

fn non_empty(bytes: Vec<u8>, what: &str) -> anyhow::Result<Secret> {
    let secret = Secret(bytes);
    if secret.0.is_empty() {
        bail!("the {what} is empty: nothing was written");
    }
    Ok(secret)
}

/// The one prompt wording for an SSH password, in `init` and `encode-password`.
pub const SSH_PASSWORD: &str = "SSH password";

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn strips_exactly_one_newline() {
        assert_eq!(strip_one_newline(b"123456\n".to_vec()), b"123456");
        assert_eq!(strip_one_newline(b"123456\r\n".to_vec()), b"123456");
        assert_eq!(strip_one_newline(b"123456\n\n".to_vec()), b"123456\n");
        assert_eq!(strip_one_newline(b"123456".to_vec()), b"123456");
        assert_eq!(strip_one_newline(b" pass \t".to_vec()), b" pass \t");
        assert_eq!(strip_one_newline(Vec::new()), b"");
    }

    #[test]
    fn encodes_standard_base64_with_padding() {
        assert_eq!(Secret(b"123456".to_vec()).to_base64(), "MTIzNDU2");
        assert_eq!(Secret(b"12345".to_vec()).to_base64(), "MTIzNDU=");
        assert_eq!(Secret(vec![0xfb, 0xff]).to_base64(), "+/8=");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret(b"hunter2".to_vec());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(non_empty(Vec::new(), "password").is_err());
    }
}

//! `init --ssh-key FILE`: what a key file is (an OpenSSH or PEM private key, encrypted or not), refused when it is anything else, and its passphrase checked where the format allows.
//!
//! The key's bytes are parsed with `ssh-key` (OpenSSH's own format, what `ssh-keygen` writes) and
//! `pem` (the older `-----BEGIN RSA|EC|DSA PRIVATE KEY-----` and PKCS#8 forms, which libssh2 also
//! reads). Messages name the file and never show the key.

use zeroize::Zeroizing;

/// Largest key file accepted (OpenSSH keys are a few KiB; a 16384-bit RSA key is under 13 KiB).
pub const MAX_KEY_BYTES: u64 = 64 * 1024;

/// A private key file that can be written into `privateKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Which container the key is in.
    pub format: KeyFormat,
    /// It needs a passphrase (`passPhrase`) to be used.
    pub encrypted: bool,
}

/// The container of a private key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// `-----BEGIN OPENSSH PRIVATE KEY-----` (ssh-keygen's default since OpenSSH 7.8).
    OpenSsh,
    /// A PEM private key: PKCS#1 RSA, SEC1 EC, DSA, or PKCS#8 (plain or encrypted).
    Pem,
}

/// Why a file is not usable as `--ssh-key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Empty file.
    #[error("the file is empty: give the private key file (for example ~/.ssh/id_ed25519)")]
    Empty,
    /// A public key (`.pub`, `authorized_keys` line, or a PEM public key).
    #[error(
        "this is a public key; give the private key file (the same name without .pub, for example ~/.ssh/id_ed25519)"
    )]
    PublicKey,
    /// A certificate, not a key.
    #[error("this is a certificate, not a private key; give the private key file")]
    Certificate,
    /// Looks like OpenSSH's format but does not parse.
    #[error("not a readable OpenSSH private key ({0}); is the file complete?")]
    BadOpenSsh(String),
    /// Anything else.
    #[error(
        "not a private key: expected an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----, as ssh-keygen writes) or a PEM one (-----BEGIN RSA PRIVATE KEY-----, -----BEGIN PRIVATE KEY-----...)"
    )]
    NotAKey,
}

/// What `bytes` (a key file's content) holds.
///
/// # Errors
///
/// [`KeyError`] for anything that is not a private key.
pub fn classify(bytes: &[u8]) -> Result<KeyInfo, KeyError> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    if trimmed.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        return match ssh_key::PrivateKey::from_openssh(trimmed) {
            Ok(key) => Ok(KeyInfo {
                format: KeyFormat::OpenSsh,
                encrypted: key.is_encrypted(),
            }),
            Err(e) => Err(KeyError::BadOpenSsh(e.to_string())),
        };
    }
    if let Ok(block) = pem::parse(trimmed) {
        let tag = block.tag();
        return match tag {
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "DSA PRIVATE KEY" | "PRIVATE KEY" => {
                Ok(KeyInfo {
                    format: KeyFormat::Pem,
                    // OpenSSL's legacy encryption: a `Proc-Type: 4,ENCRYPTED` header.
                    encrypted: block
                        .headers()
                        .get("Proc-Type")
                        .is_some_and(|v| v.contains("ENCRYPTED")),
                })
            }
            "ENCRYPTED PRIVATE KEY" => Ok(KeyInfo {
                format: KeyFormat::Pem,
                encrypted: true,
            }),
            "OPENSSH PUBLIC KEY" | "PUBLIC KEY" | "RSA PUBLIC KEY" | "SSH2 PUBLIC KEY" => {
                Err(KeyError::PublicKey)
            }
            "CERTIFICATE" => Err(KeyError::Certificate),
            _ => Err(KeyError::NotAKey),
        };
    }
    if trimmed.contains("---- BEGIN SSH2 PUBLIC KEY ----") {
        return Err(KeyError::PublicKey);
    }
    // A `.pub` file or an authorized_keys line: `[options] ALGORITHM BASE64 [comment]`.
    let line = trimmed.lines().next().unwrap_or("");
    for word in line.split_whitespace().take(2) {
        if word.ends_with("-cert-v01@openssh.com") {
            return Err(KeyError::Certificate);
        }
        if PUBLIC_KEY_ALGORITHMS.iter().any(|a| word.starts_with(a)) {
            return Err(KeyError::PublicKey);
        }
    }
    Err(KeyError::NotAKey)
}

/// How OpenSSH public key lines start (the algorithm names of `ssh -Q key`).
const PUBLIC_KEY_ALGORITHMS: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-",
];

/// Whether `passphrase` opens the key, where that can be checked here: `Some(true|false)` for
/// an encrypted OpenSSH key (decrypted in memory, then dropped), `None` for PEM keys (their
/// ciphers are left to libssh2, which checks the passphrase at login).
pub fn passphrase_opens(bytes: &[u8], passphrase: &[u8]) -> Option<bool> {
    let text = Zeroizing::new(String::from_utf8_lossy(bytes).into_owned());
    let key = ssh_key::PrivateKey::from_openssh(text.trim()).ok()?;
    if !key.is_encrypted() {
        return None;
    }
    Some(key.decrypt(passphrase).is_ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn public_keys_and_other_files_are_refused() {
        let public = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvLqMhmGq9dJ0wzfJ6XjZ3Q5Q5Z4Yd8b2mJ0k3hJ8cG me@host\n";
        assert_eq!(classify(public), Err(KeyError::PublicKey));
        assert_eq!(classify(b"vm-host-1\n"), Err(KeyError::NotAKey));
        assert_eq!(classify(b"  \n"), Err(KeyError::Empty));
        assert_eq!(
            classify(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"),
            Err(KeyError::Certificate)
        );
        assert_eq!(
            classify(b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"),
            Err(KeyError::PublicKey)
        );
        assert!(matches!(
            classify(
                b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
            ),
            Err(KeyError::BadOpenSsh(_))
        ));
    }

    #[test]
    fn pem_private_keys_and_their_encryption() {
        let plain = b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(
            classify(plain),
            Ok(KeyInfo {
                format: KeyFormat::Pem,
                encrypted: false
            })
        );
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert!(classify(legacy).unwrap().encrypted);
        let pkcs8 =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(classify(pkcs8).unwrap().encrypted);
        assert_eq!(passphrase_opens(plain, b"x"), None);
    }
}

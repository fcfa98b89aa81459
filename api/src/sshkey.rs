//! What a private key's bytes are (an OpenSSH or PEM private key, encrypted or not), refused with the reason when they are anything else; classification only, never decryption.
//!
//! Shared by `kubectl tkeha init --ssh-key FILE` (on the file's bytes) and the rules on
//! `privateKey` (on its base64-decoded bytes), so both refuse the same things in the same words.
//! The bytes are parsed with `ssh-key` (OpenSSH's own format, what `ssh-keygen` writes) and `pem`
//! (the older `-----BEGIN RSA|EC|DSA PRIVATE KEY-----` and PKCS#8 forms, which libssh2, the
//! provisioner's SSH library, also reads). An encrypted key is recognised by its header (OpenSSH's
//! cipher name, PEM's `Proc-Type: 4,ENCRYPTED` or PKCS#8's `ENCRYPTED PRIVATE KEY`), never
//! opened: checking a passphrase runs bcrypt-pbkdf, far too slow for every admission review.
//! Messages never show the key.

/// A private key that can be written into `privateKey`.
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

/// Why bytes are not a usable private key. The words fit both a key file (`--ssh-key FILE: …`)
/// and a decoded `privateKey` (`spec.machines[0].privateKey: Invalid value: …`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing but whitespace.
    #[error("it is empty: give the private key file (for example ~/.ssh/id_ed25519)")]
    Empty,
    /// A public key (`.pub`, `authorized_keys` line, or a PEM public key).
    #[error(
        "this is a public key; give the private key file (the same name without .pub, for example ~/.ssh/id_ed25519)"
    )]
    PublicKey,
    /// A certificate, not a key.
    #[error("this is a certificate, not a private key; give the private key file")]
    Certificate,
    /// Looks like OpenSSH's format but does not parse (the parser's reason, never key bytes).
    #[error("not a readable OpenSSH private key ({0}); it may be incomplete")]
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
        // Parsing an encrypted key reads only its public half and cipher name; the private half
        // stays ciphertext. The parsed key is zeroed when dropped.
        return match ssh_key::PrivateKey::from_openssh(trimmed) {
            Ok(key) => Ok(KeyInfo {
                format: KeyFormat::OpenSsh,
                encrypted: key.is_encrypted(),
            }),
            Err(e) => Err(KeyError::BadOpenSsh(e.to_string())),
        };
    }
    if let Ok(block) = pem::parse(trimmed) {
        return match block.tag() {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{KEYS}{name}")).unwrap()
    }

    #[test]
    fn real_keys_from_ssh_keygen() {
        let plain = |format| KeyInfo {
            format,
            encrypted: false,
        };
        assert_eq!(
            classify(&fixture("id_ed25519")),
            Ok(plain(KeyFormat::OpenSsh))
        );
        assert_eq!(classify(&fixture("id_rsa_pem")), Ok(plain(KeyFormat::Pem)));
        assert_eq!(
            classify(&fixture("id_ed25519_enc")),
            Ok(KeyInfo {
                format: KeyFormat::OpenSsh,
                encrypted: true
            })
        );
        assert_eq!(
            classify(&fixture("id_ed25519.pub")),
            Err(KeyError::PublicKey)
        );
        // Cut short: the OpenSSH parser's reason, and no key bytes in it.
        let key = fixture("id_ed25519");
        let text = String::from_utf8(key).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(2);
        let cut = lines.join("\n");
        let err = classify(cut.as_bytes()).unwrap_err();
        assert!(matches!(err, KeyError::BadOpenSsh(_)), "{err:?}");
        for line in text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.to_string().contains(line), "{err}");
        }
    }

    #[test]
    fn public_keys_and_other_files_are_refused() {
        let public = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvLqMhmGq9dJ0wzfJ6XjZ3Q5Q5Z4Yd8b2mJ0k3hJ8cG me@host\n";
        assert_eq!(classify(public), Err(KeyError::PublicKey));
        let authorized = b"from=\"10.0.0.1\" ssh-rsa AAAAB3NzaC1yc2E= me@host\n";
        assert_eq!(classify(authorized), Err(KeyError::PublicKey));
        assert_eq!(
            classify(b"ssh-ed25519-cert-v01@openssh.com AAAA me@host\n"),
            Err(KeyError::Certificate)
        );
        assert_eq!(
            classify(b"---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----\n"),
            Err(KeyError::PublicKey)
        );
        assert_eq!(classify(b"vm-host-1\n"), Err(KeyError::NotAKey));
        assert_eq!(classify(b"key"), Err(KeyError::NotAKey));
        assert_eq!(classify(&[0xff, 0xfe, 0x00]), Err(KeyError::NotAKey));
        assert_eq!(classify(b"  \n"), Err(KeyError::Empty));
        assert_eq!(classify(b""), Err(KeyError::Empty));
        assert_eq!(
            classify(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"),
            Err(KeyError::Certificate)
        );
        assert_eq!(
            classify(b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n"),
            Err(KeyError::PublicKey)
        );
        assert_eq!(
            classify(b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"),
            Err(KeyError::NotAKey)
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
        let ec = b"-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n";
        assert!(!classify(ec).unwrap().encrypted);
    }
}

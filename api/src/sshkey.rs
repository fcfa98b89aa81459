//! What a private key's bytes are (an OpenSSH or PEM private key, encrypted or not), refused with the reason when they are anything else; classification only, never decryption.
//!
//! Shared by `kubectl tkeha init --ssh-key FILE` (on the file's bytes) and the rules on
//! `privateKey` (on its base64-decoded bytes), so both refuse the same things in the same words.
//! The bytes are parsed with `ssh-key` (OpenSSH's own format, what `ssh-keygen` writes) and `pem`
//! (the older `-----BEGIN RSA|EC|DSA PRIVATE KEY-----` and PKCS#8 forms, which libssh2, the
//! provisioner's SSH library, also reads); a PEM key's DER with `pkcs1`, `sec1` and `pkcs8`. A key
//! must also be of a type the provisioner logs in with: ed25519, RSA, or ECDSA on the NIST curves
//! of RFC 5656 (not DSA, which OpenSSH servers refuse by default since 7.0, nor a FIDO security
//! key, which needs its token at each login). An encrypted key is recognised by its header (OpenSSH's
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
    /// A PEM private key whose DER does not parse (the parser's reason, never key bytes).
    #[error("not a readable {0} private key ({1}); it may be incomplete")]
    BadPem(&'static str, String),
    /// A private key of a type the provisioner cannot log in with.
    #[error(
        "this is {0}, which the provisioner cannot log in with; use an ed25519, RSA or ECDSA (NIST P-256, P-384, P-521) key, for example one made by `ssh-keygen -t ed25519`"
    )]
    Unsupported(Unsupported),
    /// Anything else.
    #[error(
        "not a private key: expected an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----, as ssh-keygen writes) or a PEM one (-----BEGIN RSA PRIVATE KEY-----, -----BEGIN PRIVATE KEY-----...)"
    )]
    NotAKey,
}

/// A key type that parses but cannot be used for the provisioner's logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// DSA (`ssh-dss`).
    #[error(
        "a DSA key (OpenSSH servers refuse DSA keys by default since OpenSSH 7.0, and recent releases dropped them)"
    )]
    Dsa,
    /// A FIDO security key (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`).
    #[error("a security-key (FIDO) key, which needs its hardware token at every login")]
    SecurityKey,
    /// ECDSA on a curve other than NIST P-256, P-384 or P-521.
    #[error("an ECDSA key on a curve SSH does not use")]
    Curve,
    /// Any other algorithm (its name is not shown: it comes from the key).
    #[error("a key of a type SSH logins here do not use")]
    Other,
}

/// What `bytes` (a key file's content) holds.
///
/// A key is accepted when its format parses and its type is one the provisioner's SSH library
/// (libssh2) logs in with on today's OpenSSH servers: ed25519, RSA, or ECDSA on NIST P-256,
/// P-384 or P-521. An encrypted key's type is checked where it is readable without the
/// passphrase (OpenSSH's format, PEM's tag); its contents are not.
///
/// # Errors
///
/// [`KeyError`] for anything that is not such a private key.
pub fn classify(bytes: &[u8]) -> Result<KeyInfo, KeyError> {
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(bytes).into_owned());
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(KeyError::Empty);
    }
    if trimmed.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
        // Parsing an encrypted key reads only its public half and cipher name; the private half
        // stays ciphertext. The parsed key is zeroed when dropped.
        let key = ssh_key::PrivateKey::from_openssh(trimmed)
            .map_err(|e| KeyError::BadOpenSsh(e.to_string()))?;
        openssh_type(&key.algorithm())?;
        return Ok(KeyInfo {
            format: KeyFormat::OpenSsh,
            encrypted: key.is_encrypted(),
        });
    }
    if let Ok(block) = pem::parse(trimmed) {
        let der = zeroize::Zeroizing::new(block.contents().to_vec());
        // OpenSSL's legacy encryption: a `Proc-Type: 4,ENCRYPTED` header, the DER ciphertext.
        let legacy_encrypted = block
            .headers()
            .get("Proc-Type")
            .is_some_and(|v| v.contains("ENCRYPTED"));
        let pem = |encrypted| {
            Ok(KeyInfo {
                format: KeyFormat::Pem,
                encrypted,
            })
        };
        return match block.tag() {
            "RSA PRIVATE KEY" if legacy_encrypted => pem(true),
            "RSA PRIVATE KEY" => match pkcs1::RsaPrivateKey::try_from(der.as_slice()) {
                Ok(_) => pem(false),
                Err(e) => Err(KeyError::BadPem("PKCS#1 RSA", e.to_string())),
            },
            "EC PRIVATE KEY" if legacy_encrypted => pem(true),
            "EC PRIVATE KEY" => match sec1::EcPrivateKey::try_from(der.as_slice()) {
                Ok(key) => {
                    ec_curve(key.parameters.and_then(|p| p.named_curve()))?;
                    pem(false)
                }
                Err(e) => Err(KeyError::BadPem("SEC1 EC", e.to_string())),
            },
            "PRIVATE KEY" => match pkcs8::PrivateKeyInfo::try_from(der.as_slice()) {
                Ok(info) => {
                    pkcs8_type(&info.algorithm)?;
                    pem(false)
                }
                Err(e) => Err(KeyError::BadPem("PKCS#8", e.to_string())),
            },
            "ENCRYPTED PRIVATE KEY" => pem(true),
            "DSA PRIVATE KEY" => Err(KeyError::Unsupported(Unsupported::Dsa)),
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

/// The key types of OpenSSH's format the provisioner logs in with.
fn openssh_type(algorithm: &ssh_key::Algorithm) -> Result<(), KeyError> {
    use ssh_key::Algorithm;
    match algorithm {
        Algorithm::Ed25519 | Algorithm::Rsa { .. } | Algorithm::Ecdsa { .. } => Ok(()),
        Algorithm::Dsa => Err(KeyError::Unsupported(Unsupported::Dsa)),
        Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256 => {
            Err(KeyError::Unsupported(Unsupported::SecurityKey))
        }
        _ => Err(KeyError::Unsupported(Unsupported::Other)),
    }
}

/// `rsaEncryption` (RFC 8017 A.1).
const RSA: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// `id-ecPublicKey` (RFC 5480 2.1.1).
const EC: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// `id-Ed25519` (RFC 8410 3).
const ED25519: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");
/// `id-dsa` (RFC 3279 2.3.2).
const DSA: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
/// The NIST curves of SSH's ECDSA (RFC 5656 10.1): `secp256r1`, `secp384r1`, `secp521r1`.
const SSH_CURVES: [pkcs8::ObjectIdentifier; 3] = [
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7"),
    pkcs8::ObjectIdentifier::new_unwrap("1.3.132.0.34"),
    pkcs8::ObjectIdentifier::new_unwrap("1.3.132.0.35"),
];

/// The key types of PKCS#8 the provisioner logs in with.
fn pkcs8_type(algorithm: &pkcs8::AlgorithmIdentifierRef<'_>) -> Result<(), KeyError> {
    match algorithm.oid {
        RSA | ED25519 => Ok(()),
        EC => ec_curve(algorithm.parameters_oid().ok()),
        DSA => Err(KeyError::Unsupported(Unsupported::Dsa)),
        _ => Err(KeyError::Unsupported(Unsupported::Other)),
    }
}

/// An EC key must be on one of SSH's curves.
fn ec_curve(curve: Option<pkcs8::ObjectIdentifier>) -> Result<(), KeyError> {
    match curve {
        Some(c) if SSH_CURVES.contains(&c) => Ok(()),
        _ => Err(KeyError::Unsupported(Unsupported::Curve)),
    }
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
    fn every_supported_type_in_every_container_ssh_keygen_writes() {
        let key = |format, encrypted| Ok(KeyInfo { format, encrypted });
        for (name, want) in [
            ("id_ed25519", key(KeyFormat::OpenSsh, false)),
            ("id_ed25519_enc", key(KeyFormat::OpenSsh, true)),
            ("id_rsa", key(KeyFormat::OpenSsh, false)),
            ("id_ecdsa", key(KeyFormat::OpenSsh, false)),
            ("id_rsa_pem", key(KeyFormat::Pem, false)),
            ("id_rsa_pem_enc", key(KeyFormat::Pem, true)),
            ("id_ecdsa_pem", key(KeyFormat::Pem, false)),
            ("id_rsa_pkcs8", key(KeyFormat::Pem, false)),
            ("id_rsa_pkcs8_enc", key(KeyFormat::Pem, true)),
            ("id_ecdsa_pkcs8", key(KeyFormat::Pem, false)),
            ("id_dsa", Err(KeyError::Unsupported(Unsupported::Dsa))),
            ("id_dsa_pem", Err(KeyError::Unsupported(Unsupported::Dsa))),
        ] {
            assert_eq!(classify(&fixture(name)), want, "{name}");
        }
    }

    /// A PEM block with this tag around `der`.
    fn pem_of(tag: &str, der: &[u8]) -> Vec<u8> {
        pem::encode(&pem::Pem::new(tag, der.to_vec())).into_bytes()
    }

    #[test]
    fn pem_blocks_that_are_not_keys_or_not_usable() {
        // The right armour around garbage: refused by the DER parsers, with no key bytes.
        for (tag, what) in [
            ("RSA PRIVATE KEY", "PKCS#1 RSA"),
            ("EC PRIVATE KEY", "SEC1 EC"),
            ("PRIVATE KEY", "PKCS#8"),
        ] {
            let err = classify(&pem_of(tag, b"\x30\x03\x02\x01")).unwrap_err();
            assert!(
                matches!(&err, KeyError::BadPem(w, _) if *w == what),
                "{err:?}"
            );
            assert!(
                err.to_string()
                    .starts_with(&format!("not a readable {what} private key ("))
            );
        }
        // A PKCS#8 key of another algorithm (X25519, RFC 8410), and an EC key on secp256k1.
        let x25519 = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22,
            0x04, 0x20,
        ];
        let mut x25519 = x25519.to_vec();
        x25519.extend([7u8; 32]);
        assert_eq!(
            classify(&pem_of("PRIVATE KEY", &x25519)),
            Err(KeyError::Unsupported(Unsupported::Other))
        );
        let secp256k1 = [
            0x30, 0x2e, 0x02, 0x01, 0x01, 0x04, 0x20, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
            7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0xa0, 0x07, 0x06, 0x05, 0x2b, 0x81,
            0x04, 0x00, 0x0a,
        ];
        assert_eq!(
            classify(&pem_of("EC PRIVATE KEY", &secp256k1)),
            Err(KeyError::Unsupported(Unsupported::Curve))
        );
        // Encrypted PEM: the tag and header say so; the ciphertext is not read.
        let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert!(classify(legacy).unwrap().encrypted);
        let pkcs8 =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(classify(pkcs8).unwrap().encrypted);
    }

    #[test]
    fn messages_of_unusable_types_say_what_to_use() {
        let err = classify(&fixture("id_dsa")).unwrap_err().to_string();
        assert!(err.starts_with("this is a DSA key ("), "{err}");
        assert!(err.contains("`ssh-keygen -t ed25519`"), "{err}");
    }
}

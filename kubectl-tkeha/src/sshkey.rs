//! `init --ssh-key`'s own part of a key file: its size bound and, for an encrypted OpenSSH key, whether the passphrase opens it; what the file is comes from the rule engine (`tkeha_api::sshkey`).
//!
//! The rules on `privateKey` classify the same bytes with the same function, so init and
//! `validate` refuse the same things in the same words. Decryption stays here: the rule engine
//! never decrypts (bcrypt-pbkdf is far too slow for every admission review).

use zeroize::Zeroizing;

pub use tkeha_api::sshkey::classify;

/// Largest key file accepted (OpenSSH keys are a few KiB; a 16384-bit RSA key is under 13 KiB):
/// the rule engine's bound on a decoded `privateKey`.
pub const MAX_KEY_BYTES: u64 = tkeha_api::limits::MAX_PRIVATE_KEY_BYTES as u64;

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

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/tests/fixtures/keys/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{KEYS}{name}")).unwrap()
    }

    #[test]
    fn the_passphrase_is_checked_on_encrypted_openssh_keys_only() {
        let encrypted = fixture("id_ed25519_enc");
        assert_eq!(passphrase_opens(&encrypted, b"s3cret"), Some(true));
        assert_eq!(passphrase_opens(&encrypted, b"wrong"), Some(false));
        assert_eq!(passphrase_opens(&fixture("id_ed25519"), b"x"), None);
        assert_eq!(passphrase_opens(&fixture("id_rsa_pem"), b"x"), None);
        let pem = b"-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(passphrase_opens(pem, b"x"), None);
    }
}

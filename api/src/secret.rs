//! Secrets on the wire: Go `[]byte` JSON encoding (standard base64 with padding), checked and decoded as Go does.
//!
//! Go's `encoding/base64.StdEncoding` skips `\r` and `\n` anywhere in the input (so the output
//! of `base64 id_rsa`, wrapped at 76 columns, is accepted) and does not insist that the unused
//! bits of the last character are zero. Both are mirrored here so that nothing TKEStack accepts
//! is refused. Padding is required.

use base64::Engine as _;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The machine fields (`spec.machines[i].*`, and the same names in `spec.machines[i].proxy`)
/// that hold secrets: their values never appear in a message, a log or printed output.
pub const FIELDS: [&str; 3] = ["password", "privateKey", "passPhrase"];

/// What a secret is shown as.
pub const REDACTED: &str = "<redacted>";

/// Replace every secret of a Cluster object with [`REDACTED`]: each machine's password, key and
/// passphrase, and its proxy's. For printing an object (`create -o yaml|json`).
pub fn redact(object: &mut serde_json::Value) {
    let Some(serde_json::Value::Array(machines)) = object.pointer_mut("/spec/machines") else {
        return;
    };
    for machine in machines
        .iter_mut()
        .filter_map(serde_json::Value::as_object_mut)
    {
        redact_fields(machine);
        if let Some(proxy) = machine
            .get_mut("proxy")
            .and_then(serde_json::Value::as_object_mut)
        {
            redact_fields(proxy);
        }
    }
}

fn redact_fields(map: &mut serde_json::Map<String, serde_json::Value>) {
    for field in FIELDS {
        if let Some(value) = map.get_mut(field) {
            *value = serde_json::Value::String(REDACTED.to_string());
        }
    }
}

const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Whether `s` decodes under Go's `base64.StdEncoding` (without allocating).
pub fn is_valid(s: &str) -> bool {
    let mut n = 0usize;
    let mut pad = 0usize;
    for b in s.bytes() {
        match b {
            b'\r' | b'\n' => continue,
            b'=' => pad += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if pad == 0 => {}
            _ => return false,
        }
        n += 1;
    }
    // Padding only at the end (enforced above), at most two, whole 4-character groups.
    n.is_multiple_of(4) && pad <= 2
}

/// Decode like Go: `None` when not valid.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !is_valid(s) {
        return None;
    }
    if s.bytes().any(|b| b == b'\r' || b == b'\n') {
        let cleaned: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        GO_STD.decode(cleaned).ok()
    } else {
        GO_STD.decode(s).ok()
    }
}

/// What a secret decodes to, learnt without keeping it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspected {
    /// Not Go's standard base64 with padding.
    NotBase64,
    /// Decodes to `len` bytes, UTF-8 text or not.
    Bytes {
        /// Decoded length in bytes.
        len: usize,
        /// Whether the bytes are UTF-8 text.
        utf8: bool,
    },
}

/// Decode `s` as Go does and report its length and whether it is UTF-8, on the stack for
/// anything password-sized (the rules run on every review).
pub fn inspect(s: &str) -> Inspected {
    if !is_valid(s) {
        return Inspected::NotBase64;
    }
    const STACK: usize = 2048;
    if s.len() <= STACK / 3 * 4 && !s.bytes().any(|b| b == b'\r' || b == b'\n') {
        let mut buf = [0u8; STACK];
        let found = match GO_STD.decode_slice(s, &mut buf) {
            Ok(n) => Inspected::Bytes {
                len: n,
                utf8: std::str::from_utf8(&buf[..n]).is_ok(),
            },
            Err(_) => Inspected::NotBase64,
        };
        buf.fill(0);
        return found;
    }
    match decode(s) {
        Some(mut bytes) => {
            let found = Inspected::Bytes {
                len: bytes.len(),
                utf8: std::str::from_utf8(&bytes).is_ok(),
            };
            bytes.fill(0);
            found
        }
        None => Inspected::NotBase64,
    }
}

/// Encode bytes the way Go marshals `[]byte` (standard alphabet, padded).
pub fn encode(bytes: &[u8]) -> String {
    GO_STD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_compatible() {
        for ok in [
            "",
            "MTIzNDU2",
            "YQ==",
            "YWI=",
            "YR==",
            "TWFu\nTWFu\r\n",
            "cGFzcw==",
        ] {
            assert!(is_valid(ok), "{ok:?}");
            assert!(decode(ok).is_some(), "{ok:?}");
        }
        for bad in [
            "MTIzNDU", "123456!", "Y===", "====", "YQ=", "YQ==YQ==", "Y Q==", "-_8=", "YQ=a",
        ] {
            assert!(!is_valid(bad), "{bad:?}");
            assert!(decode(bad).is_none(), "{bad:?}");
        }
        assert_eq!(decode("MTIzNDU2").as_deref(), Some(&b"123456"[..]));
        assert_eq!(decode("YR==").as_deref(), Some(&b"a"[..]));
        assert_eq!(encode(b"123456"), "MTIzNDU2");
    }

    #[test]
    fn redact_hides_the_machines_and_their_proxies_secrets() {
        let mut object = serde_json::json!({"spec": {"machines": [
            {"ip": "10.0.0.2", "password": "MTIzNDU2",
             "proxy": {"type": "SSHJumpServer", "ip": "10.0.0.5", "port": 22,
                       "username": "jumper", "password": "anVtcHB3",
                       "privateKey": "a2V5", "passPhrase": "cHA="}},
            {"ip": "10.0.0.3", "privateKey": "LS0tLS1CRUdJTg==", "passPhrase": "cGFzcw==",
             "proxy": {"type": "SOCKS5", "ip": "10.0.0.6", "port": 1080}},
            "not an object"
        ]}});
        redact(&mut object);
        let shown = object.to_string();
        for secret in [
            "MTIzNDU2",
            "anVtcHB3",
            "a2V5",
            "cHA=",
            "LS0tLS1CRUdJTg==",
            "cGFzcw==",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(shown.matches(REDACTED).count(), 6, "{shown}");
        assert_eq!(object["spec"]["machines"][0]["proxy"]["username"], "jumper");
        assert_eq!(object["spec"]["machines"][1]["proxy"]["port"], 1080);
        // Nothing to do: no panic.
        redact(&mut serde_json::json!({"spec": {"machines": 3}}));
        redact(&mut serde_json::json!(null));
    }

    #[test]
    fn inspect_agrees_with_decode() {
        let long = encode(&[b'k'; 5000]);
        let wrapped = "TWFu\nTWFu\r\n";
        for s in [
            "MTIzNDU2",
            "//4=",
            "gA==",
            "",
            "YQ=",
            wrapped,
            long.as_str(),
        ] {
            let want = match decode(s) {
                None => Inspected::NotBase64,
                Some(b) => Inspected::Bytes {
                    len: b.len(),
                    utf8: std::str::from_utf8(&b).is_ok(),
                },
            };
            assert_eq!(inspect(s), want, "{s:.20}");
        }
    }
}

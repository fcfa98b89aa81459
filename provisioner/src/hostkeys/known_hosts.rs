//! Reading an OpenSSH known_hosts file and looking a host's key up in it: host patterns (`*`, `?`, `!`, comma lists, `[host]:port`), hashed names (`|1|salt|hash`), and the `@revoked` and `@cert-authority` markers, as `sshd(8)` "SSH_KNOWN_HOSTS FILE FORMAT" describes them.
//!
//! libssh2's own reader ignores the markers (a `@revoked` line was simply skipped, so a revoked
//! key passed) and knows no wildcards; this one follows OpenSSH's lookup:
//! - a key listed `@revoked` for the host is refused, whatever else the file says;
//! - a plain line for the host with the same key trusts it;
//! - a plain line for the host with another key of the same type means the key changed;
//! - a `@cert-authority` line for the host would trust certificates signed by that CA, which this
//!   SSH library cannot receive (see [`Found::CertAuthority`]);
//! - otherwise the host is unknown.
//!
//! Lines that cannot be read are skipped, as OpenSSH does, except a `@revoked` line: a revocation
//! is never silently ignored. Nothing here allocates more than the text it reads.

use base64::Engine as _;

/// What a known_hosts line is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A plain line: this key belongs to these hosts.
    Plain,
    /// `@revoked`: this key must never be accepted for these hosts.
    Revoked,
    /// `@cert-authority`: certificates signed by this key are trusted for these hosts.
    CertAuthority,
}

/// The host field of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hosts {
    /// Comma-separated patterns (`10.0.0.*`, `!10.0.0.5`, `[10.0.0.2]:2222`), lower-cased.
    Patterns(String),
    /// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` (`ssh-keygen -H`, `HashKnownHosts yes`).
    Hashed {
        /// The HMAC key.
        salt: Vec<u8>,
        /// The HMAC of the host name.
        hash: Vec<u8>,
    },
}

/// One line of a known_hosts file that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// What the line says about the key.
    pub marker: Marker,
    hosts: Hosts,
    /// The key blob (RFC 4253 §6.6 encoding: the type name, then the key).
    pub key: Vec<u8>,
}

/// A line that cannot be read and must not be skipped (a `@revoked` one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}: a @revoked line that cannot be read ({why}; want `@revoked HOSTS KEYTYPE BASE64-KEY`): refusing rather than ignoring a revocation"
)]
pub struct BadRevocation {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub why: &'static str,
}

/// The key type named inside a key blob (its first SSH string), if the blob is well formed.
pub fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    // The key must follow its type.
    if blob.len() <= 4 + len {
        return None;
    }
    std::str::from_utf8(name).ok().filter(|n| !n.is_empty())
}

/// Read one line (`None`: blank, a comment, or unreadable and skippable).
fn parse_line(number: usize, raw: &str) -> Result<Option<Entry>, BadRevocation> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next().unwrap_or_default();
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return Ok(None), // an unknown marker: OpenSSH skips the line
        _ => Marker::Plain,
    };
    let bad = |why: &'static str| {
        if marker == Marker::Revoked {
            Err(BadRevocation { line: number, why })
        } else {
            Ok(None)
        }
    };
    if marker != Marker::Plain {
        first = match fields.next() {
            Some(f) => f,
            None => return bad("no host patterns"),
        };
    }
    let Some(hosts) = read_hosts(first) else {
        return bad("the host field is not a pattern list or a |1| hashed name");
    };
    let (Some(kind), Some(b64)) = (fields.next(), fields.next()) else {
        return bad("no key type and key");
    };
    let Ok(key) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return bad("the key is not base64");
    };
    if blob_type(&key) != Some(kind) {
        return bad("the key does not match its type");
    }
    Ok(Some(Entry {
        line: number,
        marker,
        hosts,
        key,
    }))
}

fn read_hosts(field: &str) -> Option<Hosts> {
    if let Some(rest) = field.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (salt, hash) = (b64.decode(salt).ok()?, b64.decode(hash).ok()?);
        return (!salt.is_empty() && hash.len() == 20).then_some(Hosts::Hashed { salt, hash });
    }
    if field.starts_with('|') || field.is_empty() {
        return None; // another hash format: not ours to guess
    }
    Some(Hosts::Patterns(field.to_ascii_lowercase()))
}

/// Read every line of a known_hosts file's text.
///
/// # Errors
///
/// A `@revoked` line that cannot be read: ignoring it would accept a revoked key.
pub fn parse(text: &str) -> Result<Vec<Entry>, BadRevocation> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some(e) = parse_line(i + 1, raw)? {
            entries.push(e);
        }
    }
    Ok(entries)
}

/// `*` matches any run (also empty), `?` one character; everything else itself. Linear in the
/// text for each star (the usual greedy matcher with one back-track point, no recursion).
fn wildcard(text: &[u8], pat: &[u8]) -> bool {
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// OpenSSH's `match_hostname`: a negated pattern that matches rules the name out; otherwise any
/// positive pattern that matches rules it in.
fn patterns_match(name: &str, patterns: &str) -> bool {
    let mut positive = false;
    for pat in patterns.split(',') {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pat),
        };
        if wildcard(name.as_bytes(), pat.as_bytes()) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

impl Entry {
    /// Whether this line is about `name` (a host as written in known_hosts: `10.0.0.1`, or
    /// `[10.0.0.1]:2222` for another port than 22).
    pub fn is_for(&self, name: &str) -> bool {
        match &self.hosts {
            Hosts::Patterns(p) => patterns_match(&name.to_ascii_lowercase(), p),
            Hosts::Hashed { salt, hash } => {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
                ring::hmac::verify(&key, name.as_bytes(), hash).is_ok()
            }
        }
    }
}

/// What the file says about a host's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Listed for the host with this key.
    Known,
    /// Nothing about this host and key type.
    Unknown,
    /// Listed for the host with another key of the same type (line of the first such entry).
    Changed {
        /// 1-based line number.
        line: usize,
    },
    /// The key is listed `@revoked` for the host: never accept it.
    Revoked {
        /// 1-based line number.
        line: usize,
    },
    /// Not listed plainly, but the file trusts a certificate authority for the host. The host's
    /// key could only be trusted through a certificate, and libssh2 (the SSH library under
    /// ssh2) negotiates no host certificates: the host shows its plain key, which nothing vouches for.
    CertAuthority {
        /// 1-based line number.
        line: usize,
    },
}

/// Look `key` (a raw blob, as the server sent it) up for `name` in `entries`, as OpenSSH does.
pub fn lookup(entries: &[Entry], name: &str, key: &[u8]) -> Found {
    let mine: Vec<&Entry> = entries.iter().filter(|e| e.is_for(name)).collect();
    if let Some(e) = mine
        .iter()
        .find(|e| e.marker == Marker::Revoked && e.key == key)
    {
        return Found::Revoked { line: e.line };
    }
    let plain = || mine.iter().filter(|e| e.marker == Marker::Plain);
    if plain().any(|e| e.key == key) {
        return Found::Known;
    }
    let kind = blob_type(key);
    if let Some(e) = plain().find(|e| kind.is_some() && blob_type(&e.key) == kind) {
        return Found::Changed { line: e.line };
    }
    if let Some(e) = mine.iter().find(|e| e.marker == Marker::CertAuthority) {
        return Found::CertAuthority { line: e.line };
    }
    Found::Unknown
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Real lines: keys made with `ssh-keygen -t ed25519|ecdsa`, names hashed with `ssh-keygen -H`
    // (which `ssh-keygen -F 10.0.0.1` and `-F '[10.0.0.2]:2222'` then found).
    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAINuV0oWYq23/4seGfbRnUCe4Zy0f7s/fc4vrMwbpOdGx";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIA48UsaORYC5xGlqYMy+GolX4wjeocjB1egx4iCqsXuC";
    const K3: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDB4A7JsmZNSgfS6tw+OOuLRRZcTA6Xldqc01S8c6IaaEuZnzowEmAxTj1dEfdZZIlSs+vwGapjBFvu48fci89s=";
    const HASHED_10_0_0_1: &str = "|1|1bPEIhiuTWR21R+tpL+zaqJvjQ0=|LRN9YqZ9yrTYh5tyQwPJ9gmxXm4=";
    const HASHED_10_0_0_2_2222: &str =
        "|1|qdSBu1kU+daevRLM4YEs4IT6g3w=|EycNWjxKJwnEG5EpHYF5xORxdgY=";

    fn blob(b64: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    fn find(text: &str, name: &str, key: &str) -> Found {
        lookup(&parse(text).unwrap(), name, &blob(key))
    }

    #[test]
    fn plain_lines_known_changed_unknown() {
        let text = format!("10.0.0.1 ssh-ed25519 {K1}\n[10.0.0.2]:2222 ssh-ed25519 {K2} host2\n");
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Known);
        assert_eq!(find(&text, "10.0.0.1", K2), Found::Changed { line: 1 });
        // Another key type for a known host is new, as in OpenSSH (not "changed").
        assert_eq!(find(&text, "10.0.0.1", K3), Found::Unknown);
        // 10.0.0.10 is not 10.0.0.1; the second entry is for port 2222 only.
        assert_eq!(find(&text, "10.0.0.10", K1), Found::Unknown);
        assert_eq!(find(&text, "10.0.0.2", K2), Found::Unknown);
        assert_eq!(find(&text, "[10.0.0.2]:2222", K2), Found::Known);
    }

    #[test]
    fn hashed_names_as_ssh_keygen_writes_them() {
        let text = format!(
            "{HASHED_10_0_0_1} ssh-ed25519 {K1}\n{HASHED_10_0_0_2_2222} ssh-ed25519 {K2}\n"
        );
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Known);
        assert_eq!(find(&text, "10.0.0.1", K2), Found::Changed { line: 1 });
        assert_eq!(find(&text, "[10.0.0.2]:2222", K2), Found::Known);
        assert_eq!(find(&text, "10.0.0.2", K2), Found::Unknown);
        assert_eq!(find(&text, "10.0.0.3", K1), Found::Unknown);
    }

    #[test]
    fn patterns_wildcards_negation_and_lists() {
        let text = format!(
            "10.0.0.*,!10.0.0.5 ssh-ed25519 {K1}\n[10.1.0.?]:2222,jump.example.com ssh-ed25519 {K2}\n"
        );
        assert_eq!(find(&text, "10.0.0.7", K1), Found::Known);
        assert_eq!(find(&text, "10.0.0.5", K1), Found::Unknown);
        assert_eq!(find(&text, "10.0.1.7", K1), Found::Unknown);
        assert_eq!(find(&text, "[10.1.0.3]:2222", K2), Found::Known);
        assert_eq!(find(&text, "[10.1.0.33]:2222", K2), Found::Unknown);
        assert_eq!(find(&text, "JUMP.example.com", K2), Found::Known);
        assert!(wildcard(b"", b"*"));
        assert!(!wildcard(b"", b"?"));
        assert!(wildcard(b"abcabd", b"*ab?"));
        assert!(!wildcard(b"abcabe", b"*abd"));
        // A pathological pattern stays fast: one back-track point at a time.
        let long = "a".repeat(4000);
        assert!(!wildcard(long.as_bytes(), "*a*a*a*a*a*b".as_bytes()));
    }

    #[test]
    fn a_revoked_key_is_refused_next_to_the_normal_entry() {
        // The case: the normal entry and `@revoked` for the same key.
        let text = format!("10.0.0.1 ssh-ed25519 {K1}\n@revoked * ssh-ed25519 {K1}\n");
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Revoked { line: 2 });
        // It applies to every host its pattern names, and only to that key.
        assert_eq!(
            find(&text, "[10.9.9.9]:2222", K1),
            Found::Revoked { line: 2 }
        );
        let text = format!(
            "{HASHED_10_0_0_1} ssh-ed25519 {K1}\n@revoked {HASHED_10_0_0_1} ssh-ed25519 {K1}\n@revoked 10.0.0.9 ssh-ed25519 {K2}\n"
        );
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Revoked { line: 2 });
        assert_eq!(find(&text, "10.0.0.1", K2), Found::Changed { line: 1 });
        // A revocation for another host does not touch this one.
        let text = format!("10.0.0.1 ssh-ed25519 {K1}\n@revoked 10.0.0.2 ssh-ed25519 {K1}\n");
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Known);
    }

    #[test]
    fn a_revoked_line_that_cannot_be_read_is_an_error_other_bad_lines_are_skipped() {
        for bad in [
            "@revoked".to_string(),
            "@revoked *".to_string(),
            format!("@revoked * ssh-ed25519 {}", &K1[..20]),
            format!("@revoked * ssh-rsa {K1}"),
            "@revoked * ssh-ed25519 !!!".to_string(),
        ] {
            let text = format!("10.0.0.1 ssh-ed25519 {K1}\n{bad}\n");
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert!(
                e.to_string().contains("refusing rather than ignoring"),
                "{e}"
            );
        }
        let text = format!(
            "# comment\n\n   \ngarbage\n10.0.0.1 ssh-ed25519\n10.0.0.1 ssh-rsa {K1}\n@unknown-marker * ssh-ed25519 {K1}\n|2|x|y ssh-ed25519 {K1}\n\t10.0.0.1   ssh-ed25519 {K1}   comment with  spaces\r\n"
        );
        let entries = parse(&text).unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(entries[0].line, 9);
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Known);
    }

    #[test]
    fn a_cert_authority_is_reported_not_trusted() {
        let text = format!("@cert-authority *.example.com,10.0.0.* ssh-ed25519 {K2}\n");
        assert_eq!(
            find(&text, "10.0.0.1", K1),
            Found::CertAuthority { line: 1 }
        );
        assert_eq!(find(&text, "10.1.0.1", K1), Found::Unknown);
        // A plain entry for the host still decides: the CA line adds nothing to it.
        let text = format!("{text}10.0.0.1 ssh-ed25519 {K1}\n");
        assert_eq!(find(&text, "10.0.0.1", K1), Found::Known);
        assert_eq!(find(&text, "10.0.0.1", K2), Found::Changed { line: 2 });
        // The CA's own key presented as a host key is not "known" either.
        assert_eq!(
            find(
                &format!("@cert-authority * ssh-ed25519 {K2}\n"),
                "10.0.0.1",
                K2
            ),
            Found::CertAuthority { line: 1 }
        );
    }

    #[test]
    fn blob_types_are_read_from_the_blob() {
        assert_eq!(blob_type(&blob(K1)), Some("ssh-ed25519"));
        assert_eq!(blob_type(&blob(K3)), Some("ecdsa-sha2-nistp256"));
        for junk in [
            &b""[..],
            b"\0\0\0",
            b"\xff\xff\xff\xff",
            b"\0\0\0\x03abc",
            b"\0\0\0\0x",
        ] {
            assert_eq!(blob_type(junk), None, "{junk:?}");
        }
    }
}

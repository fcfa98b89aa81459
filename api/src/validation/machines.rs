//! Rules on `spec.machines[]`: presence under HA, IPs (valid, not reserved, unique), SSH
//! port, POSIX user names, secrets (base64, then UTF-8 text within sshd's limits, as the
//! provisioner needs them), private keys (a private key, its passphrase when encrypted), label
//! and taint syntax, and the machine's proxy.

use std::collections::HashMap;
use std::net::IpAddr;

use super::bounds::over;
use super::{Ctx, reserved_kind};
use crate::defaults::parse_ip;
use crate::field::{FieldError, quote};

/// Detail for any IP that does not parse.
pub const IP_DETAIL: &str = "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff), without leading zeros or a prefix length";

/// `spec.machines[i]`, formatted only when an error needs it.
#[derive(Clone, Copy)]
struct Lazy(usize);

impl std::fmt::Display for Lazy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "spec.machines[{}]", self.0)
    }
}

/// First index of each machine IP: a linear scan for the usual handful, a map beyond.
enum Seen {
    Few(Vec<(IpAddr, usize)>),
    Many(HashMap<IpAddr, usize>),
}

impl Seen {
    fn new(n: usize) -> Self {
        if n <= 16 {
            Seen::Few(Vec::with_capacity(n))
        } else {
            Seen::Many(HashMap::with_capacity(n))
        }
    }

    /// The earlier index holding `ip`, or None after recording `i` as its first.
    fn first(&mut self, ip: IpAddr, i: usize) -> Option<usize> {
        match self {
            Seen::Few(v) => match v.iter().find(|(a, _)| *a == ip) {
                Some((_, j)) => Some(*j),
                None => {
                    v.push((ip, i));
                    None
                }
            },
            Seen::Many(m) => match m.get(&ip) {
                Some(j) => Some(*j),
                None => {
                    m.insert(ip, i);
                    None
                }
            },
        }
    }
}

/// The core/v1 taint effects.
pub const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// The proxy types TKEStack defines (`ProxyType` in `api/platform/v1/types.go`).
pub const PROXY_TYPES: [&str; 2] = ["SSHJumpServer", "SOCKS5"];

const USERNAME_DETAIL: &str = "must be a POSIX login name: letters, digits, '.', '_' and '-', not starting \
     with '-', at most 32 characters (e.g. root)";

/// Whether `name` is a portable POSIX login name: the portable filename character set
/// (POSIX.1-2017 §3.282, which §3.437 "User Name" asks for), not starting with `-`, not `.` or
/// `..`, 1 to [`crate::limits::MAX_USERNAME`] characters (shadow-utils' `useradd` limit).
pub fn is_login_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::limits::MAX_USERNAME
        && !name.starts_with('-')
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `name` is a Kubernetes qualified name (a label or taint key): an optional DNS
/// subdomain prefix and `/`, then 1 to 63 characters of letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(super::meta::is_dns1123_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Whether `value` is a Kubernetes label value: empty, or up to 63 characters of letters,
/// digits, `-`, `_` and `.`, starting and ending with a letter or digit.
pub fn is_label_value(value: &str) -> bool {
    let b = value.as_bytes();
    b.is_empty()
        || (b.len() <= crate::limits::MAX_LABEL_VALUE
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')))
}

/// The rules on each machine (only when their number is within bounds).
pub fn validate(ctx: &mut Ctx<'_>) {
    let machines = ctx.spec.machines.as_deref().unwrap_or_default();
    if machines.is_empty() {
        if let Some(ha) = ctx.ha()
            && (ha.tke.is_some() || ha.third_party.is_some())
        {
            ctx.error(FieldError::required(
                "spec.machines",
                "HA needs the master machines: list them (3 for keepalived failover) with ip, \
                     username and password or privateKey",
            ));
        }
        return;
    }
    if !ctx.machines_bounded() {
        return;
    }

    let mut seen = Seen::new(machines.len());
    for (i, m) in machines.iter().enumerate() {
        let at = Lazy(i);
        match (m.ip.as_deref(), ctx.machine_ips.get(i).copied().flatten()) {
            (None | Some(""), _) => ctx.error(FieldError::required(
                format!("{at}.ip"),
                "set the master's address the provisioner reaches over SSH",
            )),
            (Some(s), None) if over(s, crate::limits::MAX_IP) => {}
            (Some(s), None) => ctx.error(FieldError::invalid(
                format!("{at}.ip"),
                Some(quote(s)),
                IP_DETAIL,
            )),
            (Some(s), Some(ip)) => {
                if let Some(kind) = reserved_kind(ip) {
                    ctx.error(FieldError::invalid(
                        format!("{at}.ip"),
                        Some(quote(s)),
                        format!(
                            "must not be {kind}: use the master's own address, the one the \
                             provisioner reaches over SSH"
                        ),
                    ));
                }
                if let Some(first) = seen.first(ip, i) {
                    ctx.error(FieldError::duplicate(
                        format!("{at}.ip"),
                        Some(quote(s)),
                        format!("same address as spec.machines[{first}].ip: list each master once"),
                    ));
                }
            }
        }

        if let Some(p) = m.port
            && !(1..=65535).contains(&p)
        {
            ctx.error(FieldError::invalid(
                format!("{at}.port"),
                Some(p.to_string()),
                "must be between 1 and 65535, inclusive (the SSH port, usually 22)",
            ));
        }

        match m.username.as_deref() {
            None | Some("") => ctx.error(FieldError::required(
                format!("{at}.username"),
                "set the SSH user, e.g. \"root\" (other users need passwordless sudo)",
            )),
            // Over the bound: reported by the bounds rules, not shown again.
            Some(u) if over(u, crate::limits::MAX_USERNAME) => {}
            Some(u) if !is_login_name(u) => ctx.error(FieldError::invalid(
                format!("{at}.username"),
                Some(quote(u)),
                USERNAME_DETAIL,
            )),
            Some(_) => {}
        }

        secrets(
            ctx,
            &at.to_string(),
            [&m.password, &m.private_key, &m.pass_phrase],
        );
        private_key(ctx, &at, &m.private_key, &m.pass_phrase);

        let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        if !has(&m.password) && !has(&m.private_key) {
            ctx.error(FieldError::required(
                at.to_string(),
                "must specify password or privateKey (base64; `kubectl tkeha encode-password` makes one)",
            ));
        }

        labels(ctx, i, m);
        taints(ctx, i, m);
        if let Some(p) = &m.proxy {
            proxy(ctx, &format!("{at}.proxy"), p);
            private_key(
                ctx,
                &format_args!("{at}.proxy"),
                &p.private_key,
                &p.pass_phrase,
            );
        }
    }
}

/// base64, then what the provisioner needs: UTF-8 text, within sshd's password length.
/// The values are secrets: never shown.
fn secrets(ctx: &mut Ctx<'_>, at: &dyn std::fmt::Display, values: [&Option<String>; 3]) {
    let max_decoded = [
        crate::limits::MAX_PASSWORD_BYTES,
        crate::limits::MAX_PRIVATE_KEY_BYTES,
        crate::limits::MAX_PASSWORD_BYTES,
    ];
    let max_text = [
        crate::limits::MAX_PASSWORD_BASE64,
        crate::limits::MAX_PRIVATE_KEY_BASE64,
        crate::limits::MAX_PASSWORD_BASE64,
    ];
    for (((name, value), max), max_text) in crate::secret::FIELDS
        .iter()
        .zip(values)
        .zip(max_decoded)
        .zip(max_text)
    {
        let Some(v) = value.as_deref() else { continue };
        if v.len() > max_text {
            continue; // reported by the bounds rules
        }
        let (len, utf8) = match crate::secret::inspect(v) {
            crate::secret::Inspected::Bytes { len, utf8 } => (len, utf8),
            crate::secret::Inspected::NotBase64 => {
                ctx.error(FieldError::invalid(
                    format!("{at}.{name}"),
                    None,
                    format!(
                        "must be standard base64 with padding (the {name} itself is not shown); \
                         encode it with `kubectl tkeha encode-password`"
                    ),
                ));
                continue;
            }
        };
        if len > max {
            ctx.error(FieldError::invalid(
                format!("{at}.{name}"),
                None,
                format!(
                    "decodes to {len} bytes, more than {max} (the {name} itself is not shown){}",
                    if *name == "privateKey" {
                        ": that is not an SSH private key"
                    } else {
                        ": sshd refuses longer passwords"
                    }
                ),
            ));
        } else if !utf8 {
            ctx.error(FieldError::invalid(
                format!("{at}.{name}"),
                None,
                format!(
                    "decodes to bytes that are not UTF-8 text (the {name} itself is not shown): the \
                     provisioner sends it over SSH as text and refuses it; base64 the UTF-8 text, \
                     e.g. with `kubectl tkeha encode-password`"
                ),
            ));
        }
    }
}

/// `privateKey`, once decoded, must be a private key, refused in the words of `init --ssh-key`
/// ([`crate::sshkey::classify`]); an encrypted one needs its `passPhrase`, and a `passPhrase`
/// beside a key without one is never used (a warning). The key is classified, never decrypted,
/// and never shown. A value the secret rules already refuse (not base64, too long, not UTF-8
/// text) is left to them.
fn private_key(
    ctx: &mut Ctx<'_>,
    at: &dyn std::fmt::Display,
    key: &Option<String>,
    pass_phrase: &Option<String>,
) {
    let Some(text) = key.as_deref().filter(|k| !k.is_empty()) else {
        return;
    };
    if text.len() > crate::limits::MAX_PRIVATE_KEY_BASE64 {
        return;
    }
    let Some(bytes) = crate::secret::decode(text).map(zeroize::Zeroizing::new) else {
        return;
    };
    if bytes.len() > crate::limits::MAX_PRIVATE_KEY_BYTES || std::str::from_utf8(&bytes).is_err() {
        return;
    }
    let has_pass_phrase = pass_phrase.as_deref().is_some_and(|p| !p.is_empty());
    match crate::sshkey::classify(&bytes) {
        Err(e) => ctx.error(FieldError::invalid(
            format!("{at}.privateKey"),
            None,
            format!(
                "once decoded, {e}; privateKey must be the base64 of the whole private key \
                 file, as `kubectl tkeha init --ssh-key FILE` writes it (the privateKey itself is \
                 not shown)"
            ),
        )),
        Ok(info) if info.encrypted && !has_pass_phrase => ctx.error(FieldError::required(
            format!("{at}.passPhrase"),
            "the privateKey is encrypted, and the provisioner cannot log in with it without its \
             passphrase: set passPhrase to the passphrase in base64 (`kubectl tkeha \
             encode-password` makes it), or use a key without a passphrase",
        )),
        Ok(info) if !info.encrypted && has_pass_phrase => ctx.warn(
            &format!("{at}.passPhrase"),
            "the privateKey is not encrypted, so this passPhrase is never used; remove it",
        ),
        Ok(_) => {}
    }
}

fn labels(ctx: &mut Ctx<'_>, i: usize, m: &crate::types::ClusterMachine) {
    let Some(labels) = &m.labels else { return };
    if labels.len() > crate::limits::MAX_LABELS {
        return; // reported by the bounds rules
    }
    for (k, v) in labels {
        if !over(k, crate::limits::MAX_LABEL_KEY) && !is_qualified_name(k) {
            ctx.error(FieldError::invalid(
                format!("spec.machines[{i}].labels"),
                Some(quote(k)),
                "a label key must be an optional DNS subdomain and '/', then 1 to 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit \
                 (e.g. example.com/role)",
            ));
        } else if !over(v, crate::limits::MAX_LABEL_VALUE) && !is_label_value(v) {
            ctx.error(FieldError::invalid(
                format!("spec.machines[{i}].labels[{k}]"),
                Some(quote(v)),
                "a label value must be empty or 1 to 63 letters, digits, '-', '_' or '.', \
                 starting and ending with a letter or digit",
            ));
        }
    }
}

fn taints(ctx: &mut Ctx<'_>, i: usize, m: &crate::types::ClusterMachine) {
    let Some(taints) = &m.taints else { return };
    if taints.len() > crate::limits::MAX_TAINTS {
        return; // reported by the bounds rules
    }
    for (j, t) in taints.iter().enumerate() {
        let at = format!("spec.machines[{i}].taints[{j}]");
        match t.key.as_deref() {
            None | Some("") => ctx.error(FieldError::required(
                format!("{at}.key"),
                "a taint needs a key, e.g. node-role.kubernetes.io/master",
            )),
            Some(k) if !over(k, crate::limits::MAX_LABEL_KEY) && !is_qualified_name(k) => ctx
                .error(FieldError::invalid(
                    format!("{at}.key"),
                    Some(quote(k)),
                    "must be a label key: an optional DNS subdomain and '/', then 1 to 63 \
                     letters, digits, '-', '_' or '.'",
                )),
            Some(_) => {}
        }
        if let Some(v) = t.value.as_deref()
            && !over(v, crate::limits::MAX_LABEL_VALUE)
            && !is_label_value(v)
        {
            ctx.error(FieldError::invalid(
                format!("{at}.value"),
                Some(quote(v)),
                "must be empty or a label value: 1 to 63 letters, digits, '-', '_' or '.'",
            ));
        }
        match t.effect.as_deref() {
            None | Some("") => ctx.error(FieldError::required(
                format!("{at}.effect"),
                "a taint needs an effect: NoSchedule, PreferNoSchedule or NoExecute",
            )),
            Some(e) if !TAINT_EFFECTS.contains(&e) => ctx.error(FieldError::not_supported(
                format!("{at}.effect"),
                Some(quote(e)),
                &TAINT_EFFECTS.map(String::from),
            )),
            Some(_) => {}
        }
    }
}

/// Longest SOCKS5 username or password (RFC 1929: one length byte, 1 to 255).
pub const MAX_SOCKS5_CREDENTIAL: usize = 255;

/// `spec.machines[i].proxy`: TKEStack's `ClusterMachineProxy`. The type is one of the two,
/// the address is a usable destination and the port is set and in range. An `SSHJumpServer`
/// needs a login (a POSIX user name and a password or a private key). A `SOCKS5` proxy works
/// without credentials, as TKEStack's dialer does; with them it takes a username and a password
/// together (RFC 1929) and no key. Secrets get the machine's rules and are never shown.
fn proxy(ctx: &mut Ctx<'_>, at: &str, p: &crate::types::ClusterMachineProxy) {
    let kind = p.type_.as_deref();
    match kind {
        None | Some("") => ctx.error(FieldError::required(
            format!("{at}.type"),
            "SSHJumpServer or SOCKS5",
        )),
        Some(t) if !PROXY_TYPES.contains(&t) => ctx.error(FieldError::not_supported(
            format!("{at}.type"),
            Some(quote(t)),
            &PROXY_TYPES.map(String::from),
        )),
        Some(_) => {}
    }
    match p.ip.as_deref() {
        None | Some("") => ctx.error(FieldError::required(
            format!("{at}.ip"),
            "set the proxy's address (the jump server or the SOCKS5 proxy this host connects to)",
        )),
        Some(s) if over(s, crate::limits::MAX_IP) => {}
        Some(s) => match parse_ip(s) {
            None => ctx.error(FieldError::invalid(
                format!("{at}.ip"),
                Some(quote(s)),
                IP_DETAIL,
            )),
            // A loopback proxy is a local one (`ssh -D 1080`): allowed. These are never a host.
            Some(ip)
                if ip.is_unspecified()
                    || ip.is_multicast()
                    || matches!(ip, IpAddr::V4(v) if v.is_broadcast()) =>
            {
                ctx.error(FieldError::invalid(
                    format!("{at}.ip"),
                    Some(quote(s)),
                    format!(
                        "must not be {}: a proxy is one host's address",
                        reserved_kind(ip).unwrap_or("a reserved address")
                    ),
                ))
            }
            Some(_) => {}
        },
    }
    match p.port {
        None => ctx.error(FieldError::required(
            format!("{at}.port"),
            "set the proxy's port (usually 22 for SSHJumpServer, 1080 for SOCKS5)",
        )),
        Some(port) if !(1..=65535).contains(&port) => ctx.error(FieldError::invalid(
            format!("{at}.port"),
            Some(port.to_string()),
            "must be between 1 and 65535, inclusive (usually 22 for SSHJumpServer, 1080 for SOCKS5)",
        )),
        Some(_) => {}
    }
    let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    let user = p.username.as_deref().filter(|u| !u.is_empty());
    match kind {
        Some("SSHJumpServer") => {
            match user {
                None => ctx.error(FieldError::required(
                    format!("{at}.username"),
                    "an SSHJumpServer needs the user to log in to it as",
                )),
                Some(u) if !over(u, crate::limits::MAX_USERNAME) && !is_login_name(u) => ctx.error(
                    FieldError::invalid(format!("{at}.username"), Some(quote(u)), USERNAME_DETAIL),
                ),
                Some(_) => {}
            }
            if !has(&p.password) && !has(&p.private_key) {
                ctx.error(FieldError::required(
                    at.to_string(),
                    "an SSHJumpServer needs a password or a privateKey (base64; `kubectl tkeha \
                     encode-password` makes one)",
                ));
            }
        }
        Some("SOCKS5") => {
            if let Some(u) = user
                && !over(u, crate::limits::MAX_USERNAME)
                && u.chars().any(char::is_control)
            {
                ctx.error(FieldError::invalid(
                    format!("{at}.username"),
                    Some(quote(u)),
                    "must not contain control characters",
                ));
            }
            match (user.is_some(), has(&p.password)) {
                (true, false) => ctx.error(FieldError::required(
                    format!("{at}.password"),
                    "SOCKS5 username/password authentication (RFC 1929) needs both: add the \
                     base64 password, or remove the username to connect without authentication \
                     (as TKEStack does)",
                )),
                (false, true) => ctx.error(FieldError::required(
                    format!("{at}.username"),
                    "SOCKS5 username/password authentication (RFC 1929) needs both: add the \
                     username, or remove the password to connect without authentication",
                )),
                _ => {}
            }
            for (name, value) in [
                ("privateKey", &p.private_key),
                ("passPhrase", &p.pass_phrase),
            ] {
                if has(value) {
                    ctx.error(FieldError::forbidden(
                        format!("{at}.{name}"),
                        "a SOCKS5 proxy takes no key: it authenticates with a username and \
                         password (RFC 1929) or not at all",
                    ));
                }
            }
            if let Some(pw) = p.password.as_deref()
                && !over(pw, crate::limits::MAX_PASSWORD_BASE64)
                && let crate::secret::Inspected::Bytes { len, .. } = crate::secret::inspect(pw)
                && len > MAX_SOCKS5_CREDENTIAL
            {
                ctx.error(FieldError::invalid(
                    format!("{at}.password"),
                    None,
                    format!(
                        "decodes to {len} bytes, more than the {MAX_SOCKS5_CREDENTIAL} SOCKS5 \
                         allows (RFC 1929; the password itself is not shown)"
                    ),
                ));
            }
        }
        _ => {}
    }
    secrets(ctx, &at, [&p.password, &p.private_key, &p.pass_phrase]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names() {
        for ok in [
            "root",
            "tkeha",
            "a.b_c-d",
            "_svc",
            "Admin1",
            &"a".repeat(32),
        ] {
            assert!(is_login_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-root",
            ".",
            "..",
            "a b",
            "a;b",
            "$(id)",
            "a\nb",
            "\u{1b}[8m",
            "r\u{f6}ot",
            &"a".repeat(33),
        ] {
            assert!(!is_login_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn label_syntax() {
        for ok in [
            "role",
            "example.com/role",
            "a_b.c-d",
            "node-role.kubernetes.io/master",
        ] {
            assert!(is_qualified_name(ok), "{ok}");
        }
        for bad in ["", "/a", "a/", "-a", "Ex.com/a", "a b", &"a".repeat(64)] {
            assert!(!is_qualified_name(bad), "{bad}");
        }
        assert!(is_label_value(""));
        assert!(!is_label_value("a b"));
    }
}

//! Rules on `spec.machines[]`: presence under HA, IPs (valid, unique), SSH port, user and base64 secrets.

use std::collections::HashMap;
use std::net::IpAddr;

use super::Ctx;
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

    let mut seen = Seen::new(machines.len());
    for (i, m) in machines.iter().enumerate() {
        let at = Lazy(i);
        match (m.ip.as_deref(), ctx.machine_ips.get(i).copied().flatten()) {
            (None | Some(""), _) => ctx.error(FieldError::required(
                format!("{at}.ip"),
                "set the master's address the provisioner reaches over SSH",
            )),
            (Some(s), None) => ctx.error(FieldError::invalid(
                format!("{at}.ip"),
                Some(quote(s)),
                IP_DETAIL,
            )),
            (Some(s), Some(ip)) => {
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

        if m.username.as_deref().unwrap_or("").is_empty() {
            ctx.error(FieldError::required(
                format!("{at}.username"),
                "set the SSH user, e.g. \"root\" (other users need passwordless sudo)",
            ));
        }

        for (name, value) in [
            ("password", &m.password),
            ("privateKey", &m.private_key),
            ("passPhrase", &m.pass_phrase),
        ] {
            if let Some(v) = value.as_deref()
                && !crate::secret::is_valid(v)
            {
                // The value is a secret: never echo it back.
                ctx.error(FieldError::invalid(
                    format!("{at}.{name}"),
                    None,
                    format!(
                        "must be standard base64 with padding (the {name} itself is not shown); \
                             encode it with `kubectl tkeha encode-password`"
                    ),
                ));
            }
        }

        let has = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        if !has(&m.password) && !has(&m.private_key) {
            ctx.error(FieldError::required(
                at.to_string(),
                "must specify password or privateKey (base64; `kubectl tkeha encode-password` makes one)",
            ));
        }
    }
}

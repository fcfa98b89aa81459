//! Defaults as RFC 6902 `add` operations over the object as received (idempotent, never overwriting).
//!
//! - `spec.machines[i].port` = 22 when missing or null;
//! - `spec.features.ha.tke.vrid` = (last byte of the VIP mod 255) + 1 when missing and the VIP
//!   parses (TKEStack's rule for .0-.254; .255 gives 1 instead of failing at install);
//! - every valid HA VIP appended to `spec.publicAlternativeNames` (created when missing) so the
//!   apiserver certificate covers it.
//!
//! `thirdParty.vport` is deliberately not defaulted. The same defaults are applied to the typed
//! spec in place, so validation sees exactly what the patched object decodes to.

use std::net::IpAddr;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

use crate::types::ClusterSpec;

/// The SSH port used when a machine has none.
pub const DEFAULT_SSH_PORT: i64 = 22;

/// TKEStack's keepalived VRID rule, made total: (last byte of the VIP mod 255) + 1, so 1..=255.
pub fn vrid_for(vip: IpAddr) -> i64 {
    let last = match vip {
        IpAddr::V4(v) => v.octets()[3],
        IpAddr::V6(v) => v.octets()[15],
    };
    i64::from(last % 255) + 1
}

/// Strict IP parse (no leading zeros, no prefix length, no zone, no surrounding spaces).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(tokens.iter().copied()),
        value,
    })
}

/// Apply the defaults to `spec` (decoded from the object's `spec`) and return the matching patch.
pub fn apply_defaults(spec: &mut ClusterSpec) -> Vec<PatchOperation> {
    let mut ops = Vec::new();

    if let Some(machines) = spec.machines.as_mut() {
        for (i, m) in machines.iter_mut().enumerate() {
            if m.port.is_none() {
                m.port = Some(DEFAULT_SSH_PORT);
                let idx = i.to_string();
                ops.push(add(
                    &["spec", "machines", &idx, "port"],
                    Value::from(DEFAULT_SSH_PORT),
                ));
            }
        }
    }

    let mut vips: Vec<String> = Vec::new();
    if let Some(ha) = spec.features.as_mut().and_then(|f| f.ha.as_mut()) {
        if let Some(tke) = ha.tke.as_mut()
            && let Some(vip) = tke.vip.as_deref().and_then(parse_ip)
        {
            if tke.vrid.is_none() {
                let vrid = vrid_for(vip);
                tke.vrid = Some(vrid);
                ops.push(add(
                    &["spec", "features", "ha", "tke", "vrid"],
                    Value::from(vrid),
                ));
            }
            vips.extend(tke.vip.clone());
        }
        if let Some(tp) = ha.third_party.as_ref()
            && let Some(vip) = tp.vip.as_deref()
            && parse_ip(vip).is_some()
            && !vips.iter().any(|v| v == vip)
        {
            vips.push(vip.to_string());
        }
    }

    for vip in vips {
        let ip = parse_ip(&vip);
        match spec.public_alternative_names.as_mut() {
            None => {
                ops.push(add(
                    &["spec", "publicAlternativeNames"],
                    Value::Array(vec![Value::String(vip.clone())]),
                ));
                spec.public_alternative_names = Some(vec![vip]);
            }
            Some(names) => {
                let present = names
                    .iter()
                    .any(|n| *n == vip || (ip.is_some() && parse_ip(n) == ip));
                if !present {
                    ops.push(add(
                        &["spec", "publicAlternativeNames", "-"],
                        Value::String(vip.clone()),
                    ));
                    names.push(vip);
                }
            }
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrid_rule() {
        let v = |s: &str| vrid_for(s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])));
        assert_eq!(v("192.168.1.0"), 1);
        assert_eq!(v("192.168.1.3"), 4);
        assert_eq!(v("192.168.1.254"), 255);
        assert_eq!(v("192.168.1.255"), 1);
        assert_eq!(v("2001:db8::ff"), 1);
        assert_eq!(v("2001:db8::10"), 17);
    }
}

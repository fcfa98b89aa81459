//! Defaults as RFC 6902 `add` operations over the object as received (idempotent, never overwriting).
//!
//! - `spec.machines[i].port` = 22 when missing or null;
//! - `spec.features.ha.tke.vrid` = (last byte of the VIP mod 255) + 1 when missing and the VIP
//!   parses (TKEStack's rule for .0-.254; .255 gives 1 instead of failing at install);
//! - every valid HA VIP appended to `spec.publicAlternativeNames` (created when missing) so the
//!   apiserver certificate covers it;
//! - `spec.clusterCIDR` = `10.244.0.0/16` and `spec.dnsDomain` = `cluster.local` when missing
//!   or null, TKEStack's own defaults (tkestack/tke
//!   `pkg/platform/provider/baremetal/cluster/provider.go` PreCreate for the CIDR,
//!   `pkg/platform/registry/cluster/strategy.go` PrepareForCreate for the domain), so the
//!   checks of the machines and the VIP against the pod network always run.
//!
//! `metadata.generateName` = `cls-` (TKEStack's default name prefix) is added by
//! [`crate::review`], which sees the metadata. `thirdParty.vport` is deliberately not defaulted. The same defaults are applied to the typed
//! spec in place, so validation sees exactly what the patched object decodes to.

use std::net::IpAddr;

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{AddOperation, PatchOperation};
use serde_json::Value;

use crate::types::ClusterSpec;

/// The SSH port used when a machine has none.
pub const DEFAULT_SSH_PORT: i64 = 22;

/// TKEStack's default pod network.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.244.0.0/16";

/// TKEStack's default cluster DNS domain.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";

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

/// An `add` at the pointer made of `tokens` (none of ours needs `~` escaping).
fn add(tokens: &[&str], value: Value) -> PatchOperation {
    // Build the pointer text in one allocation (from_tokens grows a String token by token).
    let mut text = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for t in tokens {
        text.push('/');
        text.push_str(t);
    }
    add_parsed(
        text,
        || tokens.iter().map(|t| t.to_string()).collect(),
        value,
    )
}

/// `add /spec/machines/<i>/port`, formatted straight into the pointer's buffer.
fn add_port(i: usize, value: Value) -> PatchOperation {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(32);
    let _ = write!(text, "/spec/machines/{i}/port");
    let tokens = || {
        vec![
            "spec".into(),
            "machines".into(),
            i.to_string(),
            "port".into(),
        ]
    };
    add_parsed(text, tokens, value)
}

/// Parse `text` as a pointer; should it not parse, build it from `tokens` (escaping as needed).
fn add_parsed(text: String, tokens: impl FnOnce() -> Vec<String>, value: Value) -> PatchOperation {
    let path = match PointerBuf::parse(text) {
        Ok(p) if !p.as_str().contains('~') => p,
        _ => PointerBuf::from_tokens(tokens().iter().map(String::as_str)),
    };
    PatchOperation::Add(AddOperation { path, value })
}

/// Apply the defaults to `spec` (decoded from the object's `spec`) and return the matching patch.
pub fn apply_defaults(spec: &mut ClusterSpec) -> Vec<PatchOperation> {
    let mut ops = Vec::new();

    if spec.cluster_cidr.is_none() {
        spec.cluster_cidr = Some(DEFAULT_CLUSTER_CIDR.to_string());
        ops.push(add(
            &["spec", "clusterCIDR"],
            Value::from(DEFAULT_CLUSTER_CIDR),
        ));
    }
    if spec.dns_domain.is_none() {
        spec.dns_domain = Some(DEFAULT_DNS_DOMAIN.to_string());
        ops.push(add(&["spec", "dnsDomain"], Value::from(DEFAULT_DNS_DOMAIN)));
    }

    if let Some(machines) = spec.machines.as_mut() {
        for (i, m) in machines.iter_mut().enumerate() {
            if m.port.is_none() {
                m.port = Some(DEFAULT_SSH_PORT);
                ops.push(add_port(i, Value::from(DEFAULT_SSH_PORT)));
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

/// Apply `ops` (the `add` operations [`apply_defaults`] returns) to `doc` in place, walking each
/// pointer directly instead of through `json_patch::patch` (which re-parses every path): the
/// defaults patch is applied on every review, so this is the hot path.
///
/// Returns false, with `doc` exactly as it was (the adds already made are undone), when an
/// operation is not an `add` or its parent is missing or of the wrong kind; the caller then
/// applies the same operations with `json_patch::patch`, so the outcome (and any error) is
/// exactly that of RFC 6902, without keeping a copy of the original.
pub fn apply_adds(doc: &mut Value, ops: &[PatchOperation]) -> bool {
    let mut done: Vec<Undo<'_>> = Vec::with_capacity(ops.len());
    for op in ops {
        let applied = match op {
            PatchOperation::Add(add) => add_at(doc, &add.path, &add.value),
            _ => None,
        };
        match applied {
            Some(undo) => done.push(undo),
            None => {
                for undo in done.into_iter().rev() {
                    undo.revert(doc);
                }
                return false;
            }
        }
    }
    true
}

/// How to take back one add made by [`add_at`].
struct Undo<'a> {
    /// Pointer text of the node the value was added to.
    parent: &'a str,
    slot: Slot<'a>,
}

enum Slot<'a> {
    /// A member that did not exist: remove it (it was appended last, so order is restored).
    NewKey(&'a str),
    /// A member that was replaced: put the previous value back (its position never moved).
    Replaced(&'a str, Value),
    /// An array element inserted at this index: remove it.
    Inserted(usize),
}

impl Undo<'_> {
    fn revert(self, doc: &mut Value) {
        // The parent was reachable when the add was made and later adds are undone first, so
        // it still is; should it not be, there is nothing of ours left to take back.
        let Some(node) = parent_mut(doc, self.parent) else {
            return;
        };
        match (node, self.slot) {
            (Value::Object(o), Slot::NewKey(key)) => {
                o.shift_remove(key);
            }
            (Value::Object(o), Slot::Replaced(key, previous)) => {
                o.insert(key.to_string(), previous);
            }
            (Value::Array(a), Slot::Inserted(i)) if i < a.len() => {
                a.remove(i);
            }
            _ => {}
        }
    }
}

/// The node at pointer text `parent` (`""` is the root), if every step exists.
fn parent_mut<'a>(doc: &'a mut Value, parent: &str) -> Option<&'a mut Value> {
    let mut node = doc;
    for token in parent.split('/').skip(1) {
        node = match node {
            Value::Object(o) => o.get_mut(token)?,
            Value::Array(a) => {
                let i = array_index(token).filter(|i| *i < a.len())?;
                &mut a[i]
            }
            _ => return None,
        };
    }
    Some(node)
}

/// RFC 6902 `add` of `value` at `path`; what to do to take it back, or None (nothing changed)
/// when the parent is missing or of the wrong kind.
fn add_at<'a>(doc: &mut Value, path: &'a Pointer, value: &Value) -> Option<Undo<'a>> {
    let text = path.as_str();
    // Escaped tokens (`~0`, `~1`) are left to json_patch; none of ours has one.
    if text.contains('~') {
        return None;
    }
    let (parent, last) = text.rsplit_once('/')?;
    let slot = match parent_mut(doc, parent)? {
        Value::Object(o) => match o.insert(last.to_string(), value.clone()) {
            None => Slot::NewKey(last),
            Some(previous) => Slot::Replaced(last, previous),
        },
        Value::Array(a) => {
            let at = if last == "-" {
                Some(a.len())
            } else {
                array_index(last).filter(|i| *i <= a.len())
            };
            let i = at?;
            a.insert(i, value.clone());
            Slot::Inserted(i)
        }
        _ => return None,
    };
    Some(Undo { parent, slot })
}

/// An RFC 6901 array index: `0` or a decimal without leading zeros.
fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
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

    fn op(json: serde_json::Value) -> PatchOperation {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("op: {e}"))
    }

    #[test]
    fn apply_adds_matches_rfc6902() {
        let doc = serde_json::json!({"spec": {"machines": [{"ip": "a"}, {"ip": "b"}], "x~y": {}}});
        let ops = vec![
            op(serde_json::json!({"op": "add", "path": "/spec/machines/1/port", "value": 22})),
            op(serde_json::json!({"op": "add", "path": "/spec/machines/0", "value": {"ip": "z"}})),
            op(serde_json::json!({"op": "add", "path": "/spec/names", "value": ["v"]})),
            op(serde_json::json!({"op": "add", "path": "/spec/names/-", "value": "w"})),
        ];
        let mut fast = doc.clone();
        assert!(apply_adds(&mut fast, &ops));
        let mut rfc = doc.clone();
        assert!(json_patch::patch(&mut rfc, &ops).is_ok());
        assert_eq!(fast, rfc);
    }

    #[test]
    fn apply_adds_refuses_what_it_does_not_handle() {
        let doc = serde_json::json!({"spec": {"machines": [{"ip": "a"}], "n": 1}});
        for bad in [
            serde_json::json!({"op": "remove", "path": "/spec/n"}),
            serde_json::json!({"op": "add", "path": "/spec/missing/port", "value": 22}),
            serde_json::json!({"op": "add", "path": "/spec/machines/5/port", "value": 22}),
            serde_json::json!({"op": "add", "path": "/spec/machines/7", "value": {}}),
            serde_json::json!({"op": "add", "path": "/spec/n/x", "value": 1}),
            serde_json::json!({"op": "add", "path": "", "value": 1}),
            serde_json::json!({"op": "add", "path": "/spec/machines/01/port", "value": 1}),
            serde_json::json!({"op": "add", "path": "/spec/machines/+0/port", "value": 1}),
            // escaped tokens go the general way
            serde_json::json!({"op": "add", "path": "/spec/x~0y", "value": true}),
        ] {
            let mut d = doc.clone();
            assert!(!apply_adds(&mut d, &[op(bad.clone())]), "{bad}");
        }
    }

    #[test]
    fn a_refused_operation_takes_back_the_adds_before_it() {
        let doc = serde_json::json!({"spec": {"machines": [{"ip": "a"}], "n": 1, "k": "v"}});
        let ops = vec![
            op(serde_json::json!({"op": "add", "path": "/spec/machines/0/port", "value": 22})),
            op(serde_json::json!({"op": "add", "path": "/spec/k", "value": "replaced"})),
            op(serde_json::json!({"op": "add", "path": "/spec/machines/0", "value": {"ip": "z"}})),
            op(serde_json::json!({"op": "add", "path": "/spec/names", "value": ["v"]})),
            op(serde_json::json!({"op": "add", "path": "/spec/names/-", "value": "w"})),
            op(serde_json::json!({"op": "add", "path": "/spec/missing/port", "value": 22})),
        ];
        let mut d = doc.clone();
        assert!(!apply_adds(&mut d, &ops));
        assert_eq!(d, doc);
        // Member order too (preserve_order): the replaced key kept its place.
        assert_eq!(d.to_string(), doc.to_string());
    }

    #[test]
    fn pointers_are_built_as_from_tokens_would() {
        let PatchOperation::Add(a) = add_port(12, Value::from(22)) else {
            panic!("add_port must make an add")
        };
        assert_eq!(
            a.path,
            PointerBuf::from_tokens(["spec", "machines", "12", "port"])
        );
        let PatchOperation::Add(b) = add(&["spec", "a~b", "c"], Value::Null) else {
            panic!("add must make an add")
        };
        assert_eq!(b.path, PointerBuf::from_tokens(["spec", "a~b", "c"]));
    }
}

//! Update rules: immutable fields, the HA mode/VIP/VRID/vport once set, and master scaling.
//!
//! Both specs are defaulted (`old` as the stored object would have been), so a default the
//! mutating webhook adds on this update (a `clusterCIDR`, a `dnsDomain`, a `vrid`) is no change.
//! Decisions: `vrid` and `vport` are immutable once set too (keepalived and the LB are configured
//! with them); setting HA on a cluster that had none is allowed ("immutable once set");
//! `type`, `clusterCIDR`, `networkDevice`, `dnsDomain` and the `*ExtraArgs` maps may not change
//! at all, set or unset (TKEStack's `ValidateClusterUpdate`, in
//! `api/platform/validation/cluster.go` and the baremetal provider's validation). Every
//! immutability error says why.

use std::collections::BTreeMap;

use std::collections::HashSet;
use std::net::IpAddr;

use super::Ctx;
use crate::defaults::parse_ip;
use crate::field::{FieldError, quote};
use crate::types::ClusterSpec;

/// TKEStack's exact immutability detail.
pub const IMMUTABLE: &str = "field is immutable";

fn quoted(v: Option<&str>) -> Option<String> {
    v.map(quote)
}

fn immutable_str(ctx: &mut Ctx<'_>, path: &str, new: Option<&str>, old: Option<&str>, why: &str) {
    if new != old {
        let was = match old {
            Some(o) => format!("it was {}", quote(o)),
            None => "it was unset".to_string(),
        };
        ctx.error(FieldError::invalid(
            path,
            quoted(new),
            format!("{IMMUTABLE}: {was}; {why}"),
        ));
    }
}

/// The reason a `*ExtraArgs` map is immutable.
const EXTRA_ARGS_WHY: &str = "TKEStack passes these flags to the components only when it installs \
     the masters, so a change would be stored but never applied; change them on the masters";

fn immutable_map(
    ctx: &mut Ctx<'_>,
    path: &str,
    new: Option<&BTreeMap<String, String>>,
    old: Option<&BTreeMap<String, String>>,
) {
    let empty = BTreeMap::new();
    if new.unwrap_or(&empty) != old.unwrap_or(&empty) {
        ctx.error(FieldError::invalid(
            path,
            None,
            format!("{IMMUTABLE}: {EXTRA_ARGS_WHY}"),
        ));
    }
}

/// A comparable key for a machine IP: the parsed address when valid, else the text.
/// Displays as the address in canonical form, or the text as written (missing = empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpKey<'a> {
    /// A valid address.
    Ip(IpAddr),
    /// Anything else, as written (missing = empty).
    Text(&'a str),
}

impl std::fmt::Display for IpKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpKey::Ip(ip) => ip.fmt(f),
            IpKey::Text(t) => f.write_str(&crate::field::escape(t)),
        }
    }
}

/// The identity of a master across an update: its address (parsed when valid), or its text.
pub fn ip_key(s: Option<&str>) -> IpKey<'_> {
    match s {
        Some(t) => parse_ip(t).map_or(IpKey::Text(t), IpKey::Ip),
        None => IpKey::Text(""),
    }
}

/// Membership in a list of keys: a scan for the usual handful of masters, a hash set beyond.
struct KeySet<'k, 'a> {
    keys: &'k [IpKey<'a>],
    set: Option<HashSet<IpKey<'a>>>,
}

impl<'k, 'a> KeySet<'k, 'a> {
    fn new(keys: &'k [IpKey<'a>]) -> Self {
        let set = (keys.len() > 16).then(|| keys.iter().copied().collect());
        KeySet { keys, set }
    }

    fn contains(&self, k: &IpKey<'a>) -> bool {
        match &self.set {
            Some(s) => s.contains(k),
            None => self.keys.contains(k),
        }
    }
}

/// The update-only rules, `old` being the stored spec with its defaults applied.
pub fn validate(ctx: &mut Ctx<'_>, old: &ClusterSpec) {
    let new = ctx.spec;
    immutable_str(
        ctx,
        "spec.type",
        new.type_.as_deref(),
        old.type_.as_deref(),
        "the provider that built the cluster keeps managing it; another type needs a new cluster",
    );
    immutable_str(
        ctx,
        "spec.clusterCIDR",
        new.cluster_cidr.as_deref(),
        old.cluster_cidr.as_deref(),
        "every node's pod range and the network plugin were set up from it; another range needs \
         a new cluster",
    );
    immutable_str(
        ctx,
        "spec.networkDevice",
        new.network_device.as_deref(),
        old.network_device.as_deref(),
        "the nodes were set up on this interface; another one needs a new cluster",
    );
    immutable_str(
        ctx,
        "spec.dnsDomain",
        new.dns_domain.as_deref(),
        old.dns_domain.as_deref(),
        "every service's DNS name and the kubelets' configuration use it; another domain needs a \
         new cluster",
    );
    for (path, n, o) in [
        (
            "spec.dockerExtraArgs",
            &new.docker_extra_args,
            &old.docker_extra_args,
        ),
        (
            "spec.kubeletExtraArgs",
            &new.kubelet_extra_args,
            &old.kubelet_extra_args,
        ),
        (
            "spec.apiServerExtraArgs",
            &new.api_server_extra_args,
            &old.api_server_extra_args,
        ),
        (
            "spec.controllerManagerExtraArgs",
            &new.controller_manager_extra_args,
            &old.controller_manager_extra_args,
        ),
        (
            "spec.schedulerExtraArgs",
            &new.scheduler_extra_args,
            &old.scheduler_extra_args,
        ),
    ] {
        immutable_map(ctx, path, n.as_ref(), o.as_ref());
    }

    validate_ha(ctx, old);
    validate_scaling(ctx, old);
}

fn validate_ha(ctx: &mut Ctx<'_>, old: &ClusterSpec) {
    let old_ha = old.features.as_ref().and_then(|f| f.ha.as_ref());
    let new_ha = ctx.ha();
    let Some(old_mode) = old_ha.and_then(|h| h.mode()) else {
        return;
    };
    let new_mode = new_ha.and_then(|h| h.mode());
    if new_mode != Some(old_mode) {
        ctx.error(FieldError::invalid(
            "spec.features.ha",
            new_mode.map(quote),
            format!(
                "{IMMUTABLE}: the HA mode was {old_mode}; certificates and kubeconfigs point at the \
                 VIP, so keep it (a new mode needs a new cluster)"
            ),
        ));
        return;
    }
    let (Some(old_ha), Some(new_ha)) = (old_ha, new_ha) else {
        return;
    };
    if let (Some(o), Some(n)) = (&old_ha.tke, &new_ha.tke) {
        if o.vip.is_some() && o.vip != n.vip {
            ctx.error(FieldError::invalid(
                "spec.features.ha.tke.vip",
                quoted(n.vip.as_deref()),
                format!(
                    "{IMMUTABLE}: certificates and kubeconfigs use {}",
                    o.vip.as_deref().unwrap_or("")
                ),
            ));
        }
        if o.vrid.is_some() && o.vrid != n.vrid {
            ctx.error(FieldError::invalid(
                "spec.features.ha.tke.vrid",
                n.vrid.map(|v| v.to_string()),
                format!(
                    "{IMMUTABLE}: keepalived on the masters runs with vrid {}",
                    o.vrid.unwrap_or(0)
                ),
            ));
        }
    }
    if let (Some(o), Some(n)) = (&old_ha.third_party, &new_ha.third_party) {
        if o.vip.is_some() && o.vip != n.vip {
            ctx.error(FieldError::invalid(
                "spec.features.ha.thirdParty.vip",
                quoted(n.vip.as_deref()),
                format!(
                    "{IMMUTABLE}: certificates and kubeconfigs use {}",
                    o.vip.as_deref().unwrap_or("")
                ),
            ));
        }
        if o.vport.is_some() && o.vport != n.vport {
            ctx.error(FieldError::invalid(
                "spec.features.ha.thirdParty.vport",
                n.vport.map(|v| v.to_string()),
                format!("{IMMUTABLE}: kubeconfigs use port {}", o.vport.unwrap_or(0)),
            ));
        }
    }
}

fn validate_scaling(ctx: &mut Ctx<'_>, old: &ClusterSpec) {
    let old_m = old.machines.as_deref().unwrap_or_default();
    let new_m = ctx.spec.machines.as_deref().unwrap_or_default();
    // Past what the decode keeps only the count is known (and reported by bounds): too little
    // to say which masters were added or removed.
    let kept = crate::limits::decoded(crate::limits::MAX_MACHINES);
    if old_m.len() > kept || new_m.len() > kept {
        return;
    }
    let old_keys: Vec<IpKey<'_>> = old_m.iter().map(|m| ip_key(m.ip.as_deref())).collect();
    let new_keys: Vec<IpKey<'_>> = new_m.iter().map(|m| ip_key(m.ip.as_deref())).collect();
    if old_keys == new_keys {
        return;
    }
    let old_set = KeySet::new(&old_keys);
    let new_set = KeySet::new(&new_keys);
    let added: Vec<String> = new_keys
        .iter()
        .filter(|k| !old_set.contains(k))
        .map(IpKey::to_string)
        .collect();
    let removed: Vec<String> = old_keys
        .iter()
        .filter(|k| !new_set.contains(k))
        .map(IpKey::to_string)
        .collect();

    let ha_on = ctx.ha().and_then(|h| h.mode()).is_some();
    if old_m.len() != new_m.len() && !ha_on {
        ctx.error(FieldError::invalid(
            "spec.machines",
            None,
            "adding or removing masters requires spec.features.ha (tke or thirdParty): clients \
             need a VIP that follows the masters",
        ));
    }
    if !added.is_empty() && !removed.is_empty() {
        ctx.error(FieldError::invalid(
            "spec.machines",
            None,
            format!(
                "scale up and down master in parallel is not allowed: removed [{}], added [{}]; do it \
                 in two updates",
                removed.join(" "),
                added.join(" ")
            ),
        ));
    }
    if let Some(first) = old_keys.first() {
        if !new_set.contains(first) {
            ctx.error(FieldError::invalid(
                "spec.machines",
                None,
                format!(
                    "master[0] can't scale down: {first} is the first master that bootstrapped the \
                     cluster; remove other masters instead"
                ),
            ));
        } else if new_keys.first() != Some(first) {
            ctx.error(FieldError::invalid(
                "spec.machines[0].ip",
                new_m.first().and_then(|m| m.ip.as_deref()).map(quote),
                format!("{IMMUTABLE}: the first master {first} must stay first; append new masters at the end"),
            ));
        }
    }
}

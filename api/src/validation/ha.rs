//! Rules on `spec.features.ha`: one mode only, the VIP, `tke.vrid`, `thirdParty.vport`, master counts.

use std::net::IpAddr;

use super::machines::IP_DETAIL;
use super::{Ctx, family};
use crate::defaults::parse_ip;
use crate::field::{FieldError, quote};
use crate::review::SingleMasterPolicy;

/// Exact TKEStack detail for a VRID out of range.
pub const VRID_DETAIL: &str = "must be a valid vrid, range [1, 255]";
/// The port kube-apiserver listens on behind the VIP.
pub const APISERVER_PORT: i64 = 6443;

pub fn validate(ctx: &mut Ctx<'_>) {
    let Some(ha) = ctx.ha() else { return };
    let count = ctx.machine_count();

    match (&ha.tke, &ha.third_party) {
        (Some(_), Some(_)) => ctx.error(FieldError::forbidden(
            "spec.features.ha",
            "tke and thirdParty are mutually exclusive: keep tke (keepalived on the masters) or \
             thirdParty (an external load balancer), not both",
        )),
        (None, None) => ctx.warn(
            "spec.features.ha",
            "neither tke nor thirdParty is set, so there is no HA; set one or remove ha",
        ),
        _ => {}
    }

    if let Some(tke) = &ha.tke {
        check_vip(ctx, "spec.features.ha.tke.vip", tke.vip.as_deref());
        if let Some(vrid) = tke.vrid
            && !(1..=255).contains(&vrid)
        {
            ctx.error(FieldError::invalid(
                "spec.features.ha.tke.vrid",
                Some(vrid.to_string()),
                VRID_DETAIL,
            ));
        }
        if count == 1 {
            ctx.warn(
                "spec.features.ha.tke",
                "one master gives no failover; keepalived needs 3 masters to survive one failure",
            );
        }
    }

    if let Some(tp) = &ha.third_party {
        check_vip(ctx, "spec.features.ha.thirdParty.vip", tp.vip.as_deref());
        match tp.vport {
            None => ctx.error(FieldError::required(
                "spec.features.ha.thirdParty.vport",
                "set the load balancer's port that forwards to 6443 on every master (usually 6443)",
            )),
            Some(p) if !(1..=65535).contains(&p) => ctx.error(FieldError::invalid(
                "spec.features.ha.thirdParty.vport",
                Some(p.to_string()),
                "must be between 1 and 65535, inclusive",
            )),
            Some(p) if p != APISERVER_PORT => ctx.warn(
                "spec.features.ha.thirdParty.vport",
                format!(
                    "{p} is not 6443; the load balancer must forward it to 6443 on every master"
                ),
            ),
            Some(_) => {}
        }
        if count == 1 {
            match ctx.policy.third_party_single_master {
                SingleMasterPolicy::Error => ctx.error(FieldError::invalid(
                    "spec.machines",
                    Some(count.to_string()),
                    "third-party HA needs at least 2 machines: a load balancer like Tencent CLB can't \
                     connect a master to itself through the VIP (self-connect limit), so bind at least two",
                )),
                SingleMasterPolicy::Warning => ctx.warn(
                    "spec.machines",
                    "one master behind the LB: it must reach itself through the VIP (hairpin)",
                ),
            }
        }
    }

    if count >= 2 && count.is_multiple_of(2) {
        ctx.warn(
            "spec.machines",
            format!(
                "{count} masters is even; stacked etcd tolerates no more failures than with {}",
                count - 1
            ),
        );
    }
}

/// Why an address can never be a VIP, if it can't.
fn reserved_kind(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("the unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip.is_multicast() {
        return Some("a multicast address");
    }
    match ip {
        IpAddr::V4(v) if v.is_broadcast() => Some("the broadcast address"),
        IpAddr::V4(v) if v.is_link_local() => Some("a link-local address"),
        IpAddr::V6(v) if v.is_unicast_link_local() => Some("a link-local address"),
        _ => None,
    }
}

fn check_vip(ctx: &mut Ctx<'_>, path: &str, vip: Option<&str>) {
    let text = match vip {
        None | Some("") => {
            ctx.error(FieldError::required(
                path,
                "vip is required: an unused address in the masters' network, e.g. 192.168.1.3",
            ));
            return;
        }
        Some(t) => t,
    };
    let Some(ip) = parse_ip(text) else {
        ctx.error(FieldError::invalid(path, Some(quote(text)), IP_DETAIL));
        return;
    };
    if let Some(kind) = reserved_kind(ip) {
        ctx.error(FieldError::invalid(
            path,
            Some(quote(text)),
            format!("must not be {kind}: use an unused address in the masters' network"),
        ));
    }
    let machine_hits: Vec<usize> = ctx
        .machine_ips
        .iter()
        .enumerate()
        .filter(|(_, m)| **m == Some(ip))
        .map(|(i, _)| i)
        .collect();
    for i in machine_hits {
        ctx.error(FieldError::invalid(
            path,
            Some(quote(text)),
            format!(
                "must not equal spec.machines[{i}].ip: the VIP floats between masters, pick an unused \
                 address in their network"
            ),
        ));
    }
    let mut hits = Vec::new();
    for (net, t) in &ctx.cluster_cidrs {
        if net.contains(&ip) {
            hits.push(format!(
                "must not be inside spec.clusterCIDR {t} (the pod network): pick an address in the \
                 masters' network"
            ));
        }
    }
    for (net, t) in &ctx.service_cidrs {
        if net.contains(&ip) {
            hits.push(format!(
                "must not be inside spec.serviceCIDR {t} (the service network): pick an address in the \
                 masters' network"
            ));
        }
    }
    if let Some((i, m)) = ctx
        .machine_ips
        .iter()
        .enumerate()
        .find_map(|(i, m)| m.map(|m| (i, m)))
        && m.is_ipv4() != ip.is_ipv4()
    {
        hits.push(format!(
            "is {} but spec.machines[{i}].ip is {}: the VIP must be in the masters' IP family",
            family(ip),
            family(m)
        ));
    }
    for detail in hits {
        ctx.error(FieldError::invalid(path, Some(quote(text)), detail));
    }
}

//! Rules on `spec.features.ha`: one mode only, the VIP, `tke.vrid`, `thirdParty.vport`, master counts.
//!
//! Several of these refuse what TKEStack's own API accepts (tkestack/tke
//! `api/platform/validation/cluster.go` `ValidateHA` checks only that the VIP parses and the
//! vrid and vport ranges): both modes at once, third-party HA on one master, a VIP equal to a
//! node or inside the pod or service network, in the other IP family, or a reserved address.
//! Each prevents a cluster that cannot work, and each message says so ([`super::stricter`]).

use std::net::{IpAddr, Ipv4Addr};

use super::bounds::over;
use super::machines::IP_DETAIL;
use super::{Ctx, family, reserved_kind, stricter};
use crate::defaults::parse_ip;
use crate::field::{FieldError, quote};
use crate::review::SingleMasterPolicy;

/// Exact TKEStack detail for a VRID out of range.
pub const VRID_DETAIL: &str = "must be a valid vrid, range [1, 255]";
/// The port kube-apiserver listens on behind the VIP.
pub const APISERVER_PORT: i64 = 6443;

/// The HA rules.
pub fn validate(ctx: &mut Ctx<'_>) {
    let Some(ha) = ctx.ha() else { return };
    let count = ctx.machine_count();

    match (&ha.tke, &ha.third_party) {
        (Some(_), Some(_)) => ctx.error(FieldError::forbidden(
            "spec.features.ha",
            format!(
                "tke and thirdParty are mutually exclusive: keep tke (keepalived on the masters) or \
                 thirdParty (an external load balancer), not both; {}",
                stricter(
                    "with both, TKEStack sets up keepalived for one VIP and the load balancer \
                     redirect for the other, and its components disagree on which one clients use"
                )
            ),
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
                    format!(
                        "third-party HA needs at least 2 machines: a load balancer like Tencent CLB \
                         can't connect a master to itself through the VIP (self-connect limit), so \
                         bind at least two; {}",
                        stricter("with one master the VIP fails whenever that master calls itself")
                    ),
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

/// A free address to suggest for a missing VIP: in the first master's IPv4 /24, not any
/// master's address, not the network or broadcast address. `None` without an IPv4 master (a
/// guess then helps nobody).
pub fn vip_hint(machine_ips: &[Option<IpAddr>]) -> Option<Ipv4Addr> {
    let first = machine_ips.iter().find_map(|ip| match ip {
        Some(IpAddr::V4(v)) => Some(*v),
        _ => None,
    })?;
    let [a, b, c, _] = first.octets();
    // Counting down from .250 keeps away from the low addresses routers and masters usually take.
    (2..=250u8)
        .rev()
        .map(|d| Ipv4Addr::new(a, b, c, d))
        .find(|candidate| !machine_ips.contains(&Some(IpAddr::V4(*candidate))))
}

fn check_vip(ctx: &mut Ctx<'_>, path: &str, vip: Option<&str>) {
    let text = match vip {
        None | Some("") => {
            let hint = match vip_hint(&ctx.machine_ips) {
                Some(free) => format!(", e.g. {free}"),
                None => String::new(),
            };
            ctx.error(FieldError::required(
                path,
                format!("vip is required: an unused address in the masters' network{hint}"),
            ));
            return;
        }
        Some(t) if over(t, crate::limits::MAX_IP) => return, // reported by the bounds rules
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
            format!(
                "must not be {kind}: use an unused address in the masters' network; {}",
                stricter("no host can hold such an address for the others")
            ),
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
                 address in their network; {}",
                stricter("a master's own address cannot move to another master when it fails")
            ),
        ));
    }
    let mut hits = Vec::new();
    for (net, t) in &ctx.cluster_cidrs.nets {
        if net.contains(&ip) {
            hits.push(format!(
                "must not be inside spec.clusterCIDR {t} (the pod network): pick an address in the \
                 masters' network; {}",
                stricter("pod routes would capture the traffic meant for the apiservers")
            ));
        }
    }
    for (net, t) in &ctx.service_cidrs.nets {
        if net.contains(&ip) {
            hits.push(format!(
                "must not be inside spec.serviceCIDR {t} (the service network): pick an address in the \
                 masters' network; {}",
                stricter("kube-proxy would capture the traffic meant for the apiservers")
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
            "is {} but spec.machines[{i}].ip is {}: the VIP must be in the masters' IP family; {}",
            family(ip),
            family(m),
            stricter("the masters could never hold or reach an address of the other family")
        ));
    }
    for detail in hits {
        ctx.error(FieldError::invalid(path, Some(quote(text)), detail));
    }
}

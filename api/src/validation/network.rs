//! Rules on `spec.clusterCIDR`, `spec.serviceCIDR`, their overlap and size, and `features.ipvs`.
//!
//! CIDRs are parsed strictly (address as `std::net`, decimal prefix without leading zeros).
//! Host bits are accepted, as TKEStack's `net.ParseCIDR` does, and cleared (`10.244.1.0/16`
//! means `10.244.0.0/16`) with a warning, so existing TKEStack manifests keep working.
//! A missing `clusterCIDR` is defaulted to TKEStack's `10.244.0.0/16` first, so the checks
//! against the machines and the VIP always run. [`parse_list`] is what [`super::Ctx::new`]
//! calls; [`validate`] only reports.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Cidrs, Ctx};
use crate::field::{FieldError, quote};

const CIDR_EXAMPLE: &str = "must be a valid CIDR block (e.g. 10.244.0.0/16 or fd00:10:244::/56)";

/// Parse one CIDR strictly. Returns the network (host bits cleared) and whether bits were set.
pub fn parse_cidr(s: &str) -> Option<(IpNet, bool)> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if prefix.is_empty()
        || prefix.len() > 3
        || !prefix.bytes().all(|b| b.is_ascii_digit())
        || (prefix.len() > 1 && prefix.starts_with('0'))
    {
        return None;
    }
    let len: u8 = prefix.parse().ok()?;
    let net = IpNet::new(addr, len).ok()?;
    let trunc = net.trunc();
    Some((trunc, trunc.addr() != addr))
}

/// Two networks share at least one address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Number of addresses in `net`, saturating.
fn size(net: &IpNet) -> u128 {
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    1u128.checked_shl(host_bits).unwrap_or(u128::MAX)
}

/// Parse a comma-separated CIDR list field (pure: the rule reports what it finds).
pub fn parse_list(text: &str, dual_stack: bool) -> Cidrs {
    let mut out = Cidrs::default();
    if text.is_empty() {
        out.problem = Some(EMPTY);
        return out;
    }
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() > 2 || (parts.len() == 2 && !dual_stack) {
        out.problem = Some(if dual_stack {
            "only one CIDR or one IPv4,IPv6 pair allowed (e.g. 10.244.0.0/16,fd00:10:244::/56)"
        } else {
            "only one CIDR allowed (e.g. 10.244.0.0/16); set spec.features.ipv6DualStack for an IPv4,IPv6 pair"
        });
        return out;
    }
    for part in parts {
        match parse_cidr(part) {
            None => out.problem = Some(CIDR_EXAMPLE),
            Some((net, host_bits)) => {
                if host_bits {
                    out.host_bits.push((part.to_string(), net));
                }
                out.nets.push((net, part.to_string()));
            }
        }
    }
    if out.nets.len() == 2 && out.nets[0].0.addr().is_ipv4() == out.nets[1].0.addr().is_ipv4() {
        out.problem = Some(
            "a dual-stack pair must be one IPv4 and one IPv6 CIDR (e.g. 10.244.0.0/16,fd00:10:244::/56)",
        );
        out.nets.truncate(1);
    }
    out
}

const EMPTY: &str = "must be a valid CIDR block (e.g. 10.244.0.0/16 or fd00:10:244::/56); remove the field to use the default";

/// Report what [`parse_list`] found in one field.
fn report(ctx: &mut Ctx<'_>, path: &str, text: &str, cidrs: &Cidrs) {
    if let Some(problem) = cidrs.problem {
        ctx.error(FieldError::invalid(path, Some(quote(text)), problem));
    }
    for (part, net) in &cidrs.host_bits {
        ctx.warn(
            path,
            format!("{part} has host bits set; it is read as {net}"),
        );
    }
}

/// The CIDR rules: each field valid, the pod network clear of the machines, the service
/// network clear of the pod network and large enough, ipvs with a service network.
pub fn validate(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    let features = spec.features.as_ref();

    if let Some(text) = spec.cluster_cidr.as_deref() {
        let cidrs = ctx.cluster_cidrs.clone();
        report(ctx, "spec.clusterCIDR", text, &cidrs);
        let mut found = Vec::new();
        for (net, _) in &cidrs.nets {
            for (i, ip) in ctx.machine_ips.iter().enumerate() {
                if let Some(ip) = ip
                    && net.contains(ip)
                {
                    found.push((i, *ip, *net));
                }
            }
        }
        for (i, ip, net) in found {
            ctx.error(FieldError::invalid(
                "spec.clusterCIDR",
                Some(quote(text)),
                format!(
                    "{net} contains spec.machines[{i}].ip {ip}: pod addresses would collide with the \
                     node; use a range outside the machines' network"
                ),
            ));
        }
    }

    if let Some(text) = spec.service_cidr.as_deref() {
        let cidrs = ctx.service_cidrs.clone();
        report(ctx, "spec.serviceCIDR", text, &cidrs);
        let mut errs = Vec::new();
        for (svc, _) in &cidrs.nets {
            for (pod, pod_text) in &ctx.cluster_cidrs.nets {
                if overlaps(svc, pod) {
                    errs.push(format!(
                        "overlaps spec.clusterCIDR {pod_text}: pods and services need disjoint ranges"
                    ));
                }
            }
            if size(svc) < 11 {
                errs.push(format!(
                    "{svc} has {} addresses, needs at least 11 (kubeadm uses the 10th for DNS): use /28 \
                     or larger (IPv6: /124)",
                    size(svc)
                ));
            }
        }
        for detail in errs {
            ctx.error(FieldError::invalid(
                "spec.serviceCIDR",
                Some(quote(text)),
                detail,
            ));
        }
        if spec
            .properties
            .as_ref()
            .and_then(|p| p.max_cluster_service_num)
            .is_some()
        {
            ctx.error(FieldError::forbidden(
                "spec.properties.maxClusterServiceNum",
                "can't be used together with spec.serviceCIDR: remove one (without serviceCIDR the \
                 service range is carved from clusterCIDR)",
            ));
        }
    } else if features.and_then(|f| f.ipvs) == Some(true) {
        ctx.error(FieldError::invalid(
            "spec.features.ipvs",
            Some("true".to_string()),
            "ipvs needs spec.serviceCIDR: set a service range (e.g. 10.96.0.0/16) or turn ipvs off",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("10.244.0.0/16").is_some_and(|(_, h)| !h));
        assert!(
            parse_cidr("10.244.1.0/16").is_some_and(|(n, h)| h && n.to_string() == "10.244.0.0/16")
        );
        assert!(parse_cidr("fd00::/56").is_some());
        for bad in [
            "10.244.0.0",
            "10.244.0.0/33",
            "10.244.0.0/016",
            "010.244.0.0/16",
            "10.244.0.0/",
            "x/8",
            "10.0.0.0/+8",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        let n = |s: &str| {
            parse_cidr(s)
                .map(|x| x.0)
                .unwrap_or_else(|| IpNet::from(IpAddr::from([0, 0, 0, 0])))
        };
        assert_eq!(size(&n("10.0.0.0/28")), 16);
        assert_eq!(size(&n("10.0.0.0/29")), 8);
        assert_eq!(size(&n("::/0")), u128::MAX);
    }
}

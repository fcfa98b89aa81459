//! Rules on `spec.clusterCIDR`, `spec.serviceCIDR`, their overlap and size, and `features.ipvs`.
//!
//! CIDRs are parsed strictly (address as `std::net`, decimal prefix without leading zeros).
//! Host bits are accepted, as TKEStack's `net.ParseCIDR` does, and cleared (`10.244.1.0/16`
//! means `10.244.0.0/16`) with a warning, so existing TKEStack manifests keep working.
//! A missing `clusterCIDR` is not checked: TKEStack defaults it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::Ctx;
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

/// Parse a comma-separated CIDR list field, reporting errors; returns the valid entries.
fn parse_list(ctx: &mut Ctx<'_>, path: &str, text: &str, dual_stack: bool) -> Vec<(IpNet, String)> {
    if text.is_empty() {
        ctx.error(FieldError::invalid(
            path,
            Some(quote(text)),
            format!("{CIDR_EXAMPLE}; remove the field to use the default"),
        ));
        return Vec::new();
    }
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() > 2 || (parts.len() == 2 && !dual_stack) {
        let detail = if dual_stack {
            "only one CIDR or one IPv4,IPv6 pair allowed (e.g. 10.244.0.0/16,fd00:10:244::/56)"
        } else {
            "only one CIDR allowed (e.g. 10.244.0.0/16); set spec.features.ipv6DualStack for an IPv4,IPv6 pair"
        };
        ctx.error(FieldError::invalid(path, Some(quote(text)), detail));
        return Vec::new();
    }
    let mut out = Vec::new();
    for part in parts {
        match parse_cidr(part) {
            None => ctx.error(FieldError::invalid(path, Some(quote(text)), CIDR_EXAMPLE)),
            Some((net, host_bits)) => {
                if host_bits {
                    ctx.warn(
                        path,
                        format!("{part} has host bits set; it is read as {net}"),
                    );
                }
                out.push((net, part.to_string()));
            }
        }
    }
    if out.len() == 2 && out[0].0.addr().is_ipv4() == out[1].0.addr().is_ipv4() {
        ctx.error(FieldError::invalid(
            path,
            Some(quote(text)),
            "a dual-stack pair must be one IPv4 and one IPv6 CIDR (e.g. 10.244.0.0/16,fd00:10:244::/56)",
        ));
        out.truncate(1);
    }
    out
}

pub fn validate(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    let features = spec.features.as_ref();
    let dual = features.and_then(|f| f.ipv6_dual_stack).unwrap_or(false);

    if let Some(text) = spec.cluster_cidr.as_deref() {
        ctx.cluster_cidrs = parse_list(ctx, "spec.clusterCIDR", text, dual);
        let mut found = Vec::new();
        for (net, _) in &ctx.cluster_cidrs {
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
        ctx.service_cidrs = parse_list(ctx, "spec.serviceCIDR", text, dual);
        let mut errs = Vec::new();
        for (svc, _) in &ctx.service_cidrs {
            for (pod, pod_text) in &ctx.cluster_cidrs {
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

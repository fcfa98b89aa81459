//! Rules on `spec.type` (TKEStack's providers; HA only for `Baremetal`), `spec.version`
//! (format, allow-list; a missing one is TKEStack's to pick), `spec.dnsDomain` and the
//! `spec.properties` enums.

use super::{Ctx, stricter};
use crate::field::{FieldError, quote};

/// TKEStack's `maxNodePodNum` values.
pub const MAX_NODE_POD_NUM: [i64; 5] = [16, 32, 64, 128, 256];
/// TKEStack's `maxClusterServiceNum` values: powers of two 32..32768.
pub const MAX_CLUSTER_SERVICE_NUM: [i64; 11] =
    [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];

/// The cluster providers TKEStack registers (tkestack/tke `pkg/platform/provider/baremetal`
/// and `pkg/platform/provider/imported`; `api/platform/validation/cluster.go` checks
/// `spec.type` against the registered ones).
pub const CLUSTER_TYPES: [&str; 2] = ["Baremetal", "Imported"];

/// The provider whose masters TKEStack (and tkeha) provisions; HA needs it.
pub const BAREMETAL: &str = "Baremetal";

/// The newest version TKEStack picks when `spec.version` is unset (`spec.K8sVersions` in
/// tkestack/tke `pkg/spec/spec.go` at HEAD 31e93ce0).
pub const TKESTACK_DEFAULT_VERSION: &str = "1.21.4-tke.3";

/// The rules on type, version, DNS domain and properties.
pub fn validate(ctx: &mut Ctx<'_>) {
    let spec = ctx.spec;
    match spec.type_.as_deref() {
        None | Some("") => ctx.error(FieldError::required(
            "spec.type",
            "set the cluster provider, e.g. \"Baremetal\"",
        )),
        Some(t) if !CLUSTER_TYPES.contains(&t) => ctx.error(FieldError::not_supported(
            "spec.type",
            Some(quote(t)),
            &CLUSTER_TYPES.map(String::from),
        )),
        Some(t) => {
            let ha_set = ctx.ha().and_then(|h| h.mode()).is_some();
            if t != BAREMETAL && ha_set {
                ctx.error(FieldError::forbidden(
                    "spec.features.ha",
                    format!(
                        "HA is provisioned only for type {BAREMETAL}; {}",
                        stricter(&format!(
                            "an {t} cluster's control plane runs elsewhere, so nothing would \
                             float the VIP; remove features.ha or use type {BAREMETAL}"
                        ))
                    ),
                ));
            }
        }
    }

    match spec.version.as_deref() {
        None => ctx.warn(
            "spec.version",
            format!(
                "not set, so TKEStack picks its newest supported version ({TKESTACK_DEFAULT_VERSION} \
                 at TKEStack HEAD)"
            ),
        ),
        Some("") => ctx.error(FieldError::invalid(
            "spec.version",
            Some(quote("")),
            "set the Kubernetes version, e.g. \"1.21.4\", or remove the field to let TKEStack pick",
        )),
        Some(v) if !is_version(v) => ctx.error(FieldError::invalid(
            "spec.version",
            Some(quote(v)),
            "must look like MAJOR.MINOR.PATCH[-suffix], e.g. 1.21.4 or 1.21.4-tke.3 (no leading v)",
        )),
        Some(v) => {
            if let Some(allowed) = ctx.policy.version_allow_list.as_ref()
                && !allowed.iter().any(|a| a == v)
            {
                ctx.error(FieldError::not_supported(
                    "spec.version",
                    Some(quote(v)),
                    allowed,
                ));
            }
        }
    }

    if let Some(domain) = spec.dns_domain.as_deref()
        && !super::meta::is_dns1123_subdomain(domain)
    {
        ctx.error(FieldError::invalid(
            "spec.dnsDomain",
            Some(quote(domain)),
            "must be a DNS domain of lower-case letters, digits, '-' and '.' (e.g. cluster.local); \
             remove the field to use cluster.local",
        ));
    }

    if let Some(p) = spec.properties.as_ref() {
        if let Some(n) = p.max_node_pod_num
            && !MAX_NODE_POD_NUM.contains(&n)
        {
            ctx.error(FieldError::not_supported(
                "spec.properties.maxNodePodNum",
                Some(n.to_string()),
                &MAX_NODE_POD_NUM.map(|x| x.to_string()),
            ));
        }
        if let Some(n) = p.max_cluster_service_num
            && !MAX_CLUSTER_SERVICE_NUM.contains(&n)
        {
            ctx.error(FieldError::not_supported(
                "spec.properties.maxClusterServiceNum",
                Some(n.to_string()),
                &MAX_CLUSTER_SERVICE_NUM.map(|x| x.to_string()),
            ));
        }
    }
}

/// `MAJOR.MINOR.PATCH[-suffix]`: three decimal numbers without leading zeros, then an optional
/// `-` and a non-empty suffix of `[0-9A-Za-z.-]`.
pub fn is_version(v: &str) -> bool {
    let (core, suffix) = match v.split_once('-') {
        Some((c, s)) => (c, Some(s)),
        None => (v, None),
    };
    let mut parts = 0;
    for p in core.split('.') {
        parts += 1;
        let ok = !p.is_empty()
            && p.len() <= 9
            && p.bytes().all(|b| b.is_ascii_digit())
            && !(p.len() > 1 && p.starts_with('0'));
        if !ok {
            return false;
        }
    }
    if parts != 3 {
        return false;
    }
    match suffix {
        None => true,
        Some(s) => {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_version;

    #[test]
    fn versions() {
        for ok in ["1.14.10", "1.21.4-tke.3", "0.0.0", "1.20.6-rc-1"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in [
            "",
            "1.14",
            "v1.14.10",
            "1.14.10-",
            "01.2.3",
            "1.2.3.4",
            "1.2.x",
            "1.2.3-a b",
        ] {
            assert!(!is_version(bad), "{bad}");
        }
    }
}

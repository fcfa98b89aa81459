//! Validation of a defaulted Cluster spec: every rule that the webhook and `kubectl tkeha
//! validate` apply (the groups below), all errors at once.
//!
//! The spec is parsed once into a [`Ctx`] (machine IPs, pod and service CIDRs) that every rule
//! group reads: [`spec`] (type, version, properties), [`network`] (CIDRs, ipvs),
//! [`machines`], [`ha`] and, on update, [`update`].

pub mod ha;
pub mod machines;
pub mod network;
pub mod spec;
pub mod update;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::defaults::parse_ip;
use crate::field::FieldError;
use crate::review::Policy;
use crate::types::{ClusterSpec, Ha};

/// Everything the rules share: the spec, parsed addresses, and the findings so far.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub spec: &'a ClusterSpec,
    pub policy: &'a Policy,
    /// `spec.machines[i].ip` parsed strictly (None when missing or invalid).
    pub machine_ips: Vec<Option<IpAddr>>,
    /// The valid entries of `spec.clusterCIDR` (host bits cleared), with their text.
    pub cluster_cidrs: Vec<(IpNet, String)>,
    /// The valid entries of `spec.serviceCIDR` (host bits cleared), with their text.
    pub service_cidrs: Vec<(IpNet, String)>,
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

impl<'a> Ctx<'a> {
    pub fn new(spec: &'a ClusterSpec, policy: &'a Policy) -> Self {
        let machine_ips = spec
            .machines
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| m.ip.as_deref().and_then(parse_ip))
            .collect();
        Ctx {
            spec,
            policy,
            machine_ips,
            cluster_cidrs: Vec::new(),
            service_cidrs: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The HA block, if any.
    pub fn ha(&self) -> Option<&'a Ha> {
        self.spec.features.as_ref().and_then(|f| f.ha.as_ref())
    }

    /// Number of entries in `spec.machines`.
    pub fn machine_count(&self) -> usize {
        self.spec.machines.as_ref().map_or(0, Vec::len)
    }

    pub fn error(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    /// Add a warning `"<path>: <text>"`.
    pub fn warn(&mut self, path: &str, text: impl std::fmt::Display) {
        self.warnings.push(format!("{path}: {text}"));
    }
}

/// Run every create rule over the (defaulted) spec.
pub fn validate_spec(ctx: &mut Ctx<'_>) {
    spec::validate(ctx);
    network::validate(ctx);
    machines::validate(ctx);
    ha::validate(ctx);
}

/// Short human name of an address family.
pub(crate) fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

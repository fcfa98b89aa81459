//! Validation of a defaulted Cluster spec: every rule that the webhook and `kubectl tkeha
//! validate` apply (the groups below), all errors at once.
//!
//! Data flows one way. [`Ctx::new`] parses everything the rules share (machine IPs, the pod
//! and service CIDRs) once, from the spec alone; the rule groups only read that and add
//! findings, so they can run in any order and give the same findings
//! (`api/tests/rules.rs` runs them in every order). The groups: [`bounds`] (sizes of lists,
//! maps and strings), [`spec`] (type, version, properties, DNS domain), [`network`] (CIDRs,
//! ipvs), [`machines`], [`ha`]; [`meta`] checks `metadata` on create and [`update`] the
//! update-only rules; [`profile`] checks the failover profile annotation.

pub mod bounds;
pub mod ha;
pub mod machines;
pub mod meta;
pub mod network;
pub mod profile;
pub mod spec;
pub mod update;

use std::net::IpAddr;

use ipnet::IpNet;

use crate::defaults::parse_ip;
use crate::field::{FieldError, escape};
use crate::review::Policy;
use crate::types::{ClusterSpec, Ha};
use crate::unknown::Lengths;

/// A CIDR field parsed once: the valid blocks, and what is wrong with the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cidrs {
    /// The valid blocks (host bits cleared), each with its text as written.
    pub nets: Vec<(IpNet, String)>,
    /// Blocks written with host bits set (as written, as read), which TKEStack accepts.
    pub host_bits: Vec<(String, IpNet)>,
    /// Why the field as a whole is invalid, if it is (the rule reports it).
    pub problem: Option<&'static str>,
}

/// Everything the rules share: the spec, what is parsed from it once, and the findings.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The (defaulted) spec under review.
    pub spec: &'a ClusterSpec,
    /// The webhook's knobs.
    pub policy: &'a Policy,
    /// `spec.machines[i].ip` parsed strictly (None when missing or invalid).
    pub machine_ips: Vec<Option<IpAddr>>,
    /// `spec.clusterCIDR` parsed (empty when unset).
    pub cluster_cidrs: Cidrs,
    /// `spec.serviceCIDR` parsed (empty when unset).
    pub service_cidrs: Cidrs,
    /// Errors found so far.
    pub errors: Vec<FieldError>,
    /// Warnings found so far (already prefixed with their field path and escaped).
    pub warnings: Vec<String>,
    /// The lengths of the lists and maps longer than the decode keeps (the spec holds their
    /// first `limits::decoded(bound) + 1` entries).
    pub lengths: &'a Lengths,
}

/// No list past its bound.
static NO_LENGTHS: Lengths = Lengths::new();

impl<'a> Ctx<'a> {
    /// Parse what the rules share from `spec`; no findings yet.
    pub fn new(spec: &'a ClusterSpec, policy: &'a Policy) -> Self {
        let machines = spec.machines.as_deref().unwrap_or_default();
        // Past the bound only the count is reported (bounds), so nothing else is parsed.
        let machine_ips = if machines.len() > crate::limits::MAX_MACHINES {
            Vec::new()
        } else {
            machines
                .iter()
                .map(|m| m.ip.as_deref().and_then(parse_ip))
                .collect()
        };
        let dual = spec
            .features
            .as_ref()
            .and_then(|f| f.ipv6_dual_stack)
            .unwrap_or(false);
        let cidrs = |text: Option<&str>| text.map(|t| network::parse_list(t, dual));
        Ctx {
            spec,
            policy,
            machine_ips,
            cluster_cidrs: cidrs(spec.cluster_cidr.as_deref()).unwrap_or_default(),
            service_cidrs: cidrs(spec.service_cidr.as_deref()).unwrap_or_default(),
            errors: Vec::new(),
            warnings: Vec::new(),
            lengths: &NO_LENGTHS,
        }
    }

    /// The same, with the lengths of the lists and maps past their bound as decoded.
    pub fn with_lengths(self, lengths: &'a Lengths) -> Self {
        Ctx { lengths, ..self }
    }

    /// The HA block, if any.
    pub fn ha(&self) -> Option<&'a Ha> {
        self.spec.features.as_ref().and_then(|f| f.ha.as_ref())
    }

    /// Number of entries in `spec.machines` (past the bound, as counted by the decode).
    pub fn machine_count(&self) -> usize {
        let decoded = self.spec.machines.as_ref().map_or(0, Vec::len);
        self.lengths.or("spec.machines", decoded)
    }

    /// Whether `spec.machines` is within its bound (the per-machine rules run only then).
    pub fn machines_bounded(&self) -> bool {
        self.machine_count() <= crate::limits::MAX_MACHINES
    }

    /// Add an error.
    pub fn error(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    /// Add a warning `"<path>: <text>"`, escaped.
    pub fn warn(&mut self, path: &str, text: impl std::fmt::Display) {
        let line = format!("{path}: {text}");
        self.warnings.push(escape(&line).into_owned());
    }
}

/// One group of create rules.
pub type RuleGroup = fn(&mut Ctx<'_>);

/// The create rule groups, in the order their findings are reported.
pub const GROUPS: [RuleGroup; 5] = [
    bounds::validate,
    spec::validate,
    network::validate,
    machines::validate,
    ha::validate,
];

/// Run every create rule over the (defaulted) spec.
pub fn validate_spec(ctx: &mut Ctx<'_>) {
    for group in GROUPS {
        group(ctx);
    }
}

/// Short human name of an address family.
pub(crate) fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Why an address can never be a VIP or a master's address, if it can't.
pub fn reserved_kind(ip: IpAddr) -> Option<&'static str> {
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

/// The sentence every rule that refuses what TKEStack's own API accepts carries: the user
/// learns it is our choice, and why.
pub fn stricter(why: &str) -> String {
    format!("TKEStack's own API accepts this, tkeha does not: {why}")
}

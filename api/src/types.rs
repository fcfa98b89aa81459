//! The `platform.tkestack.io/v1` Cluster types (the HA-relevant subset of TKEStack's `ClusterSpec`).
//!
//! Everything the user may leave out is an `Option`, so a missing field becomes a readable
//! validation error instead of a decode failure. Fields we do not model are kept on the wire:
//! the generated schema marks spec, status and the nested objects with
//! `x-kubernetes-preserve-unknown-fields`, and mutation is a JSON patch over the object as
//! received, never a re-serialisation of these structs.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects;

/// `Cluster.spec`: what the user asks for.
#[derive(CustomResource, JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "platform.tkestack.io",
    version = "v1",
    kind = "Cluster",
    status = "ClusterStatus",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterSpec {
    /// Finalizers TKEStack manages (`["cluster"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizers: Option<Vec<String>>,
    /// Tenant; TKEStack fills it from the caller.
    #[serde(default, rename = "tenantID", skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Provider, e.g. `Baremetal`. Required; immutable.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Kubernetes version `MAJOR.MINOR.PATCH[-suffix]`. Required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_type: Option<String>,
    /// Node network interface (TKEStack default `eth0`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_device: Option<String>,
    /// Pod network (TKEStack default `10.244.0.0/16`; `v4,v6` with dual stack). Immutable.
    #[serde(
        default,
        rename = "clusterCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<String>,
    /// Service network; mutually exclusive with `properties.maxClusterServiceNum`.
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    /// Cluster DNS domain (TKEStack default `cluster.local`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_domain: Option<String>,
    /// Extra SANs for the apiserver certificate; the HA VIP is defaulted in here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_alternative_names: Option<Vec<String>>,
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub features: Option<ClusterFeature>,
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub properties: Option<ClusterProperty>,
    /// The master machines.
    #[serde(
        default,
        deserialize_with = "objects::objects",
        skip_serializing_if = "Option::is_none"
    )]
    pub machines: Option<Vec<ClusterMachine>>,
}

/// `spec.features` (the HA-relevant part; the rest is preserved untouched).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterFeature {
    /// Use IPVS kube-proxy; needs `spec.serviceCIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<bool>,
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub ha: Option<Ha>,
    /// Dual-stack networking: `clusterCIDR` may then hold one IPv4 and one IPv6 CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_dual_stack: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_master_schedule: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_conditions: Option<Vec<String>>,
}

/// `spec.features.ha`: exactly one of `tke` (keepalived on the masters) or `thirdParty` (an external LB).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ha {
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub tke: Option<TkeHa>,
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub third_party: Option<ThirdPartyHa>,
}

impl Ha {
    /// The HA mode's name as spelled in the manifest, if one is set (`tke` wins if both are).
    pub fn mode(&self) -> Option<&'static str> {
        if self.tke.is_some() {
            Some("tke")
        } else if self.third_party.is_some() {
            Some("thirdParty")
        } else {
            None
        }
    }

    /// The VIP of the active mode (`tke` first, as TKEStack's `HA.VIP()`).
    pub fn vip(&self) -> Option<&str> {
        match (&self.tke, &self.third_party) {
            (Some(t), _) => t.vip.as_deref(),
            (None, Some(t)) => t.vip.as_deref(),
            (None, None) => None,
        }
    }
}

/// Keepalived-managed VIP.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TkeHa {
    /// The virtual IP; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    /// VRRP router id 1..255; defaulted from the VIP's last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrid: Option<i64>,
}

/// VIP owned by an external load balancer that forwards `vport` to 6443 on every master.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThirdPartyHa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip: Option<String>,
    /// The LB's listening port; required (not defaulted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vport: Option<i64>,
}

/// `spec.properties`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterProperty {
    /// One of 16, 32, 64, 128, 256 (TKEStack default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_node_pod_num: Option<i64>,
    /// A power of two in 32..32768; not together with `spec.serviceCIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cluster_service_num: Option<i64>,
}

/// One master machine (`spec.machines[i]`). Secrets are standard base64 (Go `[]byte`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterMachine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// SSH port; defaulted to 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// base64 of the SSH password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// base64 of the PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// base64 of the private key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_phrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(
        default,
        deserialize_with = "objects::objects",
        skip_serializing_if = "Option::is_none"
    )]
    pub taints: Option<Vec<Taint>>,
}

/// Debug without the secrets: never print a password, key or passphrase.
impl std::fmt::Debug for ClusterMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClusterMachine")
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("private_key", &redact(&self.private_key))
            .field("pass_phrase", &redact(&self.pass_phrase))
            .field("labels", &self.labels)
            .field("taints", &self.taints)
            .finish()
    }
}

/// Decode a wire secret (standard base64 with padding, as Go). `None` when absent or not base64.
pub fn decode_secret(s: Option<&str>) -> Option<Vec<u8>> {
    s.and_then(crate::secret::decode)
}

impl ClusterMachine {
    /// The decoded SSH password, if present and valid base64.
    pub fn password_bytes(&self) -> Option<Vec<u8>> {
        decode_secret(self.password.as_deref())
    }
    /// The decoded private key, if present and valid base64.
    pub fn private_key_bytes(&self) -> Option<Vec<u8>> {
        decode_secret(self.private_key.as_deref())
    }
    /// The decoded passphrase, if present and valid base64.
    pub fn pass_phrase_bytes(&self) -> Option<Vec<u8>> {
        decode_secret(self.pass_phrase.as_deref())
    }
    /// The SSH port after defaulting (22 when unset).
    pub fn port_or_default(&self) -> i64 {
        self.port.unwrap_or(22)
    }
}

/// A core/v1 Taint as TKEStack embeds it.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Taint {
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default)]
    pub effect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_added: Option<String>,
}

/// `Cluster.status`: what the provisioner reports.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterStatus {
    /// `Initializing`, `Running`, `Failed`, `Upscaling`, `Downscaling`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ClusterCondition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ClusterAddress>>,
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    #[serde(
        default,
        rename = "clusterCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<String>,
    #[serde(default, rename = "dnsIP", skip_serializing_if = "Option::is_none")]
    pub dns_ip: Option<String>,
    #[serde(
        default,
        rename = "nodeCIDRMaskSize",
        skip_serializing_if = "Option::is_none"
    )]
    pub node_cidr_mask_size: Option<i32>,
    /// The generation the controller last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// What tkeha's provisioner last saw, beside its `HAReady` condition (not a TKEStack field:
    /// tke-platform-api drops it, the condition survives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaStatus>,
}

/// `Cluster.status.ha`: written by `tkeha-provisioner` when it works on a Cluster by name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HaStatus {
    /// The master (machine IP) holding the VIP at the last apply, status or drill; absent when
    /// none did or the HA mode has no holder (third-party LB).
    // Written as `null` when `None`: in the merge patch that carries it, that removes a stale holder.
    #[serde(default)]
    pub vip_holder: Option<String>,
    /// When the last apply finished (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_time: Option<String>,
    /// Whether that apply succeeded on every master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_succeeded: Option<bool>,
}

/// One `status.conditions[]` entry; while provisioning `type` is the step name.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(with = "String")]
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A condition's status, as Kubernetes spells it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known (also any value other than `True` and `False` when read).
    #[default]
    #[serde(other)]
    Unknown,
}

impl ConditionStatus {
    /// `True`, `False` or `Unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `status.addresses[]` entry: `Real` per master, `Advertise` for the VIP.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAddress {
    /// `Real`, `Advertise`, `Internal`, `Public` or `Support`.
    #[serde(rename = "type")]
    pub type_: String,
    pub host: String,
    pub port: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

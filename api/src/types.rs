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

use crate::{limits, objects};

/// `Cluster.spec`: what the user asks for.
///
/// Every field of TKEStack's `ClusterSpec` (tkestack/tke `api/platform/v1/types.go`) is here,
/// so that a misspelt field can be told from a known one; the rules read the HA-relevant ones.
/// Deep structures no rule reads (`bootstrapApps`) are kept as free-form JSON.
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
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_LIST }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST), inner(length(max = limits::MAX_DNS_NAME)))]
    pub finalizers: Option<Vec<String>>,
    /// Tenant; TKEStack fills it from the caller.
    #[serde(default, rename = "tenantID", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub tenant_id: Option<String>,
    /// Name shown in TKEStack's console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_TEXT))]
    pub display_name: Option<String>,
    /// Provider: `Baremetal` or `Imported`. Required; immutable.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub type_: Option<String>,
    /// Kubernetes version `MAJOR.MINOR.PATCH[-suffix]`; TKEStack picks its newest when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub version: Option<String>,
    /// Network plugin type (TKEStack's `NetworkType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub network_type: Option<String>,
    /// Node network interface (TKEStack default `eth0`). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_INTERFACE))]
    pub network_device: Option<String>,
    /// Pod network (defaulted to `10.244.0.0/16` as TKEStack does; `v4,v6` with dual stack).
    /// Immutable.
    #[serde(
        default,
        rename = "clusterCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_CIDR))]
    pub cluster_cidr: Option<String>,
    /// Service network; mutually exclusive with `properties.maxClusterServiceNum`.
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_CIDR))]
    pub service_cidr: Option<String>,
    /// Cluster DNS domain (defaulted to `cluster.local` as TKEStack does). Immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_DNS_NAME))]
    pub dns_domain: Option<String>,
    /// Extra SANs for the apiserver certificate; the HA VIP is defaulted in here.
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_ALTERNATIVE_NAMES }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(
        length(max = limits::MAX_ALTERNATIVE_NAMES),
        inner(length(max = limits::MAX_DNS_NAME))
    )]
    pub public_alternative_names: Option<Vec<String>>,
    /// Optional features, among them HA.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub features: Option<ClusterFeature>,
    /// Service and pod number properties.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub properties: Option<ClusterProperty>,
    /// The master machines.
    #[serde(
        default,
        deserialize_with = "objects::objects_upto::<_, _, { limits::MAX_MACHINES }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_MACHINES))]
    pub machines: Option<Vec<ClusterMachine>>,
    /// Extra dockerd flags. Immutable.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub docker_extra_args: Option<BTreeMap<String, String>>,
    /// Extra kubelet flags. Immutable.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub kubelet_extra_args: Option<BTreeMap<String, String>>,
    /// Extra kube-apiserver flags. Immutable.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        rename = "apiServerExtraArgs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub api_server_extra_args: Option<BTreeMap<String, String>>,
    /// Extra kube-controller-manager flags. Immutable.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub controller_manager_extra_args: Option<BTreeMap<String, String>>,
    /// Extra kube-scheduler flags. Immutable.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub scheduler_extra_args: Option<BTreeMap<String, String>>,
    /// The ClusterCredential holding this cluster's secrets (TKEStack creates one if unset).
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_credential_ref: Option<LocalObjectReference>,
    /// etcd: local (stacked, the default) or external.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub etcd: Option<Box<Etcd>>,
    /// Use the hostname as the node name instead of the machine IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname_as_nodename: Option<bool>,
    /// Extra arguments of the network plugin.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub network_args: Option<BTreeMap<String, String>>,
    /// Set by TKEStack's API server while masters are added or removed.
    #[serde(
        default,
        deserialize_with = "objects::objects_upto::<_, _, { limits::MAX_MACHINES }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_MACHINES))]
    pub scaling_machines: Option<Vec<ClusterMachine>>,
    /// Applications installed with the cluster (TKEStack `App` objects, carried untouched).
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_APPS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "free_form_list_schema")]
    pub bootstrap_apps: Option<Vec<serde_json::Value>>,
    /// Overall version of the system components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub app_version: Option<String>,
    /// TKEStack's cluster level (a sizing class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub cluster_level: Option<String>,
}

/// The schema of a `map[string]string` of command-line flags (`*ExtraArgs`, `networkArgs`).
fn extra_args_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    string_map_schema(limits::MAX_EXTRA_ARGS, limits::MAX_EXTRA_ARG_VALUE)
}

/// The schema of machine labels.
fn labels_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    string_map_schema(limits::MAX_LABELS, limits::MAX_LABEL_VALUE)
}

/// The schema of a small `map[string]string` (`hooks`, `oversoldRatio`).
fn small_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    string_map_schema(limits::MAX_SMALL_MAP, limits::MAX_PATH)
}

/// An optional map of strings with at most `entries` entries of at most `value` bytes.
fn string_map_schema(entries: usize, value: usize) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "nullable": true,
        "maxProperties": entries,
        "additionalProperties": {"type": "string", "maxLength": value}
    })
}

/// A list of free-form objects kept as they are.
fn free_form_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "nullable": true,
        "maxItems": limits::MAX_APPS,
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}

/// A taint's key: required, so never null.
fn taint_key_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "maxLength": limits::MAX_LABEL_KEY})
}

/// A taint's effect: required, one of core/v1's three.
fn taint_effect_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": crate::validation::machines::TAINT_EFFECTS})
}

/// `intstr.IntOrString` as Kubernetes schemas declare it.
fn int_or_string_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "nullable": true,
        "x-kubernetes-int-or-string": true
    })
}

/// `spec.features`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterFeature {
    /// Use IPVS kube-proxy; needs `spec.serviceCIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<bool>,
    /// Create a public load balancer for the apiserver (TKEStack cloud providers).
    #[serde(default, rename = "publicLB", skip_serializing_if = "Option::is_none")]
    pub public_lb: Option<bool>,
    /// Create an internal load balancer for the apiserver (TKEStack cloud providers).
    #[serde(
        default,
        rename = "internalLB",
        skip_serializing_if = "Option::is_none"
    )]
    pub internal_lb: Option<bool>,
    /// `Physical` or `Virtual` GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub gpu_type: Option<String>,
    /// Let workloads run on the masters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_master_schedule: Option<bool>,
    /// The highly available control plane.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub ha: Option<Ha>,
    /// TKEStack provisioning steps to skip.
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_LIST }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST), inner(length(max = limits::MAX_SHORT)))]
    pub skip_conditions: Option<Vec<String>>,
    /// Files copied to the machines.
    #[serde(
        default,
        deserialize_with = "objects::objects_upto::<_, _, { limits::MAX_LIST }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST))]
    pub files: Option<Vec<File>>,
    /// Scripts run at lifecycle points (hook type -> file).
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_SMALL_MAP }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "small_map_schema")]
    pub hooks: Option<BTreeMap<String, String>>,
    /// The CSI operator to install.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub csi_operator: Option<CsiOperatorFeature>,
    /// kube-apiserver's authorization webhook.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub authz_webhook_addr: Option<AuthzWebhookAddr>,
    /// Install metrics-server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_metrics_server: Option<bool>,
    /// Dual-stack networking: `clusterCIDR` may then hold one IPv4 and one IPv6 CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_dual_stack: Option<bool>,
    /// Use Cilium as the network plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_cilium: Option<bool>,
    /// `docker` (TKEStack's default) or `containerd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub container_runtime: Option<String>,
    /// How TKEStack upgrades the cluster.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub upgrade: Option<Upgrade>,
}

/// `spec.features.files[i]`: a file copied from the platform host to the machines.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct File {
    /// Path on the host running TKEStack's platform API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub src: Option<String>,
    /// Path on the machines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub dst: Option<String>,
}

/// `spec.features.csiOperator`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CsiOperatorFeature {
    /// The operator's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub version: Option<String>,
}

/// `spec.features.authzWebhookAddr`: TKEStack's built-in webhook or an external one.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthzWebhookAddr {
    /// TKEStack's own authorization webhook (an empty object).
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub builtin: Option<BuiltinAuthzWebhookAddr>,
    /// An external authorization webhook.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub external: Option<ExternalAuthzWebhookAddr>,
}

/// `authzWebhookAddr.builtin`: no fields.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct BuiltinAuthzWebhookAddr {}

/// `authzWebhookAddr.external`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalAuthzWebhookAddr {
    /// The webhook's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_IP))]
    pub ip: Option<String>,
    /// The webhook's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub port: Option<i64>,
}

/// `spec.features.upgrade`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// `Auto` (TKEStack's default) or `Manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub mode: Option<String>,
    /// How nodes are upgraded.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub strategy: Option<UpgradeStrategy>,
}

/// `spec.features.upgrade.strategy`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Pods allowed unready during the upgrade: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "int_or_string_schema")]
    pub max_unready: Option<serde_json::Value>,
    /// Drain each node before upgrading it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_node_before_upgrade: Option<bool>,
}

/// `spec.features.ha`: exactly one of `tke` (keepalived on the masters) or `thirdParty` (an external LB).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Ha {
    /// keepalived on the masters floats the VIP.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub tke: Option<TkeHa>,
    /// An external load balancer owns the VIP.
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
    #[schemars(length(max = limits::MAX_IP))]
    pub vip: Option<String>,
    /// VRRP router id 1..255; defaulted from the VIP's last byte.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 255), extend("format" = "int32"))]
    pub vrid: Option<i64>,
}

/// VIP owned by an external load balancer that forwards `vport` to 6443 on every master.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ThirdPartyHa {
    /// The load balancer's address; required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_IP))]
    pub vip: Option<String>,
    /// The LB's listening port; required (not defaulted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub vport: Option<i64>,
}

/// `spec.properties`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterProperty {
    /// A power of two in 32..32768; not together with `spec.serviceCIDR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 32, max = 32768), extend("format" = "int32"))]
    pub max_cluster_service_num: Option<i64>,
    /// One of 16, 32, 64, 128, 256 (TKEStack default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 16, max = 256), extend("format" = "int32"))]
    pub max_node_pod_num: Option<i64>,
    /// Resource oversell ratios (resource name -> ratio).
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_SMALL_MAP }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "small_map_schema")]
    pub oversold_ratio: Option<BTreeMap<String, String>>,
}

/// `spec.etcd`: local (stacked on the masters) or external; mutually exclusive.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Etcd {
    /// A local etcd member on each master.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub local: Option<LocalEtcd>,
    /// An existing etcd cluster.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub external: Option<ExternalEtcd>,
}

/// `spec.etcd.local`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalEtcd {
    /// etcd's data directory (default `/var/lib/etcd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub data_dir: Option<String>,
    /// Extra etcd flags.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_EXTRA_ARGS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "extra_args_schema")]
    pub extra_args: Option<BTreeMap<String, String>>,
    /// Extra SANs of the etcd server certificate.
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_LIST }>",
        rename = "serverCertSANs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST), inner(length(max = limits::MAX_DNS_NAME)))]
    pub server_cert_sans: Option<Vec<String>>,
    /// Extra SANs of the etcd peer certificate.
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_LIST }>",
        rename = "peerCertSANs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST), inner(length(max = limits::MAX_DNS_NAME)))]
    pub peer_cert_sans: Option<Vec<String>>,
}

/// `spec.etcd.external`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalEtcd {
    /// Client URLs of the etcd members.
    #[serde(
        default,
        deserialize_with = "objects::list_upto::<_, _, { limits::MAX_LIST }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_LIST), inner(length(max = limits::MAX_PATH)))]
    pub endpoints: Option<Vec<String>>,
    /// CA certificate file on the masters.
    #[serde(default, rename = "caFile", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub ca_file: Option<String>,
    /// Client certificate file on the masters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub cert_file: Option<String>,
    /// Client key file on the masters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PATH))]
    pub key_file: Option<String>,
}

/// A reference to an object by name (core/v1 `LocalObjectReference`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// The object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_DNS_NAME))]
    pub name: Option<String>,
}

/// One master machine (`spec.machines[i]`). Secrets are standard base64 (Go `[]byte`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ClusterMachine {
    /// The address the provisioner reaches over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_IP))]
    pub ip: Option<String>,
    /// SSH port; defaulted to 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub port: Option<i64>,
    /// SSH user: a POSIX login name (`root`, or a user with passwordless sudo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_USERNAME))]
    pub username: Option<String>,
    /// base64 of the SSH password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PASSWORD_BASE64))]
    pub password: Option<String>,
    /// base64 of the PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PRIVATE_KEY_BASE64))]
    pub private_key: Option<String>,
    /// base64 of the private key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PASSWORD_BASE64))]
    pub pass_phrase: Option<String>,
    /// Labels of the node this master becomes.
    #[serde(
        default,
        deserialize_with = "objects::map_upto::<_, { limits::MAX_LABELS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(schema_with = "labels_schema")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Taints of the node this master becomes.
    #[serde(
        default,
        deserialize_with = "objects::objects_upto::<_, _, { limits::MAX_TAINTS }>",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = limits::MAX_TAINTS))]
    pub taints: Option<Vec<Taint>>,
    /// An SSH jump server or SOCKS5 proxy on the way to this machine.
    #[serde(
        default,
        deserialize_with = "objects::object",
        skip_serializing_if = "Option::is_none"
    )]
    pub proxy: Option<Box<ClusterMachineProxy>>,
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
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// `spec.machines[i].proxy`: how to reach a machine (TKEStack's `ClusterMachineProxy`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMachineProxy {
    /// `SSHJumpServer` or `SOCKS5`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
    pub type_: Option<String>,
    /// The proxy's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_IP))]
    pub ip: Option<String>,
    /// The proxy's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535), extend("format" = "int32"))]
    pub port: Option<i64>,
    /// User on the jump server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_USERNAME))]
    pub username: Option<String>,
    /// base64 of the jump server password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PASSWORD_BASE64))]
    pub password: Option<String>,
    /// base64 of the jump server private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PRIVATE_KEY_BASE64))]
    pub private_key: Option<String>,
    /// base64 of that key's passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_PASSWORD_BASE64))]
    pub pass_phrase: Option<String>,
}

/// Debug without the secrets.
impl std::fmt::Debug for ClusterMachineProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ClusterMachineProxy")
            .field("type", &self.type_)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("private_key", &redact(&self.private_key))
            .field("pass_phrase", &redact(&self.pass_phrase))
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

/// A core/v1 Taint as TKEStack embeds it. `key` and `effect` are required (as in core/v1);
/// they are options here so that a missing one is a field error, not a decode failure.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("required" = ["key", "effect"]))]
pub struct Taint {
    /// The taint key (label key syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "taint_key_schema")]
    pub key: Option<String>,
    /// The taint value (label value syntax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_LABEL_VALUE))]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "taint_effect_schema")]
    pub effect: Option<String>,
    /// When a `NoExecute` taint was added (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = limits::MAX_SHORT))]
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
    /// The Kubernetes version running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why the cluster is in this phase, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why the cluster is in this phase, one CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Provisioning steps and health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<ClusterCondition>>,
    /// How to reach the apiservers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<ClusterAddress>>,
    /// The service network in use.
    #[serde(
        default,
        rename = "serviceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_cidr: Option<String>,
    /// The pod network in use.
    #[serde(
        default,
        rename = "clusterCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<String>,
    /// The cluster DNS service address.
    #[serde(default, rename = "dnsIP", skip_serializing_if = "Option::is_none")]
    pub dns_ip: Option<String>,
    /// Prefix length of each node's pod range.
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
    /// The condition (a provisioning step name, `HealthCheck`, `HAReady`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[schemars(with = "String")]
    pub status: ConditionStatus,
    /// When the condition was last checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<String>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Why, one CamelCase word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why, for people.
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
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: i32,
    /// URL path prefix, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

//! Size bounds: every list, map and string of the spec within the numbers of
//! [`crate::limits`], the same the generated CRD declares.
//!
//! Lengths are counted in characters, as the API server counts `maxLength`. An oversized
//! value is reported without being shown. Past [`crate::limits::MAX_MACHINES`] only the count
//! is reported: the per-machine rules do not run, so an absurd object yields a short review.
//! A list or map past what the decode keeps ([`crate::limits::decoded`]) holds only its first
//! entries once decoded; its length comes from [`crate::unknown::Lengths`].

use std::collections::BTreeMap;

use super::Ctx;
use crate::field::FieldError;
use crate::limits::*;
use crate::types::{ClusterMachine, ClusterMachineProxy, ClusterSpec};
use crate::unknown::Lengths;

/// Whether `s` is longer than `max` characters (the unit of the CRD's `maxLength`). The
/// rules that show a value skip those: this group reports them without the value.
pub fn over(s: &str, max: usize) -> bool {
    s.len() > max && s.chars().count() > max
}

/// A field path, formatted only when an error needs it (the common case has none).
type Path<'a> = &'a dyn Fn() -> String;

/// Report a string over `max` characters.
fn text(errors: &mut Vec<FieldError>, path: Path<'_>, value: Option<&str>, max: usize) {
    if let Some(v) = value
        && over(v, max)
    {
        errors.push(FieldError::too_long(path(), max, ""));
    }
}

/// Report a list over `max` entries, or an entry over `max_len` characters.
fn list(
    (errors, lengths): Out<'_>,
    path: Path<'_>,
    value: Option<&Vec<String>>,
    max: usize,
    max_len: usize,
) {
    let Some(items) = value else { return };
    if items.len() > max {
        too_many(errors, lengths, path(), items.len(), max, "");
        return;
    }
    for (i, item) in items.iter().enumerate() {
        text(errors, &|| format!("{}[{i}]", path()), Some(item), max_len);
    }
}

/// Report a map over `max` entries, or a key or value over its length.
fn map(
    (errors, lengths): Out<'_>,
    path: Path<'_>,
    value: Option<&BTreeMap<String, String>>,
    (max, max_key, max_value): (usize, usize, usize),
) {
    let Some(entries) = value else { return };
    if entries.len() > max {
        too_many(errors, lengths, path(), entries.len(), max, "");
        return;
    }
    for (k, v) in entries {
        if over(k, max_key) {
            errors.push(FieldError::too_long(path(), max_key, "a key is too long"));
        } else {
            text(errors, &|| format!("{}[{k}]", path()), Some(v), max_value);
        }
    }
}

/// Where the findings go, and the lengths of the lists past their bound.
type Out<'a> = (&'a mut Vec<FieldError>, &'a Lengths);

/// Report the list or map at `path` (of which `decoded` entries were decoded) over `max`.
fn too_many(
    errors: &mut Vec<FieldError>,
    lengths: &Lengths,
    path: String,
    decoded: usize,
    max: usize,
    detail: &str,
) {
    let count = lengths.or(&path, decoded);
    errors.push(FieldError::too_many(path, count, max, detail));
}

const EXTRA_ARGS: (usize, usize, usize) = (MAX_EXTRA_ARGS, MAX_EXTRA_ARG_NAME, MAX_EXTRA_ARG_VALUE);

/// Every bound, all at once.
pub fn validate(ctx: &mut Ctx<'_>) {
    let mut errors = Vec::new();
    spec_bounds(&mut errors, ctx.lengths, ctx.spec);
    ctx.errors.append(&mut errors);
}

fn spec_bounds(e: &mut Vec<FieldError>, lengths: &Lengths, s: &ClusterSpec) {
    list(
        (e, lengths),
        &|| "spec.finalizers".into(),
        s.finalizers.as_ref(),
        MAX_LIST,
        MAX_DNS_NAME,
    );
    text(
        e,
        &|| "spec.tenantID".into(),
        s.tenant_id.as_deref(),
        MAX_SHORT,
    );
    text(
        e,
        &|| "spec.displayName".into(),
        s.display_name.as_deref(),
        MAX_TEXT,
    );
    text(e, &|| "spec.type".into(), s.type_.as_deref(), MAX_SHORT);
    text(
        e,
        &|| "spec.version".into(),
        s.version.as_deref(),
        MAX_SHORT,
    );
    text(
        e,
        &|| "spec.networkType".into(),
        s.network_type.as_deref(),
        MAX_SHORT,
    );
    text(
        e,
        &|| "spec.networkDevice".into(),
        s.network_device.as_deref(),
        MAX_INTERFACE,
    );
    text(
        e,
        &|| "spec.clusterCIDR".into(),
        s.cluster_cidr.as_deref(),
        MAX_CIDR,
    );
    text(
        e,
        &|| "spec.serviceCIDR".into(),
        s.service_cidr.as_deref(),
        MAX_CIDR,
    );
    text(
        e,
        &|| "spec.dnsDomain".into(),
        s.dns_domain.as_deref(),
        MAX_DNS_NAME,
    );
    list(
        (e, lengths),
        &|| "spec.publicAlternativeNames".into(),
        s.public_alternative_names.as_ref(),
        MAX_ALTERNATIVE_NAMES,
        MAX_DNS_NAME,
    );
    for (path, args) in [
        ("spec.dockerExtraArgs", &s.docker_extra_args),
        ("spec.kubeletExtraArgs", &s.kubelet_extra_args),
        ("spec.apiServerExtraArgs", &s.api_server_extra_args),
        (
            "spec.controllerManagerExtraArgs",
            &s.controller_manager_extra_args,
        ),
        ("spec.schedulerExtraArgs", &s.scheduler_extra_args),
        ("spec.networkArgs", &s.network_args),
    ] {
        map(
            (e, lengths),
            &|| path.to_string(),
            args.as_ref(),
            EXTRA_ARGS,
        );
    }
    if let Some(r) = &s.cluster_credential_ref {
        text(
            e,
            &|| "spec.clusterCredentialRef.name".into(),
            r.name.as_deref(),
            MAX_DNS_NAME,
        );
    }
    if let Some(etcd) = &s.etcd {
        if let Some(l) = &etcd.local {
            text(
                e,
                &|| "spec.etcd.local.dataDir".into(),
                l.data_dir.as_deref(),
                MAX_PATH,
            );
            map(
                (e, lengths),
                &|| "spec.etcd.local.extraArgs".into(),
                l.extra_args.as_ref(),
                EXTRA_ARGS,
            );
            list(
                (e, lengths),
                &|| "spec.etcd.local.serverCertSANs".into(),
                l.server_cert_sans.as_ref(),
                MAX_LIST,
                MAX_DNS_NAME,
            );
            list(
                (e, lengths),
                &|| "spec.etcd.local.peerCertSANs".into(),
                l.peer_cert_sans.as_ref(),
                MAX_LIST,
                MAX_DNS_NAME,
            );
        }
        if let Some(x) = &etcd.external {
            list(
                (e, lengths),
                &|| "spec.etcd.external.endpoints".into(),
                x.endpoints.as_ref(),
                MAX_LIST,
                MAX_PATH,
            );
            text(
                e,
                &|| "spec.etcd.external.caFile".into(),
                x.ca_file.as_deref(),
                MAX_PATH,
            );
            text(
                e,
                &|| "spec.etcd.external.certFile".into(),
                x.cert_file.as_deref(),
                MAX_PATH,
            );
            text(
                e,
                &|| "spec.etcd.external.keyFile".into(),
                x.key_file.as_deref(),
                MAX_PATH,
            );
        }
    }
    if let Some(apps) = &s.bootstrap_apps
        && apps.len() > MAX_APPS
    {
        too_many(
            e,
            lengths,
            "spec.bootstrapApps".into(),
            apps.len(),
            MAX_APPS,
            "",
        );
    }
    text(
        e,
        &|| "spec.appVersion".into(),
        s.app_version.as_deref(),
        MAX_SHORT,
    );
    text(
        e,
        &|| "spec.clusterLevel".into(),
        s.cluster_level.as_deref(),
        MAX_SHORT,
    );
    if let Some(f) = &s.features {
        text(
            e,
            &|| "spec.features.gpuType".into(),
            f.gpu_type.as_deref(),
            MAX_SHORT,
        );
        list(
            (e, lengths),
            &|| "spec.features.skipConditions".into(),
            f.skip_conditions.as_ref(),
            MAX_LIST,
            MAX_SHORT,
        );
        if let Some(files) = &f.files {
            if files.len() > MAX_LIST {
                too_many(
                    e,
                    lengths,
                    "spec.features.files".into(),
                    files.len(),
                    MAX_LIST,
                    "",
                );
            } else {
                for (i, file) in files.iter().enumerate() {
                    text(
                        e,
                        &|| format!("spec.features.files[{i}].src"),
                        file.src.as_deref(),
                        MAX_PATH,
                    );
                    text(
                        e,
                        &|| format!("spec.features.files[{i}].dst"),
                        file.dst.as_deref(),
                        MAX_PATH,
                    );
                }
            }
        }
        map(
            (e, lengths),
            &|| "spec.features.hooks".into(),
            f.hooks.as_ref(),
            (MAX_SMALL_MAP, MAX_SHORT, MAX_PATH),
        );
        if let Some(c) = &f.csi_operator {
            text(
                e,
                &|| "spec.features.csiOperator.version".into(),
                c.version.as_deref(),
                MAX_SHORT,
            );
        }
        if let Some(x) = f
            .authz_webhook_addr
            .as_ref()
            .and_then(|a| a.external.as_ref())
        {
            text(
                e,
                &|| "spec.features.authzWebhookAddr.external.ip".into(),
                x.ip.as_deref(),
                MAX_IP,
            );
        }
        text(
            e,
            &|| "spec.features.containerRuntime".into(),
            f.container_runtime.as_deref(),
            MAX_SHORT,
        );
        if let Some(u) = &f.upgrade {
            text(
                e,
                &|| "spec.features.upgrade.mode".into(),
                u.mode.as_deref(),
                MAX_SHORT,
            );
        }
        if let Some(ha) = &f.ha {
            if let Some(t) = &ha.tke {
                text(
                    e,
                    &|| "spec.features.ha.tke.vip".into(),
                    t.vip.as_deref(),
                    MAX_IP,
                );
            }
            if let Some(t) = &ha.third_party {
                text(
                    e,
                    &|| "spec.features.ha.thirdParty.vip".into(),
                    t.vip.as_deref(),
                    MAX_IP,
                );
            }
        }
    }
    if let Some(p) = &s.properties {
        map(
            (e, lengths),
            &|| "spec.properties.oversoldRatio".into(),
            p.oversold_ratio.as_ref(),
            (MAX_SMALL_MAP, MAX_SHORT, MAX_SHORT),
        );
    }
    for (path, machines) in [
        ("spec.machines", &s.machines),
        ("spec.scalingMachines", &s.scaling_machines),
    ] {
        let Some(machines) = machines else { continue };
        if machines.len() > MAX_MACHINES {
            too_many(
                e,
                lengths,
                path.into(),
                machines.len(),
                MAX_MACHINES,
                "etcd recommends at most 7 masters; list each master once",
            );
            continue;
        }
        for (i, m) in machines.iter().enumerate() {
            machine_bounds((e, lengths), &|| format!("{path}[{i}]"), m);
        }
    }
}

fn machine_bounds((e, lengths): Out<'_>, at: Path<'_>, m: &ClusterMachine) {
    text(e, &|| format!("{}.ip", at()), m.ip.as_deref(), MAX_IP);
    text(
        e,
        &|| format!("{}.username", at()),
        m.username.as_deref(),
        MAX_USERNAME,
    );
    secret_bounds(e, at, [&m.password, &m.private_key, &m.pass_phrase]);
    map(
        (e, lengths),
        &|| format!("{}.labels", at()),
        m.labels.as_ref(),
        (MAX_LABELS, MAX_LABEL_KEY, MAX_LABEL_VALUE),
    );
    if let Some(taints) = &m.taints {
        if taints.len() > MAX_TAINTS {
            too_many(
                e,
                lengths,
                format!("{}.taints", at()),
                taints.len(),
                MAX_TAINTS,
                "",
            );
        } else {
            for (j, t) in taints.iter().enumerate() {
                text(
                    e,
                    &|| format!("{}.taints[{j}].key", at()),
                    t.key.as_deref(),
                    MAX_LABEL_KEY,
                );
                text(
                    e,
                    &|| format!("{}.taints[{j}].value", at()),
                    t.value.as_deref(),
                    MAX_LABEL_VALUE,
                );
                text(
                    e,
                    &|| format!("{}.taints[{j}].timeAdded", at()),
                    t.time_added.as_deref(),
                    MAX_SHORT,
                );
            }
        }
    }
    if let Some(p) = &m.proxy {
        proxy_bounds(e, &|| format!("{}.proxy", at()), p);
    }
}

fn proxy_bounds(e: &mut Vec<FieldError>, at: Path<'_>, p: &ClusterMachineProxy) {
    text(
        e,
        &|| format!("{}.type", at()),
        p.type_.as_deref(),
        MAX_SHORT,
    );
    text(e, &|| format!("{}.ip", at()), p.ip.as_deref(), MAX_IP);
    text(
        e,
        &|| format!("{}.username", at()),
        p.username.as_deref(),
        MAX_USERNAME,
    );
    secret_bounds(e, at, [&p.password, &p.private_key, &p.pass_phrase]);
}

/// `password`, `privateKey`, `passPhrase` of a machine or proxy at `at`.
fn secret_bounds(e: &mut Vec<FieldError>, at: Path<'_>, values: [&Option<String>; 3]) {
    let maxes = [
        MAX_PASSWORD_BASE64,
        MAX_PRIVATE_KEY_BASE64,
        MAX_PASSWORD_BASE64,
    ];
    for ((name, value), max) in crate::secret::FIELDS.iter().zip(values).zip(maxes) {
        if let Some(v) = value
            && v.len() > max
        {
            // base64 is ASCII: bytes are characters. The value itself is never shown.
            e.push(FieldError::too_long(
                format!("{}.{name}", at()),
                max,
                "the value is not shown",
            ));
        }
    }
}

//! The batch/v1 Job that `provision NAME --in-cluster` submits: `tkeha-provisioner apply NAME` in the chart's image, locked down.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, PodSecurityContext,
    PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The chart's image (`image.repository` in charts/tkeha/values.yaml) at this plugin's version
/// (the chart's `appVersion`; the tests check both).
pub const DEFAULT_IMAGE_REPOSITORY: &str = "tkeha/tkeha";

/// The namespace docs/helm.md installs the chart into (`helm install -n tkeha-system`).
pub const DEFAULT_NAMESPACE: &str = "tkeha-system";

/// `provisioner.serviceAccount.name` in the chart: bound to read Clusters and patch their status.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "tkeha-provisioner";

/// Where the Dockerfile installs the provisioner (the image's entrypoint is the webhook).
pub const PROVISIONER_BIN: &str = "/usr/local/bin/tkeha-provisioner";

/// The container's name, for `kubectl logs -c`.
pub const CONTAINER: &str = "provisioner";

/// Where `--known-hosts-configmap` is mounted, and the key the ConfigMap must hold.
pub const KNOWN_HOSTS_DIR: &str = "/etc/tkeha/known-hosts";
pub const KNOWN_HOSTS_KEY: &str = "known_hosts";

/// Finished Jobs (and their pod logs) stay this long for `kubectl logs job/NAME`.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 3600;

/// A Job that has not finished by then is failed by the Job controller (e.g. an image that can
/// never be pulled), so nothing lingers; the provisioner's own SSH and VIP timeouts are far shorter.
pub const ACTIVE_DEADLINE_SECONDS: i64 = 1800;

/// The chart's non-root user (Dockerfile `USER 65532:65532`).
const RUN_AS: i64 = 65532;

/// `generateName` plus the 5 random characters must fit a label value (63), as the Job's name is
/// copied into its pods' `job-name` label.
const MAX_GENERATE_NAME: usize = 58;
const NAME_PREFIX: &str = "tkeha-provision-";

/// The image `--image` defaults to: the chart's repository at the plugin's version.
pub fn default_image() -> String {
    format!("{DEFAULT_IMAGE_REPOSITORY}:{}", env!("CARGO_PKG_VERSION"))
}

/// How the Job's provisioner checks the masters' SSH host keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeys {
    /// A ConfigMap holding an OpenSSH `known_hosts` file under the key `known_hosts`.
    ConfigMap(String),
    /// `--insecure-ignore-host-keys`, asked for explicitly.
    Insecure,
}

/// Everything the Job depends on.
#[derive(Debug, Clone)]
pub struct JobParams {
    /// `metadata.name` of the Cluster to provision.
    pub cluster: String,
    pub namespace: String,
    pub image: String,
    pub service_account: String,
    pub host_keys: HostKeys,
    /// Further `tkeha-provisioner apply` flags (`-o json`, `--timeout N`, ...), passed as given.
    pub extra_args: Vec<String>,
}

/// The provisioner's command line inside the Job (after the binary).
pub fn provisioner_args(params: &JobParams) -> Vec<String> {
    let mut args = vec!["apply".to_string(), params.cluster.clone()];
    match &params.host_keys {
        HostKeys::ConfigMap(_) => {
            args.push("--known-hosts".to_string());
            args.push(format!("{KNOWN_HOSTS_DIR}/{KNOWN_HOSTS_KEY}"));
        }
        HostKeys::Insecure => args.push("--insecure-ignore-host-keys".to_string()),
    }
    args.extend(params.extra_args.iter().cloned());
    args
}

/// `tkeha-provision-CLUSTER-`, shortened so the generated name fits a label value.
pub fn generate_name(cluster: &str) -> String {
    let room = MAX_GENERATE_NAME - NAME_PREFIX.len() - 1;
    let mut part: String = cluster.chars().take(room).collect();
    // A name must not end in '-' or '.' before our own '-'.
    while part.ends_with(['-', '.']) {
        part.pop();
    }
    if part.is_empty() {
        NAME_PREFIX.to_string()
    } else {
        format!("{NAME_PREFIX}{part}-")
    }
}

/// The labels on the Job and its pod.
fn labels() -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", "tkeha"),
        ("app.kubernetes.io/component", "provisioner"),
        ("app.kubernetes.io/managed-by", "kubectl-tkeha"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The annotation naming the Cluster (a Cluster name may be longer than a label value allows).
pub const CLUSTER_ANNOTATION: &str = "tkeha.tkestack.io/cluster";

/// Build the Job. Pure: contacts nothing.
pub fn build(params: &JobParams) -> Job {
    let annotations = BTreeMap::from([(CLUSTER_ANNOTATION.to_string(), params.cluster.clone())]);
    let mut mounts = vec![VolumeMount {
        name: "tmp".into(),
        mount_path: "/tmp".into(),
        ..Default::default()
    }];
    let mut volumes = vec![Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("16Mi".into())),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let HostKeys::ConfigMap(name) = &params.host_keys {
        mounts.push(VolumeMount {
            name: "known-hosts".into(),
            mount_path: KNOWN_HOSTS_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
        volumes.push(Volume {
            name: "known-hosts".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: name.clone(),
                default_mode: Some(0o444),
                optional: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    let container = Container {
        name: CONTAINER.into(),
        image: Some(params.image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec![PROVISIONER_BIN.into()]),
        args: Some(provisioner_args(params)),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..Default::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(&[("cpu", "10m"), ("memory", "32Mi")])),
            limits: Some(quantities(&[("cpu", "500m"), ("memory", "128Mi")])),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(&params.cluster)),
            namespace: Some(params.namespace.clone()),
            labels: Some(labels()),
            annotations: Some(annotations.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            active_deadline_seconds: Some(ACTIVE_DEADLINE_SECONDS),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels()),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(params.service_account.clone()),
                    // The provisioner reads the Cluster and writes its status with this token.
                    automount_service_account_token: Some(true),
                    restart_policy: Some("Never".into()),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            localhost_profile: None,
                        }),
                        ..Default::default()
                    }),
                    containers: vec![container],
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
        .collect()
}

/// The Job as a JSON value with `apiVersion` and `kind` (what `--dry-run -o yaml|json` prints).
pub fn to_value(job: &Job) -> serde_json::Result<serde_json::Value> {
    // k8s-openapi's Serialize writes apiVersion and kind for top-level resources.
    serde_json::to_value(job)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn params(host_keys: HostKeys) -> JobParams {
        JobParams {
            cluster: "prod".into(),
            namespace: "ns".into(),
            image: "img:1".into(),
            service_account: "sa".into(),
            host_keys,
            extra_args: vec!["-o".into(), "json".into()],
        }
    }

    #[test]
    fn a_config_map_is_mounted_read_only_and_named_by_path() {
        let job = build(&params(HostKeys::ConfigMap("hosts".into())));
        let pod = job.spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        assert_eq!(
            c.args.clone().unwrap(),
            [
                "apply",
                "prod",
                "--known-hosts",
                "/etc/tkeha/known-hosts/known_hosts",
                "-o",
                "json"
            ]
        );
        let mount = c
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "known-hosts")
            .unwrap();
        assert_eq!(mount.read_only, Some(true));
        let volume = pod
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "known-hosts")
            .unwrap();
        assert_eq!(volume.config_map.unwrap().name, "hosts");
    }

    #[test]
    fn insecure_mounts_nothing_and_says_so_in_the_args() {
        let job = build(&params(HostKeys::Insecure));
        let pod = job.spec.unwrap().template.spec.unwrap();
        assert!(pod.volumes.unwrap().iter().all(|v| v.config_map.is_none()));
        assert_eq!(
            pod.containers[0].args.clone().unwrap()[..3],
            ["apply", "prod", "--insecure-ignore-host-keys"]
        );
    }

    #[test]
    fn generated_names_fit_a_label_value() {
        assert_eq!(generate_name("prod"), "tkeha-provision-prod-");
        let long = "a".repeat(40) + "-" + &"b".repeat(200);
        let name = generate_name(&long);
        assert!(name.len() + 5 <= 63, "{name}");
        assert!(!name.contains("--"), "{name}");
        assert!(generate_name("x.y").ends_with("x.y-"));
    }
}

//! `check`, `provision`, `status`, `drill`, `uninstall`: the provisioner library from here, or (`provision --in-cluster`) as a Job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use tkeha_kube::Target;
use tkeha_provisioner::Action;
use tkeha_provisioner::cli::{
    DEFAULT_CONNECT_TIMEOUT_SECS, DEFAULT_TIMEOUT_SECS, HaArgs, OutputFormat,
};

use crate::cli::GlobalArgs;
use crate::console;
use crate::create::DryRun;
use crate::in_cluster;
use crate::job::{self, HostKeys, JobParams};
use crate::render::{self, ManifestFormat, to_stdout};

/// The usage line of the SSH commands: the Cluster source, the host-key policy, then options.
macro_rules! usage {
    ($command:literal) => {
        concat!(
            "kubectl tkeha ",
            $command,
            " (-f FILE | CLUSTER-NAME) (--known-hosts FILE | --accept-new-host-keys | --insecure-ignore-host-keys) [OPTIONS]"
        )
    };
}

/// Preflight the masters over SSH: reachability, interfaces, the VIP, the load balancer binding.
///
/// Checks per master: SSH login, root or `sudo -n`, the interface that holds exactly the machine
/// IP, the VIP inside its prefix, keepalived installed or installable, and that the VIP is not
/// answering from elsewhere (third-party HA: which masters the load balancer reaches, at least
/// two). Changes nothing on the masters and records nothing: with CLUSTER-NAME the Cluster is only
/// read. Exit 0 when every host passes, 1 when one fails, 2 for unusable input.
#[derive(Debug, Args)]
#[command(
    override_usage = usage!("check"),
    mut_arg("cluster", |a| a.help("The name of a Cluster object to read through the API server instead of -f FILE (only read: check records nothing)")),
    mut_arg("timeout", |a| a.hide(true)),
    after_help = "\
Examples:
  kubectl tkeha check -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha check -f cluster.yaml --accept-new-host-keys -o json
  # A Cluster stored in the API server, by name
  kubectl tkeha check prod --context global --known-hosts ~/.ssh/known_hosts")]
pub struct CheckArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Make the cluster's masters highly available: keepalived (TKE HA) or the LB hairpin fix (third-party HA).
///
/// From here over SSH (`-f FILE`), or with `--in-cluster` as a Job in the global cluster that
/// reads the Cluster object CLUSTER-NAME and records the outcome in its status; its log is
/// followed here and the exit code is the Job's. Idempotent: a rerun with nothing changed touches
/// nothing. Exit 1 if any host failed, 2 for unusable input.
#[derive(Debug, Args)]
#[command(
    override_usage = concat!(
        usage!("provision"),
        "\n       kubectl tkeha provision CLUSTER-NAME --in-cluster (--known-hosts-configmap CM | --insecure-ignore-host-keys) [OPTIONS]"
    ),
    after_help = "\
Examples:
  kubectl tkeha provision -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha provision -f cluster.yaml --accept-new-host-keys -o json
  # A Cluster stored in the API server, from here; the outcome goes to its status (HAReady)
  kubectl tkeha provision prod --known-hosts ~/.ssh/known_hosts
  # As a Job in the global cluster (the chart's namespace, image and ServiceAccount)
  kubectl -n tkeha-system create configmap prod-known-hosts \\
      --from-file=known_hosts=$HOME/.ssh/known_hosts
  kubectl tkeha provision prod --in-cluster --known-hosts-configmap prod-known-hosts
  # The Job it would submit, without contacting any cluster
  kubectl tkeha provision prod --in-cluster --insecure-ignore-host-keys --dry-run -o yaml
  # Let the API server check it (RBAC, Pod Security admission) without running it
  kubectl tkeha provision prod --in-cluster --known-hosts-configmap prod-known-hosts \\
      --dry-run=server")]
pub struct ProvisionArgs {
    /// The name of a Cluster object in the API server: provisioned from here (its status records
    /// the outcome) or, with --in-cluster, by a Job.
    #[arg(value_name = "CLUSTER-NAME")]
    pub cluster: Option<String>,
    /// The Cluster manifest (JSON, JSON with // comments, or YAML), provisioned from here.
    #[arg(short = 'f', long = "filename", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: Option<PathBuf>,
    /// Only trust host keys listed in this OpenSSH known_hosts file.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub known_hosts: Option<PathBuf>,
    /// Record host keys seen for the first time (in --known-hosts or ~/.ssh/known_hosts); refuse changed ones.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Do not check host keys at all (lab use only).
    #[arg(long)]
    pub insecure_ignore_host_keys: bool,
    /// Report format: `text` for people, `json` or `yaml` for scripts; with --dry-run the Job's
    /// format (`yaml`, `json`).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<ProvisionOutput>,
    /// Seconds to wait, after the change, until exactly one master holds the VIP [default: 30].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Seconds to wait for each SSH connection [default: 5].
    #[arg(long, value_name = "SECS")]
    pub connect_timeout: Option<u64>,
    /// How fast keepalived moves the VIP: `standard` (VRRPv2, 1 s adverts) or `fast` (VRRPv3,
    /// 0.1 s adverts, a 50 ms apiserver probe). Overrides the Cluster's annotation
    /// tkeha.tkestack.io/failover-profile (which is what a Job reads when this is not given);
    /// without either, `standard`. Changing it is a reload: the VIP keeps answering.
    #[arg(long, value_enum, value_name = "PROFILE")]
    pub failover_profile: Option<tkeha_provisioner::FailoverProfile>,
    #[command(flatten)]
    pub job: InClusterArgs,
}

/// `-o` of `provision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProvisionOutput {
    /// The provisioner's report for people.
    Text,
    /// The provisioner's report as JSON, or the Job as JSON with --dry-run.
    Json,
    /// The provisioner's report as YAML, or the Job as YAML with --dry-run.
    Yaml,
}

/// The Job mode of `provision`.
#[derive(Debug, Args)]
#[command(next_help_heading = "In-cluster (a Job in the global cluster)")]
pub struct InClusterArgs {
    /// Run the provisioner as a batch/v1 Job in the cluster of --kubeconfig/--context instead of from here.
    #[arg(long)]
    pub in_cluster: bool,
    /// Namespace of the Job: where the chart is installed [default: tkeha-system].
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The image holding tkeha-provisioner [default: the chart's, tkeha/tkeha:VERSION].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// ServiceAccount the Job runs as (the chart's provisioner.serviceAccount.name) [default: tkeha-provisioner].
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<String>,
    /// ConfigMap in the Job's namespace whose key `known_hosts` is an OpenSSH known_hosts file.
    #[arg(long, value_name = "CONFIGMAP")]
    pub known_hosts_configmap: Option<String>,
    /// `client` (or `--dry-run` alone): print the Job (-o yaml|json), contact no cluster.
    /// `server`: submit it with `dryRun=All` (RBAC, Pod Security and admission are checked, nothing runs).
    #[arg(long, value_enum, value_name = "STRATEGY", num_args = 0..=1, require_equals = true,
          default_value_t = DryRun::None, default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Seconds to wait for the Job's pod to start before giving up (the Job is left in place).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub start_timeout: u64,
}

/// Show which master holds the VIP, keepalived state per host, and whether the VIP answers.
///
/// Read-only on the masters: keepalived's VRRP state, whether each master holds the VIP, and its
/// apiserver health check. More than one holder is reported as SPLIT BRAIN. With CLUSTER-NAME
/// the outcome is recorded in the Cluster's status (condition HAReady: Healthy, Unhealthy or
/// SplitBrain). Exit 0 healthy with one holder, 1 otherwise, 2 for unusable input.
#[derive(Debug, Args)]
#[command(
    override_usage = usage!("status"),
    mut_arg("timeout", |a| a.hide(true)),
    after_help = "\
Examples:
  kubectl tkeha status -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha status -f cluster.yaml --known-hosts ~/.ssh/known_hosts -o json
  kubectl tkeha status prod --context global --known-hosts ~/.ssh/known_hosts")]
pub struct StatusArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Failover drill: stop the VIP holder's keepalived, time the VIP move, then restore it.
///
/// Stops keepalived gracefully on the VIP holder, times how long until the VIP answers from
/// another master, restores keepalived and checks that the old holder stays BACKUP (nopreempt).
/// Disrupts the control plane endpoint for a few seconds; run it in a maintenance window. With
/// CLUSTER-NAME the outcome is recorded in the Cluster's status (DrillPassed or DrillFailed).
///
/// Where TKEStack runs keepalived as a static pod, the drill moves its manifest out of
/// /etc/kubernetes/manifests/ and back, and refuses unless every master is healthy. Ctrl-C
/// (or SIGTERM) stops the drill and puts keepalived back; if this process dies instead, a
/// timer armed on the master puts the manifest back after --timeout + 10 s.
#[derive(Debug, Args)]
#[command(
    override_usage = usage!("drill"),
    mut_arg("timeout", |a| a.help("Seconds to wait for the VIP to move to another master")),
    after_help = "\
Examples:
  kubectl tkeha drill -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha drill -f cluster.yaml --known-hosts ~/.ssh/known_hosts -o json")]
pub struct DrillArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

/// Remove what `provision` installed (keepalived configuration, hairpin rules) from every master.
///
/// Stops keepalived, removes tkeha's keepalived.conf, health-check script and hairpin rule, and
/// checks that the VIP is gone. The keepalived package stays installed. The control plane loses
/// its VIP: clients must use a master's address afterwards. With CLUSTER-NAME the outcome is
/// recorded in the Cluster's status (HAReady=False, Uninstalled). Exit 0 when every master is
/// clean, 1 when one is not, 2 for unusable input.
#[derive(Debug, Args)]
#[command(
    override_usage = usage!("uninstall"),
    mut_arg("timeout", |a| a.hide(true)),
    after_help = "\
Examples:
  kubectl tkeha uninstall -f cluster.yaml --known-hosts ~/.ssh/known_hosts
  kubectl tkeha uninstall prod --context global --known-hosts ~/.ssh/known_hosts -o json")]
pub struct UninstallArgs {
    #[command(flatten)]
    pub ha: HaArgs,
}

pub fn run_check(args: &CheckArgs, global: &GlobalArgs) -> ExitCode {
    delegate(Action::Check, &args.ha, global)
}

pub fn run_provision(args: &ProvisionArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    if args.job.in_cluster {
        return run_in_cluster(args, global);
    }
    let job_flags = [
        ("--namespace", args.job.namespace.is_some()),
        ("--image", args.job.image.is_some()),
        ("--service-account", args.job.service_account.is_some()),
        (
            "--known-hosts-configmap",
            args.job.known_hosts_configmap.is_some(),
        ),
        ("--dry-run", args.job.dry_run != DryRun::None),
    ];
    if let Some((flag, _)) = job_flags.iter().find(|(_, given)| *given) {
        bail!("{flag} is a Job setting: add --in-cluster, or drop {flag} to provision from here");
    }
    let ha = local_args(args)?;
    Ok(delegate(Action::Apply, &ha, global))
}

/// The provisioner's own flags from ours (its defaults where we were given none). Which
/// Cluster source is valid is left to `HaArgs::source`, as for `tkeha-provisioner apply`.
fn local_args(args: &ProvisionArgs) -> anyhow::Result<HaArgs> {
    if args.file.is_none() && args.cluster.is_none() {
        bail!(
            "no Cluster given: pass -f FILE (a manifest) or CLUSTER-NAME (a Cluster in the API server; add --in-cluster to run as a Job there)"
        );
    }
    Ok(HaArgs {
        file: args.file.clone(),
        cluster: args.cluster.clone(),
        known_hosts: args.known_hosts.clone(),
        accept_new_host_keys: args.accept_new_host_keys,
        insecure_ignore_host_keys: args.insecure_ignore_host_keys,
        output: match args.output {
            Some(ProvisionOutput::Json) => OutputFormat::Json,
            Some(ProvisionOutput::Yaml) => OutputFormat::Yaml,
            Some(ProvisionOutput::Text) | None => OutputFormat::Text,
        },
        timeout: args.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
        connect_timeout: args.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS),
        failover_profile: args.failover_profile,
    })
}

/// `--in-cluster`: build the Job, then print it (--dry-run) or submit and follow it.
fn run_in_cluster(args: &ProvisionArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let params = job_params(args)?;
    let job = job::build(&params);
    let format = match (args.job.dry_run, args.output) {
        (DryRun::None, _) => None,
        (_, Some(ProvisionOutput::Yaml)) => Some(ManifestFormat::Yaml),
        (_, Some(ProvisionOutput::Json)) => Some(ManifestFormat::Json),
        (DryRun::Client, None) => Some(ManifestFormat::Yaml),
        (DryRun::Server, None) => None,
        (_, Some(ProvisionOutput::Text)) => {
            bail!("--dry-run prints the Job as -o yaml or -o json, not text")
        }
    };
    if args.job.dry_run == DryRun::Client {
        let format = format.unwrap_or(ManifestFormat::Yaml);
        to_stdout(render::render(&job::to_value(&job)?, format)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = Target::new(global.kubeconfig.as_deref(), global.context.as_deref());
    let runtime = tkeha_kube::runtime()?;
    runtime.block_on(async {
        let client = target.client().await?;
        let outcome = if args.job.dry_run == DryRun::Server {
            match in_cluster::submit_dry_run(client, &params.namespace, &job).await {
                Ok(accepted) => {
                    let text = match format {
                        Some(format) => render::render(&job::to_value(&accepted)?, format)?,
                        None => format!(
                            "job.batch/{} created (server dry run)\n",
                            accepted.metadata.name.unwrap_or_default()
                        ),
                    };
                    to_stdout(text)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(err) => Err(err),
            }
        } else {
            let start_timeout = Duration::from_secs(args.job.start_timeout.max(1));
            in_cluster::run(client, &params.namespace, &job, start_timeout).await
        };
        match outcome {
            Ok(code) => Ok(code),
            Err(err) => {
                let message = err.to_string();
                if message.starts_with("Error from server") || message.starts_with("error:") {
                    eprintln!("{message}");
                } else {
                    eprintln!("error: {message}");
                }
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// The Job's settings from the flags, refusing the ones that only make sense from here.
fn job_params(args: &ProvisionArgs) -> anyhow::Result<JobParams> {
    if args.file.is_some() {
        bail!(
            "-f FILE cannot be used with --in-cluster: the Job reads the Cluster object from the API server. \
             Create it first (kubectl tkeha create -f FILE), then run provision CLUSTER-NAME --in-cluster"
        );
    }
    let Some(cluster) = args.cluster.clone().filter(|n| !n.is_empty()) else {
        bail!("--in-cluster needs CLUSTER-NAME, the metadata.name of a Cluster in the API server");
    };
    if args.known_hosts.is_some() || args.accept_new_host_keys {
        bail!(
            "--known-hosts and --accept-new-host-keys name files on this machine, which the Job cannot read: \
             put the known_hosts file in a ConfigMap and pass --known-hosts-configmap NAME \
             (kubectl -n NS create configmap NAME --from-file=known_hosts=FILE)"
        );
    }
    let host_keys = match (
        &args.job.known_hosts_configmap,
        args.insecure_ignore_host_keys,
    ) {
        (Some(_), true) => bail!(
            "--known-hosts-configmap and --insecure-ignore-host-keys exclude each other: choose one"
        ),
        (Some(name), false) if !name.is_empty() => HostKeys::ConfigMap(name.clone()),
        (Some(_), false) => bail!("--known-hosts-configmap needs the ConfigMap's name"),
        (None, true) => HostKeys::Insecure,
        (None, false) => bail!(
            "--in-cluster needs a host-key policy for the Job's SSH connections: \
             --known-hosts-configmap NAME (a ConfigMap with key known_hosts, mounted read-only) \
             or, for a lab, --insecure-ignore-host-keys"
        ),
    };
    let mut extra_args = Vec::new();
    let dry_run = args.job.dry_run != DryRun::None;
    match args.output {
        Some(ProvisionOutput::Json) if !dry_run => {
            extra_args.extend(["-o".to_string(), "json".to_string()]);
        }
        Some(ProvisionOutput::Yaml) if !dry_run => {
            extra_args.extend(["-o".to_string(), "yaml".to_string()]);
        }
        _ => {}
    }
    if let Some(secs) = args.timeout {
        extra_args.extend(["--timeout".to_string(), secs.to_string()]);
    }
    if let Some(secs) = args.connect_timeout {
        extra_args.extend(["--connect-timeout".to_string(), secs.to_string()]);
    }
    if let Some(profile) = args.failover_profile {
        extra_args.extend(["--failover-profile".to_string(), profile.name().to_string()]);
    }
    Ok(JobParams {
        cluster,
        namespace: args
            .job
            .namespace
            .clone()
            .unwrap_or_else(|| job::DEFAULT_NAMESPACE.to_string()),
        image: args.job.image.clone().unwrap_or_else(job::default_image),
        service_account: args
            .job
            .service_account
            .clone()
            .unwrap_or_else(|| job::DEFAULT_SERVICE_ACCOUNT.to_string()),
        host_keys,
        extra_args,
    })
}

pub fn run_status(args: &StatusArgs, global: &GlobalArgs) -> ExitCode {
    delegate(Action::Status, &args.ha, global)
}

pub fn run_drill(args: &DrillArgs, global: &GlobalArgs) -> ExitCode {
    delegate(Action::Drill, &args.ha, global)
}

pub fn run_uninstall(args: &UninstallArgs, global: &GlobalArgs) -> ExitCode {
    delegate(Action::Uninstall, &args.ha, global)
}

/// Run the library with the plugin's `--kubeconfig` / `--context` (used for a CLUSTER-NAME only).
fn delegate(action: Action, args: &HaArgs, global: &GlobalArgs) -> ExitCode {
    let target = Target::new(global.kubeconfig.as_deref(), global.context.as_deref());
    console::run(action, args, &target)
}

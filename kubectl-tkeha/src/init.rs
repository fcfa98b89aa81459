//! `init`: scaffold a Cluster manifest for TKE HA or third-party HA from flags, checked by the rule engine.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use base64::Engine;
use clap::Args;
use serde_json::{Map, Value, json};
use tkeha_api::Policy;

use crate::render::{ManifestFormat, render, to_stdout};
use crate::secret::{self, Secret};
use crate::sshkey;

/// The Kubernetes version written when `--version` is not given.
pub const DEFAULT_K8S_VERSION: &str = "1.30.0";

/// HA mode of the scaffolded cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HaMode {
    /// keepalived on every master floats the VIP inside the node network.
    Tke,
    /// an external load balancer forwards VIP:vport to every master's :6443.
    ThirdParty,
}

/// Scaffold a Cluster manifest (platform.tkestack.io/v1) for either HA mode.
///
/// The SSH password is read from stdin with --password-stdin, or from a no-echo prompt when
/// stdin is a terminal; it is never a flag value. --ssh-key FILE puts the key file into
/// `privateKey` instead. Secrets are written base64-encoded, as the Cluster type requires.
/// The manifest is printed with the webhook's defaults filled in (machine port, VRID, the VIP
/// in publicAlternativeNames), and only if it passes the same rules as `validate`: otherwise
/// the errors go to stderr, nothing to stdout, and the exit code is 1. Warnings go to stderr.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  # TKE HA (keepalived): three masters, VIP in their network, password from stdin
  printf '%s' \"$PASS\" | kubectl tkeha init --ha tke --vip 192.168.1.10 \\
      --master 192.168.1.2,192.168.1.3,192.168.1.4 --password-stdin > cluster.yaml

  # Third-party HA: the LB already forwards 192.168.1.5:6443 to every master's :6443
  kubectl tkeha init --ha third-party --vip 192.168.1.5 --vport 6443 \\
      --master 192.168.1.2 --master 192.168.1.3 --ssh-key ~/.ssh/id_ed25519 -o json

  # Masters behind a jump server: its password is asked for on the terminal (no echo)
  kubectl tkeha init --ha tke --vip 10.1.0.100 --master 10.1.0.2,10.1.0.3,10.1.0.4 \\
      --ssh-key ~/.ssh/id_ed25519 --proxy-type SSHJumpServer --proxy-ip 10.0.0.5 --proxy-user ops

  # Prompt for the password (no echo) and create the cluster
  kubectl tkeha init --ha tke --vip 10.0.0.100 --master 10.0.0.2,10.0.0.3,10.0.0.4 > c.yaml
  kubectl create -f c.yaml")]
pub struct InitArgs {
    /// HA mode: `tke` (keepalived VIP) or `third-party` (external load balancer).
    #[arg(long, value_enum, value_name = "MODE")]
    pub ha: HaMode,
    /// The virtual IP clients use to reach the apiservers.
    #[arg(long, value_name = "IP")]
    pub vip: String,
    /// keepalived virtual router ID, 1..255 (TKE HA; default: last byte of the VIP mod 255, plus 1).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub vrid: Option<i64>,
    /// The load balancer's port for the apiserver (third-party HA; required there).
    #[arg(
        long,
        value_name = "PORT",
        required_if_eq("ha", "third-party"),
        allow_negative_numbers = true
    )]
    pub vport: Option<i64>,
    /// Master IPs, comma-separated or repeated; the first one bootstraps the cluster.
    #[arg(long = "master", value_name = "IP", required = true, value_delimiter = ',', num_args = 1..)]
    pub masters: Vec<String>,
    /// metadata.name of the Cluster (default: generateName `cls-`, the server picks a name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// SSH user on every master.
    #[arg(long, value_name = "USER", default_value = "root")]
    pub ssh_user: String,
    /// SSH port on every master.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 22,
        allow_negative_numbers = true
    )]
    pub ssh_port: i64,
    /// Read the SSH password from stdin (to EOF; one trailing newline is dropped).
    #[arg(long, conflicts_with = "ssh_key")]
    pub password_stdin: bool,
    /// Use this private key file for SSH instead of a password (written to privateKey): an OpenSSH
    /// or PEM private key; an encrypted one needs --passphrase-stdin, or a terminal to be asked on.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub ssh_key: Option<PathBuf>,
    /// Read the private key's passphrase from stdin (with --ssh-key; checked against the key).
    #[arg(long, requires = "ssh_key")]
    pub passphrase_stdin: bool,
    /// Pod network CIDR (spec.clusterCIDR).
    #[arg(long, value_name = "CIDR", default_value = "10.244.0.0/16")]
    pub cluster_cidr: String,
    /// Service network CIDR (spec.serviceCIDR); unset lets TKEStack choose.
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Kubernetes version (spec.version), MAJOR.MINOR.PATCH.
    #[arg(long = "version", id = "k8s_version", value_name = "V", default_value = DEFAULT_K8S_VERSION)]
    pub k8s_version: String,
    /// Cluster type (spec.type).
    #[arg(
        long = "type",
        id = "cluster_type",
        value_name = "TYPE",
        default_value = "Baremetal"
    )]
    pub cluster_type: String,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = ManifestFormat::Yaml)]
    pub output: ManifestFormat,
    /// A jump server or SOCKS5 proxy in front of every master (`--proxy-*`).
    #[command(flatten)]
    pub proxy: crate::init_proxy::ProxyArgs,
}

/// SSH credentials for every machine, already base64-encoded.
#[derive(Debug)]
pub enum Credentials {
    Password(String),
    PrivateKey {
        key: String,
        passphrase: Option<String>,
    },
}

pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    if args.ha == HaMode::ThirdParty && args.vrid.is_some() {
        bail!("--vrid applies to --ha tke only (a third-party load balancer has no VRRP)");
    }
    if args.ha == HaMode::Tke && args.vport.is_some() {
        bail!("--vport applies to --ha third-party only (TKE HA serves the apiserver port, 6443)");
    }
    let credentials = read_credentials(args)?;
    let mut manifest = build_manifest(args, &credentials);
    crate::init_proxy::add_to_machines(&args.proxy, &mut manifest)?;
    let review = match tkeha_api::review(&manifest, None, &Policy::default()) {
        Ok(review) => review,
        Err(err) => {
            eprintln!("error: the generated manifest cannot be read back: {err}");
            return Ok(ExitCode::from(1));
        }
    };
    eprint!(
        "{}",
        tkeha_provisioner::cli::warning_lines(&review.warnings)
    );
    if !review.allowed() {
        for error in &review.errors {
            let shown = tkeha_api::field::escape(&error.to_string()).into_owned();
            match flag_for(&error.field) {
                Some(flag) => eprintln!("error: {shown} [{flag}]"),
                None => eprintln!("error: {shown}"),
            }
        }
        eprintln!(
            "error: refusing to write a manifest that would be rejected; fix the flags above"
        );
        return Ok(ExitCode::from(1));
    }
    to_stdout(render(&review.defaulted, args.output)?)?;
    Ok(ExitCode::SUCCESS)
}

fn read_credentials(args: &InitArgs) -> anyhow::Result<Credentials> {
    if let Some(path) = &args.ssh_key {
        return key_credentials(path, args.passphrase_stdin);
    }
    let password: Secret = if args.password_stdin {
        secret::from_stdin("password")?
    } else if secret::stdin_is_terminal() {
        secret::from_prompt(secret::SSH_PASSWORD, true)?
    } else {
        bail!(
            "no SSH credentials: pass --password-stdin (and pipe the password) or --ssh-key FILE"
        );
    };
    Ok(Credentials::Password(password.to_base64()))
}

/// `--ssh-key FILE` (and its passphrase): only a private key is accepted. An encrypted one needs
/// its passphrase, from `--passphrase-stdin` or, on a terminal, a no-echo prompt; it is checked
/// against the key where the format allows (OpenSSH keys).
fn key_credentials(path: &std::path::Path, passphrase_stdin: bool) -> anyhow::Result<Credentials> {
    let name = tkeha_api::field::escape(&path.display().to_string()).into_owned();
    let mut bytes = read_key_file(path, &name)?;
    let info = match sshkey::classify(&bytes) {
        Ok(info) => info,
        Err(e) => {
            bytes.fill(0);
            bail!("--ssh-key {name}: {e}");
        }
    };
    let passphrase = match (info.encrypted, passphrase_stdin) {
        (false, true) => {
            bytes.fill(0);
            bail!("--ssh-key {name}: the key is not encrypted; drop --passphrase-stdin")
        }
        (false, false) => None,
        (true, true) => Some(secret::from_stdin("passphrase")?),
        (true, false) if secret::stdin_is_terminal() => Some(secret::from_prompt(
            &format!("Passphrase for {name}"),
            false,
        )?),
        (true, false) => {
            bytes.fill(0);
            bail!(
                "--ssh-key {name}: the key is encrypted: pipe its passphrase with --passphrase-stdin, \
                 or run init on a terminal to be asked for it"
            )
        }
    };
    if let Some(p) = &passphrase
        && sshkey::passphrase_opens(&bytes, p.expose()) == Some(false)
    {
        bytes.fill(0);
        bail!("--ssh-key {name}: the passphrase does not open this key");
    }
    let key = base64::engine::general_purpose::STANDARD.encode(&bytes);
    bytes.fill(0);
    Ok(Credentials::PrivateKey {
        key,
        passphrase: passphrase.map(|p| p.to_base64()),
    })
}

/// The key file's bytes, at most [`sshkey::MAX_KEY_BYTES`]. The key itself is never printed.
fn read_key_file(path: &std::path::Path, name: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let io = |e: std::io::Error| {
        let words = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::IsADirectory => "is a directory, not a key file".to_string(),
            _ => e.to_string(),
        };
        anyhow::anyhow!("--ssh-key {name}: {words}")
    };
    let file = std::fs::File::open(path).map_err(io)?;
    if file.metadata().map_err(io)?.is_dir() {
        return Err(io(std::io::ErrorKind::IsADirectory.into()));
    }
    let mut bytes = Vec::new();
    file.take(sshkey::MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > sshkey::MAX_KEY_BYTES {
        bytes.fill(0);
        bail!(
            "--ssh-key {name}: larger than {} KiB, not a private key",
            sshkey::MAX_KEY_BYTES / 1024
        );
    }
    Ok(bytes)
}

/// The Cluster object, fields in the order of the docs' examples.
pub fn build_manifest(args: &InitArgs, credentials: &Credentials) -> Value {
    let mut metadata = Map::new();
    match &args.name {
        Some(name) => metadata.insert("name".into(), json!(name)),
        None => metadata.insert("generateName".into(), json!("cls-")),
    };
    let machines: Vec<Value> = args
        .masters
        .iter()
        .map(|ip| machine(ip, args, credentials))
        .collect();
    let ha = match args.ha {
        HaMode::Tke => {
            let mut tke = Map::new();
            tke.insert("vip".into(), json!(args.vip));
            if let Some(vrid) = args.vrid {
                tke.insert("vrid".into(), json!(vrid));
            }
            json!({ "tke": tke })
        }
        HaMode::ThirdParty => {
            let mut third = Map::new();
            third.insert("vip".into(), json!(args.vip));
            if let Some(vport) = args.vport {
                third.insert("vport".into(), json!(vport));
            }
            json!({ "thirdParty": third })
        }
    };
    let mut spec = Map::new();
    spec.insert("type".into(), json!(args.cluster_type));
    spec.insert("version".into(), json!(args.k8s_version));
    spec.insert("clusterCIDR".into(), json!(args.cluster_cidr));
    if let Some(cidr) = &args.service_cidr {
        spec.insert("serviceCIDR".into(), json!(cidr));
    }
    spec.insert("machines".into(), Value::Array(machines));
    spec.insert("features".into(), json!({ "ha": ha }));
    json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": metadata,
        "spec": spec,
    })
}

/// The flag that sets a field, so a refusal says what to change on the command line.
fn flag_for(field: &str) -> Option<&'static str> {
    let table: [(&str, &str); 10] = [
        ("spec.features.ha.tke.vrid", "--vrid"),
        ("spec.features.ha.thirdParty.vport", "--vport"),
        ("spec.features.ha", "--vip"),
        ("spec.machines", "--master"),
        ("spec.clusterCIDR", "--cluster-cidr"),
        ("spec.serviceCIDR", "--service-cidr"),
        ("spec.version", "--version"),
        ("spec.type", "--type"),
        ("metadata.name", "--name"),
        ("spec.publicAlternativeNames", "--vip"),
    ];
    table
        .iter()
        .find(|(prefix, _)| field.starts_with(prefix))
        .map(|(_, flag)| *flag)
        .map(|flag| machine_flag(field).unwrap_or(flag))
}

/// Machine fields map to the SSH flags rather than `--master`.
fn machine_flag(field: &str) -> Option<&'static str> {
    let rest = field.strip_prefix("spec.machines")?;
    let leaf = rest.rsplit('.').next()?;
    if rest.contains(".proxy") {
        return crate::init_proxy::flag_for(leaf);
    }
    match leaf {
        "port" => Some("--ssh-port"),
        "username" => Some("--ssh-user"),
        "password" => Some("--password-stdin"),
        "privateKey" | "passPhrase" => Some("--ssh-key"),
        _ => None,
    }
}

fn machine(ip: &str, args: &InitArgs, credentials: &Credentials) -> Value {
    let mut m = Map::new();
    m.insert("ip".into(), json!(ip.trim()));
    m.insert("port".into(), json!(args.ssh_port));
    m.insert("username".into(), json!(args.ssh_user));
    match credentials {
        Credentials::Password(password) => {
            m.insert("password".into(), json!(password));
        }
        Credentials::PrivateKey { key, passphrase } => {
            m.insert("privateKey".into(), json!(key));
            if let Some(p) = passphrase {
                m.insert("passPhrase".into(), json!(p));
            }
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        init: InitArgs,
    }

    fn parse(args: &[&str]) -> InitArgs {
        Wrapper::try_parse_from(std::iter::once("init").chain(args.iter().copied()))
            .unwrap()
            .init
    }

    #[test]
    fn tke_manifest_has_the_seed_shape() {
        let args = parse(&[
            "--ha",
            "tke",
            "--vip",
            "192.168.1.3",
            "--master",
            "192.168.1.2",
        ]);
        let m = build_manifest(&args, &Credentials::Password("MTIzNDU2".into()));
        assert_eq!(m["apiVersion"], "platform.tkestack.io/v1");
        assert_eq!(m["kind"], "Cluster");
        assert_eq!(m["metadata"]["generateName"], "cls-");
        assert_eq!(m["spec"]["type"], "Baremetal");
        assert_eq!(m["spec"]["version"], DEFAULT_K8S_VERSION);
        assert_eq!(m["spec"]["clusterCIDR"], "10.244.0.0/16");
        assert_eq!(
            m["spec"]["machines"],
            json!([{"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"}])
        );
        assert_eq!(
            m["spec"]["features"],
            json!({"ha": {"tke": {"vip": "192.168.1.3"}}})
        );
    }

    #[test]
    fn third_party_manifest_with_key_and_masters_list() {
        let args = parse(&[
            "--ha",
            "third-party",
            "--vip",
            "192.168.1.5",
            "--vport",
            "6443",
            "--master",
            "192.168.1.2,192.168.1.3",
            "--master",
            "192.168.1.4",
            "--name",
            "prod",
            "--ssh-user",
            "ops",
            "--ssh-port",
            "2222",
            "--ssh-key",
            "k",
        ]);
        // A real key (api/tests/fixtures/keys/), so the manifest passes the rules as well.
        let key = tkeha_api::secret::encode(include_bytes!(
            "../../api/tests/fixtures/keys/id_ed25519_enc"
        ));
        let creds = Credentials::PrivateKey {
            key: key.clone(),
            passphrase: Some("czNjcmV0".into()),
        };
        let m = build_manifest(&args, &creds);
        let review = tkeha_api::review(&m, None, &tkeha_api::Policy::default()).unwrap();
        assert!(review.allowed(), "{:?}", review.errors);
        assert_eq!(m["metadata"], json!({"name": "prod"}));
        let machines = m["spec"]["machines"].as_array().unwrap();
        assert_eq!(machines.len(), 3);
        assert_eq!(
            machines[2],
            json!({"ip": "192.168.1.4", "port": 2222, "username": "ops", "privateKey": key, "passPhrase": "czNjcmV0"})
        );
        assert_eq!(
            m["spec"]["features"],
            json!({"ha": {"thirdParty": {"vip": "192.168.1.5", "vport": 6443}}})
        );
    }

    #[test]
    fn errors_point_at_the_flag_to_change() {
        assert_eq!(flag_for("spec.features.ha.tke.vip"), Some("--vip"));
        assert_eq!(flag_for("spec.features.ha.thirdParty.vip"), Some("--vip"));
        assert_eq!(flag_for("spec.features.ha.tke.vrid"), Some("--vrid"));
        assert_eq!(
            flag_for("spec.features.ha.thirdParty.vport"),
            Some("--vport")
        );
        assert_eq!(flag_for("spec.machines[1].ip"), Some("--master"));
        assert_eq!(flag_for("spec.machines"), Some("--master"));
        assert_eq!(flag_for("spec.machines[0].port"), Some("--ssh-port"));
        assert_eq!(flag_for("spec.machines[0].username"), Some("--ssh-user"));
        assert_eq!(flag_for("spec.clusterCIDR"), Some("--cluster-cidr"));
        assert_eq!(flag_for("spec.dnsDomain"), None);
    }

    #[test]
    fn third_party_requires_vport_and_password_conflicts_with_key() {
        let base = [
            "init",
            "--ha",
            "third-party",
            "--vip",
            "1.2.3.4",
            "--master",
            "1.2.3.5",
        ];
        assert!(Wrapper::try_parse_from(base).is_err());
        let both = [
            "init",
            "--ha",
            "tke",
            "--vip",
            "1.2.3.4",
            "--master",
            "1.2.3.5",
            "--password-stdin",
            "--ssh-key",
            "k",
        ];
        assert!(Wrapper::try_parse_from(both).is_err());
        let passphrase_alone = [
            "init",
            "--ha",
            "tke",
            "--vip",
            "1.2.3.4",
            "--master",
            "1.2.3.5",
            "--passphrase-stdin",
        ];
        assert!(Wrapper::try_parse_from(passphrase_alone).is_err());
    }
}

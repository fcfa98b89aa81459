//! `create`: review a manifest with the shared rules, then POST the defaulted Cluster to the API server like `kubectl create`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use kube::api::DynamicObject;
use serde_json::Value;
use tkeha_api::{FieldValidation, Policy};
use tkeha_kube::{ClusterClient, Target};

use crate::cli::GlobalArgs;
use crate::render::{self, ManifestFormat, to_stdout};
use crate::validate;

/// How kubectl names the resource in its answers (`cluster.platform.tkestack.io/prod created`).
pub const RESOURCE: &str = "cluster.platform.tkestack.io";

/// The field manager recorded in `metadata.managedFields` for objects this plugin creates.
pub const FIELD_MANAGER: &str = "kubectl-tkeha";

/// Create a Cluster through the API server, after checking it with the admission webhook's rules.
///
/// The manifest is reviewed exactly as `validate` does (defaults applied, every rule); an invalid
/// one is refused with the same report, exit 1, and nothing is sent. A valid one is sent with
/// its defaults filled in, so the result is the same whether or not the webhook is installed
/// (beside TKEStack's tke-platform-api no webhook runs). Exit 0 created, 1 refused (here or by
/// the API server), 2 unusable input or kubeconfig.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha create -f cluster.yaml
  kubectl tkeha create -f cluster.yaml --context global --kubeconfig ~/.kube/tke
  # Ask the API server (and its admission webhooks) without storing anything
  kubectl tkeha create -f cluster.yaml --dry-run=server
  # The object as it would be sent, defaults filled in; nothing is contacted
  kubectl tkeha create -f cluster.yaml --dry-run=client -o yaml
  # Refuse fields TKEStack's schema does not know instead of warning about them
  kubectl tkeha create -f cluster.yaml --validate=strict

Without metadata.name the Cluster gets generateName \"cls-\" (TKEStack's own default) and the
API server picks the name; a client dry run shows the prefix, as kubectl does.")]
#[command(
    override_usage = "kubectl tkeha create -f FILE [--dry-run[=client|server]] [-o yaml|json|name] [--validate=strict]"
)]
pub struct CreateArgs {
    /// The manifest: JSON, JSON with // comments, or YAML. `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    /// `client`: review and print, contact nothing. `server`: the API server runs every admission
    /// step but stores nothing. `none`: create (the default; `--dry-run` alone means `client`).
    #[arg(long, value_enum, value_name = "STRATEGY", num_args = 0..=1, require_equals = true,
          default_value_t = DryRun::None, default_missing_value = "client")]
    pub dry_run: DryRun,
    /// Print the object (as the server answered, or as it would be sent) instead of the one-line
    /// answer. SSH passwords, keys and passphrases are shown as `<redacted>`.
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT")]
    pub output: Option<CreateOutput>,
    /// Fields TKEStack's schema does not know: `warn` (the default here; kubectl defaults to
    /// strict, but TKEStack's own API silently drops them), `strict` (or `true`) refuses them,
    /// `ignore` (or `false`) says nothing. kubectl's flag and values.
    #[arg(long, value_name = "MODE", default_value = "warn", value_parser = parse_validate,
          num_args = 0..=1, require_equals = true, default_missing_value = "strict")]
    pub validate: FieldValidation,
}

/// kubectl's `--validate` values: strict (or true), warn, ignore (or false).
fn parse_validate(text: &str) -> Result<FieldValidation, String> {
    match text {
        "strict" | "true" => Ok(FieldValidation::Strict),
        "warn" => Ok(FieldValidation::Warn),
        "ignore" | "false" => Ok(FieldValidation::Ignore),
        other => Err(format!(
            "invalid value {other:?}: must be one of strict (or true), warn, ignore (or false)"
        )),
    }
}

/// `--dry-run` strategies, as kubectl spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DryRun {
    /// Really create the object.
    None,
    /// Review locally and print; no request is sent.
    Client,
    /// Send with `dryRun=All`: admission runs, nothing is stored.
    Server,
}

/// `-o` of `create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CreateOutput {
    /// The object as YAML.
    Yaml,
    /// The object as pretty JSON.
    Json,
    /// `cluster.platform.tkestack.io/NAME` only.
    Name,
}

pub fn run(args: &CreateArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let loaded = validate::load(&args.file)?;
    let Some(object) = review(&loaded, args.validate)? else {
        return Ok(ExitCode::from(1));
    };
    let display = display_name(&object);
    if args.dry_run == DryRun::Client {
        return answer(args, &object, &display, " (dry run)");
    }
    let target = Target::new(global.kubeconfig.as_deref(), global.context.as_deref());
    let runtime = tkeha_kube::runtime()?;
    let result = runtime.block_on(async {
        let clusters = ClusterClient::new(&target).await?;
        let request = serde_json::from_value::<DynamicObject>(object.clone())
            .with_context(|| format!("{}: metadata", loaded.name))?;
        let dry_run = args.dry_run == DryRun::Server;
        anyhow::Ok(clusters.create(&request, dry_run, FIELD_MANAGER).await)
    })?;
    match result {
        Ok(created) => {
            let created = serde_json::to_value(&created)?;
            let suffix = if args.dry_run == DryRun::Server {
                " (server dry run)"
            } else {
                ""
            };
            answer(args, &created, &display_name(&created), suffix)
        }
        Err(err) => {
            eprintln!("{}", describe_create_error(&err));
            Ok(ExitCode::from(1))
        }
    }
}

/// Review exactly as `validate` does (which also defaults `generateName: cls-` when there is
/// no name). `None`: refused, report printed.
fn review(
    loaded: &validate::Loaded,
    field_validation: FieldValidation,
) -> anyhow::Result<Option<Value>> {
    let policy = Policy {
        field_validation,
        ..Policy::default()
    };
    let review = match tkeha_api::review(&loaded.value, None, &policy) {
        Ok(review) => review,
        Err(err) => bail!(validate::decode_message(&loaded.name, &err)),
    };
    eprint!(
        "{}",
        tkeha_provisioner::cli::warning_lines(&review.warnings)
    );
    if !review.allowed() {
        // The same lines as `validate`, on stderr: stdout carries only what was created.
        eprint!("{}", validate::text_report(&loaded.name, &review));
        return Ok(None);
    }
    let mut object = review.defaulted;
    if let Value::Object(root) = &mut object {
        // kubectl requires both; the rules accept their absence (the webhook sees them filled in).
        root.entry("apiVersion")
            .or_insert_with(|| Value::String(tkeha_api::review::API_VERSION.to_string()));
        root.entry("kind")
            .or_insert_with(|| Value::String("Cluster".to_string()));
    }
    Ok(Some(object))
}

/// The name to show: `metadata.name`, else the `generateName` prefix of an object still to be
/// named (kubectl shows the prefix for a client dry run of such an object).
fn display_name(object: &Value) -> String {
    let text = |key: &str| {
        object
            .pointer(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    text("/metadata/name")
        .or_else(|| text("/metadata/generateName"))
        .map(|s| tkeha_api::field::escape(s).into_owned())
        .unwrap_or_default()
}

/// Print the answer: `-o yaml|json|name`, else kubectl's `RESOURCE/NAME created`.
fn answer(args: &CreateArgs, object: &Value, name: &str, suffix: &str) -> anyhow::Result<ExitCode> {
    // A client dry run shows the manifest's name before any API server has checked it.
    let name = tkeha_api::field::escape(name);
    let text = match args.output {
        Some(CreateOutput::Yaml) => render::render(&redacted(object), ManifestFormat::Yaml)?,
        Some(CreateOutput::Json) => render::render(&redacted(object), ManifestFormat::Json)?,
        Some(CreateOutput::Name) => format!("{RESOURCE}/{name}\n"),
        None => format!("{RESOURCE}/{name} created{suffix}\n"),
    };
    to_stdout(text)?;
    Ok(ExitCode::SUCCESS)
}

/// `object` with each machine's password, key and passphrase, and its proxy's, replaced by
/// `<redacted>`: the SSH credentials `-o yaml|json` never shows.
fn redacted(object: &Value) -> Value {
    let mut copy = object.clone();
    tkeha_api::secret::redact(&mut copy);
    copy
}

/// kubectl's wording for a failed create; a missing resource type gets the fix.
fn describe_create_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.code == 404 => {
            format!(
                "error: the server doesn't have a resource type \"clusters\" in group \"platform.tkestack.io\" \
                 (POST /apis/platform.tkestack.io/v1/clusters: 404 {}): install the tkeha chart, which \
                 installs the CRD, or point --context at the global cluster that runs tke-platform-api",
                status.message.trim()
            )
        }
        other => tkeha_kube::describe_error(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn the_name_shown_is_the_name_else_the_generate_name_prefix() {
        assert_eq!(
            display_name(&json!({"metadata": {"name": "cls-a"}})),
            "cls-a"
        );
        assert_eq!(
            display_name(&json!({"metadata": {"generateName": "cls-"}})),
            "cls-"
        );
        assert_eq!(
            display_name(&json!({"metadata": {"name": "", "generateName": "cls-"}})),
            "cls-"
        );
        assert_eq!(display_name(&json!({})), "");
    }

    #[test]
    fn validate_takes_kubectls_values() {
        assert_eq!(parse_validate("strict"), Ok(FieldValidation::Strict));
        assert_eq!(parse_validate("true"), Ok(FieldValidation::Strict));
        assert_eq!(parse_validate("warn"), Ok(FieldValidation::Warn));
        assert_eq!(parse_validate("ignore"), Ok(FieldValidation::Ignore));
        assert_eq!(parse_validate("false"), Ok(FieldValidation::Ignore));
        assert!(parse_validate("yes").is_err());
    }

    #[test]
    fn printed_objects_never_show_ssh_credentials() {
        let object = json!({"spec": {"machines": [
            {"ip": "10.0.0.2", "password": "MTIzNDU2"},
            {"ip": "10.0.0.3", "privateKey": "LS0tLS1CRUdJTg==", "passPhrase": "cGFzcw=="}
        ]}});
        let shown = redacted(&object).to_string();
        for secret in ["MTIzNDU2", "LS0tLS1CRUdJTg==", "cGFzcw=="] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert_eq!(shown.matches("<redacted>").count(), 3, "{shown}");
        assert_eq!(redacted(&object)["spec"]["machines"][1]["ip"], "10.0.0.3");
        // The jump server's credentials are secrets too.
        let object = json!({"spec": {"machines": [{"ip": "10.0.0.2", "password": "MTIzNDU2",
            "proxy": {"type": "SSHJumpServer", "ip": "10.0.0.5", "port": 22,
                      "username": "jumper", "password": "anVtcHB3"}}]}});
        let shown = redacted(&object).to_string();
        assert!(!shown.contains("anVtcHB3"), "{shown}");
        assert_eq!(
            redacted(&object)["spec"]["machines"][0]["proxy"]["username"],
            "jumper"
        );
    }

    #[test]
    fn a_missing_resource_type_names_the_fix() {
        let status =
            kube::core::Status::failure("404 page not found", "Failed to parse error data")
                .with_code(404);
        let message = describe_create_error(&kube::Error::Api(status.boxed()));
        assert!(message.contains("install the tkeha chart"), "{message}");
        assert!(message.contains("404 page not found"), "{message}");
    }
}

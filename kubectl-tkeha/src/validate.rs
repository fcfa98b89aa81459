//! `validate`: read a manifest (and optionally the stored object) and review it exactly as the webhook does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use tkeha_api::review::DecodeError;
use tkeha_api::{FieldError, FieldValidation, Policy, Review};

use tkeha_api::field::escape;
use tkeha_provisioner::cli;
use tkeha_provisioner::input::InputError;

use crate::render::{ManifestFormat, render, to_stdout};

/// Check a Cluster manifest offline with exactly the rules of the admission webhook.
///
/// Defaults are applied first (as the mutating webhook would), then every rule runs and every
/// error is reported at once, each with its field path and how to fix it. Warnings do not fail
/// the check. Exit codes: 0 valid, 1 invalid, 2 unreadable input (the message names the file
/// and line:column for a syntax error, or the field path for a value of the wrong type).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  kubectl tkeha validate -f cluster.yaml
  kubectl tkeha init --ha tke --vip 10.0.0.100 --master 10.0.0.2 --ssh-key id_ed25519 \\
      | kubectl tkeha validate -f -
  # An update: the HA mode, VIP, type and CIDRs are immutable; masters change one way at a time
  kubectl tkeha validate -f cluster-new.yaml --old cluster.yaml
  # Machine-readable: {\"valid\", \"errors\": [{\"field\",\"type\",\"message\"}], \"warnings\", \"patch\"}
  kubectl tkeha validate -f cluster.yaml -o json
  # A misspelt field (clusterCidr) is a warning; --strict makes it an error, as
  # `kubectl create --validate=strict` does
  kubectl tkeha validate -f cluster.yaml --strict

On an update (--old), problems the stored object already had, on fields the update leaves
alone, are warnings (\"already invalid before this update: ...\"), as the API server ratchets
CRD validation; changes of metadata or status alone are always valid.")]
#[command(
    override_usage = "kubectl tkeha validate -f FILE [--old FILE] [--strict] [-o text|json|yaml]"
)]
pub struct ValidateArgs {
    /// The manifest: JSON, JSON with // comments, or YAML. `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub file: PathBuf,
    /// The object as currently stored, to check FILE as an update of it.
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub old: Option<PathBuf>,
    /// Report format: `text` for people, `json` or `yaml` for scripts (stdout only).
    #[arg(short = 'o', long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Text)]
    pub output: ReportFormat,
    /// Unknown fields (not in TKEStack's schema) are errors, not warnings: kubectl's
    /// `--validate=strict`.
    #[arg(long)]
    pub strict: bool,
}

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// One line per error, warnings on stderr, a verdict line.
    #[default]
    Text,
    /// The report as one JSON document on stdout.
    Json,
    /// The same document as YAML.
    Yaml,
}

pub use tkeha_provisioner::input::Loaded;

pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let stdin = std::path::Path::new("-");
    if args.file == stdin && args.old.as_deref() == Some(stdin) {
        bail!("-f and --old cannot both read stdin");
    }
    let new = load(&args.file)?;
    let old = args.old.as_deref().map(load).transpose()?;
    let policy = Policy {
        field_validation: if args.strict {
            FieldValidation::Strict
        } else {
            FieldValidation::Warn
        },
        ..Policy::default()
    };
    if let Some(old) = &old {
        // The webhook only warns about a stored object it cannot read; here it is user input.
        if let Err(err) = tkeha_api::review(&old.value, None, &policy) {
            bail!(decode_message(&old.name, &err));
        }
    }
    let old_value = old.as_ref().map(|o| &o.value);
    let review = match tkeha_api::review(&new.value, old_value, &policy) {
        Ok(review) => review,
        Err(err) => bail!(decode_message(&new.name, &err)),
    };
    match args.output {
        ReportFormat::Text => {
            eprint!("{}", cli::warning_lines(&review.warnings));
            to_stdout(text_report(&new.name, &review))?;
        }
        ReportFormat::Json => to_stdout(json_report(&review)? + "\n")?,
        ReportFormat::Yaml => to_stdout(render(&report_value(&review)?, ManifestFormat::Yaml)?)?,
    }
    Ok(if review.allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Read and parse one manifest as every command does ([`tkeha_provisioner::input::load`]):
/// errors name the file, and line:column for a syntax error.
pub fn load(path: &std::path::Path) -> anyhow::Result<Loaded> {
    Ok(tkeha_provisioner::input::load(path)?)
}

/// A value of the wrong type: name the file and the field path, in the words every command uses.
pub fn decode_message(name: &str, err: &DecodeError) -> String {
    InputError::Decode {
        name: name.to_string(),
        error: err.clone(),
    }
    .to_string()
}

/// Error lines (each with its field path and fix), the defaults applied, then one verdict line.
pub fn text_report(name: &str, review: &Review) -> String {
    let mut out = String::new();
    let name = escape(name);
    for error in &review.errors {
        // Field errors quote the values they show; the name and any other text are escaped here.
        out.push_str(&format!("{name}: {}\n", escape(&error.to_string())));
    }
    if review.allowed() {
        for line in describe_patch(review) {
            out.push_str(&format!("{name}: default: {line}\n"));
        }
    }
    let warnings = plural(review.warnings.len(), "warning");
    if review.allowed() {
        out.push_str(&format!("{name}: valid ({warnings})\n"));
    } else {
        let errors = plural(review.errors.len(), "error");
        out.push_str(&format!("{name}: invalid ({errors}, {warnings})\n"));
    }
    out
}

/// The `-o json` document as a value (for `-o yaml`).
pub fn report_value(review: &Review) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&json_report(review)?)?)
}

/// The `-o json` document.
pub fn json_report(review: &Review) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Report<'a> {
        valid: bool,
        errors: &'a [FieldError],
        warnings: &'a [String],
        patch: &'a json_patch::Patch,
    }
    Ok(serde_json::to_string_pretty(&Report {
        valid: review.allowed(),
        errors: &review.errors,
        warnings: &review.warnings,
        patch: &review.patch,
    })?)
}

/// One readable line per patch operation: `spec.machines[0].port = 22`.
fn describe_patch(review: &Review) -> Vec<String> {
    let Ok(Value::Array(ops)) = serde_json::to_value(&review.patch) else {
        return Vec::new();
    };
    ops.iter()
        .map(|op| {
            let pointer = op.get("path").and_then(Value::as_str).unwrap_or("");
            let value = op.get("value").map(Value::to_string).unwrap_or_default();
            match pointer.strip_suffix("/-") {
                Some(list) => format!("{} += {value}", field_path(list)),
                None => format!("{} = {value}", field_path(pointer)),
            }
        })
        .collect()
}

/// `/spec/machines/0/port` -> `spec.machines[0].port`.
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&segment);
        }
    }
    path
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pointers_become_field_paths() {
        assert_eq!(field_path("/spec/machines/0/port"), "spec.machines[0].port");
        assert_eq!(
            field_path("/spec/features/ha/tke/vrid"),
            "spec.features.ha.tke.vrid"
        );
        assert_eq!(
            field_path("/metadata/annotations/a~1b"),
            "metadata.annotations.a/b"
        );
        assert_eq!(field_path(""), "");
    }

    #[test]
    fn plural_counts() {
        assert_eq!(plural(0, "error"), "0 errors");
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(2, "warning"), "2 warnings");
    }
}

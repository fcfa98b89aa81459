//! `encode-password`: print the base64 form a Cluster manifest's `password` (or `passPhrase`) field needs.

use std::process::ExitCode;

use clap::Args;

use crate::secret;

/// Print a password as standard base64 (with padding), the form `spec.machines[].password` needs.
///
/// The password comes from stdin when stdin is piped, otherwise from a prompt on the terminal
/// that does not echo (asked twice). It is never taken as a flag value, so it stays out of
/// shell history and `ps`. One trailing newline on stdin (`echo` adds one; `\n` or `\r\n`)
/// is stripped and NOT encoded; any other whitespace is part of the password.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  printf 123456 | kubectl tkeha encode-password        # MTIzNDU2
  echo 123456 | kubectl tkeha encode-password          # MTIzNDU2 too: the newline is dropped
  kubectl tkeha encode-password                        # prompts twice, no echo")]
pub struct EncodePasswordArgs {}

pub fn run(_args: &EncodePasswordArgs) -> anyhow::Result<ExitCode> {
    let password = secret::from_stdin_or_prompt("password")?;
    crate::render::to_stdout(format!("{}\n", password.to_base64()))?;
    Ok(ExitCode::SUCCESS)
}

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
#[command(
    override_usage = "printf '%s' \"$PASS\" | kubectl tkeha encode-password\n       kubectl tkeha encode-password     # asks on the terminal, no echo"
)]
pub struct EncodePasswordArgs {
    /// Words given after the command: refused, since a password there would be seen by others.
    #[arg(hide = true, value_name = "PASSWORD", num_args = 0.., trailing_var_arg = true, allow_hyphen_values = true)]
    pub refused: Vec<String>,
}

/// Why a password given as an argument is refused (it is not repeated in the message).
pub const ARGUMENT_REFUSED: &str = "encode-password takes no argument: a password on the command line \
is visible to every user of this machine (ps, /proc/PID/cmdline) and stays in your shell history. \
Pipe it instead (printf '%s' \"$PASS\" | kubectl tkeha encode-password), or run \
`kubectl tkeha encode-password` alone to be asked for it with no echo";

pub fn run(args: &EncodePasswordArgs) -> anyhow::Result<ExitCode> {
    if !args.refused.is_empty() {
        anyhow::bail!(ARGUMENT_REFUSED);
    }
    let password = if secret::stdin_is_terminal() {
        secret::from_prompt(secret::SSH_PASSWORD, true)?
    } else {
        secret::from_stdin("password")?
    };
    crate::render::to_stdout(format!("{}\n", password.to_base64()))?;
    Ok(ExitCode::SUCCESS)
}

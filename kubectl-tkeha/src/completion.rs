//! `completion`: shell completion scripts for `kubectl-tkeha`, and the `kubectl_complete-tkeha` shim for kubectl.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;

/// The script kubectl (1.26+) runs to complete `kubectl tkeha ...`; kept in the repo as a file too.
pub const KUBECTL_COMPLETE_SCRIPT: &str = include_str!("../kubectl_complete-tkeha");

/// Print a shell completion script.
///
/// `kubectl` prints the `kubectl_complete-tkeha` script: kubectl 1.26 and newer run an executable
/// of that name from PATH to complete `kubectl tkeha <TAB>`, on top of kubectl's own completion
/// (`source <(kubectl completion bash)`). Krew does not install it, so install it yourself.
/// `bash`, `zsh` and `fish` print scripts for calling the binary directly as `kubectl-tkeha`.
#[derive(Debug, Args)]
#[command(after_help = "\
Install for `kubectl tkeha <TAB>` (kubectl >= 1.26, with kubectl's own completion enabled):
  kubectl tkeha completion kubectl > kubectl_complete-tkeha
  chmod +x kubectl_complete-tkeha
  sudo mv kubectl_complete-tkeha /usr/local/bin/     # or any directory on PATH, e.g. ~/.krew/bin

Install for the binary itself (`kubectl-tkeha <TAB>`):
  bash:  kubectl tkeha completion bash > /etc/bash_completion.d/kubectl-tkeha
  zsh:   kubectl tkeha completion zsh > \"${fpath[1]}/_kubectl-tkeha\"
  fish:  kubectl tkeha completion fish > ~/.config/fish/completions/kubectl-tkeha.fish")]
pub struct CompletionArgs {
    /// The shell, or `kubectl` for the kubectl plugin completion shim.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: CompletionShell,
}

/// Which script to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// Bash script for `kubectl-tkeha`.
    Bash,
    /// Zsh script for `kubectl-tkeha`.
    Zsh,
    /// Fish script for `kubectl-tkeha`.
    Fish,
    /// The `kubectl_complete-tkeha` script for kubectl's plugin completion.
    Kubectl,
}

pub fn run(args: &CompletionArgs) -> anyhow::Result<ExitCode> {
    crate::render::to_stdout(script(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

/// The whole script, rendered before anything is written.
pub fn script(shell: CompletionShell) -> Vec<u8> {
    let shell = match shell {
        CompletionShell::Kubectl => return KUBECTL_COMPLETE_SCRIPT.as_bytes().to_vec(),
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut out = Vec::new();
    // The parser is named `kubectl tkeha` (its help reads as kubectl's); the scripts complete the
    // binary `kubectl-tkeha`, and zsh's state names must not hold a space.
    let mut command = Cli::command().name(BIN);
    if shell == Shell::Bash {
        // clap_complete's bash script spells a hyphenated binary's states two ways (the loop says
        // `kubectl__tkeha__subcmd__init`, the case arms `kubectl__subcmd__tkeha__subcmd__init`), so
        // nothing below the first word completes (clap-rs/clap#6421). Generate it for a name
        // without a hyphen, then register that function for the real name.
        clap_complete::generate(shell, &mut command, BASH_STAND_IN, &mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        return rename_bash_registration(&text).into_bytes();
    }
    clap_complete::generate(shell, &mut command, BIN, &mut out);
    out
}

/// The binary the shell scripts complete.
const BIN: &str = "kubectl-tkeha";

/// The hyphen-free name the bash script is generated for (its function is `_kubectl_tkeha`).
const BASH_STAND_IN: &str = "kubectl_tkeha";

/// `complete -F _kubectl_tkeha ... kubectl_tkeha` lines become `... kubectl-tkeha`.
fn rename_bash_registration(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    for line in script.lines() {
        if line.trim_start().starts_with("complete -F ")
            && let Some(head) = line.strip_suffix(BASH_STAND_IN)
        {
            out.push_str(head);
            out.push_str(BIN);
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_shim_is_two_lines_calling_complete() {
        assert_eq!(
            KUBECTL_COMPLETE_SCRIPT,
            "#!/bin/sh\nkubectl tkeha __complete \"$@\"\n"
        );
    }

    /// clap_complete writes a value's help inside zsh double quotes without escaping them: one
    /// `"` in a help text breaks the whole command's completion (it falls back to file names).
    #[test]
    fn no_value_help_holds_a_double_quote() {
        fn walk(cmd: &clap::Command, bad: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                for value in arg.get_possible_values() {
                    if value
                        .get_help()
                        .is_some_and(|h| h.to_string().contains('"'))
                    {
                        bad.push(format!(
                            "{} {}: {}",
                            cmd.get_name(),
                            arg.get_id(),
                            value.get_name()
                        ));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, bad);
            }
        }
        let mut bad = Vec::new();
        walk(&Cli::command(), &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
    }

    #[test]
    fn shell_scripts_name_the_binary_and_its_commands() {
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let text = String::from_utf8_lossy(&script(shell)).into_owned();
            assert!(text.contains("kubectl-tkeha"), "{shell:?}");
            assert!(text.contains("encode-password"), "{shell:?}");
            assert!(text.contains("validate"), "{shell:?}");
        }
    }
}

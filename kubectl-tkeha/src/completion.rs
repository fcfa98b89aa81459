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
    clap_complete::generate(shell, &mut Cli::command(), "kubectl-tkeha", &mut out);
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

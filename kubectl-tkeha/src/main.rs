//! kubectl tkeha: the plugin binary. Parses the command line and hands each command to its module.

mod cli;
mod complete;
mod completion;
mod console;
mod create;
mod encode_password;
mod in_cluster;
mod init;
mod init_proxy;
mod job;
mod provision;
mod render;
mod secret;
mod sshkey;
mod validate;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // kubectl >= 1.26 asks plugins for candidates through `kubectl_complete-tkeha`, which calls
    // `kubectl tkeha __complete ARGS... PARTIAL`. Those words must not be parsed as our flags.
    if let Some(words) = complete::requested(&args) {
        return complete::run(&words);
    }
    let cli = cli::Cli::parse_from(args);
    match cli.command.run(&cli.global) {
        Ok(code) => code,
        Err(err) => {
            eprint!("{}", tkeha_provisioner::cli::prefixed(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}

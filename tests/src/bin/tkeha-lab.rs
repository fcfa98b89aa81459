//! tkeha-lab: the network-namespace lab for scripts (`make demo`, `make bench`) and manual testing.
//! Masters are numbered from 1 on the command line (m1, m2, ...).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use tkeha_e2e::lab::{Auth, Lab, LabConfig, ManifestOptions, Mode, netns};

#[derive(Debug, Parser)]
#[command(
    name = "tkeha-lab",
    about = "Network-namespace lab of fake masters for tkeha"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnOff {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StartStop {
    Start,
    Stop,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Tke,
    ThirdParty,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AuthArg {
    Password,
    Key,
    /// The encrypted key, with its passPhrase.
    KeyWithPassphrase,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab in a fresh slot and print its JSON description.
    Up {
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Run haproxy as a third-party LB holding the VIP.
        #[arg(long)]
        lb: bool,
        #[arg(long, value_delimiter = ',', default_value = "6443")]
        vports: Vec<u16>,
        /// The LB forwards to m1 only.
        #[arg(long)]
        lb_single_backend: bool,
        /// Masters (1-based) whose sshd offers only publickey + keyboard-interactive.
        #[arg(long, value_delimiter = ',')]
        kbd_only: Vec<usize>,
        #[arg(long)]
        state: PathBuf,
    },
    /// Tear a lab down (idempotent).
    Down {
        #[arg(long)]
        state: PathBuf,
    },
    /// Print a Cluster manifest for the lab.
    Manifest {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, value_enum, default_value = "tke")]
        mode: ModeArg,
        #[arg(long, default_value = "root")]
        user: String,
        #[arg(long, value_enum, default_value = "password")]
        auth: AuthArg,
        #[arg(long, default_value_t = 6443)]
        vport: u16,
    },
    /// Start or stop the stand-in apiserver on a master (or all).
    Apiserver {
        action: StartStop,
        #[arg(long)]
        state: PathBuf,
        #[arg(long, required_unless_present = "all")]
        master: Option<usize>,
        #[arg(long)]
        all: bool,
    },
    /// Create /etc/kubernetes/manifests/kube-apiserver.yaml on a master (or all).
    MarkControlPlane {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, required_unless_present = "all")]
        master: Option<usize>,
        #[arg(long)]
        all: bool,
    },
    /// Take a master's link down or up.
    Link {
        action: OnOff,
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
    },
    /// Make the LB drop (down) or pass again (up) a master's traffic to VIP:vport.
    LbPath {
        action: OnOff,
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
        #[arg(long, default_value_t = 6443)]
        vport: u16,
    },
    /// Print the masters holding the VIP as JSON.
    Holders {
        #[arg(long)]
        state: PathBuf,
    },
    /// Remove leftovers of labs whose owner or state dir is gone.
    Gc,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("tkeha-lab: {e:#}");
        std::process::exit(1);
    }
}

/// Prints a line; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn index(lab: &Lab, master: usize) -> Result<usize> {
    if master == 0 || master > lab.masters.len() {
        bail!("--master must be 1..={}", lab.masters.len());
    }
    Ok(master - 1)
}

fn targets(lab: &Lab, master: Option<usize>, all: bool) -> Result<Vec<usize>> {
    if all {
        return Ok((0..lab.masters.len()).collect());
    }
    Ok(vec![index(lab, master.context("--master or --all")?)?])
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Up {
            masters,
            lb,
            vports,
            lb_single_backend,
            kbd_only,
            state,
        } => {
            let cfg = LabConfig {
                masters,
                lb,
                vports,
                lb_single_backend,
                kbd_only: kbd_only
                    .into_iter()
                    .filter(|&i| i > 0)
                    .map(|i| i - 1)
                    .collect(),
                state_dir: Some(state),
                persistent: true,
            };
            let lab = Lab::up(cfg)?;
            out(&serde_json::to_string_pretty(&lab.describe())?);
        }
        Cmd::Down { state } => {
            if state.join("state.json").exists() {
                Lab::load(&state)?.down();
            }
        }
        Cmd::Manifest {
            state,
            mode,
            user,
            auth,
            vport,
        } => {
            let lab = Lab::load(&state)?;
            let opts = ManifestOptions {
                mode: match mode {
                    ModeArg::Tke => Mode::Tke,
                    ModeArg::ThirdParty => Mode::ThirdParty,
                },
                user,
                auth: match auth {
                    AuthArg::Password => Auth::Password,
                    AuthArg::Key => Auth::Key,
                    AuthArg::KeyWithPassphrase => Auth::KeyWithPassphrase,
                },
                vport,
            };
            out(&serde_json::to_string_pretty(&lab.manifest(&opts)?)?);
        }
        Cmd::Apiserver {
            action,
            state,
            master,
            all,
        } => {
            let lab = Lab::load(&state)?;
            for i in targets(&lab, master, all)? {
                match action {
                    StartStop::Start => lab.start_apiserver(i)?,
                    StartStop::Stop => lab.stop_apiserver(i)?,
                }
            }
        }
        Cmd::MarkControlPlane { state, master, all } => {
            let lab = Lab::load(&state)?;
            for i in targets(&lab, master, all)? {
                lab.mark_control_plane(i)?;
            }
        }
        Cmd::Link {
            action,
            state,
            master,
        } => {
            let lab = Lab::load(&state)?;
            lab.set_link(index(&lab, master)?, matches!(action, OnOff::Up))?;
        }
        Cmd::LbPath {
            action,
            state,
            master,
            vport,
        } => {
            let lab = Lab::load(&state)?;
            lab.lb_drop_from(index(&lab, master)?, vport, matches!(action, OnOff::Down))?;
        }
        Cmd::Holders { state } => {
            let lab = Lab::load(&state)?;
            let h: Vec<_> = lab
                .holders()
                .into_iter()
                .map(|i| json!({ "name": lab.masters[i].name, "ip": lab.masters[i].ip }))
                .collect();
            out(&serde_json::to_string(&h)?);
        }
        Cmd::Gc => {
            let removed = netns::gc();
            out(&serde_json::to_string(&removed)?);
        }
    }
    Ok(())
}

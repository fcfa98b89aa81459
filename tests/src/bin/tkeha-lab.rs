//! tkeha-lab: the labs for scripts (`make demo`, `make demo-hosts`, `make bench`) and manual
//! testing: the network-namespace tier (`up`) and the booted Debian tier (`hosts-up`). Commands
//! that take `--state` work on either. Masters are numbered from 1 on the command line (m1, m2, ...).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;
use std::path::PathBuf;
use tkeha_e2e::lab::hosts::{HostLab, HostLabConfig};
use tkeha_e2e::lab::{Auth, Lab, LabConfig, LabProxy, ManifestOptions, Mode, image, mirror, netns};

#[derive(Debug, Parser)]
#[command(
    name = "tkeha-lab",
    about = "Labs of masters for tkeha: network namespaces (`up`) or booted Debian 12 machines (`hosts-up`)"
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
    /// SIGKILL (booted tier: `systemctl kill -s KILL`; the unit stays dead).
    Kill,
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

/// Which of the proxy tier's proxies the machines name (`up --proxies`).
#[derive(Debug, Clone, Copy, ValueEnum)]
enum ProxyArg {
    /// The jump host (SSHJumpServer).
    Jump,
    /// microsocks without authentication (SOCKS5).
    Socks5,
    /// microsocks with RFC 1929 username/password (SOCKS5).
    Socks5Login,
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
        /// Masters, LB and VIP on a network this host cannot reach, behind a jump host and a SOCKS5 server.
        #[arg(long)]
        proxies: bool,
        #[arg(long)]
        state: PathBuf,
    },
    /// Build a lab of booted Debian 12 masters (systemd-nspawn) in a fresh slot and print its
    /// JSON description. Builds the cached base image and mirror first when missing.
    HostsUp {
        #[arg(long, default_value_t = 3)]
        masters: usize,
        /// Boot with keepalived already installed (not configured).
        #[arg(long)]
        keepalived_preinstalled: bool,
        #[arg(long)]
        state: PathBuf,
        /// Keep the lab only while this command runs: print the description, then wait to be
        /// killed (the lab's reaper tears it down however this process ends).
        #[arg(long)]
        hold: bool,
    },
    /// Build (if missing) and print the cached booted-tier images and mirror.
    HostsImages {
        /// Also the keepalived-preinstalled layer.
        #[arg(long)]
        keepalived_preinstalled: bool,
    },
    /// Booted tier: power a master off from inside (`systemctl poweroff`).
    Poweroff {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
    },
    /// Booted tier: boot a powered-off master again on its own disk.
    Boot {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
    },
    /// Booted tier: make the package mirror unreachable (down) from a master, or reachable (up).
    Mirror {
        action: OnOff,
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
    },
    /// Run a shell snippet as root inside a booted master (prints its stdout).
    Exec {
        #[arg(long)]
        state: PathBuf,
        #[arg(long)]
        master: usize,
        script: String,
    },
    /// Internal: wait on stdin; tear the slot down unless the owner writes "done" first.
    #[command(hide = true)]
    Reap {
        #[arg(long)]
        slot: u16,
        #[arg(long)]
        dir: PathBuf,
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
        /// Every machine reached through this proxy (a lab started with --proxies).
        #[arg(long, value_enum)]
        proxy: Option<ProxyArg>,
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
    /// Network-namespace tier: prepare a master (or all) as TKEStack leaves it (its keepalived.conf
    /// and static pod manifest, a control plane) and start the stand-in kubelet that runs
    /// keepalived while the manifest exists.
    Tkestack {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, required_unless_present = "all")]
        master: Option<usize>,
        #[arg(long)]
        all: bool,
        /// How often the stand-in kubelet looks at the manifest (real kubelet: inotify, and every 20 s).
        #[arg(long, default_value_t = 100)]
        poll_ms: u64,
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

/// A lab of either tier, re-attached from its state dir.
enum AnyLab {
    Netns(Lab),
    Booted(HostLab),
}

impl AnyLab {
    fn load(state: &std::path::Path) -> Result<AnyLab> {
        let text = std::fs::read_to_string(state.join("state.json"))
            .with_context(|| format!("no lab at {}", state.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)?;
        Ok(if v["tier"] == "booted" {
            AnyLab::Booted(HostLab::load(state)?)
        } else {
            AnyLab::Netns(Lab::load(state)?)
        })
    }
    fn len(&self) -> usize {
        match self {
            AnyLab::Netns(l) => l.masters.len(),
            AnyLab::Booted(l) => l.masters.len(),
        }
    }
    fn booted(&self, what: &str) -> Result<&HostLab> {
        match self {
            AnyLab::Booted(l) => Ok(l),
            AnyLab::Netns(_) => bail!("{what} needs a booted lab (tkeha-lab hosts-up)"),
        }
    }
    fn holders(&self) -> Vec<(String, String)> {
        match self {
            AnyLab::Netns(l) => l
                .holders()
                .into_iter()
                .map(|i| (l.masters[i].name.clone(), l.masters[i].ip.clone()))
                .collect(),
            AnyLab::Booted(l) => l
                .holders()
                .into_iter()
                .map(|i| (l.masters[i].name.clone(), l.masters[i].ip.clone()))
                .collect(),
        }
    }
}

fn index(lab: &AnyLab, master: usize) -> Result<usize> {
    if master == 0 || master > lab.len() {
        bail!("--master must be 1..={}", lab.len());
    }
    Ok(master - 1)
}

fn targets(lab: &AnyLab, master: Option<usize>, all: bool) -> Result<Vec<usize>> {
    if all {
        return Ok((0..lab.len()).collect());
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
            proxies,
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
                proxies,
            };
            let lab = Lab::up(cfg)?;
            out(&serde_json::to_string_pretty(&lab.describe())?);
        }
        Cmd::HostsUp {
            masters,
            keepalived_preinstalled,
            state,
            hold,
        } => {
            let lab = HostLab::up(HostLabConfig {
                masters,
                keepalived_preinstalled,
                state_dir: Some(state),
                persistent: !hold,
            })?;
            out(&serde_json::to_string_pretty(&lab.describe())?);
            if hold {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
        }
        Cmd::HostsImages {
            keepalived_preinstalled,
        } => {
            let base = image::base()?;
            let content = mirror::content(&base)?;
            let layer = if keepalived_preinstalled {
                Some(image::keepalived_layer(&base, &content)?)
            } else {
                None
            };
            out(&serde_json::to_string_pretty(&json!({
                "cache": image::cache_dir(),
                "base": base.root,
                "mirror": content.dir,
                "mirror_packages": content.packages,
                "keepalived_layer": layer.map(|l| l.root),
            }))?);
        }
        Cmd::Poweroff { state, master } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            let d = lab.booted("poweroff")?.poweroff(i)?;
            out(&format!("{:.2}", d.as_secs_f64()));
        }
        Cmd::Boot { state, master } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            let d = lab.booted("boot")?.boot(i)?;
            out(&format!("{:.2}", d.as_secs_f64()));
        }
        Cmd::Mirror {
            action,
            state,
            master,
        } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            lab.booted("mirror")?
                .set_mirror_reachable(i, matches!(action, OnOff::Up))?;
        }
        Cmd::Exec {
            state,
            master,
            script,
        } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            let text = lab.booted("exec")?.exec(i, &script)?;
            out(text.trim_end());
        }
        Cmd::Reap { slot, dir } => {
            tkeha_e2e::lab::hosts::reap(slot, &dir)?;
        }
        Cmd::Down { state } => {
            if state.join("state.json").exists() {
                match AnyLab::load(&state)? {
                    AnyLab::Netns(l) => l.down(),
                    AnyLab::Booted(l) => l.down(),
                }
            }
        }
        Cmd::Manifest {
            state,
            mode,
            user,
            auth,
            vport,
            proxy,
        } => {
            let lab = AnyLab::load(&state)?;
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
                proxy: proxy.map(|p| match p {
                    ProxyArg::Jump => LabProxy::Jump,
                    ProxyArg::Socks5 => LabProxy::Socks5,
                    ProxyArg::Socks5Login => LabProxy::Socks5Login,
                }),
            };
            let manifest = match &lab {
                AnyLab::Netns(l) => l.manifest(&opts)?,
                AnyLab::Booted(_) if opts.proxy.is_some() => {
                    bail!(
                        "--proxy needs a netns lab started with --proxies (booted labs have no proxy tier)"
                    )
                }
                AnyLab::Booted(l) => l.manifest(&opts)?,
            };
            out(&serde_json::to_string_pretty(&manifest)?);
        }
        Cmd::Apiserver {
            action,
            state,
            master,
            all,
        } => {
            let lab = AnyLab::load(&state)?;
            for i in targets(&lab, master, all)? {
                match (&lab, action) {
                    (AnyLab::Netns(l), StartStop::Start) => l.start_apiserver(i)?,
                    (AnyLab::Netns(l), StartStop::Stop | StartStop::Kill) => l.stop_apiserver(i)?,
                    (AnyLab::Booted(l), StartStop::Start) => l.start_apiserver(i)?,
                    (AnyLab::Booted(l), StartStop::Stop) => l.stop_apiserver(i)?,
                    (AnyLab::Booted(l), StartStop::Kill) => l.kill_apiserver(i)?,
                }
            }
        }
        Cmd::Tkestack {
            state,
            master,
            all,
            poll_ms,
        } => {
            let lab = AnyLab::load(&state)?;
            let AnyLab::Netns(l) = &lab else {
                bail!("tkestack needs a network-namespace lab (tkeha-lab up)");
            };
            for i in targets(&lab, master, all)? {
                l.prepare_tkestack(i)?;
                l.start_fake_kubelet(i, poll_ms)?;
            }
        }
        Cmd::MarkControlPlane { state, master, all } => {
            let lab = AnyLab::load(&state)?;
            for i in targets(&lab, master, all)? {
                match &lab {
                    AnyLab::Netns(l) => l.mark_control_plane(i)?,
                    AnyLab::Booted(l) => l.mark_control_plane(i)?,
                }
            }
        }
        Cmd::Link {
            action,
            state,
            master,
        } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            let up = matches!(action, OnOff::Up);
            match &lab {
                AnyLab::Netns(l) => l.set_link(i, up)?,
                AnyLab::Booted(l) => l.set_link(i, up)?,
            }
        }
        Cmd::LbPath {
            action,
            state,
            master,
            vport,
        } => {
            let lab = AnyLab::load(&state)?;
            let i = index(&lab, master)?;
            let AnyLab::Netns(lab) = lab else {
                bail!("lb-path needs a network-namespace lab with --lb");
            };
            lab.lb_drop_from(i, vport, matches!(action, OnOff::Down))?;
        }
        Cmd::Holders { state } => {
            let lab = AnyLab::load(&state)?;
            let h: Vec<_> = lab
                .holders()
                .into_iter()
                .map(|(name, ip)| json!({ "name": name, "ip": ip }))
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

//! One master's private machine: a copy of /etc (users, sudoers, keepalived, kubernetes, hostname)
//! bind-mounted over /etc and its own /root inside its own UTS+mount+PID namespaces, with sshd as PID 1.

use super::cmd::run;
use anyhow::{Context, Result, bail};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Root's password on every master.
pub const ROOT_PASSWORD: &str = "rootpw";
/// The non-root user (passwordless sudo) on every master.
pub const USER: &str = "tkeha";
/// Its password.
pub const USER_PASSWORD: &str = "tkehapw";
const USER_UID: u32 = 1777;
/// Passphrase of the lab's second (encrypted) login key.
pub const KEY_PASSPHRASE: &str = "lab-key-passphrase";

/// How a master's sshd lets users in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SshAuth {
    /// publickey, password and keyboard-interactive.
    #[default]
    All,
    /// Only publickey and keyboard-interactive (PasswordAuthentication no), like many hardened hosts.
    KbdInteractiveOnly,
}

/// SHA-512 crypt hashes of the lab passwords, computed once per lab.
#[derive(Debug, Clone)]
pub struct Hashes {
    root: String,
    user: String,
}

impl Hashes {
    /// Hash the lab's root and user passwords once (crypt, through `openssl passwd`).
    pub fn new() -> Result<Self> {
        let h = |pw: &str| -> Result<String> {
            Ok(run("openssl", &["passwd", "-6", pw])?.trim().to_string())
        };
        Ok(Self {
            root: h(ROOT_PASSWORD)?,
            user: h(USER_PASSWORD)?,
        })
    }
}

/// Writes the master's private /etc and home into `dir`; returns its known_hosts line.
pub fn prepare(dir: &Path, hostname: &str, ip: &str, hashes: &Hashes) -> Result<String> {
    fs::create_dir_all(dir)?;
    let etc = dir.join("etc");
    run("cp", &["-a", "/etc", &etc.to_string_lossy()]).context("copying /etc for a master")?;
    // A fresh machine: nothing of ours yet.
    for sub in ["keepalived", "kubernetes"] {
        let p = etc.join(sub);
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p)?;
    }
    fs::write(etc.join("hostname"), format!("{hostname}\n"))?;
    let hosts = fs::read_to_string(etc.join("hosts")).unwrap_or_default();
    fs::write(
        etc.join("hosts"),
        format!("{hosts}\n127.0.1.1 {hostname}\n{ip} {hostname}\n"),
    )?;

    // root's own home, as on a fresh machine: sharing this machine's /root would run its shell
    // start-up files (here a pyenv init that takes a lock in /root/.pyenv) in every SSH session
    // of every master, serialising them.
    let root_home = dir.join("root");
    fs::create_dir_all(&root_home)?;
    fs::set_permissions(&root_home, fs::Permissions::from_mode(0o700))?;
    for (from, to) in [("dot.bashrc", ".bashrc"), ("dot.profile", ".profile")] {
        let src = Path::new("/usr/share/base-files").join(from);
        if src.exists() {
            fs::copy(&src, root_home.join(to))?;
        }
    }

    let home = dir.join("home").join(USER);
    fs::create_dir_all(&home)?;
    let passwd = strip_user(&fs::read_to_string(etc.join("passwd"))?);
    fs::write(
        etc.join("passwd"),
        format!(
            "{passwd}{USER}:x:{USER_UID}:{USER_UID}:tkeha lab:{}:/bin/bash\n",
            home.display()
        ),
    )?;
    let group = strip_user(&fs::read_to_string(etc.join("group"))?);
    fs::write(etc.join("group"), format!("{group}{USER}:x:{USER_UID}:\n"))?;
    let shadow: String = strip_user(&fs::read_to_string(etc.join("shadow"))?)
        .lines()
        .map(|l| match l.strip_prefix("root:") {
            Some(rest) => {
                let tail = rest.split_once(':').map(|x| x.1).unwrap_or("");
                format!("root:{}:{tail}\n", hashes.root)
            }
            None => format!("{l}\n"),
        })
        .collect();
    fs::write(
        etc.join("shadow"),
        format!("{shadow}{USER}:{}:19000:0:99999:7:::\n", hashes.user),
    )?;
    fs::set_permissions(etc.join("shadow"), fs::Permissions::from_mode(0o640))?;
    let sudoers = etc.join("sudoers.d");
    fs::create_dir_all(&sudoers)?;
    fs::write(
        sudoers.join("tkeha-lab"),
        format!("{USER} ALL=(ALL) NOPASSWD:ALL\n"),
    )?;
    fs::set_permissions(sudoers.join("tkeha-lab"), fs::Permissions::from_mode(0o440))?;
    run(
        "chown",
        &[
            "-R",
            &format!("{USER_UID}:{USER_UID}"),
            &home.to_string_lossy(),
        ],
    )?;

    let key = dir.join("ssh_host_ed25519_key");
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            hostname,
            "-f",
            &key.to_string_lossy(),
        ],
    )?;
    let public = fs::read_to_string(dir.join("ssh_host_ed25519_key.pub"))?;
    let mut fields = public.split_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        bail!("unexpected ssh-keygen output in {}", key.display());
    };
    Ok(format!("{ip} {kind} {blob}\n"))
}

fn strip_user(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with(&format!("{USER}:")))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Writes sshd_config for the master at `ip`.
pub fn write_config(dir: &Path, lab_dir: &Path, ip: &str, auth: SshAuth) -> Result<()> {
    let (password, kbd) = match auth {
        SshAuth::All => ("yes", "yes"),
        SshAuth::KbdInteractiveOnly => ("no", "yes"),
    };
    let conf = format!(
        "ListenAddress {ip}:22\n\
         PidFile /run/sshd.pid\n\
         HostKey {d}/ssh_host_ed25519_key\n\
         PermitRootLogin yes\n\
         PasswordAuthentication {password}\n\
         KbdInteractiveAuthentication {kbd}\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys {lab}/authorized_keys\n\
         StrictModes no\n\
         UsePAM yes\n\
         UseDNS no\n\
         PrintMotd no\n\
         MaxStartups 100:30:200\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\n",
        d = dir.display(),
        lab = lab_dir.display(),
    );
    fs::write(dir.join("sshd_config"), conf)?;
    Ok(())
}

/// Starts the master: netns `ns`, new UTS/mount/PID namespaces, private /run, private /etc, sshd -D as
/// PID 1. Returns the launcher child and sshd's pid in the root PID namespace.
pub fn start(ns: &str, dir: &Path, hostname: &str) -> Result<(Child, u32)> {
    let d = dir.display();
    let script = format!(
        "set -e\n\
         hostname {hostname}\n\
         mount -t tmpfs -o mode=755 tmpfs /run\n\
         mkdir -p /run/sshd /run/lock\n\
         mount --bind {d}/etc /etc\n\
         mount --bind {d}/root /root\n\
         exec /usr/sbin/sshd -D -f {d}/sshd_config -E {d}/sshd.log\n"
    );
    let log = fs::File::create(dir.join("launcher.log"))?;
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "unshare",
            "--uts",
            "--mount",
            "--propagation",
            "private",
        ])
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting a master's sshd")?;
    let launcher = child.id();
    let start = Instant::now();
    loop {
        if let Some(pid) = child_of(launcher) {
            return Ok((child, pid));
        }
        if start.elapsed() > Duration::from_secs(10) {
            let log = fs::read_to_string(dir.join("launcher.log")).unwrap_or_default();
            bail!("master {ns}: sshd did not start: {}", log.trim());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first process whose parent is `parent` (scans /proc).
fn child_of(parent: u32) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

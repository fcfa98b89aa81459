//! The booted tier's root filesystems, cached on the machine: a Debian 12 base made once with
//! `debootstrap` (keyed by its recipe, so a changed recipe builds a new one), and a thin layer on
//! top of it with keepalived installed from the lab mirror (the "preinstalled" hosts).
//!
//! Both are read-only lower layers of each master's overlayfs. Builds hold an exclusive lock on
//! the cache, so parallel test processes and other engineers' labs build a missing image once.

use super::cmd::run;
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Debian release of the masters.
pub const SUITE: &str = "bookworm";
/// What debootstrap adds to the minbase variant (issue 10): a real systemd host with sshd.
pub const INCLUDE: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "sudo",
    "python3",
];
/// Where debootstrap fetches from (override with `TKEHA_DEBIAN_MIRROR`). Only the base build
/// reaches it; the masters themselves only ever see the lab mirror.
pub const DEFAULT_DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";
/// Bump when the build steps change in a way the recipe text does not show.
const RECIPE_VERSION: u32 = 1;

/// The stand-in apiserver as a systemd unit; its binary is bind-mounted read-only from the host.
pub const APISERVER_UNIT: &str = "tkeha-fake-apiserver.service";
/// Path of the stand-in's binary inside a master.
pub const APISERVER_BIN: &str = "/usr/local/bin/tkeha-fake-apiserver";

/// sshd drop-in: logins as the netns tier allows them (root with password or key, the sudo user).
const SSHD_DROPIN: &str =
    "# tkeha lab: root may log in with a password or a key, like the netns tier's masters.
PermitRootLogin yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
UseDNS no
MaxStartups 100:30:200
";

/// Steps run in a chroot of the fresh debootstrap tree (no services start in a chroot).
fn prep_script() -> String {
    let user = super::sshd::USER;
    let uid = 1777;
    let root_pw = super::sshd::ROOT_PASSWORD;
    let user_pw = super::sshd::USER_PASSWORD;
    format!(
        r#"set -e
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# systemd-networkd gives host0 the master's address (a .network file per master).
systemctl enable systemd-networkd.service
# apt's daily timers would take the dpkg lock in the middle of a test; a site's maintenance
# windows are not what this lab measures.
systemctl disable apt-daily.timer apt-daily-upgrade.timer 2>/dev/null || true
systemctl mask apt-daily.service apt-daily-upgrade.service
# Each master gets its own host key and machine id in its overlay; the base holds neither.
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
echo localhost > /etc/hostname
useradd --uid {uid} --user-group --create-home --shell /bin/bash {user}
printf '%s\n' 'root:{root_pw}' '{user}:{user_pw}' | chpasswd
printf '%s\n' '{user} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/tkeha-lab
chmod 0440 /etc/sudoers.d/tkeha-lab
install -d -m 0700 /root/.ssh
install -d -m 0700 -o {uid} -g {uid} /home/{user}/.ssh
# No package source yet: each master's sources.list names the lab mirror only.
: > /etc/apt/sources.list
rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin
"#
    )
}

fn apiserver_unit() -> String {
    format!(
        "[Unit]\nDescription=tkeha lab stand-in for kube-apiserver (answers HTTP on :6443)\n\n\
         [Service]\nExecStart={APISERVER_BIN} --port 6443\nRestart=no\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// The text the base's cache key is computed from: everything that decides its content.
fn base_recipe(debian_mirror: &str) -> String {
    format!(
        "recipe {RECIPE_VERSION}\nsuite {SUITE}\nvariant minbase\ninclude {}\nmirror {debian_mirror}\n\
         prep:\n{}\nsshd:\n{SSHD_DROPIN}\nunit:\n{}",
        INCLUDE.join(","),
        prep_script(),
        apiserver_unit()
    )
}

/// The machine-wide cache: `$TKEHA_LAB_CACHE` or /var/cache/tkeha-lab.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("TKEHA_LAB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/tkeha-lab"))
}

/// Hex SHA-256 of `data` (coreutils' sha256sum; no hashing crate for one call).
pub fn sha256_hex(data: &[u8]) -> Result<String> {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run sha256sum")?;
    child
        .stdin
        .take()
        .context("sha256sum stdin")?
        .write_all(data)?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(h) if out.status.success() && h.len() == 64 => Ok(h.to_string()),
        _ => bail!("sha256sum failed: {text}"),
    }
}

/// An exclusive lock on the cache, held while a build checks for and creates an entry.
#[derive(Debug)]
pub struct CacheLock {
    _file: fs::File,
}

impl CacheLock {
    /// Blocks until no other process builds into the cache.
    pub fn take(cache: &Path) -> Result<CacheLock> {
        fs::create_dir_all(cache)
            .with_context(|| format!("cannot create the lab cache {}", cache.display()))?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(cache.join("lock"))?;
        f.lock().context("locking the lab cache")?;
        Ok(CacheLock { _file: f })
    }
}

/// A cached root filesystem (or layer) and its key.
#[derive(Debug, Clone)]
pub struct Image {
    /// `base-KEY`, `keepalived-KEY`.
    pub name: String,
    /// The tree to use as an overlay lower directory.
    pub root: PathBuf,
}

/// Removes a half-built entry left by a killed build: unmounts anything under it first.
pub fn remove_partial(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    super::machine::unmount_under(dir);
    fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}

/// Runs `cmd`, sending its output to `log`; a failure quotes the log's last lines.
pub fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let f = fs::File::create(log)?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!(
            "{what} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail(log, 15)
        );
    }
    Ok(())
}

/// The last `n` lines of a file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Debian 12 base, built once per recipe (about 1.5 minutes and 320 MB) and reused after.
pub fn base() -> Result<Image> {
    let debian_mirror =
        std::env::var("TKEHA_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_DEBIAN_MIRROR.into());
    let key = sha256_hex(base_recipe(&debian_mirror).as_bytes())?;
    let cache = cache_dir();
    let name = format!("base-{}", &key[..16]);
    let dir = cache.join(&name);
    let image = Image {
        name: name.clone(),
        root: dir.join("root"),
    };
    if dir.join("ready").exists() {
        return Ok(image);
    }
    let _lock = CacheLock::take(&cache)?;
    if dir.join("ready").exists() {
        return Ok(image);
    }
    for tool in ["debootstrap", "chroot"] {
        if run("sh", &["-c", &format!("command -v {tool}")]).is_err() {
            bail!("`{tool}` is missing: run `bash scripts/deps.sh` (it installs debootstrap)");
        }
    }
    let t = Instant::now();
    eprintln!(
        "tkeha-lab: building the Debian 12 base image {name} in {} (once per recipe, about 1.5 minutes)",
        cache.display()
    );
    let building = cache.join(format!("{name}.building"));
    remove_partial(&building)?;
    fs::create_dir_all(&building)?;
    let root = building.join("root");
    run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", INCLUDE.join(",")))
            .arg(SUITE)
            .arg(&root)
            .arg(&debian_mirror),
        &building.join("debootstrap.log"),
        "debootstrap",
    )?;
    let dropin = root.join("etc/ssh/sshd_config.d/tkeha-lab.conf");
    fs::write(&dropin, SSHD_DROPIN)?;
    fs::write(
        root.join("etc/systemd/system").join(APISERVER_UNIT),
        apiserver_unit(),
    )?;
    fs::write(root.join("tmp/tkeha-prep.sh"), prep_script())?;
    run_logged(
        Command::new("chroot")
            .arg(&root)
            .args(["/bin/sh", "/tmp/tkeha-prep.sh"]),
        &building.join("prep.log"),
        "preparing the base (chroot)",
    )?;
    fs::remove_file(root.join("tmp/tkeha-prep.sh"))?;
    let contents = run(
        "chroot",
        &[
            &root.to_string_lossy(),
            "dpkg-query",
            "-W",
            "-f=${Package} ${Version}\\n",
        ],
    )?;
    fs::write(building.join("CONTENTS"), contents)?;
    fs::write(building.join("RECIPE"), base_recipe(&debian_mirror))?;
    fs::write(building.join("ready"), format!("{:.0?}\n", t.elapsed()))?;
    fs::rename(&building, &dir)?;
    eprintln!(
        "tkeha-lab: base image {name} ready after {:.0?}",
        t.elapsed()
    );
    Ok(image)
}

/// A layer over `base` with keepalived installed from `mirror` by apt, as on a host that already
/// has the package (unconfigured: Debian's unit does not start without keepalived.conf).
pub fn keepalived_layer(base: &Image, mirror: &super::mirror::MirrorContent) -> Result<Image> {
    let key = sha256_hex(
        format!(
            "recipe {RECIPE_VERSION}\nbase {}\nmirror {}\nkeepalived layer\n",
            base.name, mirror.name
        )
        .as_bytes(),
    )?;
    let cache = cache_dir();
    let name = format!("keepalived-{}", &key[..16]);
    let dir = cache.join(&name);
    let image = Image {
        name: name.clone(),
        root: dir.join("upper"),
    };
    if dir.join("ready").exists() {
        return Ok(image);
    }
    let _lock = CacheLock::take(&cache)?;
    if dir.join("ready").exists() {
        return Ok(image);
    }
    let t = Instant::now();
    eprintln!("tkeha-lab: building the keepalived-preinstalled layer {name}");
    let building = cache.join(format!("{name}.building"));
    remove_partial(&building)?;
    let (upper, work, merged) = (
        building.join("upper"),
        building.join("work"),
        building.join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir_all(d)?;
    }
    super::machine::mount_overlay(
        &format!("tkeha-layer-{}", &key[..8]),
        &[base.root.as_path()],
        &upper,
        &work,
        &merged,
    )?;
    let result = (|| -> Result<()> {
        // policy-rc.d: nothing starts during the install (there is no booted system here).
        let policy = merged.join("usr/sbin/policy-rc.d");
        fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
        fs::set_permissions(&policy, fs::Permissions::from_mode(0o755))?;
        let script = "set -e\n\
             echo 'deb [trusted=yes] file:/srv/tkeha-mirror ./' > /etc/apt/sources.list\n\
             apt-get update -q\n\
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q keepalived\n\
             : > /etc/apt/sources.list\n\
             rm -f /usr/sbin/policy-rc.d\n\
             rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin\n";
        run_logged(
            Command::new("systemd-nspawn")
                .arg("-q")
                .arg("-D")
                .arg(&merged)
                .args(["--machine=tkeha-layer", "--register=no", "--keep-unit"])
                .arg("--private-network")
                .args(["--resolv-conf=off", "--timezone=off", "--link-journal=no"])
                .arg(format!(
                    "--bind-ro={}:/srv/tkeha-mirror",
                    mirror.dir.display()
                ))
                .args(["/bin/sh", "-c", script]),
            &building.join("install.log"),
            "installing keepalived into the layer (systemd-nspawn)",
        )
    })();
    super::machine::unmount(&merged);
    result?;
    let _ = fs::remove_dir_all(&work);
    let _ = fs::remove_dir(&merged);
    fs::write(building.join("ready"), format!("{:.0?}\n", t.elapsed()))?;
    fs::rename(&building, &dir)?;
    eprintln!("tkeha-lab: layer {name} ready after {:.0?}", t.elapsed());
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipe_names_every_package_and_mirror() {
        let r = base_recipe("http://example.invalid/debian");
        for p in INCLUDE {
            assert!(r.contains(p), "{p} missing from the recipe");
        }
        assert!(r.contains("http://example.invalid/debian"));
        assert_ne!(r, base_recipe("http://other.invalid/debian"));
    }

    #[test]
    fn sha256_of_a_known_string() {
        assert_eq!(
            sha256_hex(b"abc").unwrap_or_default(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

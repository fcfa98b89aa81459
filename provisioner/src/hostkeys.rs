//! Host-key policy: verify a server's key against an OpenSSH known_hosts file, record first-seen keys, or (explicitly) ignore.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use ssh2::{CheckResult, HostKeyType, KnownHostFileKind, Session};

/// How to treat SSH host keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Only keys listed in this file are trusted; unknown or changed keys are refused.
    KnownHosts(PathBuf),
    /// Keys seen for the first time are appended to this file; changed keys are refused.
    AcceptNew(PathBuf),
    /// No check at all (lab use only).
    Insecure,
}

/// The user gave no host-key option.
pub const NO_POLICY_HELP: &str = "no host-key policy given: pass one of\n  \
  --known-hosts FILE            trust only keys listed in FILE (the masters' /etc/ssh/ssh_host_*_key.pub; `ssh-keyscan` output only after comparing fingerprints)\n  \
  --accept-new-host-keys        record keys seen for the first time (in --known-hosts FILE or ~/.ssh/known_hosts), refuse changed ones\n  \
  --insecure-ignore-host-keys   do not check host keys at all (lab use only: a man in the middle gets the SSH password)";

/// A host key was refused or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    /// The server sent no key at all.
    #[error("the server sent no host key")]
    NoKey,
    /// The key is not in the file (and new keys are not accepted).
    #[error(
        "host key ({kind}) not in {file}: refusing an unknown host (add it with `ssh-keyscan -p {port} {host} >> {file}` after checking its fingerprint, or use --accept-new-host-keys)"
    )]
    Unknown {
        /// The key's type (`ssh-ed25519`).
        kind: String,
        /// The known_hosts file.
        file: String,
        /// The master's address.
        host: String,
        /// Its SSH port.
        port: u16,
    },
    /// The file lists another key for this host.
    #[error(
        "host key ({kind}) does NOT match the one in {file}: the host was reinstalled or someone is intercepting the connection; if the change is expected remove the old entry with `ssh-keygen -R {name} -f {file}`"
    )]
    Changed {
        /// The key's type (`ssh-ed25519`).
        kind: String,
        /// The known_hosts file.
        file: String,
        /// The host's name in known_hosts (`[IP]:port` for a port other than 22).
        name: String,
    },
    /// The known_hosts file could not be read or parsed.
    #[error("cannot read known_hosts {file}: {message}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
    /// A first-seen key could not be appended (`--accept-new-host-keys`).
    #[error("cannot record the host key in {file}: {message}")]
    Write {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

/// Serialises read-check-append on known_hosts files across the per-host threads.
static KNOWN_HOSTS_LOCK: Mutex<()> = Mutex::new(());

/// The host name as written in known_hosts: bare for port 22, `[host]:port` otherwise.
pub fn known_hosts_name(host: IpAddr, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's name of a host key type.
pub fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// One known_hosts line for a raw key.
pub fn known_hosts_line(host: IpAddr, port: u16, key: &[u8], kind: HostKeyType) -> String {
    format!(
        "{} {} {}",
        known_hosts_name(host, port),
        key_type_name(kind),
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// What a known_hosts file says about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Listed with this key.
    Known,
    /// Not listed for this host and port.
    Unknown,
    /// Listed with another key.
    Changed,
}

/// Check a raw key against a known_hosts file (a missing file knows nothing).
pub fn check_key(
    file: &Path,
    host: IpAddr,
    port: u16,
    key: &[u8],
) -> Result<Verdict, HostKeyError> {
    let read_err = |message: String| HostKeyError::Read {
        file: file.display().to_string(),
        message,
    };
    if !file.exists() {
        return Ok(Verdict::Unknown);
    }
    let sess = Session::new().map_err(|e| read_err(e.to_string()))?;
    let mut kh = sess.known_hosts().map_err(|e| read_err(e.to_string()))?;
    kh.read_file(file, KnownHostFileKind::OpenSSH)
        .map_err(|e| read_err(e.message().to_string()))?;
    Ok(match kh.check_port(&host.to_string(), port, key) {
        CheckResult::Match => Verdict::Known,
        CheckResult::NotFound => Verdict::Unknown,
        CheckResult::Mismatch => Verdict::Changed,
        CheckResult::Failure => return Err(read_err("libssh2 could not check the key".into())),
    })
}

/// Apply the policy to a handshaken session.
pub fn verify(
    policy: &HostKeyPolicy,
    sess: &Session,
    host: IpAddr,
    port: u16,
) -> Result<(), HostKeyError> {
    let (file, accept_new) = match policy {
        HostKeyPolicy::Insecure => return Ok(()),
        HostKeyPolicy::KnownHosts(f) => (f, false),
        HostKeyPolicy::AcceptNew(f) => (f, true),
    };
    let (key, kind) = sess.host_key().ok_or(HostKeyError::NoKey)?;
    let key = key.to_vec();
    let _guard = KNOWN_HOSTS_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    match check_key(file, host, port, &key)? {
        Verdict::Known => Ok(()),
        Verdict::Changed => Err(HostKeyError::Changed {
            kind: key_type_name(kind).into(),
            file: file.display().to_string(),
            name: known_hosts_name(host, port),
        }),
        Verdict::Unknown if accept_new => append(file, &known_hosts_line(host, port, &key, kind)),
        Verdict::Unknown => Err(HostKeyError::Unknown {
            kind: key_type_name(kind).into(),
            file: file.display().to_string(),
            host: host.to_string(),
            port,
        }),
    }
}

fn append(file: &Path, line: &str) -> Result<(), HostKeyError> {
    let werr = |e: std::io::Error| HostKeyError::Write {
        file: file.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(werr)?;
    }
    let existing = std::fs::read(file).unwrap_or_default();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(werr)?;
    let sep = if existing.is_empty() || existing.ends_with(b"\n") {
        ""
    } else {
        "\n"
    };
    f.write_all(format!("{sep}{line}\n").as_bytes())
        .map_err(werr)
}

/// `~/.ssh/known_hosts` of the invoking user.
pub fn default_known_hosts() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".ssh").join("known_hosts")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Raw ed25519 public key blobs (string "ssh-ed25519" + 32 bytes).
    fn blob(fill: u8) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 11];
        b.extend_from_slice(b"ssh-ed25519");
        b.extend_from_slice(&[0, 0, 0, 32]);
        b.extend_from_slice(&[fill; 32]);
        b
    }

    #[test]
    fn port_22_is_bare_other_ports_bracketed() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(known_hosts_name(ip, 22), "10.0.0.1");
        assert_eq!(known_hosts_name(ip, 2222), "[10.0.0.1]:2222");
    }

    #[test]
    fn known_unknown_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.10".parse().unwrap();
        assert_eq!(check_key(&file, a, 22, &blob(1)).unwrap(), Verdict::Unknown);
        append(
            &file,
            &known_hosts_line(a, 22, &blob(1), HostKeyType::Ed25519),
        )
        .unwrap();
        append(
            &file,
            &known_hosts_line(b, 2222, &blob(3), HostKeyType::Ed25519),
        )
        .unwrap();
        assert_eq!(check_key(&file, a, 22, &blob(1)).unwrap(), Verdict::Known);
        assert_eq!(check_key(&file, a, 22, &blob(2)).unwrap(), Verdict::Changed);
        // 10.0.0.10 is not 10.0.0.1, and its entry is for port 2222 only.
        assert_eq!(check_key(&file, b, 22, &blob(3)).unwrap(), Verdict::Unknown);
        assert_eq!(check_key(&file, b, 2222, &blob(3)).unwrap(), Verdict::Known);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"),
            "{text}"
        );
        assert!(text.contains("[10.0.0.10]:2222 ssh-ed25519 "));
    }

    #[test]
    fn help_names_all_three_options() {
        for flag in [
            "--known-hosts",
            "--accept-new-host-keys",
            "--insecure-ignore-host-keys",
        ] {
            assert!(NO_POLICY_HELP.contains(flag));
        }
    }
}

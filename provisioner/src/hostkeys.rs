//! Host-key policy: verify a server's key against an OpenSSH known_hosts file, record first-seen keys, or (explicitly) ignore.
//!
//! The same policy covers every hop: the masters, and the jump servers in front of them (see
//! `transport`). The file is read by [`known_hosts`], which honours `@revoked` and reports
//! `@cert-authority` (host certificates are not supported: see [`HostKeyError::CertAuthority`]).

pub mod known_hosts;

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use ssh2::{HostKeyType, Session};

pub use known_hosts::Found;

/// Largest known_hosts file read (OpenSSH's own files are a few hundred bytes per host).
pub const MAX_KNOWN_HOSTS_BYTES: u64 = 16 * 1024 * 1024;

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
    /// The key is listed `@revoked` for this host: OpenSSH's "REVOKED HOST KEY DETECTED".
    #[error(
        "REVOKED HOST KEY DETECTED: the host key ({kind}) is marked @revoked in {file} (line {line}); a stolen key may be impersonating this host: refusing to connect (give the host a new key, and list that one)"
    )]
    Revoked {
        /// The key's type (`ssh-ed25519`).
        kind: String,
        /// The known_hosts file.
        file: String,
        /// The `@revoked` line.
        line: usize,
    },
    /// The host is trusted only through a certificate authority, which cannot be used here.
    #[error(
        "host key ({kind}) not in {file}, which trusts a certificate authority for this host instead (@cert-authority, line {line}): host certificates are not supported (libssh2, the SSH library tkeha uses, negotiates no host certificates, so the host shows its plain key and nothing in the file vouches for it); add the plain key with `ssh-keyscan -p {port} {host} >> {file}` after checking its fingerprint"
    )]
    CertAuthority {
        /// The key's type (`ssh-ed25519`).
        kind: String,
        /// The known_hosts file.
        file: String,
        /// The `@cert-authority` line.
        line: usize,
        /// The host's address.
        host: String,
        /// Its SSH port.
        port: u16,
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

/// Check a raw key against a known_hosts file (a missing file knows nothing).
///
/// # Errors
///
/// [`HostKeyError::Read`] when the file cannot be read, is larger than
/// [`MAX_KNOWN_HOSTS_BYTES`], or holds a `@revoked` line that cannot be read.
pub fn check_key(file: &Path, host: IpAddr, port: u16, key: &[u8]) -> Result<Found, HostKeyError> {
    let read_err = |message: String| HostKeyError::Read {
        file: file.display().to_string(),
        message,
    };
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Unknown),
        Err(e) => return Err(read_err(e.to_string())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_KNOWN_HOSTS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_err(e.to_string()))?;
    if bytes.len() as u64 > MAX_KNOWN_HOSTS_BYTES {
        return Err(read_err(format!(
            "larger than {} MiB: not a known_hosts file",
            MAX_KNOWN_HOSTS_BYTES >> 20
        )));
    }
    let entries = known_hosts::parse(&String::from_utf8_lossy(&bytes))
        .map_err(|e| read_err(e.to_string()))?;
    Ok(known_hosts::lookup(
        &entries,
        &known_hosts_name(host, port),
        key,
    ))
}

/// Apply the policy to a handshaken session: `host:port` is the name the key is looked up under
/// (the address the user wrote, whatever route the connection took).
///
/// # Errors
///
/// A [`HostKeyError`] saying which check failed and how to fix it.
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
    let file_name = || file.display().to_string();
    match check_key(file, host, port, &key)? {
        Found::Known => Ok(()),
        Found::Revoked { line } => Err(HostKeyError::Revoked {
            kind: key_type_name(kind).into(),
            file: file_name(),
            line,
        }),
        Found::Changed { .. } => Err(HostKeyError::Changed {
            kind: key_type_name(kind).into(),
            file: file_name(),
            name: known_hosts_name(host, port),
        }),
        // Not even --accept-new-host-keys records a key where the file asks for a certificate.
        Found::CertAuthority { line } => Err(HostKeyError::CertAuthority {
            kind: key_type_name(kind).into(),
            file: file_name(),
            line,
            host: host.to_string(),
            port,
        }),
        Found::Unknown if accept_new => append(file, &known_hosts_line(host, port, &key, kind)),
        Found::Unknown => Err(HostKeyError::Unknown {
            kind: key_type_name(kind).into(),
            file: file_name(),
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
        assert_eq!(check_key(&file, a, 22, &blob(1)).unwrap(), Found::Unknown);
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
        assert_eq!(check_key(&file, a, 22, &blob(1)).unwrap(), Found::Known);
        assert_eq!(
            check_key(&file, a, 22, &blob(2)).unwrap(),
            Found::Changed { line: 1 }
        );
        // 10.0.0.10 is not 10.0.0.1, and its entry is for port 2222 only.
        assert_eq!(check_key(&file, b, 22, &blob(3)).unwrap(), Found::Unknown);
        assert_eq!(check_key(&file, b, 2222, &blob(3)).unwrap(), Found::Known);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"),
            "{text}"
        );
        assert!(text.contains("[10.0.0.10]:2222 ssh-ed25519 "));
    }

    #[test]
    fn a_file_with_markers_revokes_and_names_the_certificate_authority() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let line = known_hosts_line(a, 22, &blob(1), HostKeyType::Ed25519);
        let key = line.split(' ').nth(2).unwrap().to_string();
        std::fs::write(
            &file,
            format!(
                "{line}\n@revoked * ssh-ed25519 {key}\n@cert-authority 10.0.0.* ssh-ed25519 {key}\n"
            ),
        )
        .unwrap();
        assert_eq!(
            check_key(&file, a, 22, &blob(1)).unwrap(),
            Found::Revoked { line: 2 }
        );
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(
            check_key(&file, b, 22, &blob(2)).unwrap(),
            Found::CertAuthority { line: 3 }
        );
        let e = HostKeyError::Revoked {
            kind: "ssh-ed25519".into(),
            file: file.display().to_string(),
            line: 2,
        };
        assert!(
            e.to_string().starts_with("REVOKED HOST KEY DETECTED: "),
            "{e}"
        );
        let e = HostKeyError::CertAuthority {
            kind: "ssh-ed25519".into(),
            file: "kh".into(),
            line: 3,
            host: "10.0.0.2".into(),
            port: 22,
        };
        assert!(
            e.to_string()
                .contains("host certificates are not supported"),
            "{e}"
        );
        // A revocation that cannot be read refuses the whole file.
        std::fs::write(&file, format!("{line}\n@revoked * ssh-ed25519\n")).unwrap();
        let e = check_key(&file, a, 22, &blob(1)).unwrap_err();
        assert!(e.to_string().contains("line 2: a @revoked line"), "{e}");
    }

    #[test]
    fn an_oversized_or_unreadable_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let e = check_key(dir.path(), a, 22, &blob(1)).unwrap_err();
        assert!(e.to_string().starts_with("cannot read known_hosts"), "{e}");
        let big = dir.path().join("big");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_KNOWN_HOSTS_BYTES + 1).unwrap();
        let e = check_key(&big, a, 22, &blob(1)).unwrap_err();
        assert!(e.to_string().contains("larger than 16 MiB"), "{e}");
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

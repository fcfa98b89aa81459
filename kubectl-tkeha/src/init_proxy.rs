//! `init --proxy-*`: scaffold the same `proxy` (TKEStack's `ClusterMachineProxy`: an SSH jump server or a SOCKS5 proxy) on every master.
//!
//! The jump server's password comes from stdin (`--proxy-password-stdin`) or a no-echo prompt,
//! like the machines' password, or its key from a file (`--proxy-ssh-key`); it is written
//! base64-encoded and never printed. A SOCKS5 proxy needs no credentials (TKEStack's dialer
//! uses none); with `--proxy-user` its password is asked for the same way (RFC 1929).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Args;
use serde_json::{Map, Value, json};

use crate::secret;

/// Largest private key file accepted for the jump server (OpenSSH keys are a few KiB).
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// The two proxy types TKEStack defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyType {
    /// an SSH jump server (bastion): SSH to it, then a tunnel to each master.
    #[value(name = "SSHJumpServer")]
    SshJumpServer,
    /// a SOCKS5 proxy: no authentication, or a username and password (RFC 1929).
    #[value(name = "SOCKS5")]
    Socks5,
}

impl ProxyType {
    fn name(self) -> &'static str {
        match self {
            ProxyType::SshJumpServer => "SSHJumpServer",
            ProxyType::Socks5 => "SOCKS5",
        }
    }

    fn default_port(self) -> i64 {
        match self {
            ProxyType::SshJumpServer => 22,
            ProxyType::Socks5 => 1080,
        }
    }
}

/// The flags that put a `proxy` on every master (`spec.machines[].proxy`).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Proxy (every master reached through it)")]
pub struct ProxyArgs {
    /// Reach every master through this kind of proxy: SSHJumpServer or SOCKS5.
    #[arg(
        long,
        value_enum,
        value_name = "TYPE",
        ignore_case = true,
        requires = "proxy_ip"
    )]
    pub proxy_type: Option<ProxyType>,
    /// The proxy's address.
    #[arg(long, value_name = "IP", requires = "proxy_type")]
    pub proxy_ip: Option<String>,
    /// The proxy's port [default: 22 for SSHJumpServer, 1080 for SOCKS5].
    #[arg(
        long,
        value_name = "PORT",
        requires = "proxy_type",
        allow_negative_numbers = true
    )]
    pub proxy_port: Option<i64>,
    /// The user on the jump server (required for SSHJumpServer); for SOCKS5, the RFC 1929
    /// username (its password is then asked for).
    #[arg(long, value_name = "USER", requires = "proxy_type")]
    pub proxy_user: Option<String>,
    /// Read the proxy's password from stdin (to EOF; one trailing newline is dropped). Without
    /// it (and without --proxy-ssh-key) the password is asked for on the terminal, no echo.
    #[arg(
        long,
        requires = "proxy_type",
        conflicts_with_all = ["password_stdin", "passphrase_stdin", "proxy_ssh_key"],
    )]
    pub proxy_password_stdin: bool,
    /// Log in to the jump server with this private key file (written to proxy.privateKey).
    #[arg(
        long,
        value_name = "FILE",
        value_hint = clap::ValueHint::FilePath,
        requires = "proxy_type",
    )]
    pub proxy_ssh_key: Option<PathBuf>,
}

/// Put the proxy the flags describe (if any) on every machine of `manifest`, reading its secret
/// from stdin, the terminal or the key file.
///
/// # Errors
///
/// A flag that does not fit the proxy type, a missing credential, an unreadable key file.
pub fn add_to_machines(args: &ProxyArgs, manifest: &mut Value) -> anyhow::Result<()> {
    let Some(proxy) = proxy_value(args)? else {
        return Ok(());
    };
    for m in manifest
        .pointer_mut("/spec/machines")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        m["proxy"] = proxy.clone();
    }
    Ok(())
}

/// The `proxy` object the flags describe, or `None` without `--proxy-type`.
fn proxy_value(args: &ProxyArgs) -> anyhow::Result<Option<Value>> {
    let Some(kind) = args.proxy_type else {
        return Ok(None);
    };
    let mut p = Map::new();
    p.insert("type".into(), json!(kind.name()));
    p.insert(
        "ip".into(),
        json!(args.proxy_ip.as_deref().unwrap_or_default().trim()),
    );
    p.insert(
        "port".into(),
        json!(args.proxy_port.unwrap_or(kind.default_port())),
    );
    match kind {
        ProxyType::SshJumpServer => {
            let Some(user) = &args.proxy_user else {
                bail!(
                    "--proxy-user is required with --proxy-type SSHJumpServer: the user to log in to the jump server as"
                );
            };
            p.insert("username".into(), json!(user));
            match &args.proxy_ssh_key {
                Some(path) => {
                    p.insert("privateKey".into(), json!(read_key_file(path)?));
                }
                None => {
                    p.insert(
                        "password".into(),
                        json!(password(args, "jump server password")?),
                    );
                }
            }
        }
        ProxyType::Socks5 => {
            if args.proxy_ssh_key.is_some() {
                bail!(
                    "--proxy-ssh-key applies to --proxy-type SSHJumpServer only: a SOCKS5 proxy takes a username and password (RFC 1929) or nothing"
                );
            }
            match &args.proxy_user {
                Some(user) => {
                    p.insert("username".into(), json!(user));
                    p.insert(
                        "password".into(),
                        json!(password(args, "SOCKS5 proxy password")?),
                    );
                }
                None if args.proxy_password_stdin => bail!(
                    "--proxy-password-stdin with --proxy-type SOCKS5 needs --proxy-user (RFC 1929 sends both); without them the proxy is used with no authentication, as TKEStack does"
                ),
                None => {}
            }
        }
    }
    Ok(Some(Value::Object(p)))
}

/// The proxy's password, base64: from stdin, or a confirmed no-echo prompt on a terminal.
fn password(args: &ProxyArgs, what: &str) -> anyhow::Result<String> {
    let secret = if args.proxy_password_stdin {
        secret::from_stdin(what)?
    } else if secret::stdin_is_terminal() {
        secret::from_prompt(what, true)?
    } else {
        bail!(
            "no {what}: pass --proxy-password-stdin (and pipe it; the machines' password then cannot come from stdin too), --proxy-ssh-key FILE for a jump server, or run init on a terminal to be asked"
        );
    };
    Ok(secret.to_base64())
}

/// The key file's bytes as standard base64. The key itself is never printed in messages.
fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let name = tkeha_api::field::escape(&path.display().to_string()).into_owned();
    let file = std::fs::File::open(path).with_context(|| format!("--proxy-ssh-key {name}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--proxy-ssh-key {name}"))?;
    if bytes.len() as u64 > MAX_KEY_BYTES {
        bytes.fill(0);
        bail!("--proxy-ssh-key {name}: larger than 64 KiB, not a private key");
    }
    if bytes.is_empty() {
        bail!("--proxy-ssh-key {name}: the file is empty");
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    bytes.fill(0);
    Ok(encoded)
}

/// The flag that sets a field of `spec.machines[i].proxy` (`leaf` is the field's name).
pub fn flag_for(leaf: &str) -> Option<&'static str> {
    match leaf {
        "type" => Some("--proxy-type"),
        "ip" => Some("--proxy-ip"),
        "port" => Some("--proxy-port"),
        "username" => Some("--proxy-user"),
        "password" => Some("--proxy-password-stdin"),
        "privateKey" | "passPhrase" => Some("--proxy-ssh-key"),
        "proxy" => Some("--proxy-type"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        proxy: ProxyArgs,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        passphrase_stdin: bool,
    }

    fn parse(args: &[&str]) -> Result<ProxyArgs, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("init").chain(args.iter().copied()))
            .map(|w| w.proxy)
    }

    #[test]
    fn no_proxy_flags_no_proxy() {
        let mut m = json!({"spec": {"machines": [{"ip": "10.0.0.2"}]}});
        add_to_machines(&parse(&[]).unwrap(), &mut m).unwrap();
        assert_eq!(m, json!({"spec": {"machines": [{"ip": "10.0.0.2"}]}}));
    }

    #[test]
    fn socks5_needs_no_credentials_and_gets_its_default_port_on_every_machine() {
        let args = parse(&["--proxy-type", "socks5", "--proxy-ip", "10.0.0.6"]).unwrap();
        let mut m = json!({"spec": {"machines": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}]}});
        add_to_machines(&args, &mut m).unwrap();
        for machine in m["spec"]["machines"].as_array().unwrap() {
            assert_eq!(
                machine["proxy"],
                json!({"type": "SOCKS5", "ip": "10.0.0.6", "port": 1080})
            );
        }
    }

    #[test]
    fn a_jump_server_with_a_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_jump");
        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n").unwrap();
        let args = parse(&[
            "--proxy-type",
            "SSHJumpServer",
            "--proxy-ip",
            "10.0.0.5",
            "--proxy-port",
            "2222",
            "--proxy-user",
            "jumper",
            "--proxy-ssh-key",
            key.to_str().unwrap(),
        ])
        .unwrap();
        let p = proxy_value(&args).unwrap().unwrap();
        assert_eq!(p["type"], "SSHJumpServer");
        assert_eq!(p["port"], 2222);
        assert_eq!(p["username"], "jumper");
        assert_eq!(
            p["privateKey"],
            base64::engine::general_purpose::STANDARD
                .encode("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
        );
        assert!(p.get("password").is_none());
    }

    #[test]
    fn flags_that_do_not_fit_are_refused() {
        // A jump server needs a user.
        let args = parse(&["--proxy-type", "SSHJumpServer", "--proxy-ip", "10.0.0.5"]).unwrap();
        let e = proxy_value(&args).unwrap_err().to_string();
        assert!(e.contains("--proxy-user is required"), "{e}");
        // A SOCKS5 proxy takes no key.
        let args = parse(&[
            "--proxy-type",
            "SOCKS5",
            "--proxy-ip",
            "10.0.0.6",
            "--proxy-ssh-key",
            "k",
        ])
        .unwrap();
        let e = proxy_value(&args).unwrap_err().to_string();
        assert!(e.contains("SSHJumpServer only"), "{e}");
        // A password without a user for SOCKS5.
        let args = parse(&[
            "--proxy-type",
            "SOCKS5",
            "--proxy-ip",
            "10.0.0.6",
            "--proxy-password-stdin",
        ])
        .unwrap();
        let e = proxy_value(&args).unwrap_err().to_string();
        assert!(e.contains("needs --proxy-user"), "{e}");
        // Clap: the type needs an address, the rest need the type, stdin carries one secret.
        assert!(parse(&["--proxy-type", "SOCKS5"]).is_err());
        assert!(parse(&["--proxy-ip", "10.0.0.6"]).is_err());
        assert!(parse(&["--proxy-type", "HTTP", "--proxy-ip", "10.0.0.6"]).is_err());
        assert!(
            parse(&[
                "--proxy-type",
                "SSHJumpServer",
                "--proxy-ip",
                "10.0.0.5",
                "--proxy-password-stdin",
                "--password-stdin",
            ])
            .is_err()
        );
        // A missing key file names the flag.
        let args = parse(&[
            "--proxy-type",
            "SSHJumpServer",
            "--proxy-ip",
            "10.0.0.5",
            "--proxy-user",
            "j",
            "--proxy-ssh-key",
            "/nonexistent/key",
        ])
        .unwrap();
        let e = format!("{:#}", proxy_value(&args).unwrap_err());
        assert!(e.starts_with("--proxy-ssh-key /nonexistent/key"), "{e}");
    }

    #[test]
    fn refusals_of_proxy_fields_point_at_the_proxy_flags() {
        assert_eq!(flag_for("username"), Some("--proxy-user"));
        assert_eq!(flag_for("password"), Some("--proxy-password-stdin"));
        assert_eq!(flag_for("ip"), Some("--proxy-ip"));
        assert_eq!(flag_for("labels"), None);
    }
}

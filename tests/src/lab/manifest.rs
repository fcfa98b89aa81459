//! Cluster manifests (platform.tkestack.io/v1) describing a lab's masters, for the provisioner.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Which HA flavour the manifest asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `features.ha.tke`: keepalived floats the VIP.
    Tke,
    /// `features.ha.thirdParty`: the lab's haproxy holds the VIP.
    ThirdParty,
}

/// How the provisioner logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The user's password (base64 in `password`).
    Password,
    /// The lab's unencrypted key.
    Key,
    /// The lab's second key, encrypted with [`super::sshd::KEY_PASSPHRASE`] (given as `passPhrase`).
    KeyWithPassphrase,
}

/// Which of the proxy tier's proxies every machine names in `proxy` (a lab with `proxies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabProxy {
    /// `SSHJumpServer`: the jump host, as its user with its password.
    Jump,
    /// `SOCKS5` without credentials (TKEStack's way).
    Socks5,
    /// `SOCKS5` with RFC 1929 username and password.
    Socks5Login,
}

/// Options of a lab manifest.
#[derive(Debug, Clone)]
pub struct ManifestOptions {
    /// Which HA mode.
    pub mode: Mode,
    /// `root` or the lab's sudo user `tkeha`.
    pub user: String,
    /// How the provisioner logs in.
    pub auth: Auth,
    /// Third-party vport (also used as the LB frontend port).
    pub vport: u16,
    /// The proxy every machine is reached through (`machines[].proxy`), if any.
    pub proxy: Option<LabProxy>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        Self {
            mode: Mode::Tke,
            user: "root".into(),
            auth: Auth::Password,
            vport: 6443,
            proxy: None,
        }
    }
}

/// Renders the Cluster for machines `ips` with VIP `vip`. `key_pem` is the text of the private key
/// `opts.auth` asks for (unused for password logins).
pub fn render(
    name: &str,
    vip: &str,
    ips: &[String],
    key_pem: &str,
    opts: &ManifestOptions,
) -> Value {
    let password = if opts.user == "root" {
        super::sshd::ROOT_PASSWORD
    } else {
        super::sshd::USER_PASSWORD
    };
    let machines: Vec<Value> = ips
        .iter()
        .map(|ip| {
            let mut m = json!({ "ip": ip, "port": 22, "username": opts.user });
            match opts.auth {
                Auth::Password => m["password"] = json!(STANDARD.encode(password)),
                Auth::Key => m["privateKey"] = json!(STANDARD.encode(key_pem)),
                Auth::KeyWithPassphrase => {
                    m["privateKey"] = json!(STANDARD.encode(key_pem));
                    m["passPhrase"] = json!(STANDARD.encode(super::sshd::KEY_PASSPHRASE));
                }
            }
            m
        })
        .collect();
    let ha = match opts.mode {
        Mode::Tke => json!({ "tke": { "vip": vip } }),
        Mode::ThirdParty => json!({ "thirdParty": { "vip": vip, "vport": opts.vport } }),
    };
    json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": { "name": name },
        "spec": {
            "type": "Baremetal",
            "version": "1.30.0",
            "networkDevice": "eth0",
            "clusterCIDR": "10.244.0.0/16",
            "features": { "ha": ha },
            "machines": machines,
        }
    })
}

/// Base64 of a secret as the Cluster object stores it (Go `[]byte`).
pub fn b64(secret: &str) -> String {
    STANDARD.encode(secret)
}

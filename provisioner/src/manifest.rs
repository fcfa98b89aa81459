//! Loading a Cluster manifest into a provisioning [`Plan`]: parse, review (defaults + rules), extract masters and credentials.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde_json::Value;
use tkeha_api::field::escape;
use tkeha_api::types::{ClusterMachine, ClusterMachineProxy, ClusterSpec};

use crate::transport::{JumpServer, Route, Socks5Auth, Socks5Proxy};

use crate::input::InputError;

/// A secret decoded from the manifest; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a decoded secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it (authentication).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// SSH credentials of one master.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `password`, decoded.
    pub password: Option<Secret>,
    /// `privateKey` (PEM), decoded.
    pub private_key: Option<Secret>,
    /// `passPhrase` of the private key, decoded.
    pub pass_phrase: Option<Secret>,
}

/// One master to provision.
#[derive(Debug, Clone)]
pub struct Machine {
    /// `spec.machines[].ip`: the master's address on the node network.
    pub ip: IpAddr,
    /// Its SSH port (22 by default).
    pub port: u16,
    /// The login name.
    pub username: String,
    /// How to log in.
    pub credentials: Credentials,
    /// How this host reaches it: directly, or through its `proxy` (a SOCKS5 proxy or an SSH
    /// jump server). Its SSH connection and the probes made for it take this route.
    pub route: Route,
}

impl Machine {
    /// The name used in reports and progress lines (the machine IP).
    pub fn name(&self) -> String {
        self.ip.to_string()
    }
}

/// The HA mode of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// keepalived on the masters floats the VIP.
    Tke {
        /// The VRRP router id.
        vrid: u8,
    },
    /// An external LB forwards `VIP:vport` to every master's :6443.
    ThirdParty {
        /// The LB's port.
        vport: u16,
    },
}

impl Mode {
    /// The name as spelled in the manifest and the report.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Tke { .. } => "tke",
            Mode::ThirdParty { .. } => "thirdParty",
        }
    }
}

/// Everything the provisioner needs from a Cluster.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `metadata.name` (may be empty).
    pub cluster: String,
    /// TKE HA or third-party HA.
    pub mode: Mode,
    /// The virtual IP of the control plane.
    pub vip: IpAddr,
    /// The masters, in manifest order (the first gets the highest VRRP priority).
    pub machines: Vec<Machine>,
    /// Review warnings (e.g. an even number of masters).
    pub warnings: Vec<String>,
    /// The failover profile asked for: `--failover-profile`, else the Cluster's annotation
    /// (`tkeha.tkestack.io/failover-profile`); `None` for the default.
    pub failover_profile: Option<crate::FailoverProfile>,
}

impl Plan {
    /// The failover profile keepalived should run.
    pub fn profile(&self) -> crate::FailoverProfile {
        self.failover_profile.unwrap_or_default()
    }
}

impl Plan {
    /// The one route of every master: the way this host probes addresses that belong to no
    /// single master (the VIP, the load balancer's `VIP:vport`).
    ///
    /// # Errors
    ///
    /// A message naming the masters' routes when they differ: a probe then cannot pick one, and
    /// is never made directly instead.
    pub fn probe_route(&self) -> Result<&Route, String> {
        if let Some(route) = Route::shared(self.machines.iter().map(|m| &m.route)) {
            return Ok(route);
        }
        // The masters of each route, routes in the order they first appear.
        let mut ways: Vec<(&Route, Vec<String>)> = Vec::new();
        for m in &self.machines {
            match ways.iter_mut().find(|(r, _)| *r == &m.route) {
                Some((_, ips)) => ips.push(m.ip.to_string()),
                None => ways.push((&m.route, vec![m.ip.to_string()])),
            }
        }
        let ways: Vec<String> = ways
            .iter()
            .map(|(route, ips)| format!("{} {route}", ips.join(", ")))
            .collect();
        Err(format!(
            "the masters are reached in different ways ({}): the probes of the VIP from this host \
             go through the masters' proxy and cannot pick one; give every machine the same proxy",
            ways.join("; ")
        ))
    }
}

/// Why a manifest cannot be provisioned (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The manifest cannot be read, parsed or decoded as a Cluster: worded as for every command
    /// ([`InputError`]).
    #[error(transparent)]
    Input(#[from] InputError),
    /// The rules refuse it (the same rules as the webhook's): the lines `validate` prints, its
    /// warnings first, then one line per field error, then the verdict.
    #[error("{}", invalid_lines(path, errors, warnings))]
    Invalid {
        /// Where the object came from.
        path: String,
        /// One field error per line.
        errors: Vec<String>,
        /// The review's warnings.
        warnings: Vec<String>,
    },
    /// Valid, but nothing the provisioner can work on (no HA set, no machines).
    #[error("{}: {}", escape(path), escape(message))]
    Unsupported {
        /// Where the object came from.
        path: String,
        /// What is missing.
        message: String,
    },
}

/// `Warning: W` lines, `FILE: ERROR` lines and `FILE: invalid (N errors, M warnings)`: the words
/// of `validate`, for every command that refuses an invalid Cluster.
fn invalid_lines(path: &str, errors: &[String], warnings: &[String]) -> String {
    let path = escape(path);
    let mut lines: Vec<String> = warnings
        .iter()
        .map(|w| format!("Warning: {}", escape(w)))
        .collect();
    lines.extend(errors.iter().map(|e| format!("{path}: {}", escape(e))));
    lines.push(invalid_summary(&path, errors.len(), warnings.len()));
    lines.join("\n")
}

/// The verdict line of an invalid Cluster: `FILE: invalid (2 errors, 1 warning)`.
pub fn invalid_summary(name: &str, errors: usize, warnings: usize) -> String {
    format!(
        "{name}: invalid ({}, {})",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// `1 error`, `2 errors`, `0 warnings`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Read, review and convert a manifest file (JSON, JSON with `//` comments, or YAML; `-` is
/// stdin), read as every command reads one ([`crate::input::load`]).
///
/// # Errors
///
/// [`PlanError::Input`] when the file cannot be read or parsed; otherwise as [`plan_from_object`].
pub fn load_plan(path: &Path) -> Result<Plan, PlanError> {
    let loaded = crate::input::load(path)?;
    plan_from_object(&loaded.value, &loaded.name)
}

/// Review a manifest's text with the shared rules (defaults first, as the webhook does) and
/// convert it into a plan; `origin` names it in errors.
///
/// ```
/// use tkeha_provisioner::{Mode, plan_from_text};
///
/// let plan = plan_from_text(
///     r#"# a YAML manifest
/// apiVersion: platform.tkestack.io/v1
/// kind: Cluster
/// metadata: {name: prod}
/// spec:
///   type: Baremetal
///   version: 1.30.0
///   features: {ha: {tke: {vip: 192.168.1.10}}}
///   machines:
///   - {ip: 192.168.1.2, username: root, password: MTIzNDU2}
///   - {ip: 192.168.1.3, username: root, password: MTIzNDU2}
///   - {ip: 192.168.1.4, username: root, password: MTIzNDU2}
/// "#,
///     "cluster.yaml",
/// )?;
/// assert_eq!(plan.mode, Mode::Tke { vrid: 11 }, "vrid defaulted from the VIP");
/// assert_eq!(plan.machines[0].port, 22);
/// assert_eq!(plan.machines[0].credentials.password.as_ref().map(|p| p.expose()), Some("123456"));
/// assert!(!format!("{plan:?}").contains("123456"), "Debug never shows a secret");
///
/// let refused = plan_from_text(r#"{"spec": {"features": {"ha": {"tke": {"vip": "10.0.0.300"}}}}}"#, "bad.json");
/// assert!(refused.unwrap_err().to_string().contains("spec.features.ha.tke.vip"));
/// # Ok::<(), tkeha_provisioner::PlanError>(())
/// ```
///
/// # Errors
///
/// [`PlanError::Input`] for text that is neither JSON nor YAML or an object that is not a
/// Cluster, [`PlanError::Invalid`] with every field error the rules find,
/// [`PlanError::Unsupported`] for a valid Cluster without HA or machines.
pub fn plan_from_text(text: &str, origin: &str) -> Result<Plan, PlanError> {
    let loaded = crate::input::parse(crate::input::Input {
        name: origin.to_string(),
        text: text.to_string(),
    })?;
    plan_from_object(&loaded.value, origin)
}

/// Review a Cluster object (defaults, every rule, as the webhook does) and convert it: the same
/// for a manifest file and for an object read from the API server. `origin` names it in errors.
///
/// # Errors
///
/// As [`plan_from_text`], without a syntax error.
pub fn plan_from_object(value: &Value, origin: &str) -> Result<Plan, PlanError> {
    let review =
        tkeha_api::review(value, None, &tkeha_api::Policy::default()).map_err(|error| {
            InputError::Decode {
                name: origin.to_string(),
                error,
            }
        })?;
    if !review.allowed() {
        return Err(PlanError::Invalid {
            path: origin.to_string(),
            errors: review.errors.iter().map(|e| e.to_string()).collect(),
            warnings: review.warnings,
        });
    }
    // The names are the API server's business at create time; a plan provisions masters, so
    // warnings about what TKEStack would do to `metadata` at create are noise here.
    let warnings = review
        .warnings
        .into_iter()
        .filter(|w| !w.starts_with("metadata."))
        .collect();
    plan_from_value(&review.defaulted, origin).map(|mut plan| {
        plan.warnings = warnings;
        plan
    })
}

/// Convert a reviewed (defaulted and valid) Cluster object.
///
/// # Errors
///
/// [`PlanError::Unsupported`] naming the field that does not fit (no HA, no VIP, a port or
/// vrid out of range, a secret that is not UTF-8 text).
pub fn plan_from_value(obj: &Value, origin: &str) -> Result<Plan, PlanError> {
    let unsupported = |message: String| PlanError::Unsupported {
        path: origin.to_string(),
        message,
    };
    let spec: ClusterSpec = serde_json::from_value(obj.get("spec").cloned().unwrap_or(Value::Null))
        .map_err(|e| unsupported(format!("spec: {e}")))?;
    let cluster = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let ha = spec
        .features
        .as_ref()
        .and_then(|f| f.ha.as_ref())
        .ok_or_else(|| {
            unsupported(
                "spec.features.ha is not set: nothing to provision (set tke.vip or thirdParty.vip)"
                    .into(),
            )
        })?;
    let vip_text = ha
        .vip()
        .ok_or_else(|| unsupported("spec.features.ha: no VIP".into()))?;
    let vip: IpAddr = vip_text.parse().map_err(|_| {
        unsupported(format!(
            "spec.features.ha: VIP {vip_text:?} is not an IP address"
        ))
    })?;
    let mode = if let Some(tke) = &ha.tke {
        let vrid = tke
            .vrid
            .unwrap_or_else(|| tkeha_api::defaults::vrid_for(vip));
        let vrid = u8::try_from(vrid).ok().filter(|v| *v >= 1).ok_or_else(|| {
            unsupported(format!(
                "spec.features.ha.tke.vrid {vrid} is outside 1..255"
            ))
        })?;
        Mode::Tke { vrid }
    } else if let Some(tp) = &ha.third_party {
        let vport = tp
            .vport
            .and_then(|v| u16::try_from(v).ok())
            .filter(|v| *v >= 1)
            .ok_or_else(|| {
                unsupported("spec.features.ha.thirdParty.vport must be 1..65535".into())
            })?;
        Mode::ThirdParty { vport }
    } else {
        return Err(unsupported(
            "spec.features.ha: neither tke nor thirdParty is set".into(),
        ));
    };
    let machines = spec.machines.unwrap_or_default();
    if machines.is_empty() {
        return Err(unsupported(
            "spec.machines is empty: no master to provision".into(),
        ));
    }
    let machines = machines
        .iter()
        .enumerate()
        .map(|(i, m)| machine(i, m).map_err(unsupported))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        cluster,
        mode,
        vip,
        machines,
        warnings: Vec::new(),
        failover_profile: crate::FailoverProfile::from_object(obj),
    })
}

fn machine(i: usize, m: &ClusterMachine) -> Result<Machine, String> {
    let field = |f: &str| format!("spec.machines[{i}].{f}");
    let ip_text = m.ip.as_deref().unwrap_or_default();
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|_| format!("{}: {ip_text:?} is not an IP address", field("ip")))?;
    let port = u16::try_from(m.port_or_default())
        .ok()
        .filter(|p| *p >= 1)
        .ok_or_else(|| format!("{} must be 1..65535", field("port")))?;
    let username = m
        .username
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| format!("{} is required", field("username")))?;
    let text = |bytes: Option<Vec<u8>>, name: &str| -> Result<Option<Secret>, String> {
        match bytes {
            None => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(|s| Some(Secret::new(s)))
                .map_err(|_| format!("{} is not UTF-8 text after base64 decoding", field(name))),
        }
    };
    let credentials = Credentials {
        password: text(m.password_bytes(), "password")?,
        private_key: text(m.private_key_bytes(), "privateKey")?,
        pass_phrase: text(m.pass_phrase_bytes(), "passPhrase")?,
    };
    if credentials.password.is_none() && credentials.private_key.is_none() {
        return Err(format!(
            "{}: neither password nor privateKey is set (base64)",
            field("password")
        ));
    }
    let route = match &m.proxy {
        None => Route::Direct,
        Some(p) => route(&field("proxy"), p)?,
    };
    Ok(Machine {
        ip,
        port,
        username,
        credentials,
        route,
    })
}

/// The route of a machine's `proxy` (already reviewed by the rules; this only converts, and
/// names the field if something does not fit).
fn route(at: &str, p: &ClusterMachineProxy) -> Result<Route, String> {
    let ip_text = p.ip.as_deref().unwrap_or_default();
    let ip: IpAddr = ip_text
        .parse()
        .map_err(|_| format!("{at}.ip: {ip_text:?} is not an IP address"))?;
    let port = p
        .port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p >= 1)
        .ok_or_else(|| format!("{at}.port must be 1..65535"))?;
    let addr = SocketAddr::new(ip, port);
    let text = |s: &Option<String>, name: &str| -> Result<Option<Secret>, String> {
        match tkeha_api::types::decode_secret(s.as_deref()) {
            None if s.as_deref().is_some_and(|s| !s.is_empty()) => {
                Err(format!("{at}.{name} is not base64"))
            }
            None => Ok(None),
            Some(b) if b.is_empty() => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(|s| Some(Secret::new(s)))
                .map_err(|_| format!("{at}.{name} is not UTF-8 text after base64 decoding")),
        }
    };
    let username = p.username.clone().unwrap_or_default();
    match p.type_.as_deref() {
        Some("SOCKS5") => {
            let auth = match (username.is_empty(), text(&p.password, "password")?) {
                (true, None) => None,
                (false, Some(pw)) => {
                    Some(Socks5Auth::new(username, pw).map_err(|e| format!("{at}: {e}"))?)
                }
                _ => {
                    return Err(format!(
                        "{at}: SOCKS5 authentication needs both username and password"
                    ));
                }
            };
            Ok(Route::Socks5(Socks5Proxy { addr, auth }))
        }
        Some("SSHJumpServer") => {
            let credentials = Credentials {
                password: text(&p.password, "password")?,
                private_key: text(&p.private_key, "privateKey")?,
                pass_phrase: text(&p.pass_phrase, "passPhrase")?,
            };
            JumpServer::new(addr, username, credentials)
                .map(Route::Jump)
                .map_err(|e| format!("{at}: {e}"))
        }
        other => Err(format!(
            "{at}.type {:?} is not SSHJumpServer or SOCKS5",
            other.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    /// A key made once with ssh-keygen, encrypted with the passphrase `s3cret` (the rule engine
    /// refuses anything that is not a private key, and an encrypted one without its passphrase).
    const KEY: &str = include_str!("../../api/tests/fixtures/keys/id_ed25519_enc");

    fn cluster(ha: Value) -> Value {
        json!({
            "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
            "metadata": {"name": "lab"},
            "spec": {
                "type": "Baremetal", "version": "1.30.0",
                "features": {"ha": ha},
                "machines": [
                    {"ip": "10.77.1.11", "port": 22, "username": "root", "password": "cm9vdHB3"},
                    {"ip": "10.77.1.12", "port": 2222, "username": "tkeha",
                     "privateKey": tkeha_api::secret::encode(KEY.as_bytes()),
                     "passPhrase": tkeha_api::secret::encode(b"s3cret")}
                ]
            }
        })
    }

    #[test]
    fn tke_plan_with_credentials() {
        let plan = plan_from_value(
            &cluster(json!({"tke": {"vip": "10.77.1.100", "vrid": 101}})),
            "x",
        )
        .unwrap();
        assert_eq!(plan.cluster, "lab");
        assert_eq!(plan.mode, Mode::Tke { vrid: 101 });
        assert_eq!(plan.vip.to_string(), "10.77.1.100");
        assert_eq!(
            plan.machines[0]
                .credentials
                .password
                .as_ref()
                .unwrap()
                .expose(),
            "rootpw"
        );
        assert_eq!(plan.machines[1].port, 2222);
        assert_eq!(
            plan.machines[1]
                .credentials
                .private_key
                .as_ref()
                .unwrap()
                .expose(),
            KEY
        );
        assert_eq!(
            plan.machines[1]
                .credentials
                .pass_phrase
                .as_ref()
                .unwrap()
                .expose(),
            "s3cret"
        );
    }

    #[test]
    fn a_plan_keeps_the_rule_warnings_but_not_the_create_time_name_advice() {
        let object = cluster(json!({"tke": {"vip": "10.77.1.100"}}));
        let review = tkeha_api::review(&object, None, &tkeha_api::Policy::default()).unwrap();
        assert!(
            review
                .warnings
                .iter()
                .any(|w| w.starts_with("metadata.name")),
            "the rule engine advises on the name at create: {:?}",
            review.warnings
        );
        let plan = plan_from_object(&object, "x").unwrap();
        assert!(!plan.warnings.is_empty(), "other warnings stay");
        assert!(
            plan.warnings.iter().all(|w| !w.starts_with("metadata.")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn vrid_defaults_from_the_vip() {
        let plan = plan_from_value(&cluster(json!({"tke": {"vip": "10.77.1.100"}})), "x").unwrap();
        assert_eq!(plan.mode, Mode::Tke { vrid: 101 });
    }

    #[test]
    fn third_party_plan() {
        let plan = plan_from_value(
            &cluster(json!({"thirdParty": {"vip": "10.77.1.100", "vport": 16443}})),
            "x",
        )
        .unwrap();
        assert_eq!(plan.mode, Mode::ThirdParty { vport: 16443 });
    }

    #[test]
    fn no_ha_is_refused() {
        let mut c = cluster(json!({}));
        c["spec"]["features"] = json!({});
        let e = plan_from_value(&c, "x").unwrap_err();
        assert!(e.to_string().contains("spec.features.ha is not set"), "{e}");
    }

    #[test]
    fn each_machine_gets_the_route_of_its_proxy() {
        let mut c = cluster(json!({"tke": {"vip": "10.77.1.100"}}));
        c["spec"]["machines"][0]["proxy"] =
            json!({"type": "SOCKS5", "ip": "10.0.0.6", "port": 1080});
        c["spec"]["machines"][1]["proxy"] = json!({"type": "SSHJumpServer", "ip": "10.0.0.5",
            "port": 2200, "username": "jumper", "password": "anVtcGVycHc="});
        let plan = plan_from_object(&c, "x").unwrap();
        match &plan.machines[0].route {
            Route::Socks5(p) => {
                assert_eq!(p.addr.to_string(), "10.0.0.6:1080");
                assert!(
                    p.auth.is_none(),
                    "no credentials: no authentication, as TKEStack"
                );
            }
            other => panic!("{other:?}"),
        }
        match &plan.machines[1].route {
            Route::Jump(j) => {
                assert_eq!(j.addr.to_string(), "10.0.0.5:2200");
                assert_eq!(j.username, "jumper");
                assert_eq!(
                    j.credentials.password.as_ref().map(Secret::expose),
                    Some("jumperpw")
                );
            }
            other => panic!("{other:?}"),
        }
        let dbg = format!("{plan:?}");
        assert!(!dbg.contains("jumperpw"), "{dbg}");
        assert!(plan.probe_route().is_err(), "two routes: no probe route");

        // RFC 1929 credentials, and the same proxy on both: one probe route.
        let socks = json!({"type": "SOCKS5", "ip": "10.0.0.6", "port": 1081,
            "username": "socksuser", "password": "c29ja3Nwdw=="});
        c["spec"]["machines"][0]["proxy"] = socks.clone();
        c["spec"]["machines"][1]["proxy"] = socks;
        let plan = plan_from_object(&c, "x").unwrap();
        let route = plan.probe_route().unwrap();
        assert_eq!(route.to_string(), "through SOCKS5 proxy 10.0.0.6:1081");
        assert!(matches!(route, Route::Socks5(p) if p.auth.is_some()));
        assert!(!format!("{plan:?}").contains("sockspw"));

        // Without proxies: direct, and direct is the probe route.
        let plan = plan_from_value(&cluster(json!({"tke": {"vip": "10.77.1.100"}})), "x").unwrap();
        assert_eq!(plan.probe_route().unwrap(), &Route::Direct);
    }

    #[test]
    fn a_proxy_the_rules_refuse_never_becomes_a_route() {
        let mut c = cluster(json!({"tke": {"vip": "10.77.1.100"}}));
        c["spec"]["machines"][0]["proxy"] =
            json!({"type": "SSHJumpServer", "ip": "10.0.0.5", "port": 22});
        let e = plan_from_object(&c, "x").unwrap_err().to_string();
        assert!(e.contains("spec.machines[0].proxy.username"), "{e}");
        assert!(e.contains("spec.machines[0].proxy: Required value"), "{e}");
        // Converting without the review still refuses with the field named.
        let e = plan_from_value(&c, "x").unwrap_err().to_string();
        assert!(e.contains("spec.machines[0].proxy"), "{e}");
    }

    #[test]
    fn debug_never_shows_secrets() {
        let plan = plan_from_value(&cluster(json!({"tke": {"vip": "10.77.1.100"}})), "x").unwrap();
        let dbg = format!("{plan:?}");
        assert!(!dbg.contains("rootpw"));
        assert!(!dbg.contains("OPENSSH") && !dbg.contains("s3cret"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }
}

//! The provisioner's report: one serde document per run (`-o json`) and its human text form.

use serde::Serialize;
use tkeha_api::field::escape;

/// [`escape`] into an owned string, for fields that are stored.
fn escaped(text: &str) -> String {
    escape(text).into_owned()
}

/// VRRP state of keepalived on one master, as far as it can be known from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VrrpState {
    /// Holds the VIP.
    Master,
    /// Runs keepalived and waits.
    Backup,
    /// Runs keepalived but its health check fails.
    Fault,
    /// keepalived does not run.
    Stopped,
    /// Not known (not reached, or nothing to tell).
    #[default]
    Unknown,
}

/// Result of the health check of the local apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// The local apiserver answers.
    Pass,
    /// The local apiserver should run (its manifest exists) but does not answer.
    Fail,
    /// No `kube-apiserver.yaml` yet: the check passes so the VIP can come up for bootstrap.
    Bootstrap,
}

/// Who manages HA on the masters (`managedBy` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ManagedBy {
    /// tkeha: its own keepalived.conf or hairpin rule, or nothing yet (tkeha would provision).
    Tkeha,
    /// TKEStack's controller: its keepalived static pod and config, or its hairpin rule.
    Tkestack,
}

impl ManagedBy {
    /// The name shown in the text report.
    pub fn label(self) -> &'static str {
        match self {
            ManagedBy::Tkeha => "tkeha",
            ManagedBy::Tkestack => "TKEStack",
        }
    }
}

/// Something that works but is weak, with its effect (e.g. a weakness of TKEStack's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable name for scripts (`tkestack-multicast`).
    pub code: String,
    /// What it is and what it does.
    pub message: String,
}

/// One master's line in the report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct HostReport {
    /// The master's IP.
    pub host: String,
    /// Nothing failed on it.
    pub ok: bool,
    /// What failed and how to fix it; never a secret.
    pub error: Option<String>,
    /// Something on it was changed (a file, a package, a rule, the service).
    pub changed: bool,
    /// keepalived was started or reloaded.
    pub restarted: bool,
    /// Its VRRP state as seen from outside.
    pub state: VrrpState,
    /// The VIP is on one of its interfaces.
    pub holds_vip: bool,
    /// Its apiserver health check.
    pub health: Option<Health>,
    /// SSH round trips (script runs) made to it.
    pub round_trips: u32,
    /// The interface whose prefix holds the machine IP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The proxy it is reached through (`jump server 10.0.0.5:22`, `SOCKS5 proxy 10.0.0.6:1080`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// Informational findings (not failures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Who manages HA on this master, when someone does.
    #[serde(rename = "managedBy", skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<ManagedBy>,
    /// The failover profile its keepalived runs, read back from its keepalived.conf (tkeha's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover_profile: Option<crate::FailoverProfile>,
}

impl HostReport {
    /// A host that is fine so far.
    pub fn new(host: &str) -> Self {
        HostReport {
            host: host.to_string(),
            ok: true,
            ..Default::default()
        }
    }

    /// Mark the host failed; the first error wins, later ones become notes.
    pub fn fail(&mut self, error: impl Into<String>) {
        let error = error.into();
        self.ok = false;
        if self.error.is_none() {
            self.error = Some(error);
        } else {
            self.notes.push(error);
        }
    }
}

/// Figures of a failover drill.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// From the stop command to the VIP answering again.
    pub failover_ms: u64,
    /// The old holder.
    pub from: String,
    /// The new holder.
    pub to: String,
    /// How "answering" was decided: `tcp` (VIP:6443 connect from here) or `holder` (ip addr on the masters).
    pub oracle: String,
    /// The old holder stayed BACKUP after its keepalived came back (nopreempt).
    pub old_holder_stayed_backup: bool,
}

/// Self-connect result of one master through `VIP:vport`.
#[derive(Debug, Clone, Serialize)]
pub struct SelfConnect {
    /// The master.
    pub host: String,
    /// It reached `VIP:vport` itself.
    pub ok: bool,
}

/// Third-party LB binding as seen from the provisioner host.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LbReport {
    /// Masters the LB reaches through `VIP:vport` (token seen).
    pub bound: Vec<String>,
    /// Masters whose :6443 was busy, so the binding could only be checked by TCP.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<String>,
    /// Whether each master reaches `VIP:vport` itself.
    pub self_connect: Vec<SelfConnect>,
    /// Connection attempts made to `VIP:vport`.
    pub attempts: u32,
}

/// One SSH jump server the run used: its session is shared by every master behind it.
#[derive(Debug, Clone, Serialize)]
pub struct JumpServerReport {
    /// `IP:port`.
    pub server: String,
    /// The login name on it.
    pub username: String,
    /// SSH connections made to it (TCP, handshake and login): 1 for all the masters behind it.
    pub logins: u32,
    /// Tunnels opened through it (one per SSH session to a master and per probe).
    pub tunnels: u32,
    /// Why its session failed or broke, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&crate::transport::JumpStats> for JumpServerReport {
    fn from(s: &crate::transport::JumpStats) -> Self {
        JumpServerReport {
            server: s.server.to_string(),
            username: s.username.clone(),
            logins: s.logins,
            tunnels: s.tunnels_opened,
            error: s.lost.clone(),
        }
    }
}

/// The whole report of one action.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `check`, `apply`, `status`, `drill` or `uninstall`.
    pub action: String,
    /// `tke` or `thirdParty`.
    pub mode: String,
    /// Nothing failed anywhere.
    pub ok: bool,
    /// The VIP.
    pub vip: String,
    /// Wall time of the action.
    pub elapsed_ms: u64,
    /// The one master holding the VIP, when there is exactly one.
    pub vip_holder: Option<String>,
    /// More than one master holds the VIP.
    pub split_brain: bool,
    /// Failures that belong to no single host (e.g. "no master holds the VIP").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// One entry per master, in manifest order.
    pub hosts: Vec<HostReport>,
    /// The drill's figures (`drill` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillReport>,
    /// The load balancer's binding (third-party HA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lb: Option<LbReport>,
    /// The SSH jump servers used, one entry each (masters reached through `SSHJumpServer`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub jump_servers: Vec<JumpServerReport>,
    /// Who manages HA on these masters: absent when they disagree or none was reached.
    #[serde(rename = "managedBy", skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<ManagedBy>,
    /// Weaknesses that do not fail the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
}

impl Report {
    /// An empty report that is fine so far.
    pub fn new(action: &str, mode: &str, vip: &str) -> Self {
        Report {
            action: action.to_string(),
            mode: mode.to_string(),
            ok: true,
            vip: vip.to_string(),
            elapsed_ms: 0,
            vip_holder: None,
            split_brain: false,
            errors: Vec::new(),
            hosts: Vec::new(),
            drill: None,
            lb: None,
            jump_servers: Vec::new(),
            managed_by: None,
            warnings: Vec::new(),
        }
    }

    /// Record a warning, once per code.
    pub fn warn(&mut self, code: &str, message: impl Into<String>) {
        if !self.warnings.iter().any(|w| w.code == code) {
            self.warnings.push(Warning {
                code: code.to_string(),
                message: message.into(),
            });
        }
    }

    /// Record a failure that belongs to no single host.
    pub fn fail(&mut self, error: impl Into<String>) {
        self.errors.push(error.into());
        self.ok = false;
    }

    /// Recompute `ok` from the global errors and every host.
    pub fn finish(&mut self) {
        self.ok = self.errors.is_empty() && self.hosts.iter().all(|h| h.ok);
    }

    /// The `-o json` form (pretty-printed), with control characters in every text escaped (see
    /// [`Report::shown`]), so that `jq -r` cannot print them raw either.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.shown())
            .unwrap_or_else(|e| format!("{{\"error\": \"report: {e}\"}}"))
    }

    /// The `-o yaml` form, escaped as [`Report::to_json`].
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(&self.shown())
            .unwrap_or_else(|e| format!("error: \"report: {e}\"\n"))
    }

    /// This report as it may be shown: every string that can hold text from outside (a host's
    /// error from SSH or a master's output, which can carry a username; notes; general errors) with
    /// its control characters escaped by [`tkeha_api::field::escape`]. A newline or
    /// `ESC[8m` in a username then cannot fake a report line or hide the real ones.
    pub fn shown(&self) -> Report {
        let mut r = self.clone();
        r.action = escaped(&r.action);
        r.mode = escaped(&r.mode);
        r.vip = escaped(&r.vip);
        r.vip_holder = r.vip_holder.as_deref().map(escaped);
        r.errors = r.errors.iter().map(|e| escaped(e)).collect();
        for h in &mut r.hosts {
            h.host = escaped(&h.host);
            h.error = h.error.as_deref().map(escaped);
            h.interface = h.interface.as_deref().map(escaped);
            h.notes = h.notes.iter().map(|n| escaped(n)).collect();
        }
        if let Some(d) = &mut r.drill {
            d.from = escaped(&d.from);
            d.to = escaped(&d.to);
            d.oracle = escaped(&d.oracle);
        }
        if let Some(lb) = &mut r.lb {
            lb.bound = lb.bound.iter().map(|b| escaped(b)).collect();
            lb.unverified = lb.unverified.iter().map(|b| escaped(b)).collect();
            for s in &mut lb.self_connect {
                s.host = escaped(&s.host);
            }
        }
        r
    }

    /// The human form: one line per host, then the summary. Text from outside is escaped (see
    /// [`Report::shown`]).
    pub fn to_text(&self) -> String {
        self.shown().text()
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for h in &self.hosts {
            let mut parts = vec![if h.ok {
                "ok".to_string()
            } else {
                "FAILED".to_string()
            }];
            // A host that failed before anything was learnt about it has no state to show.
            let known = h.ok || h.state != VrrpState::Unknown;
            if known && self.mode == "tke" && self.action != "check" && self.action != "uninstall" {
                parts.push(format!("state={}", format!("{:?}", h.state).to_uppercase()));
                parts.push(format!("vip={}", if h.holds_vip { "held" } else { "-" }));
                if let Some(health) = h.health {
                    parts.push(format!("health={}", format!("{health:?}").to_lowercase()));
                }
                if let Some(profile) = h.failover_profile {
                    parts.push(format!("profile={profile}"));
                }
            }
            if self.action == "apply" || self.action == "uninstall" {
                parts.push(format!("changed={}", h.changed));
            }
            if self.action == "apply" {
                parts.push(format!("restarted={}", h.restarted));
            }
            if let Some(i) = &h.interface {
                parts.push(format!("if={i}"));
            }
            if let Some(m) = h.managed_by {
                parts.push(format!("managed_by={}", m.label()));
            }
            if h.ok {
                parts.push(format!("ssh_round_trips={}", h.round_trips));
            }
            match &h.via {
                Some(via) => out.push_str(&format!("[{} via {via}] {}\n", h.host, parts.join(" "))),
                None => out.push_str(&format!("[{}] {}\n", h.host, parts.join(" "))),
            }
            if let Some(e) = &h.error {
                out.push_str(&format!("    error: {e}\n"));
            }
            for n in &h.notes {
                out.push_str(&format!("    note: {n}\n"));
            }
        }
        if let Some(lb) = &self.lb {
            out.push_str(&format!(
                "load balancer {}: reaches {} master(s) [{}] in {} attempts\n",
                self.vip,
                lb.bound.len(),
                lb.bound.join(", "),
                lb.attempts
            ));
            if !lb.unverified.is_empty() {
                out.push_str(&format!(
                    "    apiserver already listening on [{}]; binding checked by TCP only\n",
                    lb.unverified.join(", ")
                ));
            }
            for s in &lb.self_connect {
                out.push_str(&format!(
                    "    self-connect from {}: {}\n",
                    s.host,
                    if s.ok {
                        "ok"
                    } else {
                        "fails (LB cannot hairpin; the hairpin rule covers it)"
                    }
                ));
            }
        }
        for j in &self.jump_servers {
            out.push_str(&format!(
                "jump server {} (as {}): {} SSH login(s), {} tunnel(s){}\n",
                j.server,
                j.username,
                j.logins,
                j.tunnels,
                j.error
                    .as_deref()
                    .map(|e| {
                        let own = format!("jump server {}: ", j.server);
                        format!("; failed: {}", e.strip_prefix(&own).unwrap_or(e))
                    })
                    .unwrap_or_default()
            ));
        }
        if let Some(d) = &self.drill {
            out.push_str(&format!(
                "drill: VIP moved {} -> {} in {} ms (oracle: {}); old holder stayed backup: {}\n",
                d.from, d.to, d.failover_ms, d.oracle, d.old_holder_stayed_backup
            ));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {}\n", w.message));
        }
        let holder = self.vip_holder.as_deref().unwrap_or("none");
        let summary = if self.mode == "tke" && self.action != "check" && self.action != "uninstall"
        {
            format!(
                ": VIP {} held by {holder}{}",
                self.vip,
                if self.split_brain {
                    " (SPLIT BRAIN)"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        };
        let summary = match self.managed_by {
            Some(ManagedBy::Tkestack) => format!("{summary}; HA managed by TKEStack"),
            _ => summary,
        };
        out.push_str(&format!(
            "{} {} ({} ms){summary}\n",
            self.action,
            if self.ok { "succeeded" } else { "FAILED" },
            self.elapsed_ms
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_has_the_contract_fields() {
        let mut r = Report::new("apply", "tke", "10.77.3.100");
        let mut h = HostReport::new("10.77.3.11");
        h.state = VrrpState::Master;
        h.holds_vip = true;
        h.health = Some(Health::Bootstrap);
        h.round_trips = 3;
        h.failover_profile = Some(crate::FailoverProfile::Fast);
        r.hosts.push(h);
        r.vip_holder = Some("10.77.3.11".into());
        r.finish();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["action"], "apply");
        assert_eq!(v["mode"], "tke");
        assert_eq!(v["ok"], true);
        assert_eq!(v["vip_holder"], "10.77.3.11");
        assert_eq!(v["split_brain"], false);
        assert_eq!(v["hosts"][0]["state"], "MASTER");
        assert_eq!(v["hosts"][0]["health"], "bootstrap");
        assert_eq!(v["hosts"][0]["round_trips"], 3);
        assert_eq!(v["hosts"][0]["failover_profile"], "fast");
        assert!(v["hosts"][0]["error"].is_null());
        assert!(v.get("drill").is_none());
    }

    #[test]
    fn a_failed_host_fails_the_report() {
        let mut r = Report::new("check", "tke", "10.0.0.100");
        let mut h = HostReport::new("10.0.0.1");
        h.fail("first");
        h.fail("second");
        r.hosts.push(h);
        r.finish();
        assert!(!r.ok);
        assert_eq!(r.hosts[0].error.as_deref(), Some("first"));
        assert_eq!(r.hosts[0].notes, vec!["second".to_string()]);
        assert!(r.to_text().contains("error: first"));
    }

    /// What an attacker who controls a username (or a master's output) puts into an SSH error:
    /// a fake success block, a terminal "conceal" sequence to hide the real lines, a command
    /// substitution and a NUL.
    const FORGED: &str = "root\n[10.0.0.12] ok ssh_round_trips=1\n[10.0.0.13] ok ssh_round_trips=1\ncheck succeeded (3 ms)\n\u{1b}[8m$(reboot)\0\u{9b}8m";

    fn no_control(text: &str) -> bool {
        !text.chars().any(|c| c.is_control() && c != '\n')
    }

    #[test]
    fn a_forged_error_cannot_fake_a_success_block_or_hide_lines() {
        use std::time::Duration;

        use crate::Action;
        use crate::fake::Fleet;

        let fleet = Fleet::new(3);
        fleet.master(0, |m| m.connect_error = Some(FORGED.into()));
        let plan = fleet.tke_plan();
        let report = fleet
            .provisioner(Duration::from_secs(1))
            .run(Action::Check, &plan);
        assert!(!report.ok);

        let text = report.to_text();
        assert!(no_control(&text), "{text:?}");
        // One line per master, the general error, the summary: nothing the error added.
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("[10.0.0.11] FAILED"), "{text}");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with("check ")).count(),
            1,
            "{text}"
        );
        assert!(lines.last().unwrap().starts_with("check FAILED"), "{text}");
        assert!(
            !lines.iter().any(|l| l.starts_with("check succeeded")),
            "{text}"
        );
        assert!(
            text.contains("root\\n[10.0.0.12] ok"),
            "shown, escaped: {text}"
        );
        assert!(
            text.contains("\\u001b[8m$(reboot)\\u0000\\u009b8m"),
            "{text}"
        );

        for doc in [report.to_json(), report.to_yaml()] {
            let value: serde_json::Value = if doc.starts_with('{') {
                serde_json::from_str(&doc).unwrap()
            } else {
                serde_saphyr::from_str(&doc).unwrap()
            };
            let error = value["hosts"][0]["error"].as_str().unwrap();
            // Even `jq -r .hosts[0].error` prints one inert line.
            assert!(!error.chars().any(char::is_control), "{error:?}");
            assert!(error.contains("\\u001b[8m"), "{error:?}");
        }

        for action in [
            Action::Apply,
            Action::Status,
            Action::Drill,
            Action::Uninstall,
        ] {
            let verdict = crate::cluster_api::verdict_for(action, &plan, &report).unwrap();
            assert!(
                !verdict.message.chars().any(char::is_control),
                "{action:?}: {:?}",
                verdict.message
            );
        }
    }

    #[test]
    fn a_failed_host_line_shows_no_internals() {
        let mut r = Report::new("check", "tke", "10.0.0.100");
        let mut h = HostReport::new("10.0.0.1");
        h.fail("cannot connect to 10.0.0.1:22: Connection refused");
        r.hosts.push(h);
        r.finish();
        let text = r.to_text();
        assert_eq!(
            text.lines().next().unwrap(),
            "[10.0.0.1] FAILED",
            "no ssh_round_trips=0 on a failed host: {text}"
        );
    }

    #[test]
    fn hosts_behind_a_proxy_and_the_jump_servers_are_shown() {
        let mut r = Report::new("check", "tke", "10.0.0.100");
        let mut h = HostReport::new("10.1.0.11");
        h.via = Some("jump server 10.0.0.5:22".into());
        r.hosts.push(h);
        r.jump_servers.push(JumpServerReport {
            server: "10.0.0.5:22".into(),
            username: "jumper".into(),
            logins: 1,
            tunnels: 3,
            error: Some("jump server 10.0.0.5:22: the SSH connection to it was lost: EOF".into()),
        });
        r.finish();
        let text = r.to_text();
        assert!(
            text.starts_with("[10.1.0.11 via jump server 10.0.0.5:22] ok"),
            "{text}"
        );
        assert!(
            text.contains(
                "jump server 10.0.0.5:22 (as jumper): 1 SSH login(s), 3 tunnel(s); failed: the SSH connection to it was lost: EOF\n"
            ),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["hosts"][0]["via"], "jump server 10.0.0.5:22");
        assert_eq!(v["jump_servers"][0]["logins"], 1);
        assert_eq!(v["jump_servers"][0]["tunnels"], 3);
        // Without proxies neither field appears.
        let plain: serde_json::Value =
            serde_json::from_str(&Report::new("check", "tke", "10.0.0.100").to_json()).unwrap();
        assert!(plain.get("jump_servers").is_none());
    }

    #[test]
    fn states_serialize_upper_case() {
        assert_eq!(
            serde_json::to_string(&VrrpState::Stopped).unwrap(),
            "\"STOPPED\""
        );
        assert_eq!(
            serde_json::to_string(&VrrpState::Unknown).unwrap(),
            "\"UNKNOWN\""
        );
    }
}

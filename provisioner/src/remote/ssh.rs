//! The SSH [`Remote`]: one ssh2 session per master, reached along its route (directly, through a SOCKS5 proxy or an SSH jump server). Connect with a timeout, check the host key, authenticate, run scripts as root (counting round trips).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ssh2::Session;

use super::{Connector, ExecOutput, Remote, RemoteError};
use crate::hostkeys::HostKeyPolicy;
use crate::manifest::Machine;
use crate::scripts::Script;
use crate::transport::login::{self, LoginError};
use crate::transport::{Dialer, Target, TransportError};

/// Connects to masters over SSH (ssh2) along each machine's route, checking host keys with a
/// policy. Every hop goes through the same policy: the masters' keys here, the jump servers'
/// keys in the [`Dialer`].
#[derive(Debug, Clone)]
pub struct SshConnector {
    /// Opens the connections (one per run: jump sessions are shared by the masters behind them).
    pub dialer: Arc<Dialer>,
    /// How host keys are checked.
    pub host_keys: HostKeyPolicy,
    /// Limit for the TCP connect, each proxy step, the handshake and authentication, each.
    pub timeout: Duration,
}

impl SshConnector {
    /// A connector with its own dialer, whose jump-server host keys go through `host_keys` too.
    pub fn new(host_keys: HostKeyPolicy, timeout: Duration) -> Self {
        SshConnector {
            dialer: Arc::new(Dialer::new(host_keys.clone())),
            host_keys,
            timeout,
        }
    }
}

impl Connector for SshConnector {
    fn connect(&self, machine: &Machine) -> Result<Box<dyn Remote>, RemoteError> {
        Ok(Box::new(connect(
            &self.dialer,
            machine,
            &self.host_keys,
            self.timeout,
        )?))
    }
}

/// An authenticated SSH session to one master.
pub struct SshRemote {
    sess: Session,
    user: String,
    sudo: bool,
    round_trips: u32,
}

impl std::fmt::Debug for SshRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshRemote")
            .field("user", &self.user)
            .field("round_trips", &self.round_trips)
            .finish()
    }
}

/// Connect along the machine's route, verify the master's host key (under the master's own
/// `ip:port`, whatever the route) and authenticate (privateKey first, then password, then
/// keyboard-interactive).
///
/// # Errors
///
/// See [`Connector::connect`]. A failed proxy is [`RemoteError::Transport`], naming the hop.
pub fn connect(
    dialer: &Dialer,
    m: &Machine,
    policy: &HostKeyPolicy,
    timeout: Duration,
) -> Result<SshRemote, RemoteError> {
    let addr = SocketAddr::new(m.ip, m.port);
    // Names the route in the messages of the later hops: "10.1.0.11:22 via jump server 10.0.0.5:22".
    let who = match m.route.hop() {
        None => addr.to_string(),
        Some(hop) => format!("{addr} via {hop}"),
    };
    let stream = dialer
        .dial(&m.route, Target::master(addr), timeout)
        .map_err(|e| match e {
            TransportError::Direct { addr, reason } => RemoteError::Connect {
                addr: addr.to_string(),
                message: reason.to_string(),
            },
            other => RemoteError::Transport(other),
        })?;
    let login_err = |e: LoginError| match e {
        LoginError::Handshake(message) => RemoteError::Handshake {
            addr: who.clone(),
            message,
        },
        LoginError::HostKey(source) => RemoteError::HostKey {
            addr: who.clone(),
            source,
        },
        LoginError::Auth {
            user,
            methods,
            last,
        } => RemoteError::Auth {
            user,
            methods: format!("server offers {methods}"),
            message: last,
        },
    };
    let sess = login::handshake(stream, m.ip, m.port, policy, timeout).map_err(login_err)?;
    login::authenticate(&sess, &m.username, &m.credentials).map_err(login_err)?;
    Ok(SshRemote {
        sess,
        user: m.username.clone(),
        sudo: m.username != "root",
        round_trips: 0,
    })
}

impl SshRemote {
    fn open(&mut self, what: &str, timeout: Duration) -> Result<ssh2::Channel, RemoteError> {
        let err = |e: ssh2::Error| RemoteError::Exec {
            what: what.to_string(),
            message: e.message().to_string(),
        };
        self.sess
            .set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        let mut ch = self.sess.channel_session().map_err(err)?;
        let shell = if self.sudo {
            "sudo -n /bin/bash -s"
        } else {
            "/bin/bash -s"
        };
        ch.exec(shell).map_err(err)?;
        self.round_trips += 1;
        Ok(ch)
    }

    fn sudo_error(&self, out: &ExecOutput) -> Option<RemoteError> {
        (self.sudo
            && out.status == 1
            && out.stdout.is_empty()
            && out.stderr.trim_start().starts_with("sudo:"))
        .then(|| RemoteError::Sudo {
            user: self.user.clone(),
            message: out.stderr.trim().to_string(),
        })
    }
}

impl Remote for SshRemote {
    /// Run a bash script (as root: directly or through `sudo -n`), one round trip.
    fn run(&mut self, script: &Script, timeout: Duration) -> Result<ExecOutput, RemoteError> {
        let what = script.what();
        let err = |m: String| RemoteError::Exec {
            what: what.to_string(),
            message: m,
        };
        let mut ch = self.open(what, timeout)?;
        ch.write_all(script.text().as_bytes())
            .map_err(|e| err(e.to_string()))?;
        ch.send_eof().map_err(|e| err(e.message().to_string()))?;
        let mut out = ExecOutput::default();
        ch.read_to_string(&mut out.stdout)
            .map_err(|e| err(e.to_string()))?;
        ch.stderr()
            .read_to_string(&mut out.stderr)
            .map_err(|e| err(e.to_string()))?;
        ch.wait_close().map_err(|e| err(e.message().to_string()))?;
        out.status = ch.exit_status().map_err(|e| err(e.message().to_string()))?;
        if let Some(e) = self.sudo_error(&out) {
            return Err(e);
        }
        Ok(out)
    }

    /// Run a script that prints lines over time; `on_line` returns false to stop (the channel is then closed).
    fn stream(
        &mut self,
        script: &Script,
        line_timeout: Duration,
        on_line: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), RemoteError> {
        let what = script.what();
        let err = |m: String| RemoteError::Exec {
            what: what.to_string(),
            message: m,
        };
        let mut ch = self.open(what, line_timeout)?;
        ch.write_all(script.text().as_bytes())
            .map_err(|e| err(e.to_string()))?;
        ch.send_eof().map_err(|e| err(e.message().to_string()))?;
        let mut reader = BufReader::new(&mut ch);
        let mut line = String::new();
        let mut any = false;
        let mut ended = false;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| err(e.to_string()))?;
            if n == 0 {
                ended = true;
                break;
            }
            any = true;
            if !on_line(line.trim_end()) {
                break;
            }
        }
        drop(reader);
        if ended && !any {
            // Nothing on stdout at all: sudo may have refused before the script ran.
            let mut out = ExecOutput::default();
            let _ = (&mut ch.stderr())
                .take(4096)
                .read_to_string(&mut out.stderr);
            let _ = ch.wait_close();
            out.status = ch.exit_status().unwrap_or(-1);
            if let Some(e) = self.sudo_error(&out) {
                return Err(e);
            }
        }
        let _ = ch.close();
        Ok(())
    }

    fn round_trips(&self) -> u32 {
        self.round_trips
    }
}

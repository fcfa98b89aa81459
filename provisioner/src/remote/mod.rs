//! Reaching masters: the [`Remote`] a run works through (run a root script, stream its lines), and the [`Connector`] that establishes one per master.
//!
//! The actions only see these two traits. [`ssh::SshConnector`] is the real implementation
//! (ssh2: TCP connect, host-key policy, authentication, `sudo -n` for a non-root user); the
//! unit tests drive the actions through a scripted fake with no I/O. Establishing a connection
//! (directly, or through the machine's jump server or SOCKS5 proxy) is the connector's business
//! alone: a [`Remote`] is already connected and authenticated.

use std::time::Duration;

use crate::hostkeys::HostKeyError;
use crate::manifest::Machine;
use crate::scripts::Script;
use crate::transport::TransportError;

pub mod ssh;

/// Why a master could not be reached or a script could not be run. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// No TCP connection to the master's SSH port.
    #[error("cannot connect to {addr}: {message}")]
    Connect {
        /// `IP:port`.
        addr: String,
        /// The OS's reason.
        message: String,
    },
    /// A proxy on the way failed, or it could not reach the master: the message names the hop
    /// ("jump server 10.0.0.5:22: authentication failed ...", "master 10.1.0.11:22 via SOCKS5
    /// proxy 10.0.0.6:1080: connection refused").
    #[error("{0}")]
    Transport(TransportError),
    /// The SSH handshake failed.
    #[error("SSH handshake with {addr} failed: {message}")]
    Handshake {
        /// `IP:port`, and the proxy it was reached through (`IP:port via jump server IP:port`).
        addr: String,
        /// libssh2's reason.
        message: String,
    },
    /// The host key was refused by the policy.
    #[error("host key of {addr}: {source}")]
    HostKey {
        /// `IP:port`, and the proxy it was reached through (`IP:port via jump server IP:port`).
        addr: String,
        /// Which check failed and how to fix it.
        source: HostKeyError,
    },
    /// No credential was accepted.
    #[error(
        "authentication as {user} failed ({methods}): {message}; check spec.machines[].username and the base64 password, or privateKey and its passPhrase"
    )]
    Auth {
        /// The login name.
        user: String,
        /// The methods the server offers.
        methods: String,
        /// The last method's failure.
        message: String,
    },
    /// A non-root user has no passwordless sudo.
    #[error(
        "user {user} has no passwordless sudo ({message}); log in as root or allow `sudo -n` for this user"
    )]
    Sudo {
        /// The login name.
        user: String,
        /// What sudo said.
        message: String,
    },
    /// The script could not be sent or its output not read.
    #[error("running the {what} script failed: {message}")]
    Exec {
        /// Which script ([`Script::what`]).
        what: String,
        /// The transport's reason.
        message: String,
    },
}

/// Output of one remote script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything it printed on stdout (its `@@key=value` markers among it).
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// Its exit status.
    pub status: i32,
}

/// An authenticated session to one master on which scripts run as root.
///
/// One call is one round trip ([`Remote::round_trips`] counts them; the report shows the count).
pub trait Remote: Send + std::fmt::Debug {
    /// Run `script` as root and wait (at most `timeout` between two packets) for its end.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Sudo`] when root cannot be reached, [`RemoteError::Exec`] when the
    /// transport fails. A script that fails is not an error: its status and output say so.
    fn run(&mut self, script: &Script, timeout: Duration) -> Result<ExecOutput, RemoteError>;

    /// Run `script` as root and hand each line of its stdout to `on_line` as it arrives, until
    /// the script ends or `on_line` returns `false` (the script is then abandoned).
    ///
    /// # Errors
    ///
    /// [`RemoteError::Exec`] when the transport fails or no line comes within `line_timeout`.
    fn stream(
        &mut self,
        script: &Script,
        line_timeout: Duration,
        on_line: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), RemoteError>;

    /// Round trips made so far.
    fn round_trips(&self) -> u32;
}

/// Establishes a [`Remote`] to a master: the seam where the way masters are reached is chosen.
pub trait Connector: Sync {
    /// Connect to `machine`, check its host key and log in.
    ///
    /// # Errors
    ///
    /// [`RemoteError::Connect`], [`RemoteError::Transport`] (a proxy, naming the hop),
    /// [`RemoteError::Handshake`], [`RemoteError::HostKey`] or [`RemoteError::Auth`], naming
    /// the address and what to fix.
    fn connect(&self, machine: &Machine) -> Result<Box<dyn Remote>, RemoteError>;
}

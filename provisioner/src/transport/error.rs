//! Transport errors that name the hop that failed: the proxy itself, or the target beyond a working proxy.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::hostkeys::HostKeyError;

use super::socks5::Socks5Error;

/// The kind of proxy a hop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HopKind {
    /// A SOCKS5 proxy (TKEStack `type: SOCKS5`).
    Socks5,
    /// An SSH jump server (TKEStack `type: SSHJumpServer`).
    JumpServer,
}

/// One proxy between this host and a target, as named in errors: `jump server 10.0.0.5:22`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hop {
    /// What the proxy is.
    pub kind: HopKind,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            HopKind::Socks5 => write!(f, "SOCKS5 proxy {}", self.addr),
            HopKind::JumpServer => write!(f, "jump server {}", self.addr),
        }
    }
}

/// What a connection is for, so that errors can say "master 10.1.0.11:22" or name a probed address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A master's SSH port.
    Master,
    /// An address the provisioner probes from this host (the VIP, the LB's `VIP:vport`).
    Probe,
}

/// The far end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Address and port.
    pub addr: SocketAddr,
    /// What it is.
    pub role: Role,
}

impl Target {
    /// A master's SSH port.
    pub fn master(addr: SocketAddr) -> Self {
        Target {
            addr,
            role: Role::Master,
        }
    }

    /// An address probed from this host.
    pub fn probe(addr: SocketAddr) -> Self {
        Target {
            addr,
            role: Role::Probe,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Role::Master => write!(f, "master {}", self.addr),
            Role::Probe => write!(f, "{}", self.addr),
        }
    }
}

/// Why a TCP connection from this host failed, in words an operator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetFailure {
    /// The peer answered with a reset: nothing listens on that port.
    Refused,
    /// No answer within the connect timeout.
    TimedOut(Duration),
    /// The host does not answer ARP/ND, or a router says it is unreachable.
    HostUnreachable,
    /// No route to the network.
    NetworkUnreachable,
    /// Anything else the OS said.
    Other(String),
}

impl NetFailure {
    /// Classify an OS error from `connect` (`timeout` is the one the connect was given).
    pub fn from_io(e: &std::io::Error, timeout: Duration) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::ConnectionRefused => NetFailure::Refused,
            K::TimedOut | K::WouldBlock => NetFailure::TimedOut(timeout),
            K::HostUnreachable => NetFailure::HostUnreachable,
            K::NetworkUnreachable => NetFailure::NetworkUnreachable,
            _ => NetFailure::Other(e.to_string()),
        }
    }
}

/// "5 s", "500 ms".
pub(crate) fn human(d: Duration) -> String {
    if d.as_millis() >= 1000 && d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

impl fmt::Display for NetFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetFailure::Refused => f.write_str("connection refused"),
            NetFailure::TimedOut(t) => write!(f, "no answer within {}", human(*t)),
            NetFailure::HostUnreachable => f.write_str("host unreachable"),
            NetFailure::NetworkUnreachable => f.write_str("network unreachable"),
            NetFailure::Other(m) => f.write_str(m),
        }
    }
}

/// What went wrong with a proxy itself.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HopProblem {
    /// No TCP connection to the proxy.
    #[error("{0}")]
    Connect(NetFailure),
    /// The SSH handshake with the jump server failed.
    #[error("SSH handshake failed: {0}")]
    SshHandshake(String),
    /// The jump server's host key was refused by the host-key policy.
    #[error("{0}")]
    HostKey(Arc<HostKeyError>),
    /// The jump server accepted none of the credentials.
    #[error(
        "authentication failed as {user} (server offers {methods}): {last}; check the proxy's username and its base64 password, or privateKey and passPhrase"
    )]
    Auth {
        /// The login name.
        user: String,
        /// The methods the server offers.
        methods: String,
        /// The last method's failure (never a secret).
        last: String,
    },
    /// The SOCKS5 exchange with the proxy failed (protocol, authentication, refusal by the proxy).
    #[error("{0}")]
    Socks5(Socks5Error),
    /// An established jump session broke.
    #[error("the SSH connection to it was lost: {0}")]
    Lost(String),
    /// The proxy as configured cannot be used (caught before any connection).
    #[error("{0}")]
    Config(String),
}

/// Why a working proxy could not reach the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    /// The SOCKS5 proxy reports a refused connection (reply 5).
    #[error("connection refused")]
    Refused,
    /// The SOCKS5 proxy reports the host unreachable (reply 4).
    #[error("host unreachable")]
    HostUnreachable,
    /// The SOCKS5 proxy reports the network unreachable (reply 3).
    #[error("network unreachable")]
    NetworkUnreachable,
    /// The SOCKS5 proxy's own connect timed out (reply 6, "TTL expired").
    #[error("the proxy's connection attempt timed out")]
    ProxyTimedOut,
    /// No answer from the proxy about this target within our timeout.
    #[error("no connection within {}", human(*.0))]
    TimedOut(Duration),
    /// The jump server could not open the TCP connection. libssh2 passes on only the SSH reason
    /// code ("connect failed"), not the jump server's text ("Connection refused", "No route to host").
    #[error(
        "the jump server could not connect to it (refused, down, or not routable from the jump server)"
    )]
    JumpConnectFailed,
    /// The jump server does not allow TCP forwarding to this target.
    #[error(
        "the jump server refuses to forward to it (administratively prohibited: check AllowTcpForwarding and PermitOpen in its sshd_config)"
    )]
    JumpProhibited,
    /// The jump server refused the tunnel for another reason (the SSH message).
    #[error("the jump server refused the tunnel: {0}")]
    JumpOther(String),
}

/// A connection could not be made. `Display` names the hop: "jump server 10.0.0.5:22:
/// authentication failed ...", "master 10.1.0.11:22 via SOCKS5 proxy 10.0.0.6:1080: connection refused".
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// A direct TCP connection failed (same wording as the provisioner always used).
    #[error("cannot connect to {addr}: {reason}")]
    Direct {
        /// Where to.
        addr: SocketAddr,
        /// Why.
        reason: NetFailure,
    },
    /// The proxy itself failed: nothing beyond it was tried.
    #[error("{hop}: {problem}")]
    Hop {
        /// Which proxy.
        hop: Hop,
        /// What went wrong with it.
        problem: HopProblem,
    },
    /// The proxy works but could not reach the target.
    #[error("{target} via {hop}: {problem}")]
    Beyond {
        /// What we wanted to reach.
        target: Target,
        /// Through which proxy.
        hop: Hop,
        /// Why the proxy could not reach it.
        problem: TargetProblem,
    },
}

impl TransportError {
    /// The proxy involved, if any.
    pub fn hop(&self) -> Option<Hop> {
        match self {
            TransportError::Direct { .. } => None,
            TransportError::Hop { hop, .. } | TransportError::Beyond { hop, .. } => Some(*hop),
        }
    }

    /// True when the proxy itself failed (so nothing was learned about the target).
    pub fn is_proxy_failure(&self) -> bool {
        matches!(self, TransportError::Hop { .. })
    }

    /// True when the failure is about the target (refused, unreachable, timed out), directly or
    /// beyond a working proxy: a probe reads this as "does not answer".
    pub fn is_target_failure(&self) -> bool {
        matches!(
            self,
            TransportError::Direct { .. } | TransportError::Beyond { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn messages_name_the_hop() {
        let jump = Hop {
            kind: HopKind::JumpServer,
            addr: addr("10.0.0.5:22"),
        };
        let socks = Hop {
            kind: HopKind::Socks5,
            addr: addr("10.0.0.6:1080"),
        };
        let e = TransportError::Hop {
            hop: socks,
            problem: HopProblem::Connect(NetFailure::Refused),
        };
        assert_eq!(
            e.to_string(),
            "SOCKS5 proxy 10.0.0.6:1080: connection refused"
        );
        assert!(e.is_proxy_failure());
        let e = TransportError::Hop {
            hop: jump,
            problem: HopProblem::Auth {
                user: "jumper".into(),
                methods: "publickey,password".into(),
                last: "password: Authentication failed (username/password)".into(),
            },
        };
        assert!(
            e.to_string()
                .starts_with("jump server 10.0.0.5:22: authentication failed as jumper"),
            "{e}"
        );
        let e = TransportError::Beyond {
            target: Target::master(addr("10.1.0.11:22")),
            hop: socks,
            problem: TargetProblem::Refused,
        };
        assert_eq!(
            e.to_string(),
            "master 10.1.0.11:22 via SOCKS5 proxy 10.0.0.6:1080: connection refused"
        );
        assert!(e.is_target_failure() && !e.is_proxy_failure());
        assert_eq!(e.hop(), Some(socks));
        let e = TransportError::Beyond {
            target: Target::probe(addr("10.1.0.100:6443")),
            hop: jump,
            problem: TargetProblem::TimedOut(Duration::from_millis(1500)),
        };
        assert_eq!(
            e.to_string(),
            "10.1.0.100:6443 via jump server 10.0.0.5:22: no connection within 1500 ms"
        );
        let e = TransportError::Direct {
            addr: addr("10.0.0.12:22"),
            reason: NetFailure::TimedOut(Duration::from_secs(5)),
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to 10.0.0.12:22: no answer within 5 s"
        );
        assert_eq!(e.hop(), None);
    }

    #[test]
    fn os_errors_become_words() {
        use std::io::{Error, ErrorKind};
        let t = Duration::from_secs(2);
        assert_eq!(
            NetFailure::from_io(&Error::from(ErrorKind::ConnectionRefused), t),
            NetFailure::Refused
        );
        assert_eq!(
            NetFailure::from_io(&Error::from(ErrorKind::TimedOut), t),
            NetFailure::TimedOut(t)
        );
        assert_eq!(
            NetFailure::from_io(&Error::from(ErrorKind::HostUnreachable), t).to_string(),
            "host unreachable"
        );
    }
}

//! SSH jump servers: one logged-in session per distinct jump server (address, user, credentials), established once and shared by every master behind it; tunnels through it are `direct-tcpip` channels run by the session's pump.
//!
//! TKEStack's own dialer (`pkg/util/ssh/proxy.go`) logs in to the jump server again for every
//! connection; here the first caller logs in while the others wait for it, and a failed login is
//! remembered, so a wrong password costs one attempt, not one per master.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hostkeys::HostKeyPolicy;
use crate::manifest::{Credentials, Secret};

use super::error::{Hop, HopKind, HopProblem, NetFailure, Target, TargetProblem, TransportError};
use super::login::{self, LoginError};
use super::pump::{self, OpenFailure, PumpHandle};

/// An SSH jump server and how to log in to it.
#[derive(Debug, Clone)]
pub struct JumpServer {
    /// Where its sshd listens.
    pub addr: SocketAddr,
    /// The login name.
    pub username: String,
    /// Password, or private key (with its passphrase).
    pub credentials: Credentials,
}

fn same_secret(a: &Option<Secret>, b: &Option<Secret>) -> bool {
    a == b
}

impl PartialEq for JumpServer {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
            && self.username == other.username
            && same_secret(&self.credentials.password, &other.credentials.password)
            && same_secret(
                &self.credentials.private_key,
                &other.credentials.private_key,
            )
            && same_secret(
                &self.credentials.pass_phrase,
                &other.credentials.pass_phrase,
            )
    }
}

impl Eq for JumpServer {}

impl JumpServer {
    /// A jump server; needs a username and a password or a private key (as TKEStack's rules).
    ///
    /// # Errors
    ///
    /// A message naming the missing field.
    pub fn new(
        addr: SocketAddr,
        username: impl Into<String>,
        credentials: Credentials,
    ) -> Result<Self, String> {
        let username = username.into();
        if username.is_empty() {
            return Err(format!("jump server {addr}: a username is required"));
        }
        if credentials.password.is_none() && credentials.private_key.is_none() {
            return Err(format!(
                "jump server {addr}: a password or a privateKey is required"
            ));
        }
        Ok(JumpServer {
            addr,
            username,
            credentials,
        })
    }

    /// The hop as named in errors.
    pub fn hop(&self) -> Hop {
        Hop {
            kind: HopKind::JumpServer,
            addr: self.addr,
        }
    }
}

/// What one jump session did, for reports, benchmarks and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpStats {
    /// The jump server.
    pub server: SocketAddr,
    /// The login name.
    pub username: String,
    /// SSH connections (TCP + handshake + login) made to it: 1 when all masters shared one.
    pub logins: u32,
    /// Tunnels opened through it.
    pub tunnels_opened: u32,
    /// Tunnels open now.
    pub tunnels_open: u32,
    /// Why its session broke, if it did.
    pub lost: Option<String>,
}

/// A logged-in jump session and its pump.
#[derive(Debug)]
pub(crate) struct JumpLink {
    hop: Hop,
    pump: PumpHandle,
}

impl JumpLink {
    /// A tunnel to `target` through this session, within `timeout`.
    pub fn open(&self, target: Target, timeout: Duration) -> Result<UnixStream, TransportError> {
        let hop = self.hop;
        let beyond = |problem| TransportError::Beyond {
            target,
            hop,
            problem,
        };
        let deadline = Instant::now() + timeout;
        self.pump
            .open(target.addr.ip(), target.addr.port(), deadline)
            .map_err(|f| match f {
                OpenFailure::ConnectFailed => beyond(TargetProblem::JumpConnectFailed),
                OpenFailure::Prohibited => beyond(TargetProblem::JumpProhibited),
                OpenFailure::Refused(m) => beyond(TargetProblem::JumpOther(m)),
                OpenFailure::TimedOut => beyond(TargetProblem::TimedOut(timeout)),
                OpenFailure::Lost(m) => TransportError::Hop {
                    hop,
                    problem: HopProblem::Lost(m),
                },
                OpenFailure::TooMany => TransportError::Hop {
                    hop,
                    problem: HopProblem::Config(format!(
                        "more than {} tunnels at once through one jump server",
                        pump::MAX_TUNNELS
                    )),
                },
            })
    }
}

/// Connect, check the host key, log in, and start the pump.
fn establish(
    server: &JumpServer,
    policy: &HostKeyPolicy,
    timeout: Duration,
) -> Result<JumpLink, TransportError> {
    let hop = server.hop();
    let fail = |problem| TransportError::Hop { hop, problem };
    let tcp = TcpStream::connect_timeout(&server.addr, timeout)
        .map_err(|e| fail(HopProblem::Connect(NetFailure::from_io(&e, timeout))))?;
    let _ = tcp.set_nodelay(true);
    let watch = tcp
        .try_clone()
        .map_err(|e| fail(HopProblem::Connect(NetFailure::Other(e.to_string()))))?;
    let login_err = |e: LoginError| match e {
        LoginError::Handshake(m) => fail(HopProblem::SshHandshake(m)),
        LoginError::HostKey(k) => fail(HopProblem::HostKey(Arc::new(k))),
        LoginError::Auth {
            user,
            methods,
            last,
        } => fail(HopProblem::Auth {
            user,
            methods,
            last,
        }),
    };
    let sess = login::handshake(tcp, server.addr.ip(), server.addr.port(), policy, timeout)
        .map_err(login_err)?;
    login::authenticate(&sess, &server.username, &server.credentials).map_err(login_err)?;
    let pump = pump::spawn(sess, watch, &server.addr.to_string()).map_err(|e| {
        fail(HopProblem::Lost(format!(
            "cannot start its pump thread: {e}"
        )))
    })?;
    Ok(JumpLink { hop, pump })
}

#[derive(Debug)]
enum SlotState {
    Empty,
    Ready(Arc<JumpLink>),
    Failed(TransportError),
}

#[derive(Debug)]
struct Slot {
    server: JumpServer,
    state: Mutex<SlotState>,
    logins: AtomicU32,
}

/// The jump sessions of one run, one per distinct jump server.
#[derive(Debug)]
pub(crate) struct JumpSessions {
    policy: HostKeyPolicy,
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl JumpSessions {
    pub fn new(policy: HostKeyPolicy) -> Self {
        JumpSessions {
            policy,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The session to `server`: established by the first caller (the others wait for it), then
    /// shared; a failure is kept and given to every later caller.
    pub fn link(
        &self,
        server: &JumpServer,
        timeout: Duration,
    ) -> Result<Arc<JumpLink>, TransportError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.iter().find(|s| s.server == *server) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = Arc::new(Slot {
                        server: server.clone(),
                        state: Mutex::new(SlotState::Empty),
                        logins: AtomicU32::new(0),
                    });
                    slots.push(Arc::clone(&s));
                    s
                }
            }
        };
        let mut state = slot.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            SlotState::Ready(link) => return Ok(Arc::clone(link)),
            SlotState::Failed(e) => return Err(e.clone()),
            SlotState::Empty => {}
        }
        slot.logins.fetch_add(1, Ordering::Relaxed);
        match establish(server, &self.policy, timeout) {
            Ok(link) => {
                let link = Arc::new(link);
                *state = SlotState::Ready(Arc::clone(&link));
                Ok(link)
            }
            Err(e) => {
                *state = SlotState::Failed(e.clone());
                Err(e)
            }
        }
    }

    pub fn stats(&self) -> Vec<JumpStats> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .iter()
            .map(|s| {
                let state = s.state.lock().unwrap_or_else(|p| p.into_inner());
                let (opened, open, lost) = match &*state {
                    SlotState::Ready(l) => (
                        l.pump.counters.opened.load(Ordering::Relaxed),
                        l.pump.counters.open_now.load(Ordering::Relaxed),
                        l.pump.lost(),
                    ),
                    SlotState::Failed(e) => (0, 0, Some(e.to_string())),
                    SlotState::Empty => (0, 0, None),
                };
                JumpStats {
                    server: s.server.addr,
                    username: s.server.username.clone(),
                    logins: s.logins.load(Ordering::Relaxed),
                    tunnels_opened: opened,
                    tunnels_open: open,
                    lost,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn creds(pw: &str) -> Credentials {
        Credentials {
            password: Some(Secret::new(pw)),
            ..Credentials::default()
        }
    }

    #[test]
    fn a_jump_server_needs_a_user_and_a_credential() {
        let a: SocketAddr = "10.0.0.5:22".parse().unwrap();
        assert!(
            JumpServer::new(a, "", creds("x"))
                .unwrap_err()
                .contains("username is required")
        );
        assert!(
            JumpServer::new(a, "jump", Credentials::default())
                .unwrap_err()
                .contains("a password or a privateKey is required")
        );
        let j = JumpServer::new(a, "jump", creds("pw1")).unwrap();
        assert_eq!(j.hop().to_string(), "jump server 10.0.0.5:22");
        assert_eq!(j, JumpServer::new(a, "jump", creds("pw1")).unwrap());
        // Another password is another login, so another session.
        assert_ne!(j, JumpServer::new(a, "jump", creds("pw2")).unwrap());
        assert!(!format!("{j:?}").contains("pw1"));
    }

    #[test]
    fn a_refused_jump_server_is_tried_once_and_named() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let sessions = JumpSessions::new(HostKeyPolicy::Insecure);
        let j = JumpServer::new(addr, "jump", creds("pw")).unwrap();
        let t = Duration::from_secs(2);
        let e1 = sessions.link(&j, t).unwrap_err();
        let e2 = sessions.link(&j, t).unwrap_err();
        assert_eq!(
            e1.to_string(),
            format!("jump server {addr}: connection refused")
        );
        assert_eq!(e1.to_string(), e2.to_string());
        let stats = sessions.stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].logins, 1);
        assert!(
            stats[0]
                .lost
                .as_deref()
                .unwrap()
                .contains("connection refused")
        );
    }

    #[test]
    fn a_server_that_is_not_ssh_fails_the_handshake_within_the_timeout() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(1500));
            drop(c);
        });
        let sessions = JumpSessions::new(HostKeyPolicy::Insecure);
        let j = JumpServer::new(addr, "jump", creds("pw")).unwrap();
        let t0 = Instant::now();
        let e = sessions.link(&j, Duration::from_millis(400)).unwrap_err();
        assert!(
            t0.elapsed() < Duration::from_millis(1400),
            "{:?}",
            t0.elapsed()
        );
        assert!(
            e.to_string()
                .starts_with(&format!("jump server {addr}: SSH handshake failed")),
            "{e}"
        );
        h.join().unwrap();
    }
}

//! How this host reaches a master's SSH port or probes an address: directly, through a SOCKS5 proxy or through an SSH jump server (TKEStack's `machines[].proxy`), with errors that name the hop.
//!
//! A [`Dialer`] (one per run, shared by the per-master threads) turns a [`Route`] and a
//! [`Target`] into a connected [`Stream`] that `ssh2::Session::set_tcp_stream` accepts, or into a
//! probe answer. Jump sessions are established once per distinct jump server and shared; their
//! host keys go through the same [`HostKeyPolicy`] as the masters'. See `docs/proxies.md`.

pub mod error;
pub mod jump;
pub mod login;
mod pump;
pub mod socks5;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

pub use error::{
    Hop, HopKind, HopProblem, NetFailure, Role, Target, TargetProblem, TransportError,
};
pub use jump::{JumpServer, JumpStats};
pub use socks5::{Socks5Auth, Socks5Proxy};

use crate::hostkeys::HostKeyPolicy;

/// How a machine is reached from this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Route {
    /// A plain TCP connection (no `proxy` on the machine).
    #[default]
    Direct,
    /// Through a SOCKS5 proxy (`type: SOCKS5`).
    Socks5(Socks5Proxy),
    /// Through an SSH jump server (`type: SSHJumpServer`).
    Jump(JumpServer),
}

impl Route {
    /// The proxy of this route, if any.
    pub fn hop(&self) -> Option<Hop> {
        match self {
            Route::Direct => None,
            Route::Socks5(p) => Some(p.hop()),
            Route::Jump(j) => Some(j.hop()),
        }
    }

    /// The one route all of `routes` share, for probes of addresses that belong to no single
    /// machine (the VIP, the LB). `None` when the machines are reached in different ways.
    pub fn shared<'a>(routes: impl IntoIterator<Item = &'a Route>) -> Option<&'a Route> {
        let mut it = routes.into_iter();
        let first = it.next()?;
        it.all(|r| r == first).then_some(first)
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hop() {
            None => f.write_str("directly"),
            Some(h) => write!(f, "through {h}"),
        }
    }
}

/// A connected byte stream to a target: a TCP socket (direct or SOCKS5) or the local end of a
/// jump-server tunnel. Give it to `ssh2::Session::set_tcp_stream`, or read and write it.
#[derive(Debug)]
pub enum Stream {
    /// A TCP connection (directly to the target, or to the SOCKS5 proxy after CONNECT).
    Tcp(TcpStream),
    /// The local end of a socket pair pumped to a `direct-tcpip` channel of a jump session.
    Tunnel(UnixStream),
}

impl Stream {
    /// Like `TcpStream::set_read_timeout`.
    ///
    /// # Errors
    ///
    /// The OS's error.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Tunnel(s) => s.set_read_timeout(t),
        }
    }

    /// Like `TcpStream::set_write_timeout`.
    ///
    /// # Errors
    ///
    /// The OS's error.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Tunnel(s) => s.set_write_timeout(t),
        }
    }

    /// Like `TcpStream::shutdown`.
    ///
    /// # Errors
    ///
    /// The OS's error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Tunnel(s) => s.shutdown(how),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tunnel(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tunnel(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Tunnel(s) => s.as_raw_fd(),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Tunnel(s) => s.as_fd(),
        }
    }
}

/// Opens connections along routes for one run. Share it (`&Dialer`) between the per-host threads:
/// each distinct jump server gets one session, logged in by the first thread that needs it.
#[derive(Debug)]
pub struct Dialer {
    jumps: jump::JumpSessions,
}

impl Dialer {
    /// A dialer whose jump-server host keys go through `policy` (the masters' policy).
    pub fn new(policy: HostKeyPolicy) -> Self {
        Dialer {
            jumps: jump::JumpSessions::new(policy),
        }
    }

    /// Connect to `target` along `route`. `timeout` bounds each step: the TCP connect, the SOCKS5
    /// exchange, the jump server's handshake and login (first use only) and the tunnel's opening.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] that names the hop: the proxy itself ([`TransportError::Hop`]), the
    /// target beyond it ([`TransportError::Beyond`]), or the direct connection.
    pub fn dial(
        &self,
        route: &Route,
        target: Target,
        timeout: Duration,
    ) -> Result<Stream, TransportError> {
        match route {
            Route::Direct => {
                let s = TcpStream::connect_timeout(&target.addr, timeout).map_err(|e| {
                    TransportError::Direct {
                        addr: target.addr,
                        reason: NetFailure::from_io(&e, timeout),
                    }
                })?;
                let _ = s.set_nodelay(true);
                Ok(Stream::Tcp(s))
            }
            Route::Socks5(p) => socks5::connect(p, target, timeout).map(Stream::Tcp),
            Route::Jump(j) => {
                let link = self.jumps.link(j, timeout)?;
                link.open(target, timeout).map(Stream::Tunnel)
            }
        }
    }

    /// Whether `addr` accepts a TCP connection along `route` within `timeout`.
    ///
    /// # Errors
    ///
    /// Only when the proxy itself fails: the probe could not be made, and is not made directly.
    pub fn tcp_answers(
        &self,
        route: &Route,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<bool, TransportError> {
        match self.dial(route, Target::probe(addr), timeout) {
            Ok(_) => Ok(true),
            Err(e) if e.is_target_failure() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Connect to `addr` along `route`, send `request`, and return what comes back until the
    /// peer closes, stays silent for `read_timeout`, or `limit` bytes have arrived. `Ok(None)`
    /// when the target could not be reached.
    ///
    /// # Errors
    ///
    /// Only when the proxy itself fails (see [`Dialer::tcp_answers`]).
    pub fn exchange(
        &self,
        route: &Route,
        addr: SocketAddr,
        request: &[u8],
        connect_timeout: Duration,
        read_timeout: Duration,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let mut s = match self.dial(route, Target::probe(addr), connect_timeout) {
            Ok(s) => s,
            Err(e) if e.is_target_failure() => return Ok(None),
            Err(e) => return Err(e),
        };
        let _ = s.set_read_timeout(Some(read_timeout));
        let _ = s.set_write_timeout(Some(read_timeout));
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while buf.len() < limit {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n.min(limit - buf.len())]),
            }
        }
        Ok(Some(buf))
    }

    /// One entry per jump server used so far: logins made, tunnels opened, a broken session.
    pub fn jump_stats(&self) -> Vec<JumpStats> {
        self.jumps.stats()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::TcpListener;

    use super::*;
    use crate::manifest::Secret;

    #[test]
    fn direct_dial_and_probes() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut c, _) = l.accept().unwrap();
                let mut req = [0u8; 4];
                if c.read_exact(&mut req).is_ok() {
                    c.write_all(b"pong:").unwrap();
                    c.write_all(&req).unwrap();
                }
            }
        });
        let d = Dialer::new(HostKeyPolicy::Insecure);
        let t = Duration::from_secs(2);
        assert!(d.tcp_answers(&Route::Direct, addr, t).unwrap());
        let got = d
            .exchange(&Route::Direct, addr, b"ping", t, t, 1024)
            .unwrap()
            .unwrap();
        assert_eq!(got, b"pong:ping");
        h.join().unwrap();
        // Nothing listens any more: "does not answer", not an error.
        assert!(!d.tcp_answers(&Route::Direct, addr, t).unwrap());
        assert_eq!(
            d.exchange(&Route::Direct, addr, b"x", t, t, 16).unwrap(),
            None
        );
        let e = d.dial(&Route::Direct, Target::master(addr), t).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot connect to {addr}: connection refused")
        );
    }

    #[test]
    fn a_probe_through_a_dead_proxy_is_an_error_not_a_direct_probe() {
        // The target answers directly, but the route says SOCKS5 and the proxy is down.
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = dead.local_addr().unwrap();
        drop(dead);
        let route = Route::Socks5(Socks5Proxy {
            addr: proxy,
            auth: None,
        });
        let d = Dialer::new(HostKeyPolicy::Insecure);
        let t = Duration::from_secs(2);
        let e = d
            .tcp_answers(&route, target.local_addr().unwrap(), t)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("SOCKS5 proxy {proxy}: connection refused")
        );
        let e = d
            .exchange(&route, target.local_addr().unwrap(), b"GET /", t, t, 64)
            .unwrap_err();
        assert!(e.is_proxy_failure());
    }

    #[test]
    fn the_dialer_is_shared_by_threads_and_streams_move_to_them() {
        fn shared<T: Send + Sync>() {}
        fn moved<T: Send + 'static>() {}
        shared::<Dialer>();
        moved::<Stream>();
        moved::<TransportError>();
    }

    #[test]
    fn routes_compare_and_share() {
        let socks = |port: u16| {
            Route::Socks5(Socks5Proxy {
                addr: SocketAddr::from(([10, 0, 0, 6], port)),
                auth: Some(Socks5Auth::new("u", Secret::new("p")).unwrap()),
            })
        };
        let a = socks(1080);
        let b = socks(1081);
        assert_eq!(Route::shared([&a, &a.clone()]), Some(&a));
        assert_eq!(Route::shared([&a, &b]), None);
        assert_eq!(Route::shared([&Route::Direct, &a]), None);
        assert_eq!(Route::shared(std::iter::empty::<&Route>()), None);
        assert_eq!(a.to_string(), "through SOCKS5 proxy 10.0.0.6:1080");
        assert_eq!(Route::Direct.to_string(), "directly");
    }
}

//! The provisioner host's probes of the VIP and the load balancer, behind the [`Network`] seam: made along the masters' route (directly, through their SOCKS5 proxy or their jump server), and failing loudly when the proxy does.
//!
//! The probes that decide whether the VIP answers (`apply`, `drill`) and which masters a load
//! balancer reaches (third-party `check`/`apply`) go through a [`Network`], so that a run takes
//! the same route as its SSH connections and the unit tests can answer them without I/O. A probe
//! that cannot be made through the proxy is an error (the proxy's), never a "does not answer",
//! and it is never made directly instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::transport::{Dialer, Route, TransportError};

/// How the provisioner host probes addresses on the masters' network.
pub trait Network: Send + Sync + std::fmt::Debug {
    /// Whether `addr` accepts a TCP connection along `route` within `timeout`.
    ///
    /// # Errors
    ///
    /// Only when the proxy of `route` fails: then nothing is known about `addr`.
    fn tcp_answers(
        &self,
        route: &Route,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<bool, TransportError>;

    /// Connect to `addr` along `route` within `connect_timeout`, send `request`, and return what
    /// comes back until the peer closes, stays silent for `read_timeout`, or `limit` bytes have
    /// arrived. `Ok(None)` when `addr` could not be reached.
    ///
    /// # Errors
    ///
    /// Only when the proxy of `route` fails (see [`Network::tcp_answers`]).
    fn exchange(
        &self,
        route: &Route,
        addr: SocketAddr,
        request: &[u8],
        connect_timeout: Duration,
        read_timeout: Duration,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, TransportError>;
}

/// Probes from this host along a route, with the run's [`Dialer`] (so a probe through a jump
/// server shares the masters' jump session).
#[derive(Debug, Clone)]
pub struct Routed {
    /// The run's dialer.
    pub dialer: Arc<Dialer>,
}

impl Routed {
    /// Probes with `dialer`.
    pub fn new(dialer: Arc<Dialer>) -> Self {
        Routed { dialer }
    }
}

impl Network for Routed {
    fn tcp_answers(
        &self,
        route: &Route,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<bool, TransportError> {
        self.dialer.tcp_answers(route, addr, timeout)
    }

    fn exchange(
        &self,
        route: &Route,
        addr: SocketAddr,
        request: &[u8],
        connect_timeout: Duration,
        read_timeout: Duration,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.dialer
            .exchange(route, addr, request, connect_timeout, read_timeout, limit)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use super::*;
    use crate::HostKeyPolicy;
    use crate::transport::Socks5Proxy;

    #[test]
    fn direct_exchanges_and_reports_refusals() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut req = [0u8; 4];
            c.read_exact(&mut req).unwrap();
            c.write_all(b"answer to ").unwrap();
            c.write_all(&req).unwrap();
        });
        let net = Routed::new(Arc::new(Dialer::new(HostKeyPolicy::Insecure)));
        let t = Duration::from_secs(2);
        let got = net
            .exchange(&Route::Direct, addr, b"PING", t, t, 4096)
            .unwrap();
        assert_eq!(got.as_deref(), Some(&b"answer to PING"[..]));
        server.join().unwrap();
        // Nothing listens there any more: a plain "no".
        assert!(
            !net.tcp_answers(&Route::Direct, addr, Duration::from_millis(500))
                .unwrap()
        );
        assert_eq!(
            net.exchange(&Route::Direct, addr, b"x", t, t, 16).unwrap(),
            None
        );
    }

    #[test]
    fn a_dead_proxy_is_an_error_not_an_answer_and_no_direct_probe_is_made() {
        // The address answers directly; the route says SOCKS5 through a proxy that is down.
        let target = TcpListener::bind("127.0.0.1:0").unwrap();
        target.set_nonblocking(true).unwrap();
        let dead = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = dead.local_addr().unwrap();
        drop(dead);
        let route = Route::Socks5(Socks5Proxy {
            addr: proxy,
            auth: None,
        });
        let net = Routed::new(Arc::new(Dialer::new(HostKeyPolicy::Insecure)));
        let t = Duration::from_secs(1);
        let addr = target.local_addr().unwrap();
        let e = net.tcp_answers(&route, addr, t).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("SOCKS5 proxy {proxy}: connection refused")
        );
        assert!(
            net.exchange(&route, addr, b"GET /", t, t, 64)
                .unwrap_err()
                .is_proxy_failure()
        );
        // Nobody connected to the target itself.
        assert!(target.accept().is_err());
    }
}

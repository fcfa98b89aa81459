//! The provisioner host's own connections: the SSH dial, and the probes of the VIP and the load balancer behind the [`Network`] seam.
//!
//! Every TCP connection the provisioner opens starts in [`dial`]. The probes that decide
//! whether the VIP answers (`apply`, `drill`) and which masters a load balancer reaches
//! (third-party `check`/`apply`) go through a [`Network`], so that a run can route them like the
//! SSH connections (a proxy) and the unit tests can answer them without I/O.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How the provisioner host probes addresses on the masters' network.
pub trait Network: Send + Sync + std::fmt::Debug {
    /// Whether `addr` accepts a TCP connection within `timeout`.
    fn tcp_answers(&self, addr: SocketAddr, timeout: Duration) -> bool;

    /// Connect to `addr` within `connect_timeout`, send `request`, and return what comes back
    /// until the peer closes, stays silent for `read_timeout`, or `limit` bytes have arrived.
    /// `None` when the connection could not be made.
    fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        connect_timeout: Duration,
        read_timeout: Duration,
        limit: usize,
    ) -> Option<Vec<u8>>;
}

/// Open a TCP connection from this host (no Nagle delay: scripts and probes are small).
///
/// # Errors
///
/// The OS's error: refused, unreachable, or no answer within `timeout`.
pub fn dial(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, timeout)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Probes straight from this host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct;

impl Network for Direct {
    fn tcp_answers(&self, addr: SocketAddr, timeout: Duration) -> bool {
        dial(addr, timeout).is_ok()
    }

    fn exchange(
        &self,
        addr: SocketAddr,
        request: &[u8],
        connect_timeout: Duration,
        read_timeout: Duration,
        limit: usize,
    ) -> Option<Vec<u8>> {
        let mut s = dial(addr, connect_timeout).ok()?;
        let _ = s.set_read_timeout(Some(read_timeout));
        let _ = s.write_all(request);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while buf.len() < limit {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::TcpListener;

    use super::*;

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
        let t = Duration::from_secs(2);
        let got = Direct.exchange(addr, b"PING", t, t, 4096).unwrap();
        assert_eq!(got, b"answer to PING");
        server.join().unwrap();
        // Nothing listens there any more.
        assert!(!Direct.tcp_answers(addr, Duration::from_millis(500)));
        assert_eq!(Direct.exchange(addr, b"x", t, t, 16), None);
    }
}

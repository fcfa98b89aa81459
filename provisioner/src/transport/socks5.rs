//! SOCKS5 client: RFC 1928 CONNECT with no authentication (as TKEStack's dialer) or RFC 1929 username/password, on a blocking std `TcpStream`, every read exact-sized and under one deadline.
//!
//! Hand-written rather than the `socks` crate: that crate dials the proxy itself with no connect
//! timeout and sets no read timeout before its handshake (a proxy that accepts and never answers
//! hangs the caller), and reports failures as `io::Error` strings, so a refused target could not
//! be told from a refused proxy. Here each read asks for exactly the bytes the protocol defines
//! (at most 262 for a reply), so nothing of the target's first bytes (an SSH banner) is consumed.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::manifest::Secret;

use super::error::{Hop, HopKind, HopProblem, NetFailure, Target, TargetProblem, TransportError};

const VERSION: u8 = 0x05;
const METHOD_NONE: u8 = 0x00;
const METHOD_USERPASS: u8 = 0x02;
const METHOD_NO_ACCEPTABLE: u8 = 0xFF;
const USERPASS_VERSION: u8 = 0x01;
const CMD_CONNECT: u8 = 0x01;
const ATYP_V4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_V6: u8 = 0x04;
/// The step whose timeout means the proxy works but the target does not answer it.
const STEP_CONNECT_ANSWER: &str = "CONNECT answer";

/// RFC 1929 credentials: a username and a password of 1..=255 bytes each.
#[derive(Clone, PartialEq, Eq)]
pub struct Socks5Auth {
    username: String,
    password: Secret,
}

impl std::fmt::Debug for Socks5Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socks5Auth")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl Socks5Auth {
    /// Check the RFC 1929 length limits (1..=255 bytes each).
    ///
    /// # Errors
    ///
    /// A message naming the field and the limit.
    pub fn new(username: impl Into<String>, password: Secret) -> Result<Self, String> {
        let username = username.into();
        for (what, len) in [
            ("username", username.len()),
            ("password", password.expose().len()),
        ] {
            if !(1..=255).contains(&len) {
                return Err(format!(
                    "the SOCKS5 {what} must be 1 to 255 bytes long (RFC 1929), not {len}"
                ));
            }
        }
        Ok(Socks5Auth { username, password })
    }

    /// The login name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

/// A SOCKS5 proxy: where it listens and, optionally, RFC 1929 credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socks5Proxy {
    /// Where the proxy listens.
    pub addr: SocketAddr,
    /// Username/password authentication; `None` offers "no authentication" only (TKEStack's way).
    pub auth: Option<Socks5Auth>,
}

impl Socks5Proxy {
    /// The hop as named in errors.
    pub fn hop(&self) -> Hop {
        Hop {
            kind: HopKind::Socks5,
            addr: self.addr,
        }
    }
}

/// A reply code of the CONNECT request (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCode(pub u8);

impl std::fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self.0 {
            1 => "general SOCKS server failure",
            2 => "connection not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "unassigned reply code",
        };
        write!(f, "{text} (reply {})", self.0)
    }
}

/// How the exchange with a SOCKS5 proxy failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Socks5Error {
    /// The proxy did not answer in time.
    #[error("no SOCKS5 answer within {} (waiting for the {step})", super::error::human(*.after))]
    TimedOut {
        /// Which message was being sent or awaited.
        step: &'static str,
        /// The timeout of the whole exchange.
        after: Duration,
    },
    /// The proxy closed the connection in the middle of a message.
    #[error("closed the connection during the SOCKS5 {step} ({got} of {wanted} bytes)")]
    Closed {
        /// Which message was being read.
        step: &'static str,
        /// Bytes received.
        got: usize,
        /// Bytes the message needs.
        wanted: usize,
    },
    /// Reading or writing failed.
    #[error("SOCKS5 {step}: {message}")]
    Io {
        /// Which message.
        step: &'static str,
        /// The OS's reason.
        message: String,
    },
    /// The first byte of an answer was not 5.
    #[error("not a SOCKS5 server (its answer starts with {0:#04x}, not 0x05)")]
    NotSocks5(u8),
    /// The proxy accepts none of the offered methods.
    #[error(
        "accepts none of the authentication methods offered ({offered}){hint}",
        hint = if *.with_credentials { "" } else { ": it may require a username and password (RFC 1929)" }
    )]
    NoAcceptableMethod {
        /// What we offered.
        offered: &'static str,
        /// Whether credentials were offered.
        with_credentials: bool,
    },
    /// The proxy chose a method we did not offer.
    #[error("chose authentication method {0:#04x}, which was not offered")]
    UnofferedMethod(u8),
    /// RFC 1929 authentication was refused.
    #[error(
        "authentication failed as {user} (RFC 1929 status {status}); check the proxy's username and password"
    )]
    AuthFailed {
        /// The login name.
        user: String,
        /// The proxy's status byte.
        status: u8,
    },
    /// The RFC 1929 answer had a wrong version byte.
    #[error("bad username/password answer (version {0:#04x}, expected 0x01)")]
    BadAuthVersion(u8),
    /// The proxy refused the CONNECT for a reason of its own (not the target's).
    #[error("refused the CONNECT: {0}")]
    Refused(ReplyCode),
    /// The proxy could not reach the target (reply 3, 4, 5 or 6).
    #[error("{0}")]
    TargetUnreachable(ReplyCode),
    /// The proxy's answer names an address type RFC 1928 does not define.
    #[error("bad CONNECT answer: unknown address type {0:#04x}")]
    BadAddressType(u8),
}

/// Read exactly `buf.len()` bytes before `deadline`.
fn read_exact(
    s: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    timeout: Duration,
    step: &'static str,
) -> Result<(), Socks5Error> {
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Socks5Error::TimedOut {
                step,
                after: timeout,
            });
        }
        s.set_read_timeout(Some(left))
            .map_err(|e| io_err(step, &e))?;
        match s.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(Socks5Error::Closed {
                    step,
                    got,
                    wanted: buf.len(),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Socks5Error::TimedOut {
                    step,
                    after: timeout,
                });
            }
            Err(e) => return Err(io_err(step, &e)),
        }
    }
    Ok(())
}

fn write_all(
    s: &mut TcpStream,
    data: &[u8],
    deadline: Instant,
    timeout: Duration,
    step: &'static str,
) -> Result<(), Socks5Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Socks5Error::TimedOut {
            step,
            after: timeout,
        });
    }
    s.set_write_timeout(Some(left))
        .map_err(|e| io_err(step, &e))?;
    s.write_all(data).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Socks5Error::TimedOut {
            step,
            after: timeout,
        },
        _ => io_err(step, &e),
    })
}

fn io_err(step: &'static str, e: &io::Error) -> Socks5Error {
    Socks5Error::Io {
        step,
        message: e.to_string(),
    }
}

/// The CONNECT request for `target`.
fn connect_request(target: SocketAddr) -> Vec<u8> {
    let mut req = vec![VERSION, CMD_CONNECT, 0x00];
    match target.ip() {
        IpAddr::V4(ip) => {
            req.push(ATYP_V4);
            req.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            req.push(ATYP_V6);
            req.extend_from_slice(&ip.octets());
        }
    }
    req.extend_from_slice(&target.port().to_be_bytes());
    req
}

/// Run the SOCKS5 exchange on a connected stream: method selection, RFC 1929 if `auth`, CONNECT
/// to `target`. Returns the proxy's bound address (unspecified when it answered a domain name).
/// `timeout` bounds the whole exchange.
///
/// # Errors
///
/// A [`Socks5Error`]; [`Socks5Error::TargetUnreachable`] when the proxy works but cannot reach
/// the target.
pub fn handshake(
    s: &mut TcpStream,
    target: SocketAddr,
    auth: Option<&Socks5Auth>,
    timeout: Duration,
) -> Result<SocketAddr, Socks5Error> {
    let deadline = Instant::now() + timeout;
    let (method, offered) = match auth {
        Some(_) => (METHOD_USERPASS, "username/password"),
        None => (METHOD_NONE, "no authentication"),
    };
    write_all(s, &[VERSION, 1, method], deadline, timeout, "greeting")?;
    let mut choice = [0u8; 2];
    read_exact(s, &mut choice, deadline, timeout, "method choice")?;
    if choice[0] != VERSION {
        return Err(Socks5Error::NotSocks5(choice[0]));
    }
    match choice[1] {
        METHOD_NO_ACCEPTABLE => {
            return Err(Socks5Error::NoAcceptableMethod {
                offered,
                with_credentials: auth.is_some(),
            });
        }
        m if m != method => return Err(Socks5Error::UnofferedMethod(m)),
        _ => {}
    }
    if let Some(a) = auth {
        let user = a.username.as_bytes();
        let pass = a.password.expose().as_bytes();
        // Lengths were checked in Socks5Auth::new (1..=255).
        let mut msg = Vec::with_capacity(3 + user.len() + pass.len());
        msg.push(USERPASS_VERSION);
        msg.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
        msg.extend_from_slice(user);
        msg.push(u8::try_from(pass.len()).unwrap_or(u8::MAX));
        msg.extend_from_slice(pass);
        write_all(s, &msg, deadline, timeout, "username/password")?;
        let mut status = [0u8; 2];
        read_exact(
            s,
            &mut status,
            deadline,
            timeout,
            "username/password answer",
        )?;
        // RFC 1929 says 0x01; some servers echo the SOCKS version instead.
        if status[0] != USERPASS_VERSION && status[0] != VERSION {
            return Err(Socks5Error::BadAuthVersion(status[0]));
        }
        if status[1] != 0 {
            return Err(Socks5Error::AuthFailed {
                user: a.username.clone(),
                status: status[1],
            });
        }
    }
    write_all(s, &connect_request(target), deadline, timeout, "CONNECT")?;
    let mut head = [0u8; 4];
    read_exact(s, &mut head, deadline, timeout, STEP_CONNECT_ANSWER)?;
    if head[0] != VERSION {
        return Err(Socks5Error::NotSocks5(head[0]));
    }
    match head[1] {
        0 => {}
        c @ 3..=6 => return Err(Socks5Error::TargetUnreachable(ReplyCode(c))),
        c => return Err(Socks5Error::Refused(ReplyCode(c))),
    }
    // head[2] is reserved (0x00); not worth refusing a working proxy over.
    let bound = match head[3] {
        ATYP_V4 => {
            let mut b = [0u8; 6];
            read_exact(s, &mut b, deadline, timeout, STEP_CONNECT_ANSWER)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            SocketAddr::new(ip.into(), u16::from_be_bytes([b[4], b[5]]))
        }
        ATYP_V6 => {
            let mut b = [0u8; 18];
            read_exact(s, &mut b, deadline, timeout, STEP_CONNECT_ANSWER)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                u16::from_be_bytes([b[16], b[17]]),
            )
        }
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            read_exact(s, &mut len, deadline, timeout, STEP_CONNECT_ANSWER)?;
            // A length byte bounds the name at 255 bytes.
            let mut rest = vec![0u8; usize::from(len[0]) + 2];
            read_exact(s, &mut rest, deadline, timeout, STEP_CONNECT_ANSWER)?;
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
        }
        t => return Err(Socks5Error::BadAddressType(t)),
    };
    Ok(bound)
}

/// Connect to `target` through `proxy`: TCP to the proxy within `timeout`, then the SOCKS5
/// exchange within `timeout`. The returned stream has no read or write timeout set.
///
/// # Errors
///
/// [`TransportError::Hop`] when the proxy fails (unreachable, not SOCKS5, refuses our login or
/// the request); [`TransportError::Beyond`] when it cannot reach `target`.
pub fn connect(
    proxy: &Socks5Proxy,
    target: Target,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let hop = proxy.hop();
    let mut s =
        TcpStream::connect_timeout(&proxy.addr, timeout).map_err(|e| TransportError::Hop {
            hop,
            problem: HopProblem::Connect(NetFailure::from_io(&e, timeout)),
        })?;
    let _ = s.set_nodelay(true);
    match handshake(&mut s, target.addr, proxy.auth.as_ref(), timeout) {
        Ok(_) => {}
        Err(Socks5Error::TargetUnreachable(code)) => {
            return Err(TransportError::Beyond {
                target,
                hop,
                problem: match code.0 {
                    3 => TargetProblem::NetworkUnreachable,
                    4 => TargetProblem::HostUnreachable,
                    5 => TargetProblem::Refused,
                    _ => TargetProblem::ProxyTimedOut,
                },
            });
        }
        Err(Socks5Error::TimedOut {
            step: STEP_CONNECT_ANSWER,
            after,
        }) => {
            // The proxy took our request but its own connect to the target is still pending.
            return Err(TransportError::Beyond {
                target,
                hop,
                problem: TargetProblem::TimedOut(after),
            });
        }
        Err(e) => {
            return Err(TransportError::Hop {
                hop,
                problem: HopProblem::Socks5(e),
            });
        }
    }
    let _ = s.set_read_timeout(None);
    let _ = s.set_write_timeout(None);
    Ok(s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    use super::*;

    /// One scripted exchange: what the peer expects to read (checked) and what it writes.
    enum Step {
        Expect(Vec<u8>),
        Send(Vec<u8>),
        /// Send these bytes one at a time with a pause in between (short reads on our side).
        Trickle(Vec<u8>),
        /// Stay silent for this long.
        Sleep(Duration),
        Close,
    }

    /// A scripted SOCKS5 peer on 127.0.0.1; the join handle yields what it read in total.
    fn peer(script: Vec<Step>) -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut seen = Vec::new();
            for step in script {
                match step {
                    Step::Expect(want) => {
                        let mut got = vec![0u8; want.len()];
                        if c.read_exact(&mut got).is_err() {
                            break;
                        }
                        seen.extend_from_slice(&got);
                        assert_eq!(got, want, "the client sent something else");
                    }
                    Step::Send(b) => c.write_all(&b).unwrap(),
                    Step::Trickle(b) => {
                        for x in b {
                            c.write_all(&[x]).unwrap();
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    Step::Sleep(d) => std::thread::sleep(d),
                    Step::Close => return seen,
                }
            }
            // Keep the connection open until the client is done with it.
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            seen
        });
        (addr, h)
    }

    const TARGET: &str = "10.1.0.11:22";
    const T: Duration = Duration::from_secs(3);

    fn target() -> SocketAddr {
        TARGET.parse().unwrap()
    }

    fn connect_req() -> Vec<u8> {
        vec![5, 1, 0, 1, 10, 1, 0, 11, 0, 22]
    }

    fn ok_reply() -> Vec<u8> {
        vec![5, 0, 0, 1, 10, 0, 0, 6, 0x9c, 0x40]
    }

    fn proxy(addr: SocketAddr, auth: Option<Socks5Auth>) -> Socks5Proxy {
        Socks5Proxy { addr, auth }
    }

    #[test]
    fn no_auth_connect_then_the_targets_bytes_are_untouched() {
        // The reply and the target's SSH banner arrive in one segment: nothing of it may be lost.
        let mut reply = ok_reply();
        reply.extend_from_slice(b"SSH-2.0-OpenSSH_9.2\r\n");
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Send(reply),
        ]);
        let mut s = connect(&proxy(addr, None), Target::master(target()), T).unwrap();
        let mut banner = [0u8; 21];
        s.read_exact(&mut banner).unwrap();
        assert_eq!(&banner, b"SSH-2.0-OpenSSH_9.2\r\n");
        drop(s);
        h.join().unwrap();
    }

    #[test]
    fn rfc1929_credentials_are_sent_and_a_refusal_names_the_user() {
        let auth = Socks5Auth::new("proxyuser", Secret::new("s3cret")).unwrap();
        let mut login = vec![1, 9];
        login.extend_from_slice(b"proxyuser");
        login.push(6);
        login.extend_from_slice(b"s3cret");
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 2]),
            Step::Send(vec![5, 2]),
            Step::Expect(login.clone()),
            Step::Send(vec![1, 0]),
            Step::Expect(connect_req()),
            Step::Send(ok_reply()),
        ]);
        connect(
            &proxy(addr, Some(auth.clone())),
            Target::master(target()),
            T,
        )
        .unwrap();
        h.join().unwrap();

        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 2]),
            Step::Send(vec![5, 2]),
            Step::Expect(login),
            Step::Send(vec![1, 1]),
            Step::Close,
        ]);
        let e = connect(&proxy(addr, Some(auth)), Target::master(target()), T).unwrap_err();
        let text = e.to_string();
        assert!(e.is_proxy_failure());
        assert!(
            text.starts_with(&format!(
                "SOCKS5 proxy {addr}: authentication failed as proxyuser"
            )),
            "{text}"
        );
        assert!(!text.contains("s3cret"), "{text}");
        h.join().unwrap();
    }

    #[test]
    fn a_proxy_that_wants_a_login_says_so_when_none_is_given() {
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0xFF]),
            Step::Close,
        ]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(
            e.to_string()
                .contains("accepts none of the authentication methods offered (no authentication): it may require a username and password"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn target_failures_are_beyond_the_proxy_and_proxy_refusals_are_not() {
        for (code, want) in [
            (5u8, "via SOCKS5 proxy"),
            (4, "host unreachable"),
            (3, "network unreachable"),
        ] {
            let (addr, h) = peer(vec![
                Step::Expect(vec![5, 1, 0]),
                Step::Send(vec![5, 0]),
                Step::Expect(connect_req()),
                Step::Send(vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0]),
            ]);
            let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
            assert!(e.is_target_failure(), "{e}");
            assert!(
                e.to_string()
                    .starts_with("master 10.1.0.11:22 via SOCKS5 proxy"),
                "{e}"
            );
            assert!(e.to_string().contains(want), "{e}");
            h.join().unwrap();
        }
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Send(vec![5, 2, 0, 1, 0, 0, 0, 0, 0, 0]),
        ]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(e.is_proxy_failure());
        assert!(
            e.to_string()
                .contains("connection not allowed by ruleset (reply 2)"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn short_reads_are_reassembled() {
        let mut reply = ok_reply();
        reply.truncate(10);
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Trickle(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Trickle(reply),
        ]);
        connect(&proxy(addr, None), Target::master(target()), T).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn domain_and_ipv6_bound_addresses_are_read_exactly() {
        let mut reply = vec![5, 0, 0, 3, 255];
        reply.extend(std::iter::repeat_n(b'a', 255));
        reply.extend_from_slice(&[0, 80]);
        reply.extend_from_slice(b"X");
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Send(reply),
        ]);
        let mut s = connect(&proxy(addr, None), Target::master(target()), T).unwrap();
        let mut x = [0u8; 1];
        s.read_exact(&mut x).unwrap();
        assert_eq!(&x, b"X");
        drop(s);
        h.join().unwrap();

        let v6: SocketAddr = "[fd00::11]:22".parse().unwrap();
        let mut req = vec![5, 1, 0, 4];
        req.extend_from_slice(&"fd00::11".parse::<Ipv6Addr>().unwrap().octets());
        req.extend_from_slice(&[0, 22]);
        let mut reply = vec![5, 0, 0, 4];
        reply.extend_from_slice(&[0; 16]);
        reply.extend_from_slice(&[0, 1]);
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(req),
            Step::Send(reply),
        ]);
        connect(&proxy(addr, None), Target::master(v6), T).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn broken_peers_give_clear_errors() {
        // Not SOCKS5 at all (an HTTP server).
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()),
            Step::Close,
        ]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a SOCKS5 server (its answer starts with 0x48"),
            "{e}"
        );
        h.join().unwrap();
        // Closes in the middle of the CONNECT answer.
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Send(vec![5, 0, 0]),
            Step::Close,
        ]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(
            e.to_string()
                .contains("closed the connection during the SOCKS5 CONNECT answer (3 of 4 bytes)"),
            "{e}"
        );
        h.join().unwrap();
        // Unknown address type.
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Send(vec![5, 0, 0, 9]),
        ]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(e.to_string().contains("unknown address type 0x09"), "{e}");
        h.join().unwrap();
        // Picks a method we did not offer.
        let (addr, h) = peer(vec![Step::Expect(vec![5, 1, 0]), Step::Send(vec![5, 2])]);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert!(
            e.to_string().contains("method 0x02, which was not offered"),
            "{e}"
        );
        h.join().unwrap();
    }

    #[test]
    fn a_silent_proxy_times_out_within_the_bound() {
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Sleep(Duration::from_millis(1500)),
            Step::Close,
        ]);
        let t0 = Instant::now();
        let e = connect(
            &proxy(addr, None),
            Target::master(target()),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(
            t0.elapsed() < Duration::from_millis(1200),
            "{:?}",
            t0.elapsed()
        );
        assert!(e.is_proxy_failure());
        assert!(
            e.to_string()
                .ends_with("no SOCKS5 answer within 300 ms (waiting for the method choice)"),
            "{e}"
        );
        h.join().unwrap();
        // The proxy works but its own connect to the target hangs: the target is named.
        let (addr, h) = peer(vec![
            Step::Expect(vec![5, 1, 0]),
            Step::Send(vec![5, 0]),
            Step::Expect(connect_req()),
            Step::Sleep(Duration::from_millis(1500)),
            Step::Close,
        ]);
        let e = connect(
            &proxy(addr, None),
            Target::master(target()),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(e.is_target_failure());
        assert_eq!(
            e.to_string(),
            format!("master 10.1.0.11:22 via SOCKS5 proxy {addr}: no connection within 300 ms")
        );
        h.join().unwrap();
    }

    #[test]
    fn a_closed_proxy_port_is_refused_and_named() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = connect(&proxy(addr, None), Target::master(target()), T).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("SOCKS5 proxy {addr}: connection refused")
        );
    }

    #[test]
    fn oversized_credentials_are_refused_before_any_connection() {
        let long = "u".repeat(256);
        let e = Socks5Auth::new(long, Secret::new("pw")).unwrap_err();
        assert!(
            e.contains("username must be 1 to 255 bytes long (RFC 1929), not 256"),
            "{e}"
        );
        let e = Socks5Auth::new("user", Secret::new("")).unwrap_err();
        assert!(e.contains("password must be 1 to 255 bytes"), "{e}");
        assert!(Socks5Auth::new("u".repeat(255), Secret::new("p".repeat(255))).is_ok());
        // Debug never shows the password.
        let a = Socks5Auth::new("user", Secret::new("hunter2")).unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
    }
}

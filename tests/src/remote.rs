//! One SSH command on a master through the provisioner's transports (direct, SOCKS5, jump server):
//! what the proxy tests and the proxy benchmark do per master.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::Duration;

use tkeha_provisioner::HostKeyPolicy;
use tkeha_provisioner::manifest::{Credentials, Secret};
use tkeha_provisioner::transport::{Dialer, Route, Target, login};

/// Password credentials.
pub fn password(pw: &str) -> Credentials {
    Credentials {
        password: Some(Secret::new(pw)),
        ..Credentials::default()
    }
}

/// Connect to `addr` along `route`, check its host key with `policy`, log in as `user`, run
/// `cmd`, and return its stdout. Errors are the transport's or the login's text (hop named).
pub fn ssh_run(
    dialer: &Dialer,
    route: &Route,
    policy: &HostKeyPolicy,
    addr: SocketAddr,
    (user, creds): (&str, &Credentials),
    cmd: &str,
    timeout: Duration,
) -> Result<String, String> {
    let stream = dialer
        .dial(route, Target::master(addr), timeout)
        .map_err(|e| e.to_string())?;
    let sess = login::handshake(stream, addr.ip(), addr.port(), policy, timeout)
        .map_err(|e| format!("master {addr}: {e}"))?;
    login::authenticate(&sess, user, creds).map_err(|e| format!("master {addr}: {e}"))?;
    let mut ch = sess.channel_session().map_err(|e| e.to_string())?;
    ch.exec(cmd).map_err(|e| e.to_string())?;
    let mut out = String::new();
    ch.read_to_string(&mut out).map_err(|e| e.to_string())?;
    ch.wait_close().map_err(|e| e.to_string())?;
    Ok(out)
}

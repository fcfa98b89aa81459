//! SSH over any connected stream: handshake, the host-key policy of `hostkeys.rs`, and login with a password, a private key or keyboard-interactive.
//!
//! Used for jump servers here; the masters' connector can use the same two calls on the stream a
//! [`super::Dialer`] gives it, so that both hops log in the same way.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use ssh2::{KeyboardInteractivePrompt, Prompt, Session};

use crate::hostkeys::{self, HostKeyError, HostKeyPolicy};
use crate::manifest::Credentials;

/// Why an SSH session could not be started or logged in. Never carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// libssh2 could not create a session or the handshake failed.
    #[error("SSH handshake failed: {0}")]
    Handshake(String),
    /// The host key was refused by the policy.
    #[error("{0}")]
    HostKey(HostKeyError),
    /// No credential was accepted.
    #[error("authentication as {user} failed (server offers {methods}): {last}")]
    Auth {
        /// The login name.
        user: String,
        /// The methods the server offers.
        methods: String,
        /// The last method's failure.
        last: String,
    },
}

/// Start SSH on `stream` (already connected to `host:port`, directly or through a proxy): the
/// handshake, then the host-key check of `policy` under the name `host:port` — the address the
/// user wrote, not the proxy's. Every blocking step is bounded by `timeout`.
///
/// # Errors
///
/// [`LoginError::Handshake`] or [`LoginError::HostKey`].
pub fn handshake<S: AsRawFd + 'static>(
    stream: S,
    host: IpAddr,
    port: u16,
    policy: &HostKeyPolicy,
    timeout: Duration,
) -> Result<Session, LoginError> {
    let mut sess = Session::new().map_err(|e| LoginError::Handshake(e.to_string()))?;
    sess.set_tcp_stream(stream);
    sess.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    sess.handshake()
        .map_err(|e| LoginError::Handshake(e.message().to_string()))?;
    hostkeys::verify(policy, &sess, host, port).map_err(LoginError::HostKey)?;
    Ok(sess)
}

struct PasswordPrompter<'a>(&'a str);

impl KeyboardInteractivePrompt for PasswordPrompter<'_> {
    fn prompt<'a>(
        &mut self,
        _user: &str,
        _instructions: &str,
        prompts: &[Prompt<'a>],
    ) -> Vec<String> {
        // The password answers hidden prompts (PAM's "Password: "); echoed prompts get nothing.
        prompts
            .iter()
            .map(|p| {
                if p.echo {
                    String::new()
                } else {
                    self.0.to_string()
                }
            })
            .collect()
    }
}

/// Log in as `user`: the private key first (with its passphrase), then the password, then the
/// password through keyboard-interactive, each only if the server offers the method.
///
/// # Errors
///
/// [`LoginError::Auth`] with the offered methods and the last failure.
pub fn authenticate(sess: &Session, user: &str, creds: &Credentials) -> Result<(), LoginError> {
    let methods = sess
        .auth_methods(user)
        .map(str::to_string)
        .unwrap_or_default();
    if sess.authenticated() {
        return Ok(()); // the server took "none"
    }
    let offers = |name: &str| methods.split(',').any(|x| x == name);
    let mut last = String::from("no usable credential for the methods the server offers");
    if let Some(key) = &creds.private_key
        && offers("publickey")
        && let Err(e) = sess.userauth_pubkey_memory(
            user,
            None,
            key.expose(),
            creds.pass_phrase.as_ref().map(|p| p.expose()),
        )
    {
        last = format!("publickey: {}", e.message());
    }
    if !sess.authenticated()
        && let Some(pw) = &creds.password
    {
        if offers("password")
            && let Err(e) = sess.userauth_password(user, pw.expose())
        {
            last = format!("password: {}", e.message());
        }
        if !sess.authenticated()
            && offers("keyboard-interactive")
            && let Err(e) =
                sess.userauth_keyboard_interactive(user, &mut PasswordPrompter(pw.expose()))
        {
            last = format!("keyboard-interactive: {}", e.message());
        }
    }
    if sess.authenticated() {
        Ok(())
    } else {
        Err(LoginError::Auth {
            user: user.to_string(),
            methods,
            last,
        })
    }
}

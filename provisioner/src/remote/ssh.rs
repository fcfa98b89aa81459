//! The SSH [`Remote`]: one ssh2 session per master. Connect with a timeout, check the host key, authenticate, run scripts as root (counting round trips).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use ssh2::{KeyboardInteractivePrompt, Prompt, Session};

use super::{Connector, ExecOutput, Remote, RemoteError};
use crate::hostkeys::{self, HostKeyPolicy};
use crate::manifest::Machine;
use crate::net;
use crate::scripts::Script;

/// Connects to masters directly over SSH (ssh2), checking host keys with a policy.
#[derive(Debug, Clone)]
pub struct SshConnector {
    /// How host keys are checked.
    pub host_keys: HostKeyPolicy,
    /// Limit for the TCP connect, the handshake and authentication, each.
    pub timeout: Duration,
}

impl Connector for SshConnector {
    fn connect(&self, machine: &Machine) -> Result<Box<dyn Remote>, RemoteError> {
        Ok(Box::new(connect(machine, &self.host_keys, self.timeout)?))
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

struct PasswordPrompter<'a>(&'a str);

impl KeyboardInteractivePrompt for PasswordPrompter<'_> {
    fn prompt<'a>(
        &mut self,
        _user: &str,
        _instructions: &str,
        prompts: &[Prompt<'a>],
    ) -> Vec<String> {
        // Answer the password to every hidden prompt (PAM's "Password: "), nothing to echoed ones.
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

/// Connect, verify the host key and authenticate (privateKey first, then password, then keyboard-interactive).
///
/// # Errors
///
/// See [`Connector::connect`].
pub fn connect(
    m: &Machine,
    policy: &HostKeyPolicy,
    timeout: Duration,
) -> Result<SshRemote, RemoteError> {
    let addr = SocketAddr::new(m.ip, m.port);
    let a = addr.to_string();
    let tcp = net::dial(addr, timeout).map_err(|e| RemoteError::Connect {
        addr: a.clone(),
        message: e.to_string(),
    })?;
    let _ = tcp.set_nodelay(true);
    let mut sess = Session::new().map_err(|e| RemoteError::Handshake {
        addr: a.clone(),
        message: e.to_string(),
    })?;
    sess.set_tcp_stream(tcp);
    sess.set_timeout(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
    sess.handshake().map_err(|e| RemoteError::Handshake {
        addr: a.clone(),
        message: e.message().to_string(),
    })?;
    hostkeys::verify(policy, &sess, m.ip, m.port).map_err(|source| RemoteError::HostKey {
        addr: a.clone(),
        source,
    })?;

    let user = m.username.as_str();
    let methods = sess
        .auth_methods(user)
        .map(str::to_string)
        .unwrap_or_default();
    let offers = |name: &str| methods.split(',').any(|x| x == name);
    let mut last = String::from("no usable credential for the methods the server offers");
    let c = &m.credentials;
    if let Some(key) = &c.private_key
        && offers("publickey")
    {
        match sess.userauth_pubkey_memory(
            user,
            None,
            key.expose(),
            c.pass_phrase.as_ref().map(|p| p.expose()),
        ) {
            Ok(()) => {}
            Err(e) => last = format!("publickey: {}", e.message()),
        }
    }
    if !sess.authenticated()
        && let Some(pw) = &c.password
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
    if !sess.authenticated() {
        return Err(RemoteError::Auth {
            user: user.to_string(),
            methods: format!("server offers {methods}"),
            message: last,
        });
    }
    Ok(SshRemote {
        sess,
        user: user.to_string(),
        sudo: user != "root",
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

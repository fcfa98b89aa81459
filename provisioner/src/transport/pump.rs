//! The pump of one jump session: a single thread owns the libssh2 session in non-blocking mode, opens `direct-tcpip` channels one at a time (libssh2 keeps one open state per session), and moves bytes between each channel and the local socket pair handed to the caller.
//!
//! Why one thread: ssh2 serialises every call on a session behind one mutex, so a blocking read on
//! one channel would stall every other master behind the same jump server. Here nothing blocks:
//! the thread waits in `poll(2)` on the jump socket, a waker and the local sockets.
//!
//! libssh2's non-blocking rules kept here:
//! - a call that returned EAGAIN is repeated with the same arguments until it completes (a
//!   half-sent packet must be finished before any other is sent), so each tunnel keeps its pending
//!   bytes unchanged until the channel takes them, and a started channel open is driven to its end
//!   even when its caller gave up (the channel is then closed at once);
//! - every channel read first drains the socket into libssh2's queue, so a packet for channel A can
//!   be queued while channel B is read: the wait is therefore capped at [`TICK`] while tunnels exist.

use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use ssh2::{BlockDirections, Channel, ErrorCode, Session};

/// libssh2's "would block".
const EAGAIN: i32 = -37;
/// libssh2's "channel open failure" (the reason is in the message).
const CHANNEL_FAILURE: i32 = -21;
/// libssh2 errors after which the session is unusable (socket, transport and crypto failures).
const FATAL: [i32; 15] = [
    -1, -2, -4, -5, -7, -8, -9, -12, -13, -14, -30, -43, -44, -45, -52,
];

/// At most this many tunnels through one jump session at a time.
pub(crate) const MAX_TUNNELS: usize = 256;
/// Bytes moved per read, each way.
const CHUNK: usize = 32 * 1024;
/// Longest wait while tunnels or an open exist (see the module note on libssh2's queue).
const TICK: Duration = Duration::from_millis(10);
/// Longest wait while idle (only requests can wake the pump then, and they ring the waker).
const IDLE_TICK: Duration = Duration::from_millis(500);
/// How long a tunnel whose caller has gone waits for the far side's end before closing it.
const LINGER: Duration = Duration::from_secs(5);

/// Why a tunnel could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenFailure {
    /// SSH_OPEN_CONNECT_FAILED: the jump server's connect to the target failed.
    ConnectFailed,
    /// SSH_OPEN_ADMINISTRATIVELY_PROHIBITED: forwarding is not allowed there.
    Prohibited,
    /// Another channel open failure (libssh2's message).
    Refused(String),
    /// No answer before the caller's deadline.
    TimedOut,
    /// The jump session is gone.
    Lost(String),
    /// [`MAX_TUNNELS`] are open already.
    TooMany,
}

struct OpenRequest {
    host: String,
    port: u16,
    deadline: Instant,
    reply: mpsc::SyncSender<Result<UnixStream, OpenFailure>>,
}

/// Counters shared with the handle (for reports and tests).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Tunnels opened since the start.
    pub opened: AtomicU32,
    /// Tunnels open now.
    pub open_now: AtomicU32,
}

/// The caller's side of a pump: ask for tunnels; dropping it lets the pump end once its tunnels close.
#[derive(Debug)]
pub(crate) struct PumpHandle {
    tx: mpsc::Sender<OpenRequest>,
    waker: UnixStream,
    lost: Arc<Mutex<Option<String>>>,
    pub counters: Arc<Counters>,
}

impl PumpHandle {
    /// Why the session is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Open a tunnel to `host:port` through the jump session, waiting until `deadline`.
    pub fn open(
        &self,
        host: IpAddr,
        port: u16,
        deadline: Instant,
    ) -> Result<UnixStream, OpenFailure> {
        let gone = || {
            OpenFailure::Lost(
                self.lost()
                    .unwrap_or_else(|| "the jump session ended".into()),
            )
        };
        if self.lost().is_some() {
            return Err(gone());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let req = OpenRequest {
            host: host.to_string(),
            port,
            deadline,
            reply,
        };
        if self.tx.send(req).is_err() {
            return Err(gone());
        }
        // A full waker already holds a wake-up: WouldBlock is fine.
        let _ = (&self.waker).write(&[1]);
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(OpenFailure::TimedOut),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

/// Start the pump thread for a logged-in session. `sock` is a clone of the session's TCP socket
/// (polled for readiness only; libssh2 does all I/O on it).
pub(crate) fn spawn(sess: Session, sock: TcpStream, name: &str) -> io::Result<PumpHandle> {
    let (waker, wake_rx) = UnixStream::pair()?;
    waker.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel();
    let lost = Arc::new(Mutex::new(None));
    let counters = Arc::new(Counters::default());
    sess.set_blocking(false);
    let pump = Pump {
        sess,
        sock,
        rx,
        waker: Some(wake_rx),
        queue: VecDeque::new(),
        in_flight: None,
        tunnels: Vec::new(),
        lost: Arc::clone(&lost),
        counters: Arc::clone(&counters),
        disconnected: false,
    };
    std::thread::Builder::new()
        .name(format!("jump {name}"))
        .spawn(move || pump.run())?;
    Ok(PumpHandle {
        tx,
        waker,
        lost,
        counters,
    })
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

fn code_of(e: &ssh2::Error) -> i32 {
    match e.code() {
        ErrorCode::Session(c) => c,
        ErrorCode::SFTP(_) => 0,
    }
}

/// After a failed channel call: the session's last error, and whether it kills the session.
fn classify(sess: &Session, fallback: &io::Error) -> (bool, String) {
    match ssh2::Error::last_session_error(sess) {
        Some(e) => (FATAL.contains(&code_of(&e)), e.message().to_string()),
        None => (false, fallback.to_string()),
    }
}

/// One direct-tcpip channel and its local socket.
struct Tunnel {
    ch: Channel,
    local: UnixStream,
    /// Local -> channel bytes not yet taken by the channel (kept unchanged across EAGAIN).
    up: Vec<u8>,
    up_off: usize,
    /// Channel -> local bytes not yet written to the local socket.
    down: Vec<u8>,
    down_off: usize,
    local_eof: bool,
    local_gone: bool,
    eof_sent: bool,
    remote_eof: bool,
    local_shut: bool,
    closing: bool,
    linger_since: Option<Instant>,
    done: bool,
}

impl Tunnel {
    fn new(ch: Channel, local: UnixStream) -> Self {
        Tunnel {
            ch,
            local,
            up: Vec::new(),
            up_off: 0,
            down: Vec::new(),
            down_off: 0,
            local_eof: false,
            local_gone: false,
            eof_sent: false,
            remote_eof: false,
            local_shut: false,
            closing: false,
            linger_since: None,
            done: false,
        }
    }

    /// A tunnel whose caller is already gone: close the channel at once.
    fn abandoned(ch: Channel, local: UnixStream) -> Self {
        let mut t = Tunnel::new(ch, local);
        t.closing = true;
        t
    }

    fn up_pending(&self) -> bool {
        self.up_off < self.up.len()
    }

    fn down_pending(&self) -> bool {
        self.down_off < self.down.len()
    }

    fn wants_channel_read(&self) -> bool {
        !self.closing && !self.down_pending() && !self.remote_eof
    }

    fn poll_flags(&self) -> PollFlags {
        let mut f = PollFlags::empty();
        if self.closing || self.local_gone {
            return f;
        }
        if !self.up_pending() && !self.local_eof {
            f |= PollFlags::IN;
        }
        if self.down_pending() {
            f |= PollFlags::OUT;
        }
        f
    }

    /// Move what can be moved without blocking. `Err` carries a session-fatal libssh2 error.
    fn step(&mut self, sess: &Session, buf: &mut [u8]) -> Result<bool, String> {
        if self.closing {
            return self.close();
        }
        let mut progress = false;
        // Local -> channel.
        if !self.up_pending() && !self.local_eof {
            match self.local.read(buf) {
                Ok(0) => {
                    self.local_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.up.clear();
                    self.up.extend_from_slice(&buf[..n]);
                    self.up_off = 0;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => {
                    self.local_eof = true;
                    self.local_gone = true;
                    progress = true;
                }
            }
        }
        if self.up_pending() {
            match self.ch.write(&self.up[self.up_off..]) {
                Ok(n) => {
                    self.up_off += n;
                    progress |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return self.channel_failed(sess, &e),
            }
        }
        if self.local_eof && !self.up_pending() && !self.eof_sent {
            match self.ch.send_eof() {
                Ok(()) => {
                    self.eof_sent = true;
                    progress = true;
                }
                Err(e) if code_of(&e) == EAGAIN => {}
                Err(e) => return self.channel_failed(sess, &io::Error::other(e)),
            }
        }
        // Channel -> local.
        if self.wants_channel_read() {
            match self.ch.read(buf) {
                Ok(0) => {
                    if self.ch.eof() {
                        self.remote_eof = true;
                        progress = true;
                    }
                }
                Ok(n) => {
                    self.down.clear();
                    self.down.extend_from_slice(&buf[..n]);
                    self.down_off = 0;
                    progress = true;
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return self.channel_failed(sess, &e),
            }
        }
        if self.down_pending() {
            if self.local_gone {
                self.down_off = self.down.len();
            } else {
                match self.local.write(&self.down[self.down_off..]) {
                    Ok(n) => {
                        self.down_off += n;
                        progress |= n > 0;
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => {
                        // The caller closed its end (EPIPE): nobody reads any more.
                        self.local_gone = true;
                        self.local_eof = true;
                        self.down_off = self.down.len();
                        progress = true;
                    }
                }
            }
        }
        if self.remote_eof && !self.down_pending() && !self.local_shut {
            let _ = self.local.shutdown(Shutdown::Write);
            self.local_shut = true;
            progress = true;
        }
        if self.eof_sent && self.remote_eof && !self.down_pending() {
            self.closing = true;
            progress = true;
        } else if self.local_gone && self.eof_sent {
            let since = *self.linger_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= LINGER {
                self.closing = true;
                progress = true;
            }
        }
        Ok(progress)
    }

    fn channel_failed(&mut self, sess: &Session, e: &io::Error) -> Result<bool, String> {
        let (fatal, message) = classify(sess, e);
        if fatal {
            return Err(message);
        }
        // This channel alone is broken: drop it, the caller sees its socket close.
        self.done = true;
        Ok(true)
    }

    fn close(&mut self) -> Result<bool, String> {
        match self.ch.close() {
            Ok(()) => {
                self.done = true;
                Ok(true)
            }
            Err(e) if code_of(&e) == EAGAIN => Ok(false),
            Err(e) if FATAL.contains(&code_of(&e)) => Err(e.message().to_string()),
            Err(_) => {
                self.done = true;
                Ok(true)
            }
        }
    }
}

struct Pump {
    sess: Session,
    sock: TcpStream,
    rx: mpsc::Receiver<OpenRequest>,
    waker: Option<UnixStream>,
    queue: VecDeque<OpenRequest>,
    in_flight: Option<OpenRequest>,
    tunnels: Vec<Tunnel>,
    lost: Arc<Mutex<Option<String>>>,
    counters: Arc<Counters>,
    disconnected: bool,
}

impl Pump {
    fn run(mut self) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let mut progress = self.take_requests();
            match self.drive_open() {
                Ok(p) => progress |= p,
                Err(message) => return self.fail(message),
            }
            for t in &mut self.tunnels {
                match t.step(&self.sess, &mut buf) {
                    Ok(p) => progress |= p,
                    Err(message) => return self.fail(message),
                }
            }
            let before = self.tunnels.len();
            self.tunnels.retain(|t| !t.done);
            if self.tunnels.len() != before {
                self.publish();
            }
            if self.disconnected
                && self.tunnels.is_empty()
                && self.in_flight.is_none()
                && self.queue.is_empty()
            {
                let _ = self.sess.disconnect(None, "tkeha: done", None);
                return;
            }
            if !progress {
                self.wait();
            }
        }
    }

    fn publish(&self) {
        let n = u32::try_from(self.tunnels.len()).unwrap_or(u32::MAX);
        self.counters.open_now.store(n, Ordering::Relaxed);
    }

    /// Pull new requests and empty the waker.
    fn take_requests(&mut self) -> bool {
        let mut progress = false;
        loop {
            match self.rx.try_recv() {
                Ok(r) => {
                    self.queue.push_back(r);
                    progress = true;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.disconnected = true;
                    break;
                }
            }
        }
        if let Some(w) = &self.waker {
            let mut sink = [0u8; 64];
            loop {
                match (&*w).read(&mut sink) {
                    Ok(0) => {
                        self.waker = None;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) if would_block(&e) => break,
                    Err(_) => {
                        self.waker = None;
                        break;
                    }
                }
            }
        }
        progress
    }

    /// Start or continue the one channel open libssh2 allows at a time. `Err`: the session is dead.
    fn drive_open(&mut self) -> Result<bool, String> {
        let mut progress = false;
        if self.in_flight.is_none() {
            while let Some(r) = self.queue.pop_front() {
                progress = true;
                if Instant::now() >= r.deadline {
                    let _ = r.reply.try_send(Err(OpenFailure::TimedOut));
                } else if self.tunnels.len() >= MAX_TUNNELS {
                    let _ = r.reply.try_send(Err(OpenFailure::TooMany));
                } else {
                    self.in_flight = Some(r);
                    break;
                }
            }
        }
        let Some(req) = &self.in_flight else {
            return Ok(progress);
        };
        let result = self.sess.channel_direct_tcpip(&req.host, req.port, None);
        let Some(req) = self.in_flight.take() else {
            return Ok(progress);
        };
        match result {
            Ok(ch) => {
                let (mine, theirs) = match UnixStream::pair() {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = req.reply.try_send(Err(OpenFailure::Refused(format!(
                            "cannot create a local socket pair: {e}"
                        ))));
                        drop(ch);
                        return Ok(true);
                    }
                };
                let _ = mine.set_nonblocking(true);
                // Counted before the caller hears of it: a report read right after the caller's
                // last probe must include that probe's tunnel.
                self.counters.opened.fetch_add(1, Ordering::Relaxed);
                if req.reply.try_send(Ok(theirs)).is_ok() {
                    self.tunnels.push(Tunnel::new(ch, mine));
                } else {
                    // The caller timed out meanwhile: close what it no longer wants.
                    self.counters.opened.fetch_sub(1, Ordering::Relaxed);
                    self.tunnels.push(Tunnel::abandoned(ch, mine));
                }
                self.publish();
                Ok(true)
            }
            Err(e) if code_of(&e) == EAGAIN => {
                self.in_flight = Some(req);
                Ok(progress)
            }
            Err(e) if code_of(&e) == CHANNEL_FAILURE => {
                let m = e.message();
                let failure = if m.contains("connect failed") {
                    OpenFailure::ConnectFailed
                } else if m.contains("administratively prohibited") {
                    OpenFailure::Prohibited
                } else {
                    OpenFailure::Refused(m.to_string())
                };
                let _ = req.reply.try_send(Err(failure));
                Ok(true)
            }
            Err(e) if FATAL.contains(&code_of(&e)) => {
                let message = e.message().to_string();
                let _ = req.reply.try_send(Err(OpenFailure::Lost(message.clone())));
                Err(message)
            }
            Err(e) => {
                let _ = req
                    .reply
                    .try_send(Err(OpenFailure::Refused(e.message().to_string())));
                Ok(true)
            }
        }
    }

    /// The session is dead: say so to everyone waiting and to every later request, then end.
    fn fail(mut self, message: String) {
        *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
        let lost = || Err(OpenFailure::Lost(message.clone()));
        if let Some(r) = self.in_flight.take() {
            let _ = r.reply.try_send(lost());
        }
        for r in self.queue.drain(..) {
            let _ = r.reply.try_send(lost());
        }
        // Requests sent before `lost` was set; later ones see it (or a closed channel).
        while let Ok(r) = self.rx.try_recv() {
            let _ = r.reply.try_send(lost());
        }
        self.tunnels.clear();
        self.publish();
    }

    /// Sleep until a socket is ready, a request comes, or the tick passes.
    fn wait(&self) {
        let busy = self.in_flight.is_some() || !self.tunnels.is_empty();
        let mut sock_flags = PollFlags::empty();
        if self.in_flight.is_some()
            || self
                .tunnels
                .iter()
                .any(|t| t.closing || t.wants_channel_read())
        {
            sock_flags |= PollFlags::IN;
        }
        if matches!(
            self.sess.block_directions(),
            BlockDirections::Outbound | BlockDirections::Both
        ) {
            sock_flags |= PollFlags::OUT;
        }
        let mut fds = Vec::with_capacity(2 + self.tunnels.len());
        // A descriptor polled for nothing still reports a hang-up at once: leave those out.
        if !sock_flags.is_empty() {
            fds.push(PollFd::new(&self.sock, sock_flags));
        }
        if let Some(w) = &self.waker {
            fds.push(PollFd::new(w, PollFlags::IN));
        }
        for t in &self.tunnels {
            let f = t.poll_flags();
            if !f.is_empty() {
                fds.push(PollFd::new(&t.local, f));
            }
        }
        let tick = if busy { TICK } else { IDLE_TICK };
        let ts = Timespec::try_from(tick).unwrap_or(Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        });
        if fds.is_empty() {
            std::thread::sleep(tick);
        } else {
            let _ = poll(&mut fds, Some(&ts));
        }
    }
}

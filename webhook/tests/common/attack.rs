//! Attack clients, shared by `tests/attacks.rs` and `examples/bench_attacks.rs` (which includes
//! this file by path): request bodies that stall one byte short of their announced length, over
//! many HTTP/1.1 connections or as many streams of one HTTP/2 connection; HTTP/2 connections that
//! go silent after one request; amplifying reviews; and a normal review, timed.
//!
//! Every client verifies the server against its CA, as the API server does with `caBundle`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use hyper::StatusCode;
use hyper::body::{Bytes, Frame};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A TLS client stream.
pub type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Where to attack, and how to trust it.
#[derive(Clone)]
pub struct Target {
    /// The TLS listener.
    pub addr: SocketAddr,
    h1: tokio_rustls::TlsConnector,
    h2: tokio_rustls::TlsConnector,
}

impl Target {
    /// A target at `addr` whose certificate chains to `ca_pem` and names `localhost`.
    pub fn new(addr: SocketAddr, ca_pem: &str) -> Result<Self, String> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("CA PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("CA: {e}"))?;
        }
        let config = |alpn: &[u8]| -> Result<tokio_rustls::TlsConnector, String> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        };
        Ok(Self {
            addr,
            h1: config(b"http/1.1")?,
            h2: config(b"h2")?,
        })
    }

    /// A verified TLS connection speaking HTTP/1.1 (`h2 = false`) or HTTP/2.
    pub async fn connect(&self, h2: bool) -> Result<Tls, String> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let name =
            rustls_pki_types::ServerName::try_from("localhost").map_err(|e| e.to_string())?;
        let connector = if h2 { &self.h2 } else { &self.h1 };
        connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))
    }

    /// An HTTP/2 connection: its request sender and the task driving it (ends when the server
    /// closes the connection).
    pub async fn h2(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http2::SendRequest<AttackBody>,
            tokio::task::JoinHandle<()>,
        ),
        String,
    > {
        let tls = self.connect(true).await?;
        let mut builder =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new());
        // An attacker opens as many streams as it can; the server's SETTINGS still apply.
        builder.max_concurrent_reset_streams(1024);
        let (sender, conn) = builder
            .handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((sender, task))
    }
}

/// A request body: either one that announces `announced` bytes, sends `announced - 1` in 64 KiB
/// chunks and never finishes, or given bytes sent whole.
pub struct AttackBody {
    whole: Option<Bytes>,
    left: usize,
    announced: u64,
    stall: bool,
    progress: Arc<AtomicUsize>,
}

const CHUNK: usize = 64 * 1024;
static FILL: [u8; CHUNK] = [b' '; CHUNK];

impl AttackBody {
    /// One byte short of `announced`, then silence; `progress` counts the bytes handed over.
    pub fn stalling(announced: usize, progress: Arc<AtomicUsize>) -> Self {
        Self {
            whole: None,
            left: announced.saturating_sub(1),
            announced: announced as u64,
            stall: true,
            progress,
        }
    }

    /// `bytes`, whole (a normal request).
    pub fn bytes(bytes: Vec<u8>) -> Self {
        Self {
            announced: bytes.len() as u64,
            whole: Some(Bytes::from(bytes)),
            left: 0,
            stall: false,
            progress: Arc::default(),
        }
    }
}

impl hyper::body::Body for AttackBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(whole) = self.whole.take() {
            return Poll::Ready(Some(Ok(Frame::data(whole))));
        }
        if self.left == 0 {
            // Never woken again: the stall.
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        let n = self.left.min(CHUNK);
        self.left -= n;
        self.progress.fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&FILL[..n])))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.announced)
    }

    fn is_end_stream(&self) -> bool {
        !self.stall && self.whole.is_none() && self.left == 0
    }
}

/// How one attacker ended (so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still waiting for an answer.
    Pending,
    /// Answered with this status.
    Answered(u16),
    /// The connection or stream was closed or reset without an answer.
    Closed,
}

/// One attacker's shared state.
#[derive(Default)]
pub struct Attacker {
    /// Body bytes handed to the connection.
    pub sent: Arc<AtomicUsize>,
    /// 0 pending, 1..=999 a status, 1000 closed.
    state: AtomicU16,
}

impl Attacker {
    fn set(&self, outcome: Outcome) {
        let v = match outcome {
            Outcome::Pending => 0,
            Outcome::Answered(s) => s,
            Outcome::Closed => 1000,
        };
        self.state.store(v, Ordering::SeqCst);
    }

    /// Where this attacker is.
    pub fn outcome(&self) -> Outcome {
        match self.state.load(Ordering::SeqCst) {
            0 => Outcome::Pending,
            1000 => Outcome::Closed,
            s => Outcome::Answered(s),
        }
    }
}

/// A running attack: its attackers and their tasks (aborted on drop).
pub struct Attack {
    /// Every attacker.
    pub attackers: Vec<Arc<Attacker>>,
    /// The bytes each attacker announced.
    pub size: usize,
    /// The HTTP/2 attack's connection, for a normal request beside the attack.
    pub h2: Option<hyper::client::conn::http2::SendRequest<AttackBody>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Attack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the attackers saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Waiting with every byte but the last sent: what the attack wants.
    pub stalled: usize,
    /// Waiting, with bytes still unsent (the server stopped reading).
    pub held_back: usize,
    /// Answered, by status.
    pub answered: std::collections::BTreeMap<u16, usize>,
    /// Closed or reset without an answer.
    pub closed: usize,
}

impl Tally {
    /// Attackers answered with `status`.
    pub fn with(&self, status: u16) -> usize {
        self.answered.get(&status).copied().unwrap_or(0)
    }
}

impl Attack {
    /// Count where every attacker is now.
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for a in &self.attackers {
            match a.outcome() {
                Outcome::Pending if a.sent.load(Ordering::Relaxed) + 1 >= self.size => {
                    t.stalled += 1
                }
                Outcome::Pending => t.held_back += 1,
                Outcome::Answered(s) => *t.answered.entry(s).or_default() += 1,
                Outcome::Closed => t.closed += 1,
            }
        }
        t
    }

    /// Wait until nothing changes for `quiet` (every attacker stalled, answered, closed, or held
    /// back by the server), at most `limit`.
    pub async fn settle(&self, quiet: Duration, limit: Duration) -> Tally {
        let start = Instant::now();
        let mut last = (self.tally(), self.bytes_sent());
        let mut since = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = (self.tally(), self.bytes_sent());
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet || start.elapsed() >= limit {
                return last.0;
            }
        }
    }

    /// Wait until `done` holds for the tally, at most `limit` (then the last tally).
    pub async fn until(&self, limit: Duration, done: impl Fn(&Tally) -> bool) -> Tally {
        let deadline = Instant::now() + limit;
        loop {
            let tally = self.tally();
            if done(&tally) || Instant::now() >= deadline {
                return tally;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Body bytes handed over by all attackers.
    pub fn bytes_sent(&self) -> usize {
        self.attackers
            .iter()
            .map(|a| a.sent.load(Ordering::Relaxed))
            .sum()
    }
}

/// The request head of a POST of `len` bytes.
fn head(path: &str, len: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// `n` HTTP/1.1 connections, each POSTing to `path` a body that announces `size` bytes and
/// stalls one byte short.
pub async fn stall_h1(target: &Target, n: usize, size: usize, path: &str) -> Attack {
    let mut attackers = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let attacker = Arc::new(Attacker::default());
        attackers.push(attacker.clone());
        let target = target.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let Ok(tls) = target.connect(false).await else {
                attacker.set(Outcome::Closed);
                return;
            };
            let (mut rd, mut wr) = tokio::io::split(tls);
            let sent = attacker.sent.clone();
            let writer = tokio::spawn(async move {
                wr.write_all(head(&path, size).as_bytes()).await?;
                let mut left = size - 1;
                while left > 0 {
                    let n = left.min(CHUNK);
                    wr.write_all(&FILL[..n]).await?;
                    wr.flush().await?;
                    sent.fetch_add(n, Ordering::Relaxed);
                    left -= n;
                }
                // Hold the write half open: the stall.
                std::future::pending::<()>().await;
                Ok::<_, std::io::Error>(wr)
            });
            let mut answer = [0u8; 16];
            let outcome = match rd.read(&mut answer).await {
                Ok(n) if n >= 12 && answer.starts_with(b"HTTP/1.1 ") => {
                    let code = std::str::from_utf8(&answer[9..12])
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(999);
                    Outcome::Answered(code)
                }
                _ => Outcome::Closed,
            };
            attacker.set(outcome);
            // Keep the connection (and the writer) until the attack is dropped.
            let _ = writer.await;
        }));
    }
    Attack {
        attackers,
        size,
        h2: None,
        tasks,
    }
}

/// One HTTP/2 connection with `streams` streams, each POSTing to `path` a body that announces
/// `size` bytes and stalls one byte short.
pub async fn stall_h2(target: &Target, streams: usize, size: usize, path: &str) -> Attack {
    let mut attackers = Vec::new();
    let mut tasks = Vec::new();
    let conn = target.h2().await;
    let (sender, conn_task) = match conn {
        Ok(c) => c,
        Err(_) => {
            let attacker = Arc::new(Attacker::default());
            attacker.set(Outcome::Closed);
            return Attack {
                attackers: vec![attacker],
                size,
                h2: None,
                tasks,
            };
        }
    };
    tasks.push(conn_task);
    for _ in 0..streams {
        let attacker = Arc::new(Attacker::default());
        attackers.push(attacker.clone());
        let mut sender = sender.clone();
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let body = AttackBody::stalling(size, attacker.sent.clone());
            let request = hyper::Request::post(format!("https://localhost{path}"))
                .header("content-type", "application/json")
                .body(body);
            let Ok(request) = request else { return };
            if sender.ready().await.is_err() {
                attacker.set(Outcome::Closed);
                return;
            }
            match sender.send_request(request).await {
                Ok(response) => {
                    attacker.set(Outcome::Answered(response.status().as_u16()));
                    // Keep the stream until the attack is dropped.
                    std::future::pending::<()>().await;
                }
                Err(_) => attacker.set(Outcome::Closed),
            }
        }));
    }
    Attack {
        attackers,
        size,
        h2: Some(sender),
        tasks,
    }
}

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
    /// Connect (TCP and TLS) to the last byte of the answer.
    pub elapsed: Duration,
}

/// POST `body` to `path` on a new HTTP/1.1 connection and read the whole answer.
pub async fn post_h1(target: &Target, path: &str, body: Vec<u8>) -> Result<Answer, String> {
    let start = Instant::now();
    let tls = target.connect(false).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("http handshake: {e}"))?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(AttackBody::bytes(body))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    let elapsed = start.elapsed();
    conn.abort();
    Ok(Answer {
        status,
        body,
        elapsed,
    })
}

/// POST `body` on an HTTP/2 connection and read the whole answer.
pub async fn post_h2(
    sender: &mut hyper::client::conn::http2::SendRequest<AttackBody>,
    path: &str,
    body: Vec<u8>,
) -> Result<Answer, String> {
    let start = Instant::now();
    let len = body.len();
    let request = hyper::Request::post(format!("https://localhost{path}"))
        .header("content-type", "application/json")
        .body(AttackBody::bytes(body))
        .map_err(|e| e.to_string())?;
    sender
        .ready()
        .await
        .map_err(|e| format!("h2 not ready: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request ({len} bytes): {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        body,
        elapsed: start.elapsed(),
    })
}

/// `n` HTTP/2 connections that each send one request with `body` to `path`, read the answer,
/// then stay silent. Returns the senders and the connection tasks (finished = closed by the
/// server).
pub async fn idle_h2(
    target: &Target,
    n: usize,
    path: &str,
    body: &[u8],
) -> Vec<Result<tokio::task::JoinHandle<()>, String>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let conn = async {
            let (mut sender, task) = target.h2().await?;
            post_h2(&mut sender, path, body.to_vec()).await?;
            // Dropping the sender would let the client close the connection itself: keep it.
            tokio::spawn(async move {
                let _keep = sender;
                std::future::pending::<()>().await;
            });
            Ok::<_, String>(task)
        };
        out.push(conn.await);
    }
    out
}

/// An AdmissionReview of about `bytes` bytes whose Cluster has as many machines like
/// `{"ip":"1","port":0,"username":"","password":"!"}` as fit: every machine is wrong in four
/// ways, which makes the rule engine's answer grow with the input.
pub fn amplifying_review(bytes: usize) -> Vec<u8> {
    let machine = r#"{"ip":"1","port":0,"username":"","password":"!"}"#;
    let head = r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"amp-1","kind":{"group":"platform.tkestack.io","version":"v1","kind":"Cluster"},"resource":{"group":"platform.tkestack.io","version":"v1","resource":"clusters"},"name":"amp","operation":"CREATE","object":{"apiVersion":"platform.tkestack.io/v1","kind":"Cluster","metadata":{"name":"amp"},"spec":{"type":"Baremetal","version":"1.30.4","features":{"ha":{"tke":{"vip":"10.0.0.9"}}},"machines":["#;
    let tail = "]}}}}";
    let room = bytes.saturating_sub(head.len() + tail.len());
    let count = (room / (machine.len() + 1)).max(1);
    let mut out = String::with_capacity(bytes);
    out.push_str(head);
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        out.push_str(machine);
    }
    out.push_str(tail);
    out.into_bytes()
}

/// The peak resident set (`VmHWM`) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

//! The webhook under attack, measured: for each attack and body size, a fresh release server
//! process, the attack held open, then the server's peak RSS (`VmHWM`), what the attackers got,
//! and how fast normal reviews were answered meanwhile (each on a new TLS connection).
//!
//! Attacks (issue 13):
//! - `stall-h1`: 200 HTTP/1.1 connections, each announcing a body of SIZE bytes and sending all
//!   but the last byte;
//! - `stall-h2`: one HTTP/2 connection with 200 such streams;
//! - `amplify`: reviews of SIZE bytes made of machines that each break four rules, 4 at a time;
//! - `idle-h2`: under `RLIMIT_NOFILE` 256, 243 HTTP/2 connections that send one review and go
//!   silent; then a normal review, a certificate rotation, and who is still connected later.
//!
//! `cargo run --release -p tkeha-webhook --example bench_attacks -- [--server BIN]
//! [--attacks stall-h1,stall-h2,amplify,idle-h2] [--sizes 65536,1048576,3145728] [--markdown]
//! [-- EXTRA SERVER FLAGS]`. Without `--server`, the `tkeha-webhook` of the same target dir.

#[path = "../tests/common/attack.rs"]
#[allow(clippy::unwrap_used)]
mod attack;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attack::{Tally, Target};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const MIB: usize = 1024 * 1024;
const BODY_LIMIT: usize = 3 * MIB;
/// Normal reviews sampled during each attack.
const SAMPLES: usize = 20;

struct Options {
    server: PathBuf,
    attacks: Vec<String>,
    sizes: Vec<usize>,
    markdown: bool,
    extra: Vec<String>,
}

fn options() -> Result<Options, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/examples/bench_attacks -> target/release/tkeha-webhook
    let default_server = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("tkeha-webhook"))
        .ok_or("cannot find the target dir")?;
    let mut o = Options {
        server: default_server,
        attacks: ["stall-h1", "stall-h2", "amplify", "idle-h2"]
            .map(String::from)
            .to_vec(),
        sizes: vec![64 * 1024, MIB, BODY_LIMIT],
        markdown: false,
        extra: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--server" => o.server = args.next().ok_or("--server BIN")?.into(),
            "--attacks" => {
                o.attacks = args
                    .next()
                    .ok_or("--attacks LIST")?
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--sizes" => {
                o.sizes = args
                    .next()
                    .ok_or("--sizes LIST")?
                    .split(',')
                    .map(|s| s.parse().map_err(|e| format!("--sizes {s}: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--markdown" => o.markdown = true,
            "--" => o.extra = args.by_ref().collect(),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

fn free_port() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())
}

/// A server process with its TLS and health addresses.
struct Server {
    child: Child,
    addr: SocketAddr,
    health: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(o: &Options, certs: &Path, nofile: Option<u64>) -> Result<Self, String> {
        let (addr, health) = (free_port()?, free_port()?);
        let mut command = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(&o.server);
                c
            }
            None => Command::new(&o.server),
        };
        command
            .arg(format!("--listen={addr}"))
            .arg(format!("--health-listen={health}"))
            .arg("--tls-cert")
            .arg(certs.join("tls.crt"))
            .arg("--tls-key")
            .arg(certs.join("tls.key"))
            .arg("--cert-reload-interval=200ms")
            .args(&o.extra)
            .env("RUST_LOG", "warn")
            // As the image runs it (Dockerfile): freed memory goes back to the system at once.
            .env(
                "MIMALLOC_PURGE_DELAY",
                std::env::var("MIMALLOC_PURGE_DELAY").unwrap_or_else(|_| "0".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command
            .spawn()
            .map_err(|e| format!("{}: {e}", o.server.display()))?;
        let server = Self {
            child,
            addr,
            health,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if health_get(server.health, "/readyz").await.as_deref() == Some("ok") {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("server never became ready".into())
    }

    /// The pid of the server itself (prlimit execs it, so the same pid).
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn peak_mib(&self) -> f64 {
        attack::peak_rss_kib(self.pid()).unwrap_or(0) as f64 / 1024.0
    }
}

/// `GET path` on the plain health listener: the body, if it answered 200.
async fn health_get(addr: SocketAddr, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

fn normal_review() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/review-create-third-party-ha.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut review: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    review["request"]["name"] = "cls-bench".into();
    serde_json::to_vec(&review).unwrap_or_else(|e| panic!("{e}"))
}

/// `SAMPLES` normal reviews, one after another, each on a new connection: (answered with an
/// AdmissionReview, max latency, median latency, other outcomes).
async fn sample_reviews(target: &Target) -> (usize, Duration, Duration, Vec<String>) {
    let body = normal_review();
    let mut times = Vec::new();
    let mut other = Vec::new();
    for _ in 0..SAMPLES {
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            attack::post_h1(target, "/validate", body.clone()),
        )
        .await;
        match answer {
            Ok(Ok(a)) if a.status == 200 && a.body.starts_with(b"{\"apiVersion\"") => {
                times.push(a.elapsed)
            }
            Ok(Ok(a)) => other.push(format!("HTTP {}", a.status.as_u16())),
            Ok(Err(e)) => other.push(e),
            Err(_) => other.push("no answer within 10 s".into()),
        }
    }
    times.sort();
    let max = times.last().copied().unwrap_or_default();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    (times.len(), max, median, other)
}

fn tally_text(t: &Tally) -> String {
    let mut parts = Vec::new();
    if t.stalled > 0 {
        parts.push(format!("{} stalled", t.stalled));
    }
    if t.held_back > 0 {
        parts.push(format!("{} held back", t.held_back));
    }
    for (status, n) in &t.answered {
        parts.push(format!("{n} got {status}"));
    }
    if t.closed > 0 {
        parts.push(format!("{} closed", t.closed));
    }
    parts.join(", ")
}

/// One row of the results.
struct Row {
    attack: String,
    size: String,
    peak_mib: f64,
    attackers: String,
    reviews: String,
    /// Normal reviews sampled during the attack: (answered, slowest).
    sampled: Option<(usize, Duration)>,
}

fn size_text(size: usize) -> String {
    if size.is_multiple_of(MIB) {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / 1024)
    }
}

fn reviews_text(sample: &(usize, Duration, Duration, Vec<String>)) -> String {
    let (ok, max, median, other) = sample;
    let mut text = format!(
        "{ok}/{SAMPLES} answered, median {:.1} ms, max {:.1} ms",
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
    if let Some(first) = other.first() {
        text.push_str(&format!(" (others: {first})"));
    }
    text
}

async fn stall(o: &Options, certs: &Path, ca: &str, h2: bool, size: usize) -> Result<Row, String> {
    let server = Server::start(o, certs, None).await?;
    let target = Target::new(server.addr, ca)?;
    sample_reviews(&target).await;
    let attack = if h2 {
        attack::stall_h2(&target, 200, size, "/validate").await
    } else {
        attack::stall_h1(&target, 200, size, "/validate").await
    };
    let tally = attack
        .settle(Duration::from_millis(1500), Duration::from_secs(60))
        .await;
    let sample = sample_reviews(&target).await;
    let peak = server.peak_mib();
    drop(attack);
    Ok(Row {
        attack: if h2 { "stall-h2" } else { "stall-h1" }.into(),
        size: size_text(size),
        peak_mib: peak,
        attackers: tally_text(&tally),
        reviews: reviews_text(&sample),
        sampled: Some((sample.0, sample.1)),
    })
}

async fn amplify(o: &Options, certs: &Path, ca: &str, size: usize) -> Result<Row, String> {
    let server = Server::start(o, certs, None).await?;
    let target = Target::new(server.addr, ca)?;
    let body = attack::amplifying_review(size);
    let mut answers = Vec::new();
    for path in ["/validate", "/mutate"] {
        let a = attack::post_h1(&target, path, body.clone()).await?;
        answers.push(format!(
            "{path} {} {} KiB in {:.0} ms",
            a.status.as_u16(),
            a.body.len() / 1024,
            a.elapsed.as_secs_f64() * 1e3
        ));
    }
    // Four at a time, twice.
    for _ in 0..2 {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let target = target.clone();
                let body = body.clone();
                tokio::spawn(async move { attack::post_h1(&target, "/validate", body).await })
            })
            .collect();
        for t in batch {
            let _ = t.await;
        }
    }
    let sample = sample_reviews(&target).await;
    Ok(Row {
        attack: "amplify".into(),
        size: size_text(size),
        peak_mib: server.peak_mib(),
        attackers: answers.join("; "),
        reviews: reviews_text(&sample),
        sampled: Some((sample.0, sample.1)),
    })
}

async fn idle_h2(o: &Options, certs: &Path, ca: &str) -> Result<Row, String> {
    const NOFILE: u64 = 256;
    const IDLE: usize = 243;
    // A copy of the pair, rotated below without touching the one the other cases use.
    let own = tempfile::tempdir().map_err(|e| e.to_string())?;
    for f in ["tls.crt", "tls.key"] {
        std::fs::copy(certs.join(f), own.path().join(f)).map_err(|e| e.to_string())?;
    }
    let certs = own.path();
    let server = Server::start(o, certs, Some(NOFILE)).await?;
    let target = Target::new(server.addr, ca)?;
    let body = normal_review();
    let opened = tokio::time::timeout(
        Duration::from_secs(60),
        attack::idle_h2(&target, IDLE, "/validate", &body),
    )
    .await
    .map_err(|_| "opening idle connections took over 60 s".to_string())?;
    let open_ok = opened.iter().filter(|c| c.is_ok()).count();
    let sample = sample_reviews(&target).await;
    // Rotate the certificate; the server re-reads it every 200 ms.
    let before = metric(
        server.health,
        "tkeha_webhook_tls_reloads_total{result=\"ok\"}",
    )
    .await;
    let fresh = tempfile::tempdir().map_err(|e| e.to_string())?;
    gen_certs(&o.server, fresh.path())?;
    for f in ["tls.crt", "tls.key"] {
        let from = fresh.path().join(f);
        let tmp = certs.join(format!("{f}.new"));
        std::fs::copy(&from, &tmp).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, certs.join(f)).map_err(|e| e.to_string())?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = metric(
        server.health,
        "tkeha_webhook_tls_reloads_total{result=\"ok\"}",
    )
    .await;
    let reloaded = match (before, after) {
        (Some(b), Some(a)) if a > b => "certificate reloaded".to_string(),
        (Some(_), Some(_)) => "certificate NOT reloaded".to_string(),
        _ => "certificate reload unknown: /metrics did not answer".to_string(),
    };
    let wait = Duration::from_secs(15);
    tokio::time::sleep(wait).await;
    let still_open = opened
        .iter()
        .filter(|c| matches!(c, Ok(task) if !task.is_finished()))
        .count();
    let peak = server.peak_mib();
    Ok(Row {
        attack: "idle-h2 (nofile 256)".into(),
        size: "–".into(),
        peak_mib: peak,
        attackers: format!(
            "{open_ok}/{IDLE} connected; {still_open} still open {} s after the rotation; {reloaded}",
            wait.as_secs()
        ),
        reviews: reviews_text(&sample),
        sampled: Some((sample.0, sample.1)),
    })
}

async fn metric(health: SocketAddr, name: &str) -> Option<f64> {
    let text = health_get(health, "/metrics").await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

fn gen_certs(server: &Path, dir: &Path) -> Result<(), String> {
    let out = Command::new(server)
        .arg("--gen-certs")
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("--gen-certs: {out:?}"));
    }
    Ok(())
}

/// The results table, then the targets with what was measured.
fn print_markdown(rows: &[Row]) {
    println!(
        "| attack | body size | peak RSS (MiB) | attackers | normal reviews during the attack |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} | {} | {} |",
            r.attack, r.size, r.peak_mib, r.attackers, r.reviews
        );
    }
    println!();
    println!("| target | measured | |");
    println!("|---|---|---|");
    let mark = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut attacks: Vec<&str> = rows.iter().map(|r| r.attack.as_str()).collect();
    attacks.dedup();
    for attack in attacks {
        let worst = rows
            .iter()
            .filter(|r| r.attack == attack)
            .max_by(|a, b| a.peak_mib.total_cmp(&b.peak_mib));
        if let Some(w) = worst {
            let (scope, at) = if w.size == "–" {
                (String::new(), String::new())
            } else {
                (", every size".to_string(), format!(" (at {})", w.size))
            };
            println!(
                "| peak RSS ≤ 64 MiB under {attack}{scope} | {:.1} MiB{at} | {} |",
                w.peak_mib,
                mark(w.peak_mib > 0.0 && w.peak_mib <= 64.0)
            );
        }
    }
    let stalls: Vec<&Row> = rows
        .iter()
        .filter(|r| r.attack.starts_with("stall"))
        .collect();
    if !stalls.is_empty() {
        let answered: usize = stalls.iter().filter_map(|r| r.sampled).map(|s| s.0).sum();
        let slowest = stalls
            .iter()
            .filter_map(|r| r.sampled)
            .map(|s| s.1)
            .max()
            .unwrap_or_default();
        let all = stalls.len() * SAMPLES;
        println!(
            "| a normal review answered in ≤ 50 ms during the stalled-body attacks | {answered}/{all} answered, slowest {:.1} ms | {} |",
            slowest.as_secs_f64() * 1e3,
            mark(answered == all && slowest <= Duration::from_millis(50))
        );
    }
}

async fn run(o: Options) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let certs = dir.path().join("certs");
    gen_certs(&o.server, &certs)?;
    let ca = std::fs::read_to_string(certs.join("ca.crt")).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for name in &o.attacks {
        let sizes = if name == "idle-h2" {
            vec![0]
        } else {
            o.sizes.clone()
        };
        for &size in &sizes {
            let row = match name.as_str() {
                "stall-h1" => stall(&o, &certs, &ca, false, size).await,
                "stall-h2" => stall(&o, &certs, &ca, true, size).await,
                "amplify" => amplify(&o, &certs, &ca, size).await,
                "idle-h2" => idle_h2(&o, &certs, &ca).await,
                other => Err(format!("unknown attack {other}")),
            };
            let row = row.unwrap_or_else(|e| Row {
                attack: name.clone(),
                size: size_text(size),
                peak_mib: 0.0,
                attackers: format!("failed: {e}"),
                reviews: "–".into(),
                sampled: None,
            });
            eprintln!(
                "{} {}: peak {:.1} MiB; {}; normal reviews: {}",
                row.attack, row.size, row.peak_mib, row.attackers, row.reviews
            );
            rows.push(row);
        }
    }
    if o.markdown {
        print_markdown(&rows);
    }
    Ok(())
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench_attacks: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = runtime.block_on(run(o)) {
        eprintln!("bench_attacks: {e}");
        std::process::exit(1);
    }
}

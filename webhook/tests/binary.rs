//! The real `tkeha-webhook` binary: generated certificates, reviews over verified TLS, one
//! structured log line per review without secrets or the object, SIGTERM (readiness off, exit 0,
//! last log lines flushed), flag errors that name the flag, and a low `RLIMIT_NOFILE` (the
//! connection limit stays below it, so the certificate still reloads with every slot taken).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_tkeha-webhook");
const GUARD: Duration = Duration::from_secs(60);

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn gen_certs(dir: &Path) {
    let out = Command::new(BIN)
        .arg("--gen-certs")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for f in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(dir.join(f).is_file(), "{f} not written");
    }
}

/// Run the binary with `args`, expect failure, return stderr.
fn fails_with(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reviews_logs_one_line_per_review_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_certs(&certs);
    let log_path = dir.path().join("stdout.log");
    let (addr, health) = (free_addr(), free_addr());
    let mut child = Command::new(BIN)
        .arg(format!("--listen={addr}"))
        .arg(format!("--health-listen={health}"))
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .arg("--shutdown-delay=2s")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let ready = |h: SocketAddr| async move {
        // plain_get panics on a refused connection: check the port is open first.
        tokio::net::TcpStream::connect(h).await.is_ok()
            && plain_get(h, "/readyz").await.0 == StatusCode::OK
    };
    eventually(GUARD, "the binary to become ready", || ready(health)).await;

    let ca = std::fs::read_to_string(certs.join("ca.crt")).unwrap();
    let client = TlsClient::new(&ca, addr);
    let broken = fixture("review-create-broken.json");
    let denied = client.review("/validate", &broken).await;
    assert_eq!(denied["response"]["allowed"], false);
    assert_eq!(denied["response"]["status"]["code"], 422);
    let tke = fixture("review-create-tke-ha.json");
    let mutated = client.review("/mutate", &tke).await;
    assert!(mutated["response"]["patch"].is_string());
    let bad = client
        .request("POST", "/validate", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    // Readiness turns off during the shutdown delay, before the listeners close.
    eventually(
        GUARD,
        "/readyz to report 503 after SIGTERM",
        || async move { plain_get(health, "/readyz").await.0 == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let reviews: Vec<&Value> = lines.iter().filter(|l| l["message"] == "review").collect();
    assert_eq!(reviews.len(), 2, "{log}");
    let v = reviews
        .iter()
        .find(|l| l["endpoint"] == "validate")
        .unwrap();
    assert_eq!(v["uid"], broken["request"]["uid"]);
    assert_eq!(v["kind"], "Cluster");
    assert_eq!(v["name"], "cls-broken");
    assert_eq!(v["operation"], "CREATE");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["level"], "INFO");
    assert!(v["latency_us"].is_u64(), "{v}");
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let m = reviews.iter().find(|l| l["endpoint"] == "mutate").unwrap();
    assert_eq!(m["allowed"], true);
    // port 22, vrid, the VIP as a SAN, dnsDomain
    assert_eq!(m["patch_ops"], json!(4));
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "bad admission request" && l["level"] == "WARN"),
        "{log}"
    );
    // The last lines were flushed at exit.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "tkeha-webhook stopped"),
        "{log}"
    );
    // Never a password (encoded or not), a key, or the object body.
    for secret in [
        "MTIzNDU2",
        "\"123456\"",
        "password",
        "PRIVATE KEY",
        "192.168.1.300",
        "spec",
        "machines",
    ] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
}

#[test]
fn bad_flags_name_the_flag_and_exit_non_zero() {
    let err = fails_with(&[]);
    assert!(err.contains("--tls-cert"), "{err}");
    let err = fails_with(&[
        "--tls-cert=c",
        "--tls-key=k",
        "--third-party-single-master=maybe",
    ]);
    assert!(err.contains("--third-party-single-master"), "{err}");
    assert!(err.contains("error") && err.contains("warning"), "{err}");
    let err = fails_with(&["--tls-cert=c", "--tls-key=k", "--body-read-timeout=0s"]);
    assert!(err.contains("--body-read-timeout"), "{err}");
    let err = fails_with(&["--tls-cert=c", "--tls-key=k", "--listen=nowhere"]);
    assert!(err.contains("--listen"), "{err}");
    let err = fails_with(&["--tls-cert=c", "--tls-key=k", "--body-budget=1MiB"]);
    assert!(
        err.contains("--body-budget") && err.contains("8MiB"),
        "{err}"
    );
    let err = fails_with(&["--tls-cert=c", "--tls-key=k", "--max-connections=0"]);
    assert!(err.contains("--max-connections"), "{err}");
}

/// A health-listener metric, if the listener answers.
async fn health_metric(health: SocketAddr, name: &str) -> Option<f64> {
    let (status, text) = plain_get(health, "/metrics").await;
    if status != StatusCode::OK {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_descriptor_limit_connections_wait_and_the_certificate_still_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_certs(&certs);
    let log_path = dir.path().join("stdout.log");
    let (addr, health) = (free_addr(), free_addr());
    // 128 descriptors: 64 kept in reserve, 16 for the health listener, 48 for connections.
    let mut child = Command::new("prlimit")
        .arg("--nofile=128:128")
        .arg(BIN)
        .arg(format!("--listen={addr}"))
        .arg(format!("--health-listen={health}"))
        .arg("--tls-cert")
        .arg(certs.join("tls.crt"))
        .arg("--tls-key")
        .arg(certs.join("tls.key"))
        .arg("--cert-reload-interval=200ms")
        .arg("--idle-timeout=600s")
        .arg("--shutdown-delay=100ms")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = |h: SocketAddr| async move {
        tokio::net::TcpStream::connect(h).await.is_ok()
            && plain_get(h, "/readyz").await.0 == StatusCode::OK
    };
    eventually(GUARD, "the binary to become ready", || ready(health)).await;

    let ca = std::fs::read_to_string(certs.join("ca.crt")).unwrap();
    let target = attack::Target::new(addr, &ca).unwrap();
    let review = serde_json::to_vec(&fixture("review-create-third-party-ha.json")).unwrap();
    // More HTTP/2 connections that send one review and go silent than there are descriptors
    // (before: 243 of them under a limit of 256 starved the server, and the certificate reload
    // failed with "Too many open files"). Each is served: past 48, a new one waits and the idle
    // ones are closed to make room.
    let idle = attack::idle_h2(&target, 120, "/validate", &review).await;
    assert!(
        idle.iter().all(Result::is_ok),
        "{:?}",
        idle.iter().find(|c| c.is_err())
    );
    // Take every free slot (the last round closed idle ones to make room), once the closing
    // ones are gone: the count read twice 200 ms apart (a hang guard bounds the wait).
    let count = || async move {
        health_metric(health, "tkeha_webhook_connections")
            .await
            .unwrap()
    };
    let deadline = std::time::Instant::now() + GUARD;
    let mut open = count().await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = count().await;
        if now == open {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connections never settled"
        );
        open = now;
    }
    assert!(open <= 48.0, "{open} connections");
    let idle = attack::idle_h2(&target, 48 - open as usize, "/validate", &review).await;
    assert!(idle.iter().all(Result::is_ok));
    assert_eq!(
        health_metric(health, "tkeha_webhook_connections").await,
        Some(48.0)
    );

    // The certificate changes while no slot is free: it is still re-read.
    let fresh = dir.path().join("fresh");
    gen_certs(&fresh);
    for f in ["tls.crt", "tls.key"] {
        let tmp = certs.join(format!("{f}.tmp"));
        std::fs::copy(fresh.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, certs.join(f)).unwrap();
    }
    eventually(GUARD, "the new certificate to be loaded", || async move {
        health_metric(health, "tkeha_webhook_tls_reloads_total{result=\"ok\"}").await == Some(1.0)
    })
    .await;

    // New connections, past the limit, verified against the new CA: idle ones make room.
    let new_ca = std::fs::read_to_string(fresh.join("ca.crt")).unwrap();
    let target = attack::Target::new(addr, &new_ca).unwrap();
    for _ in 0..3 {
        let answer =
            tokio::time::timeout(GUARD, attack::post_h1(&target, "/validate", review.clone()))
                .await
                .expect("no answer past the connection limit")
                .unwrap();
        assert_eq!(answer.status, StatusCode::OK);
    }
    let more = attack::idle_h2(&target, 20, "/validate", &review).await;
    assert!(more.iter().all(Result::is_ok));
    assert!(health_metric(health, "tkeha_webhook_connections").await <= Some(48.0));

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status:?}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let capped = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "RLIMIT_NOFILE caps the connection limit")
        .unwrap_or_else(|| panic!("no warning about the cap:\n{log}"));
    assert_eq!(capped["max_connections"], 48);
    assert_eq!(capped["wanted"], 256);
}

#[test]
fn unreadable_certificate_files_are_named_and_nothing_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let err = fails_with(&[
        "--listen=127.0.0.1:0",
        "--health-listen=127.0.0.1:0",
        "--tls-cert",
        missing.to_str().unwrap(),
        "--tls-key",
        missing.to_str().unwrap(),
    ]);
    assert!(err.contains("missing.crt"), "{err}");
    // A key that is not a key: named, and its content not echoed.
    let certs = dir.path().join("certs");
    gen_certs(&certs);
    let key = dir.path().join("bad.key");
    std::fs::write(&key, "SECRET-NOT-A-KEY").unwrap();
    let err = fails_with(&[
        "--listen=127.0.0.1:0",
        "--health-listen=127.0.0.1:0",
        "--tls-cert",
        certs.join("tls.crt").to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(err.contains("bad.key"), "{err}");
    assert!(!err.contains("SECRET-NOT-A-KEY"), "{err}");
}

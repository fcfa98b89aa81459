//! tkeha-fake-apiserver: stands in for kube-apiserver on a lab master. Answers any HTTP request on
//! 0.0.0.0:PORT with `apiserver <hostname>`, in plain HTTP or, like kube-apiserver, over TLS (a
//! self-signed certificate made at start, so a `curl -k https://127.0.0.1:6443/healthz` health
//! check such as TKEStack's passes); one thread per connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A TLS configuration with a fresh self-signed certificate for 127.0.0.1 and localhost.
fn tls_config() -> Result<Arc<ServerConfig>, String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .and_then(|p| p.self_signed(&key))
        .map_err(|e| e.to_string())?;
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

fn main() {
    let mut port: u16 = 6443;
    let mut pid_file: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(port),
            "--pid-file" => pid_file = args.next(),
            other => {
                eprintln!(
                    "usage: tkeha-fake-apiserver [--port P] [--pid-file F] (unknown: {other})"
                );
                std::process::exit(2);
            }
        }
    }
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tkeha-fake-apiserver: cannot listen on :{port}: {e}");
            std::process::exit(1);
        }
    };
    if let Some(f) = pid_file
        && let Err(e) = std::fs::write(&f, format!("{}\n", std::process::id()))
    {
        eprintln!("tkeha-fake-apiserver: cannot write {f}: {e}");
    }
    let tls = match tls_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tkeha-fake-apiserver: cannot make a TLS certificate: {e}");
            std::process::exit(1);
        }
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let body = format!("apiserver {}\n", host.trim());
    for conn in listener.incoming().flatten() {
        let body = body.clone();
        let tls = Arc::clone(&tls);
        std::thread::spawn(move || accept(conn, &body, tls));
    }
}

/// Plain HTTP, or TLS when the first byte is a TLS handshake record (0x16).
fn accept(s: TcpStream, body: &str, tls: Arc<ServerConfig>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut first = [0u8; 1];
    if matches!(s.peek(&mut first), Ok(1)) && first[0] == 0x16 {
        if let Ok(conn) = ServerConnection::new(tls) {
            serve(StreamOwned::new(conn, s), body);
        }
    } else {
        serve(s, body);
    }
}

fn serve(mut s: impl Read + Write, body: &str) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        // Not HTTP: just close (a TCP health check still passes).
        if seen.first() != Some(&b'G') && seen.first() != Some(&b'H') && seen.first() != Some(&b'P')
        {
            return;
        }
        if seen.len() > 64 * 1024 {
            return;
        }
    }
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
    let _ = s.flush();
}

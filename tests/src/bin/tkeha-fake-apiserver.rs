//! tkeha-fake-apiserver: stands in for kube-apiserver on a lab master. Answers any HTTP request on
//! 0.0.0.0:PORT with `apiserver <hostname>`; std only, one thread per connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

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
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let body = format!("apiserver {}\n", host.trim());
    for conn in listener.incoming().flatten() {
        let body = body.clone();
        std::thread::spawn(move || serve(conn, &body));
    }
}

fn serve(mut s: TcpStream, body: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        // A TLS ClientHello (0x16) or garbage: not HTTP, just close (a TCP health check still passes).
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
}

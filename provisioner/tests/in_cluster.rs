//! Job mode as a pod runs it: no kubeconfig, `KUBERNETES_SERVICE_HOST/PORT` and the service
//! account's token and CA under `/var/run/secrets/kubernetes.io/serviceaccount` (mounted on a
//! private tmpfs in a mount namespace of the child, so the host is untouched; needs root, as CI
//! and the e2e lab do), talking TLS to the fake API server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::process::Command;

use serde_json::json;
use support::fake_apiserver::{FakeApiServer, Recorded, Reply};
use support::tls_front::TlsFront;

const TOKEN: &str = "sa-token-do-not-print";

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_string();
    assert_eq!(
        uid, "0",
        "this test mounts a service account in a private mount namespace: run it as root (as CI does)"
    );
}

/// Mount a tmpfs over /run (so /var/run/secrets/... can be created without touching the host),
/// copy the service account files there, then exec the rest of the arguments.
const POD_SHELL: &str = r#"set -e
mount -t tmpfs tkeha-test /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$1/token" "$1/ca.crt" "$1/namespace" /run/secrets/kubernetes.io/serviceaccount/
shift
exec "$@""#;

#[test]
fn in_a_pod_the_service_account_token_and_ca_are_used() {
    require_root();
    let ports: Vec<u16> = (0..3).map(|_| closed_port()).collect();
    let object = json!({
        "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
        "metadata": {"name": "lab", "resourceVersion": "3"},
        "spec": {"type": "Baremetal", "version": "1.30.0",
                 "features": {"ha": {"tke": {"vip": "10.99.0.100"}}},
                 "machines": ports.iter().enumerate().map(|(i, p)| json!(
                     {"ip": format!("203.0.113.{}", i + 1), "port": p, "username": "root",
                      "password": "cm9vdHB3"})).collect::<Vec<_>>()},
    });
    let server = FakeApiServer::start(move |r| match r.method.as_str() {
        "GET" | "PATCH" => Reply::json(200, object.clone()),
        _ => Reply::not_found("path"),
    });
    let front = TlsFront::start(server.url.trim_start_matches("http://"));

    let sa = tempfile::tempdir().unwrap();
    std::fs::write(sa.path().join("token"), TOKEN).unwrap();
    std::fs::write(sa.path().join("ca.crt"), &front.ca_pem).unwrap();
    std::fs::write(sa.path().join("namespace"), "tkeha-system").unwrap();
    let home = tempfile::tempdir().unwrap();
    let known_hosts = home.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();

    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            POD_SHELL,
            "sh",
        ])
        .arg(sa.path())
        .arg(env!("CARGO_BIN_EXE_tkeha-provisioner"))
        .args(["apply", "lab", "--known-hosts"])
        .arg(&known_hosts)
        .args(["--connect-timeout", "2"])
        .env_remove("KUBECONFIG")
        .env("HOME", home.path())
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", front.port.to_string())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("HAReady=False (ApplyFailed)"), "{all}");
    assert!(!all.contains(TOKEN), "the token was printed: {all}");

    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            "GET /apis/platform.tkestack.io/v1/clusters/lab",
            "GET /apis/platform.tkestack.io/v1/clusters/lab",
            "PATCH /apis/platform.tkestack.io/v1/clusters/lab/status",
        ]
    );
    for r in &requests {
        assert_eq!(r.authorization, format!("Bearer {TOKEN}"), "{}", r.line());
    }
    assert_eq!(requests[2].content_type, "application/merge-patch+json");
}

#[test]
fn without_kubeconfig_or_pod_environment_the_error_says_both() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tkeha-provisioner"))
        .args(["status", "lab", "--insecure-ignore-host-keys"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err,
        format!(
            "error: no usable kubeconfig ({}/.kube/config: no such file) and not running in a pod \
             (no KUBERNETES_SERVICE_HOST): pass --kubeconfig FILE or set $KUBECONFIG\n",
            home.path().display()
        )
    );
}

//! `create` over HTTPS as a real API server speaks it: the kubeconfig's CA is enforced and its
//! bearer token is sent (the provisioner's TLS front over the fake API server).

use base64::Engine as _;
use serde_json::json;

use crate::fake_apiserver::{FakeApiServer, Reply};
use crate::harness::Kubectl;
use crate::tls_front::TlsFront;

const MANIFEST: &str = r#"{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
  "metadata": {"name": "cls-prod"},
  "spec": {"type": "Baremetal", "version": "1.30.0", "clusterCIDR": "10.244.0.0/16",
    "machines": [{"ip": "192.168.1.2", "username": "root", "password": "MTIzNDU2"},
                 {"ip": "192.168.1.3", "username": "root", "password": "MTIzNDU2"},
                 {"ip": "192.168.1.4", "username": "root", "password": "MTIzNDU2"}],
    "features": {"ha": {"tke": {"vip": "192.168.1.10"}}}}}"#;

/// A kubeconfig for `https://127.0.0.1:PORT` trusting `ca_pem`, with a bearer token.
fn kubeconfig(k: &Kubectl, name: &str, port: u16, ca_pem: &str) -> std::path::PathBuf {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    k.file(
        name,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: tls\n\
             clusters:\n- name: tls\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {ca}\n\
             contexts:\n- name: tls\n  context:\n    cluster: tls\n    user: u\n\
             users:\n- name: u\n  user:\n    token: tls-test-token\n"
        ),
    )
}

#[test]
fn create_verifies_the_kubeconfig_ca_and_sends_the_bearer_token() {
    let server = FakeApiServer::start(|r| {
        let mut object = r.json();
        object["metadata"]["uid"] = json!("1");
        Reply::json(201, object)
    });
    let front = TlsFront::start(server.url.trim_start_matches("http://"));
    let k = Kubectl::new();
    let file = k.file("prod.json", MANIFEST);
    let file = file.to_str().unwrap();

    let trusted = kubeconfig(&k, "trusted", front.port, &front.ca_pem);
    let out = k.tkeha(&[
        "create",
        "-f",
        file,
        "--kubeconfig",
        trusted.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod created\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].authorization, "Bearer tls-test-token");

    // A CA that did not sign the server's certificate: refused in the handshake, nothing sent.
    let other = TlsFront::start("127.0.0.1:9");
    let untrusted = kubeconfig(&k, "untrusted", front.port, &other.ca_pem);
    let out = k.tkeha(&[
        "create",
        "-f",
        file,
        "--kubeconfig",
        untrusted.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with("error: talking to the API server"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("tls-test-token"),
        "the token leaked: {out:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

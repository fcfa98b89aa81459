//! `check|provision|status|drill|uninstall` reach the provisioner library (no SSH: inputs it refuses).

use crate::harness::Kubectl;

const COMMANDS: [&str; 5] = ["check", "provision", "status", "drill", "uninstall"];

#[test]
fn every_command_requires_a_host_key_policy() {
    let k = Kubectl::new();
    let file = k.file("c.json", "{}");
    for command in COMMANDS {
        let out = k.tkeha(&[command, "-f", file.to_str().unwrap()]);
        assert_eq!(out.code, 2, "{command}: {out:?}");
        assert_eq!(out.stdout, "", "{command}");
        assert!(out.stderr.contains("--known-hosts"), "{command}: {out:?}");
    }
}

#[test]
fn every_command_refuses_an_invalid_cluster_before_any_ssh() {
    let k = Kubectl::new();
    let file = k.file(
        "bad.json",
        r#"{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster", "spec": {"type": "Baremetal",
            "version": "1.30.0", "machines": [{"ip": "10.77.250.2", "username": "root", "password": "MTIzNDU2"}],
            "features": {"ha": {"tke": {"vip": "10.77.250.300"}}}}}"#,
    );
    for command in COMMANDS {
        let out = k.tkeha(&[
            command,
            "-f",
            file.to_str().unwrap(),
            "--insecure-ignore-host-keys",
        ]);
        assert_eq!(out.code, 2, "{command}: {out:?}");
        assert!(
            out.stderr.contains("spec.features.ha.tke.vip"),
            "{command}: {out:?}"
        );
    }
}

#[test]
fn missing_manifest_is_exit_2() {
    let out = Kubectl::new().tkeha(&[
        "check",
        "-f",
        "/nonexistent/c.yaml",
        "--insecure-ignore-host-keys",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/c.yaml"), "{out:?}");
}

#[test]
fn a_cluster_name_is_read_from_the_server_that_kubeconfig_and_context_select() {
    use crate::fake_apiserver::{FakeApiServer, Reply};

    let server = FakeApiServer::start(|r| Reply::not_found(&format!("clusters {:?}", r.path)));
    let k = Kubectl::new();
    // The current context is the decoy: only --context fake reaches the fake server.
    let kubeconfig = server.kubeconfig(k.dir(), "decoy");
    let kubeconfig = kubeconfig.to_str().unwrap();
    for command in COMMANDS {
        let out = k.tkeha(&[
            command,
            "prod",
            "--insecure-ignore-host-keys",
            "--kubeconfig",
            kubeconfig,
            "--context",
            "fake",
        ]);
        assert_ne!(out.code, 0, "{command}: {out:?}");
        assert!(out.stderr.contains("prod"), "{command}: {out:?}");
    }
    let paths: Vec<String> = server.requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        paths,
        vec!["GET /apis/platform.tkestack.io/v1/clusters/prod".to_string(); COMMANDS.len()]
    );
    let out = k.tkeha(&[
        "status",
        "prod",
        "--insecure-ignore-host-keys",
        "--kubeconfig",
        kubeconfig,
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert_eq!(
        server.requests().len(),
        COMMANDS.len(),
        "the decoy context reached the fake"
    );
}

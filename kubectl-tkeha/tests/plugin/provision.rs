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

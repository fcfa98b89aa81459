//! One voice: `tkeha-provisioner` prints bad input in the same words as `kubectl tkeha` (kubectl-tkeha/tests/plugin/one_voice.rs), the rendering of `tkeha_provisioner::cli`.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use tkeha_provisioner::cli;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tkeha-provisioner"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn bad_input_gets_the_plugins_words() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let inputs = [
        dir.path().join("missing.yaml"),
        write(
            "broken.json",
            "{\n  \"spec\": {\n    \"type\": \"Baremetal\"\n  \"version\": 1\n}\n",
        ),
        write(
            "port.json",
            r#"{"spec": {"machines": [{"ip": "10.0.0.2", "port": "22", "username": "root", "password": "MTIzNDU2"}]}}"#,
        ),
        write("two.yaml", "spec:\n  type: Baremetal\n---\nspec: {}\n"),
        write("evil\n[10.0.0.2] ok\u{1b}[8m.json", "{"),
    ];
    for path in inputs {
        let expected = cli::error_text(&tkeha_provisioner::load_plan(&path).unwrap_err().into());
        for action in ["check", "apply", "status", "drill", "uninstall"] {
            let (code, stdout, stderr) = run(&[
                action,
                "-f",
                path.to_str().unwrap(),
                "--insecure-ignore-host-keys",
            ]);
            assert_eq!(code, 2, "{action} {path:?}: {stderr}");
            assert_eq!(stdout, "");
            assert_eq!(stderr, expected, "{action}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
}

#[test]
fn a_missing_known_hosts_file_is_refused_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("c.json");
    // A master nothing listens for: a run that went on would take the connect timeout.
    std::fs::write(
        &manifest,
        r#"{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster", "spec": {"type": "Baremetal",
            "version": "1.30.0", "machines": [{"ip": "192.0.2.10", "username": "root", "password": "MTIzNDU2"},
            {"ip": "192.0.2.11", "username": "root", "password": "MTIzNDU2"},
            {"ip": "192.0.2.12", "username": "root", "password": "MTIzNDU2"}],
            "features": {"ha": {"tke": {"vip": "192.0.2.100"}}}}}"#,
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "check",
        "-f",
        manifest.to_str().unwrap(),
        "--known-hosts",
        "/nonexistent/known_hosts",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "", "no report: nothing was tried");
    assert_eq!(
        stderr,
        "error: --known-hosts /nonexistent/known_hosts: no such file; give an OpenSSH known_hosts \
         file that lists the masters' keys, or --accept-new-host-keys to record them on first contact\n"
    );
}

#[test]
fn version_and_report_formats() {
    let (code, stdout, _) = run(&["version", "-o", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["name"], "tkeha-provisioner");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let (code, stdout, _) = run(&["version", "-o", "yaml"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("name: tkeha-provisioner\n"), "{stdout}");
    for action in ["check", "apply", "status", "drill", "uninstall"] {
        let (code, stdout, _) = run(&[action, "--help"]);
        assert_eq!(code, 0);
        assert!(
            stdout.contains("[possible values: text, json, yaml]"),
            "{action}: {stdout}"
        );
        assert!(
            stdout.contains(&format!(
                "Usage: tkeha-provisioner {action} (-f FILE | CLUSTER-NAME)"
            )),
            "{action}: {stdout}"
        );
    }
    let (_, check, _) = run(&["check", "--help"]);
    assert!(check.contains("records nothing"), "{check}");
    assert!(!check.contains("written to its status"), "{check}");
    assert!(
        !check.contains("--timeout"),
        "check waits for no VIP: {check}"
    );
}

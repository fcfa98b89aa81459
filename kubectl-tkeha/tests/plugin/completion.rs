//! Discovery and completion: `kubectl plugin list`, kubectl's plugin completion via the shim, `completion`.

use crate::harness::Kubectl;

#[test]
fn kubectl_plugin_list_finds_the_plugin() {
    let out = Kubectl::new().kubectl(&["plugin", "list"], b"");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.lines().any(|l| l.ends_with("/kubectl-tkeha")),
        "{out:?}"
    );
}

#[test]
fn hidden_complete_ends_with_a_directive_line() {
    let k = Kubectl::new();
    let out = k.tkeha(&["__complete", "va"]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&":4"), "{out:?}");
    assert!(lines[0].starts_with("validate\t"), "{out:?}");

    let out = k.tkeha(&["__complete", "validate", "-f", ""]);
    assert_eq!(out.stdout, ":0\n", "files make sense after -f: {out:?}");

    let out = k.tkeha(&["__complete", "init", "--ha", ""]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].starts_with("tke\t") && lines[1].starts_with("third-party\t"),
        "{out:?}"
    );
    assert_eq!(lines[2], ":4");
}

#[test]
fn kubectl_completes_the_plugin_through_the_shim() {
    // kubectl >= 1.26 runs kubectl_complete-tkeha from PATH for `kubectl tkeha <TAB>`.
    let out = Kubectl::new().kubectl(&["__complete", "tkeha", "enc"], b"");
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("encode-password")),
        "{out:?}"
    );
    assert_eq!(lines.last(), Some(&":4"), "{out:?}");
}

#[test]
fn completion_kubectl_prints_the_shipped_shim() {
    let out = Kubectl::new().tkeha(&["completion", "kubectl"]);
    assert_eq!(out.code, 0, "{out:?}");
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kubectl_complete-tkeha"
    ))
    .unwrap();
    assert_eq!(out.stdout, shipped);
    let help = Kubectl::new().tkeha(&["completion", "--help"]);
    assert!(help.stdout.contains("kubectl_complete-tkeha"), "{help:?}");
}

#[test]
fn completion_bash_is_valid_bash() {
    let k = Kubectl::new();
    let out = k.tkeha(&["completion", "bash"]);
    assert_eq!(out.code, 0, "{out:?}");
    let script = k.file("kubectl-tkeha.bash", &out.stdout);
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.stdout.contains("kubectl-tkeha"));
}

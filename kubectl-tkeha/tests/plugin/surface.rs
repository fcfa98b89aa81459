//! The command surface through kubectl: `version`, `help`, usage lines, long help, `-o json|yaml` on every command with a structured result.

use crate::harness::{Kubectl, json};

const SSH_COMMANDS: [&str; 5] = ["check", "provision", "status", "drill", "uninstall"];

#[test]
fn version_answers_in_text_json_and_yaml() {
    let k = Kubectl::new();
    let text = k.tkeha(&["version"]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout
            .starts_with(&format!("kubectl-tkeha {} ", env!("CARGO_PKG_VERSION"))),
        "{text:?}"
    );
    let out = k.tkeha(&["version", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = json(&out);
    assert_eq!(v["name"], "kubectl-tkeha");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["platform"].as_str().unwrap().starts_with("linux/"), "{v}");
    let out = k.tkeha(&["version", "-o", "yaml"]);
    let y: serde_json::Value = serde_saphyr::from_str(&out.stdout).unwrap();
    assert_eq!(y, v);
}

#[test]
fn help_accepts_h_and_names_a_command() {
    let k = Kubectl::new();
    for args in [
        &["help", "-h"][..],
        &["help", "--help"],
        &["help"],
        &["help", "init"],
    ] {
        let out = k.tkeha(args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(
            out.stdout.contains("Usage: kubectl tkeha"),
            "{args:?}: {out:?}"
        );
    }
    assert!(k.tkeha(&["help", "init"]).stdout.contains("--ssh-key"));
    let out = k.tkeha(&["help", "nope"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("unknown command \"nope\""), "{out:?}");
}

#[test]
fn every_ssh_command_has_the_same_usage_line_and_long_help() {
    let k = Kubectl::new();
    for command in SSH_COMMANDS {
        let out = k.tkeha(&[command, "--help"]);
        assert_eq!(out.code, 0, "{command}: {out:?}");
        let usage = format!(
            "Usage: kubectl tkeha {command} (-f FILE | CLUSTER-NAME) (--known-hosts FILE | --accept-new-host-keys | --insecure-ignore-host-keys) [OPTIONS]"
        );
        assert!(out.stdout.contains(&usage), "{command}: {}", out.stdout);
        // A long help: a paragraph after the one-line summary, then the examples.
        let before_usage = out.stdout.split("Usage:").next().unwrap();
        assert!(
            before_usage.trim().lines().count() >= 3,
            "{command}: {before_usage}"
        );
        assert!(out.stdout.contains("Examples:"), "{command}");
        // -o: the same three formats everywhere.
        assert!(
            out.stdout.contains("json") && out.stdout.contains("yaml"),
            "{command}"
        );
        // --timeout is described for the command it is on, or not shown where nothing waits.
        let timeout = out.stdout.split("--timeout <SECS>").nth(1).unwrap_or("");
        match command {
            "provision" => assert!(timeout.contains("exactly one master holds the VIP")),
            "drill" => assert!(timeout.contains("VIP to move"), "{timeout}"),
            _ => assert!(
                !out.stdout.contains("--timeout"),
                "{command}: {}",
                out.stdout
            ),
        }
        assert!(
            !timeout.contains("(apply)") && !timeout.contains("(drill)"),
            "{command}"
        );
    }
    let check = k.tkeha(&["check", "--help"]).stdout;
    assert!(check.contains("records nothing"), "{check}");
    assert!(!check.contains("written to its status"), "{check}");
}

#[test]
fn every_structured_result_has_json_and_yaml() {
    let k = Kubectl::new();
    let manifest = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2,10.0.0.3,10.0.0.4",
            "--password-stdin",
            "--name",
            "prod",
        ],
        b"123456",
    );
    assert_eq!(manifest.code, 0, "{manifest:?}");
    let file = k.file("c.yaml", &manifest.stdout);
    let file = file.to_str().unwrap();
    for args in [
        &["validate", "-f", file][..],
        &["create", "-f", file, "--dry-run"],
        &["version"],
    ] {
        let mut as_json = args.to_vec();
        as_json.extend(["-o", "json"]);
        let j = k.tkeha(&as_json);
        assert_eq!(j.code, 0, "{as_json:?}: {j:?}");
        let mut as_yaml = args.to_vec();
        as_yaml.extend(["-o", "yaml"]);
        let y = k.tkeha(&as_yaml);
        assert_eq!(y.code, 0, "{as_yaml:?}: {y:?}");
        let from_yaml: serde_json::Value = serde_saphyr::from_str(&y.stdout).unwrap();
        assert_eq!(from_yaml, json(&j), "{args:?}");
    }
    // The SSH commands accept both (a run that stops before any master prints no report).
    for command in SSH_COMMANDS {
        for format in ["json", "yaml"] {
            let out = k.tkeha(&[
                command,
                "-f",
                "/nonexistent.yaml",
                "--insecure-ignore-host-keys",
                "-o",
                format,
            ]);
            assert_eq!(out.code, 2, "{command} -o {format}: {out:?}");
            assert_eq!(
                out.stderr, "error: /nonexistent.yaml: no such file\n",
                "{command}"
            );
        }
    }
}

#[test]
fn a_missing_known_hosts_file_is_refused_at_once_naming_it() {
    let k = Kubectl::new();
    let manifest = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "192.0.2.100",
            "--master",
            "192.0.2.10,192.0.2.11,192.0.2.12",
            "--password-stdin",
        ],
        b"123456",
    );
    let file = k.file("c.yaml", &manifest.stdout);
    for command in SSH_COMMANDS {
        let out = k.tkeha(&[
            command,
            "-f",
            file.to_str().unwrap(),
            "--known-hosts",
            "/nonexistent",
        ]);
        assert_eq!(out.code, 2, "{command}: {out:?}");
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr
                .starts_with("error: --known-hosts /nonexistent: no such file;"),
            "{command}: {out:?}"
        );
    }
}

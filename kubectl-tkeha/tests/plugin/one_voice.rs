//! One voice: the same bad input gets the same words from every command that reads a manifest, in the one rendering of `tkeha_provisioner::input` (which `tkeha-provisioner` prints too; see provisioner/tests/one_voice.rs).

use std::path::{Path, PathBuf};

use crate::harness::Kubectl;

/// Every plugin command that reads `-f FILE`, with what it needs besides.
fn commands(file: &str) -> Vec<Vec<String>> {
    let mut all = vec![
        vec!["validate".to_string(), "-f".into(), file.into()],
        vec![
            "create".into(),
            "-f".into(),
            file.into(),
            "--dry-run".into(),
        ],
    ];
    for command in ["check", "provision", "status", "drill", "uninstall"] {
        all.push(vec![
            command.into(),
            "-f".into(),
            file.into(),
            "--insecure-ignore-host-keys".into(),
        ]);
    }
    all
}

/// Bad inputs, each as a file in `k`'s directory.
pub fn bad_inputs(dir: &Path) -> Vec<PathBuf> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    vec![
        dir.join("missing.yaml"),
        write(
            "broken.json",
            "{\n  \"spec\": {\n    \"type\": \"Baremetal\"\n  \"version\": 1\n}\n",
        ),
        write(
            "port.json",
            r#"{"spec": {"machines": [{"ip": "10.0.0.2", "port": "22", "username": "root", "password": "MTIzNDU2"}]}}"#,
        ),
        write("two.yaml", "spec:\n  type: Baremetal\n---\nspec: {}\n"),
        write("nospec.yaml", "apiVersion: v1\nkind: Config\n"),
        write(
            "evil\n[10.0.0.2] ok\ncheck succeeded (1 ms)\u{1b}[8m.json",
            "{",
        ),
    ]
}

#[test]
fn the_same_bad_input_gets_the_same_words_from_every_command() {
    let k = Kubectl::new();
    for path in bad_inputs(k.dir()) {
        let error = tkeha_provisioner::load_plan(&path).unwrap_err();
        let expected = tkeha_provisioner::cli::error_text(&error.into());
        assert_eq!(expected.lines().count(), 1, "{expected}");
        for args in commands(path.to_str().unwrap()) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = k.tkeha(&args);
            assert_eq!(out.code, 2, "{args:?}: {out:?}");
            assert_eq!(out.stdout, "", "{args:?}");
            assert_eq!(out.stderr, expected, "{args:?}");
        }
    }
}

#[test]
fn the_words_read_as_sentences() {
    let k = Kubectl::new();
    let inputs = bad_inputs(k.dir());
    let words: Vec<String> = inputs
        .iter()
        .map(|p| {
            let out = k.tkeha(&["validate", "-f", p.to_str().unwrap()]);
            out.stderr.replace(&format!("{}/", k.dir().display()), "")
        })
        .collect();
    assert_eq!(
        words,
        [
            "error: missing.yaml: no such file\n",
            "error: broken.json:4:3: invalid JSON: expected `,` or `}`\n",
            "error: port.json: spec.machines[0].port: must be a number, not a string\n",
            "error: two.yaml:3:1: invalid YAML: the file holds more than one YAML document (a `---` line starts another); one Cluster per file\n",
            "error: nospec.yaml: spec: Required value: not a Cluster manifest (no spec); scaffold one with `kubectl tkeha init`\n",
            "error: evil\\n[10.0.0.2] ok\\ncheck succeeded (1 ms)\\u001b[8m.json:1:1: invalid JSON: EOF while parsing an object\n",
        ]
    );
}

#[test]
fn an_invalid_cluster_gets_validates_lines_from_the_ssh_commands() {
    let k = Kubectl::new();
    let file = k.file(
        "bad.json",
        r#"{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster", "spec": {"type": "Baremetal",
            "version": "1.30.0", "machines": [{"ip": "10.77.250.2", "username": "root", "password": "MTIzNDU2"}],
            "features": {"ha": {"tke": {"vip": "10.77.250.300"}}}}}"#,
    );
    let file = file.to_str().unwrap();
    let validate = k.tkeha(&["validate", "-f", file]);
    assert_eq!(validate.code, 1, "{validate:?}");
    let report = format!("{}{}", validate.stderr, validate.stdout);
    for command in ["check", "provision", "status", "drill", "uninstall"] {
        let out = k.tkeha(&[command, "-f", file, "--insecure-ignore-host-keys"]);
        assert_eq!(out.code, 2, "{command}: {out:?}");
        assert_eq!(out.stdout, "", "{command}");
        assert_eq!(out.stderr, report, "{command}");
    }
}

//! `kubectl tkeha validate`: exit codes 0/1/2, text and JSON reports, locations of bad input, updates.

use serde_json::json;

use crate::harness::{Kubectl, json, seed_fixtures};

const TKE_THREE_MASTERS: &str = r#"{
    "apiVersion": "platform.tkestack.io/v1",
    "kind": "Cluster",
    "metadata": {"name": "cls-prod"},
    "spec": {
        "clusterCIDR": "10.244.0.0/16",
        "type": "Baremetal",
        "version": "1.30.0",
        "machines": [
            {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
            {"ip": "192.168.1.3", "port": 22, "username": "root", "password": "MTIzNDU2"},
            {"ip": "192.168.1.4", "port": 22, "username": "root", "password": "MTIzNDU2"}
        ],
        "features": {"ha": {"tke": {"vip": "192.168.1.10"}}}
    }
}
"#;

#[test]
fn seed_manifests_validate_verbatim() {
    let k = Kubectl::new();
    let seeds = seed_fixtures();
    assert!(
        seeds.len() >= 2,
        "expected both seed examples in api/tests/fixtures: {seeds:?}"
    );
    let mut warned = 0;
    for seed in &seeds {
        let out = k.tkeha(&["validate", "-f", seed.to_str().unwrap()]);
        assert_eq!(out.code, 0, "{seed:?}: {out:?}");
        let last = out.stdout.lines().last().unwrap();
        assert!(
            last.ends_with("valid (0 warnings)") || last.contains(": valid ("),
            "{out:?}"
        );
        if out.stderr.contains("Warning:") {
            warned += 1;
        }
    }
    // The TKE example has a single master: allowed, but warned about (no failover possible).
    assert!(warned >= 1, "no seed produced a warning");
}

#[test]
fn valid_text_report_shows_defaults_and_verdict() {
    let k = Kubectl::new();
    let file = k.file("prod.json", TKE_THREE_MASTERS);
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("spec.features.ha.tke.vrid = 11"),
        "{out:?}"
    );
    assert_eq!(
        out.stdout.lines().last().unwrap(),
        format!("{}: valid (0 warnings)", file.display())
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn invalid_manifest_exits_1_with_every_error_and_its_field() {
    let k = Kubectl::new();
    let bad = TKE_THREE_MASTERS
        .replace("\"192.168.1.10\"", "\"192.168.1.300\"")
        .replace(r#""ip": "192.168.1.4""#, r#""ip": "192.168.1.3""#);
    let file = k.file("bad.json", bad);
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("spec.features.ha.tke.vip: Invalid value: \"192.168.1.300\""),
        "{out:?}"
    );
    assert!(out.stdout.contains("spec.machines[2].ip"), "{out:?}");
    let last = out.stdout.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("{}: invalid (", file.display())),
        "{out:?}"
    );
}

#[test]
fn json_report_has_the_documented_shape() {
    let k = Kubectl::new();
    let bad = TKE_THREE_MASTERS.replace("\"192.168.1.10\"", "\"192.168.1.300\"");
    let file = k.file("bad.json", bad);
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = json(&out);
    let keys: Vec<&String> = report.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["valid", "errors", "warnings", "patch"]);
    assert_eq!(report["valid"], false);
    let errors = report["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    for e in errors {
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["field", "type", "message"], "{e}");
    }
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "spec.features.ha.tke.vip" && e["type"] == "FieldValueInvalid"),
        "{report}"
    );
    assert!(report["warnings"].is_array());
    assert!(report["patch"].is_array());
}

#[test]
fn json_report_of_a_valid_manifest_carries_the_patch() {
    let k = Kubectl::new();
    let out = k.tkeha_stdin(
        &["validate", "-f", "-", "-o", "json"],
        TKE_THREE_MASTERS.as_bytes(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let report = json(&out);
    assert_eq!(report["valid"], true);
    assert_eq!(report["errors"], json!([]));
    let patch = report["patch"].as_array().unwrap();
    assert!(
        patch.iter().any(|op| op["op"] == "add"
            && op["path"] == "/spec/features/ha/tke/vrid"
            && op["value"] == 11),
        "{report}"
    );
}

#[test]
fn yaml_from_stdin_is_accepted() {
    let yaml = "apiVersion: platform.tkestack.io/v1\nkind: Cluster\nspec:\n  type: Baremetal\n  version: 1.30.0\n  clusterCIDR: 10.244.0.0/16\n  machines:\n  - {ip: 10.0.0.2, port: 22, username: root, password: MTIzNDU2}\n  - {ip: 10.0.0.3, port: 22, username: root, password: MTIzNDU2}\n  - {ip: 10.0.0.4, port: 22, username: root, password: MTIzNDU2}\n  features:\n    ha:\n      thirdParty: {vip: 10.0.0.100, vport: 6443}\n";
    let out = Kubectl::new().tkeha_stdin(&["validate", "-f", "-"], yaml.as_bytes());
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.ends_with("<stdin>: valid (0 warnings)\n"),
        "{out:?}"
    );
}

#[test]
fn syntax_error_names_file_and_line_with_nothing_on_stdout() {
    let k = Kubectl::new();
    let broken = "{\n  \"apiVersion\": \"platform.tkestack.io/v1\",\n  \"kind\": \"Cluster\"\n  \"spec\": {}\n}\n";
    let file = k.file("broken.json", broken);
    for format in ["text", "json"] {
        let out = k.tkeha(&["validate", "-f", file.to_str().unwrap(), "-o", format]);
        assert_eq!(out.code, 2, "{out:?}");
        assert_eq!(out.stdout, "");
        let location = format!("{}:4:", file.display());
        assert!(
            out.stderr.contains(&location),
            "expected {location} in {out:?}"
        );
    }
}

#[test]
fn wrong_type_names_the_field_path() {
    let k = Kubectl::new();
    let file = k.file(
        "port.json",
        TKE_THREE_MASTERS.replacen("\"port\": 22", "\"port\": \"22\"", 1),
    );
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("port.json"), "{out:?}");
    assert!(out.stderr.contains("spec.machines[0].port"), "{out:?}");

    let file = k.file(
        "vip.json",
        TKE_THREE_MASTERS.replace("\"192.168.1.10\"", "17"),
    );
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("spec.features.ha.tke.vip"), "{out:?}");
}

#[test]
fn yaml_syntax_error_and_missing_spec_exit_2_with_the_location() {
    let k = Kubectl::new();
    let file = k.file(
        "bad.yaml",
        "apiVersion: platform.tkestack.io/v1\nkind: Cluster\nspec:\n  machines: [ip: 10.0.0.1\n",
    );
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("bad.yaml:"), "{out:?}");
    assert!(out.stderr.contains("YAML"), "{out:?}");

    for (name, text) in [
        (
            "nospec.yaml",
            "apiVersion: platform.tkestack.io/v1\nkind: Cluster\nmetadata: {name: a}\n",
        ),
        (
            "nullspec.json",
            "{\"apiVersion\": \"platform.tkestack.io/v1\", \"kind\": \"Cluster\", \"spec\": null}",
        ),
    ] {
        let file = k.file(name, text);
        for format in ["text", "json"] {
            let out = k.tkeha(&["validate", "-f", file.to_str().unwrap(), "-o", format]);
            assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
            assert!(
                out.stderr
                    .contains(&format!("{name}: spec: Required value")),
                "{out:?}"
            );
        }
    }
}

#[test]
fn unreadable_inputs_exit_2() {
    let k = Kubectl::new();
    let out = k.tkeha(&["validate", "-f", "/nonexistent/cluster.yaml"]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("/nonexistent/cluster.yaml"), "{out:?}");

    let mut huge = String::from(
        "{\"apiVersion\": \"platform.tkestack.io/v1\", \"kind\": \"Cluster\", \"x\": \"",
    );
    huge.push_str(&"a".repeat(3 * 1024 * 1024));
    huge.push_str("\"}");
    let file = k.file("huge.json", huge);
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("3 MiB"), "{out:?}");

    let file = k.file("binary.json", b"\xff\xfe{}");
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");

    let out = k.tkeha(&["validate", "-f", "-", "--old", "-"]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
}

#[test]
fn update_that_moves_the_vip_is_denied() {
    let k = Kubectl::new();
    let old = k.file("old.json", TKE_THREE_MASTERS);
    let new = k.file(
        "new.json",
        TKE_THREE_MASTERS.replace("192.168.1.10", "192.168.1.11"),
    );
    let out = k.tkeha(&[
        "validate",
        "-f",
        new.to_str().unwrap(),
        "--old",
        old.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    let report = json(&out);
    assert!(
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"].as_str().unwrap().starts_with("spec.features.ha")),
        "{report}"
    );
    // The same object as its own update is fine.
    let out = k.tkeha(&[
        "validate",
        "-f",
        old.to_str().unwrap(),
        "--old",
        old.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn wrong_type_in_the_old_object_names_the_old_file() {
    let k = Kubectl::new();
    let new = k.file("new.json", TKE_THREE_MASTERS);
    let old = k.file(
        "old.json",
        TKE_THREE_MASTERS.replacen("\"port\": 22", "\"port\": \"22\"", 1),
    );
    let out = k.tkeha(&[
        "validate",
        "-f",
        new.to_str().unwrap(),
        "--old",
        old.to_str().unwrap(),
    ]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("old.json"), "{out:?}");
}

/// A stored Cluster breaking many create rules at once (as objects stored before the webhook
/// was installed, or before a rule got stricter, can).
const STORED_BROKEN: &str = r#"{
    "apiVersion": "platform.tkestack.io/v1",
    "kind": "Cluster",
    "metadata": {"name": "cls-old", "finalizers": ["cluster"], "labels": {"team": "a"}},
    "spec": {
        "type": "Baremetal",
        "version": "1.30.0",
        "clusterCIDR": "10.244.0.0/16",
        "machines": [
            {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
            {"ip": "192.168.1.2", "port": 0, "username": "a;b", "password": "!"},
            {"ip": "127.0.0.1", "port": 22, "username": "root"}
        ],
        "features": {"ha": {"tke": {"vip": "10.244.0.5", "vrid": 300},
                            "thirdParty": {"vip": "192.168.1.5"}}}
    },
    "status": {"phase": "Running"}
}
"#;

fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(STORED_BROKEN).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn updates_ratchet_the_create_rules_as_the_api_server_does() {
    let k = Kubectl::new();
    let old = k.file("old.json", STORED_BROKEN);
    let old = old.to_str().unwrap();
    let check = |name: &str, new: String| {
        let file = k.file(name, new);
        k.tkeha(&["validate", "-f", file.to_str().unwrap(), "--old", old])
    };
    // As a create it is refused.
    let create = k.tkeha(&["validate", "-f", old]);
    assert_eq!(create.code, 1, "{create:?}");

    // Metadata alone: a label edit, a finalizer removal; status alone.
    for (name, new) in [
        (
            "label.json",
            edited(|v| v["metadata"]["labels"]["team"] = json!("b")),
        ),
        (
            "finalizer.json",
            edited(|v| v["metadata"]["finalizers"] = json!([])),
        ),
        (
            "status.json",
            edited(|v| v["status"]["phase"] = json!("Failed")),
        ),
    ] {
        let out = check(name, new);
        assert_eq!(out.code, 0, "{name}: {out:?}");
        assert!(
            out.stderr
                .contains("Warning: already invalid before this update: spec.machines[1].port"),
            "{name}: {out:?}"
        );
    }

    // An unrelated spec edit: allowed, the old problems are warnings.
    let out = check(
        "version.json",
        edited(|v| v["spec"]["version"] = json!("1.30.1")),
    );
    assert_eq!(out.code, 0, "{out:?}");
    for old_problem in [
        "spec.machines[1].username: Invalid value: \"a;b\"",
        "spec.features.ha: Forbidden: tke and thirdParty are mutually exclusive",
        "spec.machines[2].ip: Invalid value: \"127.0.0.1\"",
    ] {
        assert!(
            out.stderr.contains(&format!(
                "Warning: already invalid before this update: {old_problem}"
            )),
            "{old_problem}: {out:?}"
        );
    }

    // Touching a bad field and leaving it bad is refused: only that error counts.
    let out = check(
        "port.json",
        edited(|v| v["spec"]["machines"][1]["port"] = json!(70000)),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("port.json: spec.machines[1].port: Invalid value: 70000"),
        "{out:?}"
    );
    assert!(out.stdout.contains("invalid (1 error,"), "{out:?}");

    // The update-only rules keep applying, with their reason.
    let out = check(
        "type.json",
        edited(|v| v["spec"]["type"] = json!("Imported")),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(
            "spec.type: Invalid value: \"Imported\": field is immutable: it was \"Baremetal\"; the provider"
        ),
        "{out:?}"
    );
}

#[test]
fn strict_makes_unknown_fields_errors() {
    let k = Kubectl::new();
    let typo = TKE_THREE_MASTERS.replace("\"clusterCIDR\"", "\"clusterCidr\"");
    let file = k.file("typo.json", typo);
    let path = file.to_str().unwrap();
    let out = k.tkeha(&["validate", "-f", path]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(
            "Warning: unknown field \"spec.clusterCidr\" (did you mean \"spec.clusterCIDR\"?)"
        ),
        "{out:?}"
    );
    let out = k.tkeha(&["validate", "-f", path, "--strict"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "{path}: unknown field \"spec.clusterCidr\" (did you mean \"spec.clusterCIDR\"?)"
        )),
        "{out:?}"
    );
    let out = k.tkeha(&["validate", "-f", path, "--strict", "-o", "json"]);
    let report = json(&out);
    assert_eq!(report["errors"][0]["type"], "FieldValueUnknown", "{report}");
    assert_eq!(report["errors"][0]["field"], "spec.clusterCidr", "{report}");
}

/// TKE_THREE_MASTERS with `privateKey` (and `passPhrase`) instead of machine 0's password.
fn with_key(k: &Kubectl, name: &str, key: &str, pass_phrase: Option<&str>) -> std::path::PathBuf {
    let mut v: serde_json::Value = serde_json::from_str(TKE_THREE_MASTERS).unwrap();
    let m = &mut v["spec"]["machines"][0];
    m.as_object_mut().unwrap().remove("password");
    m["privateKey"] = json!(key);
    if let Some(p) = pass_phrase {
        m["passPhrase"] = json!(p);
    }
    k.file(name, v.to_string())
}

#[test]
fn a_hand_written_private_key_is_checked_in_init_s_words() {
    use base64::Engine as _;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let k = Kubectl::new();
    let key = crate::init::keygen(&k, "id_hand", "", &[]);
    let public = key.with_extension("pub");
    let hostname = k.file("hostname", "vm-host-1\n");
    // The issue's two examples: init refuses them as --ssh-key; validate refuses them as
    // privateKey, in the same words, without showing them.
    for (name, file) in [("pub.json", &public), ("hostname.json", &hostname)] {
        let content = std::fs::read(file).unwrap();
        let manifest = with_key(&k, name, &b64(&content), None);
        let out = k.tkeha(&["validate", "-f", manifest.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{out:?}");
        let prefix = format!(
            "{}: spec.machines[0].privateKey: Invalid value: once decoded, ",
            manifest.display()
        );
        let line = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no privateKey error in {out:?}"));
        let (words, _) = line
            .split_once("; privateKey must be the base64 of the whole private key file")
            .unwrap();
        let init = k.tkeha(&[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2",
            "--ssh-key",
            file.to_str().unwrap(),
        ]);
        assert_eq!(init.code, 2, "{init:?}");
        assert_eq!(
            init.stderr.trim_end(),
            format!("error: --ssh-key {}: {words}", file.display()),
            "init and validate word it the same"
        );
        let text = String::from_utf8(content).unwrap();
        for shown in [&out.stdout, &out.stderr] {
            assert!(!shown.contains(&b64(text.as_bytes())[..16]), "{out:?}");
            assert!(!shown.contains(text.trim()), "{out:?}");
        }
    }

    // An encrypted key needs its passPhrase; a passPhrase for a plain key is a warning.
    let encrypted = crate::init::keygen(&k, "id_hand_enc", "s3cret", &[]);
    let encrypted = b64(&std::fs::read(encrypted).unwrap());
    let file = with_key(&k, "enc.json", &encrypted, None);
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains(
            "spec.machines[0].passPhrase: Required value: the privateKey is encrypted, and the \
             provisioner cannot log in with it without its passphrase"
        ),
        "{out:?}"
    );
    let file = with_key(&k, "enc-ok.json", &encrypted, Some(&b64(b"s3cret")));
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let plain = b64(&std::fs::read(&key).unwrap());
    let file = with_key(&k, "plain.json", &plain, Some(&b64(b"s3cret")));
    let out = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        "Warning: spec.machines[0].passPhrase: the privateKey is not encrypted, so this \
         passPhrase is never used; remove it\n"
    );
}

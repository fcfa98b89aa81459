//! `kubectl tkeha init`: both HA modes, password from stdin, SSH key, and refusals with empty stdout.

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{Kubectl, Output, json};

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

#[test]
fn tke_seed_example_from_flags_revalidates() {
    let k = Kubectl::new();
    let out = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "192.168.1.3",
            "--master",
            "192.168.1.2",
            "--password-stdin",
            "--version",
            "1.14.10",
        ],
        b"123456\n",
    );
    assert_eq!(out.code, 0, "{out:?}");
    // One master: allowed, with the no-failover warning on stderr.
    assert!(out.stderr.contains("Warning:"), "{out:?}");
    let m = yaml(&out.stdout);
    assert_eq!(m["apiVersion"], "platform.tkestack.io/v1");
    assert_eq!(m["kind"], "Cluster");
    assert_eq!(m["spec"]["type"], "Baremetal");
    assert_eq!(m["spec"]["version"], "1.14.10");
    assert_eq!(m["spec"]["clusterCIDR"], "10.244.0.0/16");
    let machine = &m["spec"]["machines"][0];
    assert_eq!(machine["ip"], "192.168.1.2");
    assert_eq!(machine["port"], 22);
    assert_eq!(machine["username"], "root");
    assert_eq!(machine["password"], "MTIzNDU2");
    assert_eq!(m["spec"]["features"]["ha"]["tke"]["vip"], "192.168.1.3");
    // Printed with the webhook's defaults: VRID from the VIP's last byte, VIP in the cert SANs.
    assert_eq!(m["spec"]["features"]["ha"]["tke"]["vrid"], 4);
    assert!(
        m["spec"]["publicAlternativeNames"]
            .as_array()
            .unwrap()
            .contains(&json!("192.168.1.3")),
        "{m}"
    );
    let file = k.file("tke.yaml", &out.stdout);
    let check = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn third_party_seed_example_as_json_revalidates() {
    let k = Kubectl::new();
    let out = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "third-party",
            "--vip",
            "192.168.1.5",
            "--vport",
            "6443",
            "--master",
            "192.168.1.2,192.168.1.3",
            "--master",
            "192.168.1.4",
            "--password-stdin",
            "--name",
            "cls-halb",
            "-o",
            "json",
        ],
        b"123456",
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr, "",
        "three masters, vport 6443: nothing to warn about"
    );
    let m = json(&out);
    assert_eq!(m["metadata"]["name"], "cls-halb");
    let ips: Vec<&str> = m["spec"]["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["192.168.1.2", "192.168.1.3", "192.168.1.4"]);
    assert_eq!(
        m["spec"]["features"]["ha"]["thirdParty"],
        json!({"vip": "192.168.1.5", "vport": 6443})
    );
    let file = k.file("lb.json", &out.stdout);
    let check = k.tkeha(&["validate", "-f", file.to_str().unwrap(), "-o", "json"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert_eq!(json(&check)["valid"], true);
    assert_eq!(json(&check)["errors"], json!([]));
}

/// A real key pair from ssh-keygen (OpenSSH format unless `extra` says otherwise).
pub fn keygen(k: &Kubectl, name: &str, passphrase: &str, extra: &[&str]) -> std::path::PathBuf {
    let path = k.dir().join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            passphrase,
            "-C",
            "tkeha-test",
            "-f",
        ])
        .arg(&path)
        .args(extra)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(status.success());
    path
}

const INIT: [&str; 7] = [
    "init",
    "--ha",
    "tke",
    "--vip",
    "10.0.0.100",
    "--master",
    "10.0.0.2,10.0.0.3,10.0.0.4",
];

fn init_with_key(k: &Kubectl, key: &std::path::Path, extra: &[&str], stdin: &[u8]) -> Output {
    let mut args = INIT.to_vec();
    args.extend(["--ssh-key", key.to_str().unwrap(), "-o", "json"]);
    args.extend_from_slice(extra);
    k.tkeha_stdin(&args, stdin)
}

#[test]
fn ssh_key_goes_base64_into_private_key_and_is_never_echoed() {
    let k = Kubectl::new();
    let key_file = keygen(&k, "id_test", "s3cret", &[]);
    let key = std::fs::read_to_string(&key_file).unwrap();
    let out = init_with_key(&k, &key_file, &["--passphrase-stdin"], b"s3cret\n");
    assert_eq!(out.code, 0, "{out:?}");
    let m = json(&out);
    let b64 = base64::engine::general_purpose::STANDARD;
    for machine in m["spec"]["machines"].as_array().unwrap() {
        assert_eq!(machine["privateKey"], b64.encode(&key));
        assert_eq!(machine["passPhrase"], b64.encode("s3cret"));
        assert!(machine.get("password").is_none(), "{machine}");
    }
    assert!(!out.stdout.contains("BEGIN OPENSSH") && !out.stderr.contains("BEGIN OPENSSH"));
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
}

#[test]
fn ssh_key_refuses_what_is_not_a_private_key() {
    let k = Kubectl::new();
    let key = keygen(&k, "id_test", "", &[]);
    let public = key.with_extension("pub");
    let hostname = k.file("hostname", "vm-host-1\n");
    let empty = k.file("empty", "");
    let dsa = keygen(&k, "id_dsa", "", &["-t", "dsa"]);
    let armour = k.file(
        "armour",
        "-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n",
    );
    for (file, words) in [
        (
            dsa.as_path(),
            "this is a DSA key (OpenSSH servers refuse DSA keys by default",
        ),
        (armour.as_path(), "not a readable PKCS#1 RSA private key ("),
        (
            public.as_path(),
            "this is a public key; give the private key file",
        ),
        (
            hostname.as_path(),
            "not a private key: expected an OpenSSH private key",
        ),
        (empty.as_path(), "it is empty: give the private key file"),
        (std::path::Path::new("/nonexistent/id_rsa"), "no such file"),
    ] {
        let out = init_with_key(&k, file, &[], b"");
        assert_eq!(out.code, 2, "{file:?}: {out:?}");
        assert_eq!(out.stdout, "", "{file:?}");
        let expected = format!("error: --ssh-key {}: {words}", file.display());
        assert!(out.stderr.starts_with(&expected), "{out:?}");
    }
    // A plain key works, with no passphrase; a PEM (PKCS#8) key too.
    let out = init_with_key(&k, &key, &[], b"");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        json(&out)["spec"]["machines"][0]
            .get("passPhrase")
            .is_none()
    );
    let pem = k.dir().join("id_pem");
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PKCS8", "-N", "", "-f",
        ])
        .arg(&pem)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(init_with_key(&k, &pem, &[], b"").code, 0);
    // A passphrase for a key that has none would be written for nothing.
    let out = init_with_key(&k, &key, &["--passphrase-stdin"], b"x");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("the key is not encrypted; drop --passphrase-stdin"),
        "{out:?}"
    );
}

#[test]
fn an_encrypted_key_needs_its_right_passphrase() {
    let k = Kubectl::new();
    let key = keygen(&k, "id_enc", "s3cret", &[]);
    // No terminal and no --passphrase-stdin: refused, not written without a passphrase.
    let out = init_with_key(&k, &key, &[], b"");
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("the key is encrypted: pipe its passphrase with --passphrase-stdin"),
        "{out:?}"
    );
    let out = init_with_key(&k, &key, &["--passphrase-stdin"], b"wrong");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("the passphrase does not open this key"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("wrong"), "{out:?}");
}

#[test]
fn bad_vip_is_refused_with_errors_on_stderr_only() {
    let out = Kubectl::new().tkeha_stdin(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "192.168.1.300",
            "--master",
            "192.168.1.2",
            "--password-stdin",
        ],
        b"123456",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("spec.features.ha.tke.vip"), "{out:?}");
    assert!(out.stderr.contains("192.168.1.300"), "{out:?}");
    assert!(
        !out.stderr.contains("MTIzNDU2") && !out.stderr.contains("123456"),
        "{out:?}"
    );
}

#[test]
fn vip_equal_to_a_master_is_refused() {
    let out = Kubectl::new().tkeha_stdin(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.3",
            "--master",
            "10.0.0.2,10.0.0.3,10.0.0.4",
            "--password-stdin",
        ],
        b"pw",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("spec.features.ha.tke.vip"), "{out:?}");
}

#[test]
fn third_party_on_one_master_is_refused_for_the_lb_self_connect_limit() {
    let out = Kubectl::new().tkeha_stdin(
        &[
            "init",
            "--ha",
            "third-party",
            "--vip",
            "192.168.1.5",
            "--vport",
            "6443",
            "--master",
            "192.168.1.2",
            "--password-stdin",
        ],
        b"pw",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("spec.machines"), "{out:?}");
}

#[test]
fn usage_errors_exit_2_without_output() {
    let k = Kubectl::new();
    // third-party needs --vport
    let out = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "third-party",
            "--vip",
            "1.2.3.4",
            "--master",
            "1.2.3.5",
            "--password-stdin",
        ],
        b"pw",
    );
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("--vport"), "{out:?}");
    // --vrid is TKE-only
    let out = k.tkeha_stdin(
        &[
            "init",
            "--ha",
            "third-party",
            "--vip",
            "1.2.3.4",
            "--vport",
            "6443",
            "--vrid",
            "7",
            "--master",
            "1.2.3.5,1.2.3.6",
            "--password-stdin",
        ],
        b"pw",
    );
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    // No credentials and stdin is not a terminal: say which flags to use.
    let out = k.tkeha(&[
        "init", "--ha", "tke", "--vip", "1.2.3.4", "--master", "1.2.3.5",
    ]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("--password-stdin"), "{out:?}");
    // A missing key file names the file.
    let out = k.tkeha(&[
        "init",
        "--ha",
        "tke",
        "--vip",
        "1.2.3.4",
        "--master",
        "1.2.3.5",
        "--ssh-key",
        "/nonexistent/id_rsa",
    ]);
    assert_eq!((out.code, out.stdout.as_str()), (2, ""), "{out:?}");
    assert!(out.stderr.contains("/nonexistent/id_rsa"), "{out:?}");
}

//! `kubectl tkeha init --proxy-*`: a jump server or SOCKS5 proxy on every master, its password from stdin or a no-echo prompt, checked by the rules, never printed.

use serde_json::{Value, json};

use crate::harness::Kubectl;

const MASTERS: &str = "10.1.0.2,10.1.0.3,10.1.0.4";

fn init_json(k: &Kubectl, extra: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut args = vec![
        "init",
        "--ha",
        "tke",
        "--vip",
        "10.1.0.100",
        "--master",
        MASTERS,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = k.tkeha_stdin(&args, stdin);
    (out.code, out.stdout, out.stderr)
}

#[test]
fn a_jump_server_on_every_master_with_its_password_from_stdin() {
    let k = Kubectl::new();
    // A real key: --ssh-key parses what it is given.
    let key = crate::init::keygen(&k, "id_ed25519", "", &[]);
    let (code, stdout, stderr) = init_json(
        &k,
        &[
            "--ssh-key",
            key.to_str().unwrap(),
            "--proxy-type",
            "SSHJumpServer",
            "--proxy-ip",
            "10.0.0.5",
            "--proxy-user",
            "jumper",
            "--proxy-password-stdin",
        ],
        b"jumperpw\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("jumperpw") && !stderr.contains("jumperpw"));
    let m: Value = serde_json::from_str(&stdout).unwrap();
    for machine in m["spec"]["machines"].as_array().unwrap() {
        assert_eq!(
            machine["proxy"],
            json!({"type": "SSHJumpServer", "ip": "10.0.0.5", "port": 22,
                   "username": "jumper", "password": "anVtcGVycHc="})
        );
    }
    // What init wrote passes the same rules again.
    let file = k.file("c.json", &stdout);
    let check = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{check:?}");
}

#[test]
fn socks5_without_credentials_as_tkestack() {
    let (code, stdout, stderr) = init_json(
        &Kubectl::new(),
        &[
            "--password-stdin",
            "--proxy-type",
            "SOCKS5",
            "--proxy-ip",
            "10.0.0.6",
        ],
        b"123456",
    );
    assert_eq!(code, 0, "{stderr}");
    let m: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        m["spec"]["machines"][2]["proxy"],
        json!({"type": "SOCKS5", "ip": "10.0.0.6", "port": 1080})
    );
}

#[test]
fn a_proxy_the_rules_refuse_names_the_flag_and_prints_nothing() {
    let (code, stdout, stderr) = init_json(
        &Kubectl::new(),
        &[
            "--password-stdin",
            "--proxy-type",
            "SOCKS5",
            "--proxy-ip",
            "10.0.0.300",
        ],
        b"123456",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("spec.machines[0].proxy.ip") && stderr.contains("[--proxy-ip]"),
        "{stderr}"
    );
}

#[test]
fn without_a_terminal_the_jump_password_must_be_piped() {
    let (code, stdout, stderr) = init_json(
        &Kubectl::new(),
        &[
            "--password-stdin",
            "--proxy-type",
            "SSHJumpServer",
            "--proxy-ip",
            "10.0.0.5",
            "--proxy-user",
            "jumper",
        ],
        b"123456",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("no jump server password"), "{stderr}");
}

#[test]
fn the_jump_password_is_prompted_without_echo_on_a_terminal() {
    let k = Kubectl::new();
    let key = crate::init::keygen(&k, "id", "", &[]);
    let out = k.tkeha_tty(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.1.0.100",
            "--master",
            MASTERS,
            "--ssh-key",
            key.to_str().unwrap(),
            "--proxy-type",
            "SSHJumpServer",
            "--proxy-ip",
            "10.0.0.5",
            "--proxy-user",
            "jumper",
            "-o",
            "json",
        ],
        &[
            ("Jump server password: ", "jumperpw"),
            ("Repeat jump server password: ", "jumperpw"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("jumperpw"), "password echoed: {out:?}");
    let json = &out.stdout[out.stdout.find('{').unwrap()..];
    let m: Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        m["spec"]["machines"][0]["proxy"]["password"],
        "anVtcGVycHc="
    );
}

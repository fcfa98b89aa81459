//! Secrets typed at a terminal: the no-echo prompt of `encode-password` and `init` (on a real pty).

use crate::harness::Kubectl;

#[test]
fn encode_password_prompts_twice_without_echo() {
    let out = Kubectl::new().tkeha_tty(
        &["encode-password"],
        &[
            ("SSH password: ", "123456"),
            ("Repeat SSH password: ", "123456"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.ends_with("MTIzNDU2\n"), "{out:?}");
    // What the terminal showed: prompts and the result, never the typed password.
    assert!(!out.stdout.contains("123456"), "password echoed: {out:?}");
}

#[test]
fn mismatched_confirmation_is_refused() {
    let out = Kubectl::new().tkeha_tty(
        &["encode-password"],
        &[
            ("SSH password: ", "123456"),
            ("Repeat SSH password: ", "654321"),
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("do not match"), "{out:?}");
    assert!(
        !out.stdout.contains("MTIzNDU2") && !out.stdout.contains("NjU0MzIx"),
        "{out:?}"
    );
}

#[test]
fn init_prompts_for_the_ssh_password_when_stdin_is_a_terminal() {
    let out = Kubectl::new().tkeha_tty(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2,10.0.0.3,10.0.0.4",
            "-o",
            "json",
        ],
        &[
            ("SSH password: ", "123456"),
            ("Repeat SSH password: ", "123456"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("123456"), "password echoed: {out:?}");
    let json = &out.stdout[out.stdout.find('{').unwrap()..];
    let m: serde_json::Value = serde_json::from_str(json).unwrap();
    for machine in m["spec"]["machines"].as_array().unwrap() {
        assert_eq!(machine["password"], "MTIzNDU2");
    }
}

#[test]
fn both_commands_ask_with_the_same_words() {
    // encode-password above and init below: "SSH password: " then "Repeat SSH password: ".
    let out = Kubectl::new().tkeha_tty(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2",
        ],
        &[
            ("SSH password: ", "123456"),
            ("Repeat SSH password: ", "123456"),
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn an_empty_password_is_refused_at_the_first_entry() {
    for args in [
        &["encode-password"][..],
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2",
        ][..],
    ] {
        let out = Kubectl::new().tkeha_tty(args, &[("SSH password: ", "")]);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stdout
                .contains("error: the SSH password is empty: nothing was written"),
            "{out:?}"
        );
        assert!(!out.stdout.contains("Repeat"), "asked twice: {out:?}");
    }
}

#[test]
fn init_asks_for_an_encrypted_keys_passphrase_on_a_terminal() {
    let k = Kubectl::new();
    let key = crate::init::keygen(&k, "id_enc", "s3cret", &[]);
    let key = key.to_str().unwrap();
    let prompt = format!("Passphrase for {key}: ");
    let out = k.tkeha_tty(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2",
            "--ssh-key",
            key,
            "-o",
            "json",
        ],
        &[(prompt.as_str(), "s3cret")],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("s3cret"), "echoed: {out:?}");
    let json = &out.stdout[out.stdout.find('{').unwrap()..];
    let m: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(m["spec"]["machines"][0]["passPhrase"], "czNjcmV0");
    // A wrong one is refused at once.
    let out = k.tkeha_tty(
        &[
            "init",
            "--ha",
            "tke",
            "--vip",
            "10.0.0.100",
            "--master",
            "10.0.0.2",
            "--ssh-key",
            key,
        ],
        &[(prompt.as_str(), "nope")],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("the passphrase does not open this key"),
        "{out:?}"
    );
}

//! Secrets typed at a terminal: the no-echo prompt of `encode-password` and `init` (on a real pty).

use crate::harness::Kubectl;

#[test]
fn encode_password_prompts_twice_without_echo() {
    let out = Kubectl::new().tkeha_tty(
        &["encode-password"],
        &[("Password: ", "123456"), ("Repeat password: ", "123456")],
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
        &[("Password: ", "123456"), ("Repeat password: ", "654321")],
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

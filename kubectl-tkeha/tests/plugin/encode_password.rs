//! `kubectl tkeha encode-password`: the seed's `echo -n "123456" | base64`, and the trailing newline rule.

use crate::harness::Kubectl;

#[test]
fn printf_password_encodes_like_the_seed() {
    let out = Kubectl::new().tkeha_stdin(&["encode-password"], b"123456");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "MTIzNDU2\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn one_trailing_newline_from_echo_is_not_encoded() {
    let k = Kubectl::new();
    assert_eq!(
        k.tkeha_stdin(&["encode-password"], b"123456\n").stdout,
        "MTIzNDU2\n"
    );
    // Only one: a second newline is part of the password ("123456\n").
    assert_eq!(
        k.tkeha_stdin(&["encode-password"], b"123456\n\n").stdout,
        "MTIzNDU2Cg==\n"
    );
}

#[test]
fn empty_password_is_refused_without_output() {
    let out = Kubectl::new().tkeha_stdin(&["encode-password"], b"\n");
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("empty"), "{out:?}");
}

#[test]
fn help_explains_the_newline_rule() {
    let out = Kubectl::new().tkeha(&["encode-password", "--help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("trailing newline"), "{}", out.stdout);
    assert!(out.stdout.contains("MTIzNDU2"), "{}", out.stdout);
}

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

#[test]
fn a_password_as_an_argument_is_refused_with_the_reason_and_not_repeated() {
    let out = Kubectl::new().tkeha_stdin(&["encode-password", "123456"], b"");
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.starts_with("error: encode-password takes no argument: a password on the command line is visible to every user of this machine (ps, /proc/PID/cmdline) and stays in your shell history."),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("printf '%s' \"$PASS\" | kubectl tkeha encode-password"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("123456"), "{out:?}");
    // A flag-looking word is refused the same way, not parsed as a flag.
    let out = Kubectl::new().tkeha_stdin(&["encode-password", "--", "-p4ss"], b"");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(!out.stderr.contains("-p4ss"), "{out:?}");
}

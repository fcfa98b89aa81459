//! Ways in: a non-root user with passwordless sudo, key login (plain and passphrase-protected), and
//! hosts whose sshd offers only keyboard-interactive and publickey (password auth must fall back to
//! keyboard-interactive).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use tkeha_e2e::lab::manifest::b64;
use tkeha_e2e::lab::{Auth, Lab, LabConfig, ManifestOptions};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, provision, provision_ok, single_holder};

fn installed(lab: &Lab) {
    single_holder(lab, SETTLE).unwrap();
    for i in 0..lab.masters.len() {
        let conf = lab.etc(i).join("keepalived/keepalived.conf");
        let meta = std::fs::metadata(&conf).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        assert_eq!(
            meta.uid(),
            0,
            "keepalived.conf on m{} is not owned by root",
            i + 1
        );
        assert_eq!(
            meta.mode() & 0o777,
            0o600,
            "keepalived.conf holds auth_pass: root only"
        );
        let check = std::fs::metadata(lab.etc(i).join("keepalived/check_apiserver.sh")).unwrap();
        assert_eq!(check.uid(), 0);
        assert_eq!(check.mode() & 0o777, 0o755);
        assert!(!lab.pids_named(i, "keepalived").is_empty());
    }
}

#[test]
fn a_sudo_user_with_a_password_can_install() {
    let lab = lab(LabConfig::masters(2));
    let opts = ManifestOptions {
        user: "tkeha".into(),
        ..ManifestOptions::default()
    };
    let m = manifest(&lab, "cluster.json", &opts, |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    installed(&lab);
}

#[test]
fn key_login_works_for_root_and_the_sudo_user() {
    let lab = lab(LabConfig::masters(2));
    for user in ["root", "tkeha"] {
        let opts = ManifestOptions {
            user: user.into(),
            auth: Auth::Key,
            ..ManifestOptions::default()
        };
        let m = manifest(&lab, &format!("cluster-{user}.json"), &opts, |_| {});
        let r = provision_ok(&lab, "apply", &m, &[]);
        assert_eq!(r.hosts().len(), 2);
    }
    installed(&lab);
}

#[test]
fn keyboard_interactive_only_hosts_accept_the_password() {
    let cfg = LabConfig {
        masters: 2,
        kbd_only: vec![0, 1],
        ..LabConfig::default()
    };
    let lab = lab(cfg);
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    provision_ok(&lab, "apply", &m, &[]);
    installed(&lab);
}

#[test]
fn a_passphrase_protected_key_needs_its_passphrase() {
    let lab = lab(LabConfig::masters(2));
    let opts = ManifestOptions {
        user: "tkeha".into(),
        auth: Auth::KeyWithPassphrase,
        ..ManifestOptions::default()
    };
    // A wrong passPhrase: refused per host, nothing changed, the passphrase never printed.
    let wrong = "not-the-passphrase-41";
    let bad = manifest(&lab, "cluster-bad.json", &opts, |v| {
        v["spec"]["machines"][0]["passPhrase"] = b64(wrong).into();
    });
    let r = provision(&lab, "apply", &bad, &[]);
    assert_eq!(
        r.code,
        1,
        "a wrong passPhrase must fail:\n{}",
        r.all_output()
    );
    let h = r
        .host(&lab.masters[0].ip)
        .unwrap_or_else(|| panic!("no entry for m1:\n{}", r.stdout));
    assert_eq!(h["ok"], false, "{h}");
    assert!(
        h["error"]
            .as_str()
            .unwrap_or_default()
            .contains("authentication"),
        "{h}"
    );
    let out = r.all_output();
    let key = std::fs::read_to_string(lab.encrypted_key_path()).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    for secret in [
        wrong.to_string(),
        b64(wrong),
        tkeha_e2e::lab::sshd::KEY_PASSPHRASE.to_string(),
        key_line.to_string(),
    ] {
        assert!(!out.contains(&secret), "the output leaks a secret");
    }
    for i in 0..2 {
        assert!(
            lab.pids_named(i, "keepalived").is_empty(),
            "m{} changed",
            i + 1
        );
    }
    // The right passPhrase gets in.
    let good = manifest(&lab, "cluster.json", &opts, |_| {});
    provision_ok(&lab, "apply", &good, &[]);
    installed(&lab);
}

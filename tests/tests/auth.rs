//! Ways in: a non-root user with passwordless sudo, key login, and hosts whose sshd offers only
//! keyboard-interactive and publickey (password auth must fall back to keyboard-interactive).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;
use tkeha_e2e::lab::{Auth, Lab, LabConfig, ManifestOptions};
use tkeha_e2e::scenario::{SETTLE, lab, manifest, provision_ok, single_holder};

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
        assert_eq!(meta.mode() & 0o777, 0o644);
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

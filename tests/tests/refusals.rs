//! What `tkeha-provisioner apply` must refuse, before it changes anything on any master: a wrong
//! password (named by host, never echoed), a VIP already in use, a VIP outside the masters' subnet,
//! unknown or changed host keys. And `--accept-new-host-keys` records first-seen keys.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use tkeha_e2e::lab::manifest::b64;
use tkeha_e2e::lab::{Lab, LabConfig, ManifestOptions};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{lab, manifest, provision};

/// Nothing of ours on any master: no files, no keepalived.
fn untouched(lab: &Lab) {
    for i in 0..lab.masters.len() {
        let dir = lab.etc(i).join("keepalived");
        let entries: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            entries.is_empty(),
            "m{} was changed: {:?} in /etc/keepalived",
            i + 1,
            entries
        );
        assert!(
            lab.pids_named(i, "keepalived").is_empty(),
            "keepalived started on m{}",
            i + 1
        );
    }
    assert!(lab.holders().is_empty(), "a master holds the VIP");
}

#[test]
fn one_wrong_password_refuses_before_any_change_and_never_prints_it() {
    let lab = lab(LabConfig::masters(3));
    let secret = "Wr0ng-Pa55-zq";
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |v| {
        v["spec"]["machines"][1]["password"] = b64(secret).into();
    });
    let r = provision(&lab, "apply", &m, &[]);
    assert_eq!(
        r.code,
        1,
        "apply with a wrong password must exit 1:\n{}",
        r.all_output()
    );
    assert_eq!(r.report["ok"], false);
    let bad = r
        .host(&lab.masters[1].ip)
        .unwrap_or_else(|| panic!("no entry for the bad host:\n{}", r.stdout));
    assert_eq!(bad["ok"], false);
    let err = bad["error"].as_str().unwrap_or_default();
    assert!(!err.is_empty(), "the bad host's error is empty");
    let out = r.all_output();
    assert!(
        out.contains(&lab.masters[1].ip),
        "the output does not name the host"
    );
    for s in [secret, &b64(secret), "rootpw", &b64("rootpw")] {
        assert!(
            !out.contains(s),
            "the output leaks a secret ({} chars)",
            s.len()
        );
    }
    untouched(&lab);
}

#[test]
fn a_vip_already_in_use_is_refused() {
    // The LB namespace holds the VIP (and answers on it): someone else owns that address.
    let lab = lab(LabConfig {
        masters: 2,
        lb: true,
        ..LabConfig::default()
    });
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let r = provision(&lab, "apply", &m, &[]);
    assert_eq!(
        r.code,
        1,
        "apply must refuse a VIP in use:\n{}",
        r.all_output()
    );
    assert!(
        r.all_output().contains(&lab.vip()),
        "the error should name the VIP:\n{}",
        r.all_output()
    );
    untouched(&lab);
}

#[test]
fn a_vip_outside_the_masters_subnet_is_refused() {
    let lab = lab(LabConfig::masters(2));
    let outside = format!("10.77.{}.100", 250u16.saturating_sub(lab.slot).max(201));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |v| {
        v["spec"]["features"]["ha"]["tke"]["vip"] = outside.clone().into();
    });
    let r = provision(&lab, "apply", &m, &[]);
    assert_eq!(
        r.code,
        1,
        "apply must refuse a VIP outside eth0's prefix:\n{}",
        r.all_output()
    );
    assert!(
        r.all_output().contains(&outside),
        "the error should name the VIP:\n{}",
        r.all_output()
    );
    untouched(&lab);
}

fn apply_with(m: &Path, flags: &[&str]) -> provisioner::Run {
    provisioner::run("apply", m, flags).unwrap()
}

#[test]
fn unknown_host_keys_are_refused() {
    let lab = lab(LabConfig::masters(2));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let empty = lab.dir.join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let r = apply_with(&m, &["--known-hosts", &empty.to_string_lossy()]);
    assert_eq!(
        r.code,
        1,
        "unknown host keys must be refused:\n{}",
        r.all_output()
    );
    for mm in &lab.masters {
        let h = r
            .host(&mm.ip)
            .unwrap_or_else(|| panic!("no entry for {}:\n{}", mm.ip, r.stdout));
        assert_eq!(h["ok"], false, "{h}");
    }
    untouched(&lab);
    assert_eq!(
        fs::read_to_string(&empty).unwrap(),
        "",
        "--known-hosts alone must not record keys"
    );
}

#[test]
fn a_changed_host_key_is_refused_even_with_accept_new() {
    let lab = lab(LabConfig::masters(2));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    // known_hosts with the right key for m2 and a different key for m1.
    let other = lab.dir.join("other_key");
    tkeha_e2e::lab::cmd::run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            &other.to_string_lossy(),
        ],
    )
    .unwrap();
    let other_pub = fs::read_to_string(lab.dir.join("other_key.pub")).unwrap();
    let mut fields = other_pub.split_whitespace();
    let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
    let real = fs::read_to_string(lab.known_hosts_path()).unwrap();
    let m1 = &lab.masters[0].ip;
    let forged: String = real
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{m1} ")) {
                format!("{m1} {kind} {blob}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let kh = lab.dir.join("forged_known_hosts");
    fs::write(&kh, &forged).unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let mut flags = vec!["--known-hosts", kh.to_str().unwrap()];
        flags.extend_from_slice(extra);
        let r = apply_with(&m, &flags);
        assert_eq!(
            r.code,
            1,
            "a changed host key must be refused ({extra:?}):\n{}",
            r.all_output()
        );
        let h = r
            .host(m1)
            .unwrap_or_else(|| panic!("no entry for {m1}:\n{}", r.stdout));
        assert_eq!(h["ok"], false, "{h}");
        untouched(&lab);
        assert_eq!(
            fs::read_to_string(&kh).unwrap(),
            forged,
            "the known_hosts file was rewritten"
        );
    }
}

#[test]
fn accept_new_host_keys_records_them_and_they_are_trusted_next_time() {
    let lab = lab(LabConfig::masters(2));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let kh = lab.dir.join("tofu_known_hosts");
    let r = apply_with(
        &m,
        &[
            "--known-hosts",
            kh.to_str().unwrap(),
            "--accept-new-host-keys",
        ],
    );
    assert_eq!(
        r.code,
        0,
        "apply with --accept-new-host-keys failed:\n{}",
        r.all_output()
    );
    let recorded = fs::read_to_string(&kh).unwrap_or_default();
    let real = fs::read_to_string(lab.known_hosts_path()).unwrap();
    for mm in &lab.masters {
        let blob = real
            .lines()
            .find(|l| l.starts_with(&format!("{} ", mm.ip)))
            .unwrap()
            .split_whitespace()
            .nth(2)
            .unwrap();
        assert!(
            recorded.contains(blob),
            "the key of {} was not recorded:\n{recorded}",
            mm.ip
        );
    }
    // Strict mode now trusts the recorded file.
    let again = apply_with(&m, &["--known-hosts", kh.to_str().unwrap()]);
    assert_eq!(
        again.code,
        0,
        "the recorded keys are not trusted:\n{}",
        again.all_output()
    );
}

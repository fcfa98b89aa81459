//! What the operator sees: per-host progress lines on a terminal (and none when the output is
//! piped), a per-host report that counts SSH round trips, and never a password.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use tkeha_e2e::lab::manifest::b64;
use tkeha_e2e::lab::{LabConfig, ManifestOptions, sshd};
use tkeha_e2e::provisioner;
use tkeha_e2e::scenario::{lab, manifest, provision_ok};

/// Runs `tkeha-provisioner ARGS` on a pseudo-terminal (util-linux `script`); returns what it printed.
fn on_a_terminal(args: &[&str]) -> (i32, String) {
    let bin = provisioner::binary().unwrap();
    let cmdline = std::iter::once(bin.to_string_lossy().into_owned())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &cmdline, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).replace('\r', ""),
    )
}

#[test]
fn progress_per_host_on_a_terminal_none_when_piped_and_no_secret_anywhere() {
    let lab = lab(LabConfig::masters(2));
    let m = manifest(&lab, "cluster.json", &ManifestOptions::default(), |_| {});
    let kh = lab.known_hosts_path();
    let (code, tty) = on_a_terminal(&[
        "apply",
        "-f",
        &m.to_string_lossy(),
        "--known-hosts",
        &kh.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "apply on a terminal failed:\n{tty}");
    for ip in lab.ips() {
        for step in [
            "connecting... ok",
            "probing... ok",
            "configuring keepalived... ok",
        ] {
            let line = format!("[{ip}] {step}");
            assert!(tty.contains(&line), "no progress line {line:?} in:\n{tty}");
        }
        // The final per-host report line (text output).
        assert!(
            tty.contains(&format!("[{ip}] ok state=")),
            "no report line for {ip}:\n{tty}"
        );
    }
    assert!(tty.contains("apply succeeded"), "{tty}");

    // Piped (-o json): the report only, no progress on stderr.
    let r = provision_ok(&lab, "status", &m, &[]);
    for ip in lab.ips() {
        assert!(
            !r.stderr.contains(&format!("[{ip}]")),
            "progress lines although stderr is not a terminal:\n{}",
            r.stderr
        );
        let h = r.host(&ip).unwrap();
        assert_eq!(
            h["round_trips"], 1,
            "status should need one SSH exec per host: {h}"
        );
    }

    for secret in [sshd::ROOT_PASSWORD.to_string(), b64(sshd::ROOT_PASSWORD)] {
        assert!(
            !tty.contains(&secret) && !r.all_output().contains(&secret),
            "a password was printed"
        );
    }
}

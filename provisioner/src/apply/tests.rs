//! `apply` against the fake fleet: the files written (path, mode, content), what is started or reloaded, the report, and every way it fails before or after changing a master.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::Action;
use crate::fake::{Fleet, Vrrp};
use crate::keepalived::{self, CHECK_SCRIPT_PATH, CONF_PATH};
use crate::report::{Report, VrrpState};

const PREFLIGHT_FAILED: &str = "preflight failed: nothing was changed on any master";

fn apply(fleet: &Fleet) -> Report {
    let plan = fleet.tke_plan();
    fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Apply, &plan)
}

/// No master received anything but the read-only scripts of the preflight.
fn nothing_changed(fleet: &Fleet, n: usize) {
    for i in 0..n {
        let whats = fleet.whats(i);
        assert!(
            whats.iter().all(|w| w == "probe" || w == "VIP holders"),
            "master {i} was sent {whats:?}"
        );
        assert!(!fleet.state(i).running, "master {i} was started");
        assert!(fleet.state(i).files.is_empty(), "master {i} got files");
    }
}

#[test]
fn fresh_masters_get_keepalived_installed_configured_and_started_with_one_holder() {
    let fleet = Fleet::new(3);
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    // Whichever keepalived started first took the VIP (nopreempt): the fake's scripts run in
    // parallel as the real ones do, so any master may hold it, but exactly one does.
    let holders = fleet.holders();
    assert_eq!(holders.len(), 1, "{holders:?}");
    let holder = holders[0];
    assert_eq!(report.vip_holder, Some(format!("10.0.0.{}", 11 + holder)));

    let mut auth_passes = Vec::new();
    for i in 0..3 {
        assert_eq!(
            fleet.whats(i),
            ["probe", "apply", "VIP watch"],
            "master {i}"
        );
        let apply = &fleet.sent(i)[1];
        assert!(
            apply
                .text()
                .contains("apt-get install -y -q -o DPkg::Lock::Timeout=120 keepalived"),
            "keepalived is installed with the package manager the probe found"
        );
        let uploads = apply.uploads();
        assert_eq!(uploads.len(), 2);
        // The health check first: `keepalived -t` checks that the script it names exists.
        assert_eq!(uploads[0].path, CHECK_SCRIPT_PATH);
        assert_eq!(uploads[0].mode, 0o755);
        assert_eq!(uploads[0].content, keepalived::check_script());
        assert_eq!(uploads[0].verify, None);
        assert_eq!(uploads[1].path, CONF_PATH);
        assert_eq!(uploads[1].mode, 0o600, "keepalived.conf holds auth_pass");
        assert_eq!(uploads[1].verify.as_deref(), Some("keepalived -t -f"));
        let conf = &uploads[1].content;
        assert!(keepalived::is_ours(conf));
        assert!(conf.contains(&format!("priority {}", 254 - i)), "{conf}");
        assert!(conf.contains(&format!("unicast_src_ip 10.0.0.{}", 11 + i)));
        for peer in (0..3).filter(|&p| p != i) {
            assert!(conf.contains(&format!("        10.0.0.{}\n", 11 + peer)));
        }
        assert!(conf.contains("virtual_router_id 101"));
        assert!(conf.contains("10.0.0.100/24 dev eth0 label eth0:vip"));
        auth_passes.push(keepalived::parse_auth_pass(conf).unwrap());
        // What the master has now is what was uploaded.
        let state = fleet.state(i);
        assert!(state.running && state.keepalived);
        assert_eq!(state.files[CONF_PATH].content, *conf);

        let h = &report.hosts[i];
        assert!(h.ok && h.changed && h.restarted, "{h:?}");
        assert_eq!(
            h.notes,
            [
                "keepalived will be installed with apt-get (candidate 1:2.2.7-1+b2)",
                "keepalived installed (1:2.2.7-1+b2)"
            ]
        );
        assert_eq!(h.interface.as_deref(), Some("eth0"));
        assert_eq!(h.round_trips, 3, "probe, apply, watch");
        assert_eq!(h.holds_vip, i == holder);
        assert_eq!(
            h.state,
            if i == holder {
                VrrpState::Master
            } else {
                VrrpState::Backup
            }
        );
    }
    assert!(
        auth_passes.windows(2).all(|w| w[0] == w[1]),
        "one auth_pass per cluster: {auth_passes:?}"
    );
}

#[test]
fn a_rerun_with_nothing_changed_sends_no_apply_script() {
    let fleet = Fleet::new(3);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 1);
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    for i in 0..3 {
        assert_eq!(fleet.whats(i), ["probe", "VIP watch"], "master {i}");
        let h = &report.hosts[i];
        assert!(!h.changed && !h.restarted, "{h:?}");
    }
    assert_eq!(
        report.vip_holder.as_deref(),
        Some("10.0.0.12"),
        "the holder stays"
    );
}

#[test]
fn a_changed_config_is_reloaded_and_the_cluster_auth_pass_is_kept() {
    let fleet = Fleet::new(2);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    // Master 2's config differs (say, edited by hand): only it is rewritten, and reloaded.
    fleet.master(1, |m| {
        if let Some(f) = m.files.get_mut(CONF_PATH) {
            f.content = f.content.replace("advert_int 1", "advert_int 2");
        }
    });
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(fleet.whats(0), ["probe", "VIP watch"]);
    assert_eq!(fleet.whats(1), ["probe", "apply", "VIP watch"]);
    let apply = &fleet.sent(1)[1];
    assert_eq!(
        apply.uploads().len(),
        1,
        "the unchanged check script is not rewritten"
    );
    assert_eq!(apply.uploads()[0].path, CONF_PATH);
    assert!(!apply.text().contains("install -y"), "keepalived is there");
    assert_eq!(
        keepalived::parse_auth_pass(&apply.uploads()[0].content).as_deref(),
        Some("Ab3dEf7h"),
        "the auth_pass the masters share is reused"
    );
    let h = &report.hosts[1];
    assert!(h.changed && h.restarted && h.notes.is_empty(), "{h:?}");
    assert!(fleet.state(1).running);
}

#[test]
fn systemd_masters_are_started_through_systemctl() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| m.systemd = true);
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    let apply = &fleet.sent(0)[1];
    assert!(apply.text().contains("systemctl enable -q keepalived"));
    assert!(!apply.text().contains("keepalived -D"));
}

#[test]
fn a_master_that_cannot_be_reached_stops_the_apply_before_any_change() {
    let fleet = Fleet::new(3);
    fleet.master(2, |m| m.connect_error = Some("Connection refused".into()));
    let report = apply(&fleet);
    assert!(!report.ok);
    assert_eq!(report.errors, [PREFLIGHT_FAILED]);
    assert_eq!(
        report.hosts[2].error.as_deref(),
        Some("cannot connect to 10.0.0.13:22: Connection refused")
    );
    assert!(report.hosts[0].ok && report.hosts[1].ok);
    nothing_changed(&fleet, 3);
    assert!(fleet.whats(2).is_empty());
}

#[test]
fn a_user_without_sudo_stops_the_apply_before_any_change() {
    let fleet = Fleet::new(2);
    fleet.master(1, |m| m.sudo_denied = true);
    let report = apply(&fleet);
    assert_eq!(report.errors, [PREFLIGHT_FAILED]);
    let error = report.hosts[1].error.as_deref().unwrap();
    assert!(
        error.starts_with("user tkeha has no passwordless sudo (sudo: a password is required)"),
        "{error}"
    );
    nothing_changed(&fleet, 2);
}

#[test]
fn a_vip_already_answering_elsewhere_is_refused_before_any_change() {
    let fleet = Fleet::new(2);
    fleet.master(0, |m| m.vip_answers = true);
    let report = apply(&fleet);
    assert!(!report.ok);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert!(
        report.errors[0].starts_with("VIP 10.0.0.100 already answers on the network"),
        "{:?}",
        report.errors
    );
    assert_eq!(report.errors[1], PREFLIGHT_FAILED);
    nothing_changed(&fleet, 2);
    for i in 0..2 {
        assert_eq!(
            fleet.whats(i),
            ["probe", "VIP holders"],
            "the holders are read again before the VIP is called taken"
        );
    }
}

#[test]
fn a_vip_taken_by_one_of_ours_during_the_probe_is_not_refused() {
    // An earlier apply left keepalived running on master 2 (it failed elsewhere); that
    // keepalived takes the VIP between the moment master 2's addresses are read and the VIP
    // test: the probes see the VIP answer and no holder.
    let fleet = Fleet::new(2);
    fleet.master(1, |m| {
        m.keepalived = true;
        m.running = true;
        m.vip_answers = true;
        m.takes_vip_after_probe = true;
    });
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fleet.whats(1)[..2], ["probe", "VIP holders"]);
    assert!(
        report.hosts[1]
            .notes
            .iter()
            .any(|n| n.starts_with("took VIP 10.0.0.100 while the masters were probed")),
        "{:?}",
        report.hosts[1].notes
    );
    assert_eq!(report.vip_holder.as_deref(), Some("10.0.0.12"));
}

#[test]
fn a_vip_nobody_of_ours_holds_on_the_reread_is_refused() {
    let fleet = Fleet::new(3);
    fleet.master(2, |m| m.vip_answers = true);
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Check, &fleet.tke_plan());
    assert!(!report.ok);
    assert!(
        report.errors[0].starts_with("VIP 10.0.0.100 already answers on the network"),
        "{:?}",
        report.errors
    );
    for i in 0..3 {
        assert_eq!(fleet.whats(i), ["probe", "VIP holders"]);
    }
}

#[test]
fn a_master_whose_package_source_is_unreachable_stops_the_apply_before_any_change() {
    let fleet = Fleet::new(3);
    let apt = "W: Failed to fetch http://10.77.2.1:80/./InRelease  Could not connect to 10.77.2.1:80 (10.77.2.1). - connect (111: Connection refused)\n\
               W: Some index files failed to download. They have been ignored, or old ones used instead.\n\
               E: Unable to locate package keepalived";
    fleet.master(2, |m| m.candidate = Err(apt.into()));
    let report = apply(&fleet);
    assert!(!report.ok);
    assert_eq!(report.errors, [PREFLIGHT_FAILED]);
    let error = report.hosts[2].error.as_deref().unwrap();
    assert!(
        error.starts_with(
            "keepalived is not installed and apt-get cannot install it (no candidate from the package sources of this host); \
             apt-get said: W: Failed to fetch http://10.77.2.1:80/./InRelease"
        ),
        "{error}"
    );
    assert!(
        error.contains(" | E: Unable to locate package keepalived."),
        "{error}"
    );
    assert!(report.hosts.iter().all(|h| !h.changed));
    nothing_changed(&fleet, 3);
    assert!(!fleet.state(0).keepalived && !fleet.state(1).keepalived);
}

#[test]
fn a_master_where_installability_is_unknown_stops_the_apply() {
    let fleet = Fleet::new(2);
    // The probe ran to its end but the installability check printed nothing.
    fleet.master(1, |m| {
        let mut answer = String::from(
            "@@hostname=m2\n@@uid=0\n@@addr=2: eth0    inet 10.0.0.12/24 brd 10.0.0.255 scope global eth0\n@@pkg=apt-get\n",
        );
        answer.push_str("@@end=1\n");
        m.replies.insert(
            "probe",
            crate::remote::ExecOutput {
                stdout: answer,
                ..Default::default()
            },
        );
    });
    let report = apply(&fleet);
    let error = report.hosts[1].error.as_deref().unwrap();
    assert!(
        error.starts_with("keepalived is not installed and whether apt-get can install it could not be established"),
        "{error}"
    );
    nothing_changed(&fleet, 2);
}

#[test]
fn a_held_dpkg_lock_is_told_before_the_install() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| m.dpkg_lock = Some("812 unattended-upgr".into()));
    let report = fleet
        .provisioner(Duration::from_secs(30))
        .run(Action::Check, &fleet.tke_plan());
    assert!(report.ok, "{}", report.to_text());
    assert!(
        report.hosts[0].notes.contains(
            &"the dpkg lock is held by process 812 unattended-upgr: the install will wait up to 120 s for it"
                .to_string()
        ),
        "{:?}",
        report.hosts[0].notes
    );
}

#[test]
fn a_conf_dir_others_can_write_is_refused() {
    let fleet = Fleet::new(2);
    fleet.master(0, |m| m.conf_dir = Some((0o777, 0)));
    let report = apply(&fleet);
    let error = report.hosts[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("/etc/keepalived is owned by uid 0 with mode 0777"),
        "{error}"
    );
    nothing_changed(&fleet, 2);
}

#[test]
fn a_world_readable_config_from_an_earlier_version_gets_mode_0600_without_a_reload() {
    let fleet = Fleet::new(2);
    let plan = fleet.tke_plan();
    fleet.provisioned(&plan, 0);
    fleet.master(1, |m| {
        if let Some(f) = m.files.get_mut(CONF_PATH) {
            f.mode = 0o644;
        }
    });
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());
    assert_eq!(fleet.whats(0), ["probe", "VIP watch"], "master 1 is right");
    let apply = &fleet.sent(1)[1];
    assert_eq!(apply.uploads().len(), 1);
    assert_eq!(
        (apply.uploads()[0].path.as_str(), apply.uploads()[0].mode),
        (CONF_PATH, 0o600)
    );
    assert!(
        !apply.text().contains("@@action=reloaded"),
        "same content: no reload\n{}",
        apply.text()
    );
    assert_eq!(fleet.state(1).files[CONF_PATH].mode, 0o600);
    let h = &report.hosts[1];
    assert!(h.changed && !h.restarted, "{h:?}");
    assert_eq!(
        h.notes,
        [
            "/etc/keepalived/keepalived.conf had owner 0:0 and mode 0644: rewritten as root:root 0600"
        ]
    );
}

#[test]
fn a_vip_outside_a_masters_subnet_is_refused_before_any_change() {
    let fleet = Fleet::new(2);
    fleet.master(1, |m| m.prefix_len = 29);
    let report = apply(&fleet);
    let error = report.hosts[1].error.as_deref().unwrap();
    assert!(
        error.starts_with("VIP 10.0.0.100 is outside eth0's prefix 10.0.0.8/29"),
        "{error}"
    );
    assert_eq!(report.errors, [PREFLIGHT_FAILED]);
    nothing_changed(&fleet, 2);
}

#[test]
fn a_foreign_keepalived_conf_is_refused_before_any_change() {
    let fleet = Fleet::new(2);
    fleet.master(0, |m| {
        m.keepalived = true;
        m.files.insert(
            CONF_PATH.into(),
            crate::fake::File {
                mode: 0o644,
                content: "vrrp_instance VI_1 {\n}\n".into(),
            },
        );
    });
    let report = apply(&fleet);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some(
            "/etc/keepalived/keepalived.conf exists and was not written by tkeha: move it away (it would be replaced) and rerun"
        )
    );
    assert_eq!(report.errors, [PREFLIGHT_FAILED]);
    assert_eq!(fleet.whats(0), ["probe"]);
    assert_eq!(fleet.whats(1), ["probe"]);
}

#[test]
fn no_keepalived_and_no_package_manager_is_refused_before_any_change() {
    let fleet = Fleet::new(2);
    fleet.master(1, |m| m.package_manager = None);
    let report = apply(&fleet);
    assert!(
        report.hosts[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("keepalived is not installed and no package manager")
    );
    nothing_changed(&fleet, 2);
}

#[test]
fn a_config_keepalived_rejects_is_not_moved_into_place_and_nothing_waits() {
    let fleet = Fleet::new(2);
    fleet.master(1, |m| m.rejects_config = true);
    let report = apply(&fleet);
    assert!(!report.ok);
    assert_eq!(
        report.hosts[1].error.as_deref(),
        Some(
            "keepalived -t rejected the rendered config (nothing moved into place): \
             (/etc/keepalived/keepalived.conf.tkeha-new: Line 20) Unknown keyword 'vrrp_instanc'"
        )
    );
    assert_eq!(
        report.errors,
        ["keepalived could not be configured on every master"]
    );
    assert!(!fleet.state(1).files.contains_key(CONF_PATH));
    assert!(!fleet.state(1).running);
    for i in 0..2 {
        assert!(
            !fleet.whats(i).contains(&"VIP watch".to_string()),
            "no wait for a VIP after a failed configuration"
        );
    }
}

#[test]
fn a_failed_install_is_reported_with_the_package_managers_words() {
    let fleet = Fleet::new(2);
    fleet.master(0, |m| m.install_fails = true);
    let report = apply(&fleet);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some("installing keepalived failed: E: Unable to locate package keepalived")
    );
    assert!(
        !report.hosts[0]
            .notes
            .iter()
            .any(|n| n.starts_with("keepalived installed")),
        "{:?}",
        report.hosts[0].notes
    );
    assert!(
        !report.hosts[0].changed,
        "the install failed before any file was written"
    );
    assert!(!fleet.state(0).keepalived && !fleet.state(0).running);
    assert_eq!(
        report.errors,
        ["keepalived could not be configured on every master"]
    );
}

#[test]
fn keepalived_installed_by_someone_else_after_the_probe_is_not_reported_as_installed() {
    let fleet = Fleet::new(1);
    let plan = fleet.tke_plan();
    let p = fleet.provisioner(Duration::from_secs(30));
    // Missing at the probe; there by the time the apply script runs.
    fleet.master(0, |m| {
        m.replies.insert(
            "apply",
            crate::remote::ExecOutput {
                stdout: "@@present=1\n@@wrote=/etc/keepalived/check_apiserver.sh\n\
                         @@wrote=/etc/keepalived/keepalived.conf\n@@action=started\n@@end=1\n"
                    .into(),
                ..Default::default()
            },
        );
    });
    let report = p.run(Action::Apply, &plan);
    let notes = &report.hosts[0].notes;
    assert!(
        !notes.iter().any(|n| n.starts_with("keepalived installed")),
        "{notes:?}"
    );
    assert!(
        notes.contains(
            &"keepalived was missing at the probe but present when apply ran: this run did not install it"
                .to_string()
        ),
        "{notes:?}"
    );
}

#[test]
fn an_install_that_changes_nothing_is_an_error_not_an_install() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| {
        m.replies.insert(
            "apply",
            crate::remote::ExecOutput {
                stdout: "@@step=update\n@@step=install\nkeepalived is already the newest version (1:2.2.7-1+b2).\n\
                         0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n@@install_noop=1\n"
                    .into(),
                ..Default::default()
            },
        );
    });
    let report = apply(&fleet);
    let h = &report.hosts[0];
    assert_eq!(
        h.error.as_deref(),
        Some(
            "keepalived is still not installed although apt-get reported success (it changed nothing): \
             keepalived is already the newest version (1:2.2.7-1+b2). | 0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded."
        )
    );
    assert!(!h.changed, "{h:?}");
    assert!(
        !h.notes
            .iter()
            .any(|n| n.starts_with("keepalived installed"))
    );
}

#[test]
fn a_connection_lost_during_the_apply_still_reports_what_was_done() {
    let fleet = Fleet::new(1);
    // Lines of the fake's answer: @@installed, @@wrote (check), @@wrote (conf), then the cut.
    fleet.master(0, |m| m.cut = Some(("apply", 3)));
    let report = apply(&fleet);
    let h = &report.hosts[0];
    assert_eq!(
        h.error.as_deref(),
        Some(
            "the connection was lost while the apply script ran (running the apply script failed: connection reset by peer); \
             before that it installed keepalived, wrote /etc/keepalived/check_apiserver.sh, /etc/keepalived/keepalived.conf; rerun apply"
        )
    );
    assert!(h.changed && !h.restarted, "{h:?}");
}

#[test]
fn a_keepalived_that_does_not_start_fails_its_master() {
    let fleet = Fleet::new(1);
    fleet.master(0, |m| m.start_fails = true);
    let report = apply(&fleet);
    assert_eq!(
        report.hosts[0].error.as_deref(),
        Some("the apply script failed (exit 6): keepalived did not start")
    );
    assert!(report.hosts[0].changed, "the files were written");
    assert!(!report.hosts[0].restarted);
}

#[test]
fn a_vip_that_never_settles_fails_after_the_wait() {
    let fleet = Fleet::new(2);
    fleet.vrrp(Vrrp::Nobody);
    let plan = fleet.tke_plan();
    // The wait is never shorter than 5 s, whatever the timeout.
    let report = fleet
        .provisioner(Duration::from_secs(1))
        .run(Action::Apply, &plan);
    assert!(!report.ok);
    assert_eq!(
        report.errors,
        [
            "after 5 s not exactly one master holds VIP 10.0.0.100 (holders: []); check that VRRP (IP protocol 112) passes between the masters"
        ]
    );
    assert!(!report.split_brain);
    assert!(report.hosts.iter().all(|h| h.ok && h.changed));
}

#[test]
fn two_holders_after_the_apply_are_split_brain() {
    let fleet = Fleet::new(2);
    fleet.vrrp(Vrrp::SplitBrain);
    let plan = fleet.tke_plan();
    let report = fleet
        .provisioner(Duration::from_secs(1))
        .run(Action::Apply, &plan);
    assert!(report.split_brain);
    assert!(
        report.errors[0].contains("(holders: [10.0.0.11, 10.0.0.12])"),
        "{:?}",
        report.errors
    );
}

#[test]
fn with_an_apiserver_expected_the_vip_must_answer_on_6443() {
    let fleet = Fleet::new(2);
    fleet.every(|m| {
        m.apiserver_manifest = true;
        m.apiserver_listening = true;
    });
    fleet.api_behind_vip(true);
    let report = apply(&fleet);
    assert!(report.ok, "{}", report.to_text());

    let silent = Fleet::new(2);
    silent.every(|m| m.apiserver_manifest = true);
    let plan = silent.tke_plan();
    let report = silent
        .provisioner(Duration::from_secs(1))
        .run(Action::Apply, &plan);
    assert_eq!(
        report.errors,
        ["10.0.0.100:6443 does not answer although an apiserver is expected on the masters"]
    );
    assert!(
        report.vip_holder.is_some(),
        "the VIP itself settled: {report:?}"
    );
}

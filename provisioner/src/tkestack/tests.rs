//! Recognising TKEStack's keepalived.conf and static pod: the real templates (two releases) match whatever their variables; a change to any fixed part does not, and says where.

#![allow(clippy::unwrap_used)]

use super::fixtures::{OLDER, STATIC_POD, tkestack_conf};
use super::*;

#[test]
fn the_current_template_matches_with_its_variables() {
    let conf = match_conf(&tkestack_conf("eth0", 101, "10.0.0.100")).unwrap();
    assert_eq!(
        conf,
        TkestackConf {
            interface: "eth0".into(),
            vrid: 101,
            vip: "10.0.0.100".parse().unwrap(),
            check: HealthCheck {
                interval: 2,
                fall: 3,
                rise: 1,
                weight: -10
            },
        }
    );
    let other = match_conf(&tkestack_conf("enp0s31f6", 1, "192.168.7.200")).unwrap();
    assert_eq!((other.interface.as_str(), other.vrid), ("enp0s31f6", 1));
}

#[test]
fn an_older_release_matches_too() {
    let older = OLDER
        .replace("{{ .Interface }}", "eth1")
        .replace("{{ .VIP }}", "10.1.2.3");
    let conf = match_conf(&older).unwrap();
    assert_eq!(conf.vrid, 51);
    assert_eq!(conf.check.fall, 1);
}

#[test]
fn spacing_comments_and_order_do_not_matter() {
    let text = "# written by TKEStack\nvrrp_instance VI_1 {\n  virtual_router_id 7\n  state BACKUP\n  \
                interface eth0\n  priority 100\n  advert_int 1\n  track_script {\n chk \n}\n  \
                virtual_ipaddress {\n 10.0.0.7\n }\n  authentication {\n auth_pass 1111\n auth_type PASS\n }\n}\n\
                global_defs { \n script_user root ! a comment\n enable_script_security\n }\n\
                vrrp_script chk {\n rise 1\n fall 3\n weight -10\n interval 2\n script \"true\"\n}\n";
    let conf = match_conf(text).unwrap();
    assert_eq!(conf.vip, "10.0.0.7".parse::<IpAddr>().unwrap());
}

#[test]
fn a_change_to_a_fixed_part_does_not_match_and_says_where() {
    let base = tkestack_conf("eth0", 101, "10.0.0.100");
    let cases = [
        (
            base.replace("priority 100", "priority 150"),
            "`vrrp_instance VI_1` has `priority 150` where TKEStack's template has `priority 100`",
        ),
        (
            base.replace("advert_int 1", "advert_int 1\n     nopreempt"),
            "`vrrp_instance VI_1` has `nopreempt`, which TKEStack's template does not",
        ),
        (
            base.replace("auth_pass 1111", "auth_pass s3cret"),
            "`vrrp_instance VI_1` > `authentication` has `auth_pass s3cret` where TKEStack's template has `auth_pass 1111`",
        ),
        (
            base.replace(
                "advert_int 1",
                "advert_int 1\n     unicast_peer {\n       10.0.0.12\n     }",
            ),
            "`vrrp_instance VI_1` has `unicast_peer`, which TKEStack's template does not",
        ),
        (
            base.replace("10.0.0.100\n", "10.0.0.100/24 dev eth0\n"),
            "`vrrp_instance VI_1` > `virtual_ipaddress` has `10.0.0.100/24 dev eth0` where TKEStack's template has `<VIP>`",
        ),
        (
            base.replace("VI_1", "VI_TKEHA"),
            "it has `vrrp_instance VI_TKEHA` where TKEStack's template has `vrrp_instance VI_1`",
        ),
        (
            base.replace("virtual_router_id 101", "virtual_router_id 0"),
            "`vrrp_instance VI_1` has `virtual_router_id 0` where TKEStack's template has `virtual_router_id <vrid>`",
        ),
    ];
    for (text, why) in cases {
        assert_eq!(match_conf(&text), Err(why.to_string()), "{text}");
    }
}

#[test]
fn tkehas_own_config_is_not_tkestacks() {
    let ours = crate::keepalived::render_conf(&crate::keepalived::ConfParams {
        router_id: "tkeha-m1".into(),
        interface: "eth0".into(),
        vrid: 101,
        priority: 254,
        src_ip: "10.0.0.11".parse().unwrap(),
        peers: vec!["10.0.0.12".parse().unwrap()],
        auth_pass: "Ab3dEf7h".into(),
        vip: "10.0.0.100".parse().unwrap(),
        prefix_len: 24,
        profile: crate::FailoverProfile::Standard,
    });
    assert!(match_conf(&ours).is_err());
}

#[test]
fn broken_or_hostile_text_is_refused_without_panic() {
    for text in [
        "",
        "}",
        "global_defs {",
        "script \"unterminated",
        &"{".repeat(100),
        &"a ".repeat(40_000),
        "\u{0}\u{7f}\n{}{}",
    ] {
        assert!(match_conf(text).is_err(), "{text:?}");
    }
    let escaped = match_conf(
        &tkestack_conf("eth0", 101, "10.0.0.100")
            .replace("advert_int 1", "advert_int 1\n     evil\u{1b}[31m"),
    )
    .unwrap_err();
    assert!(!escaped.contains('\u{1b}'), "{escaped}");
}

#[test]
fn the_static_pod_is_recognised() {
    assert_eq!(match_static_pod(STATIC_POD), Ok(()));
    assert_eq!(
        match_static_pod(&STATIC_POD.replace("hostNetwork: true", "hostNetwork: false")),
        Err("the Pod is not on the host network (hostNetwork: true)".into())
    );
    assert_eq!(
        match_static_pod(&STATIC_POD.replace("path: /etc/keepalived/", "path: /srv/ka")),
        Err("the Pod does not mount the host's /etc/keepalived".into())
    );
    assert_eq!(
        match_static_pod("kind: Deployment\n"),
        Err("it is not a Pod".into())
    );
    assert!(match_static_pod("{{ not yaml").is_err());
}

#[test]
fn the_four_weaknesses_carry_their_effect() {
    let conf = match_conf(&tkestack_conf("eth0", 101, "10.0.0.100")).unwrap();
    let w = weaknesses(&conf);
    let codes: Vec<_> = w.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "tkestack-preempt",
            "tkestack-auth-pass",
            "tkestack-multicast",
            "tkestack-slow-detection"
        ]
    );
    assert!(w[0].message.contains("second short outage"));
    assert!(w[1].message.contains("auth_pass 1111"));
    assert!(w[2].message.contains("224.0.0.18") && w[2].message.contains("101"));
    assert!(
        w[3].message
            .contains("every 2 s, fall 3) notices a dead apiserver after about 6 s")
    );
    assert!(w[3].message.contains("about 1.7 s"));
    // A check as fast as tkeha's is no weakness.
    let mut fast = conf;
    fast.check.fall = 1;
    assert_eq!(weaknesses(&fast).len(), 3);
}

//! Table-driven tests of every create rule: one failing case (exact path and type) and a passing one.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use tkeha_api::ErrorType::{self, *};
use tkeha_api::{Policy, SingleMasterPolicy, review};

struct Case {
    name: &'static str,
    base: fn() -> Value,
    muts: Vec<(&'static str, Option<Value>)>,
    /// Expected (field, type); None = must be allowed with no errors.
    want: Option<(&'static str, ErrorType)>,
    /// Substring the matching error's message must contain.
    msg: &'static str,
}

fn c(
    name: &'static str,
    base: fn() -> Value,
    muts: Vec<(&'static str, Option<Value>)>,
    want: Option<(&'static str, ErrorType)>,
    msg: &'static str,
) -> Case {
    Case {
        name,
        base,
        muts,
        want,
        msg,
    }
}

fn s(x: &str) -> Option<Value> {
    Some(json!(x))
}

/// A valid jump server proxy (password `jumperpw`).
fn jump() -> Value {
    json!({"type": "SSHJumpServer", "ip": "10.0.0.5", "port": 22,
           "username": "jumper", "password": "anVtcGVycHc="})
}

/// A valid SOCKS5 proxy without credentials (TKEStack's way).
fn socks() -> Value {
    json!({"type": "SOCKS5", "ip": "10.0.0.6", "port": 1080})
}

fn cases() -> Vec<Case> {
    vec![
        // --- the valid bases
        c("tke3 valid", tke3, vec![], None, ""),
        c("tp3 valid", tp3, vec![], None, ""),
        // --- spec.type / spec.version
        c(
            "type missing",
            tke3,
            vec![("/spec/type", None)],
            Some(("spec.type", Required)),
            "Baremetal",
        ),
        c(
            "type empty",
            tke3,
            vec![("/spec/type", s(""))],
            Some(("spec.type", Required)),
            "",
        ),
        c(
            "version missing: TKEStack picks it",
            tke3,
            vec![("/spec/version", None)],
            None,
            "",
        ),
        c(
            "version empty",
            tke3,
            vec![("/spec/version", s(""))],
            Some(("spec.version", Invalid)),
            "remove the field",
        ),
        c(
            "type not a TKEStack provider",
            tke3,
            vec![("/spec/type", s("Kind"))],
            Some(("spec.type", NotSupported)),
            r#"supported values: "Baremetal", "Imported""#,
        ),
        c(
            "HA on an Imported cluster",
            tke3,
            vec![("/spec/type", s("Imported"))],
            Some(("spec.features.ha", Forbidden)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "Imported without HA",
            tke3,
            vec![("/spec/type", s("Imported")), ("/spec/features", None)],
            None,
            "",
        ),
        c(
            "version v-prefixed",
            tke3,
            vec![("/spec/version", s("v1.21.4"))],
            Some(("spec.version", Invalid)),
            "MAJOR.MINOR.PATCH",
        ),
        c(
            "version two parts",
            tke3,
            vec![("/spec/version", s("1.21"))],
            Some(("spec.version", Invalid)),
            "",
        ),
        c(
            "version plain ok",
            tke3,
            vec![("/spec/version", s("1.14.10"))],
            None,
            "",
        ),
        // --- HA mode
        c(
            "both modes",
            tke3,
            vec![(
                "/spec/features/ha/thirdParty",
                Some(json!({"vip": "192.168.1.5", "vport": 6443})),
            )],
            Some(("spec.features.ha", Forbidden)),
            "mutually exclusive",
        ),
        // --- VIP (tke)
        c(
            "tke vip missing",
            tke3,
            vec![("/spec/features/ha/tke/vip", None)],
            Some(("spec.features.ha.tke.vip", Required)),
            "vip is required",
        ),
        c(
            "tke vip empty",
            tke3,
            vec![("/spec/features/ha/tke/vip", s(""))],
            Some(("spec.features.ha.tke.vip", Required)),
            "",
        ),
        c(
            "tke vip 300",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("192.168.1.300"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "must be a valid IP address",
        ),
        c(
            "tke vip leading zero",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("192.168.1.010"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "valid IP",
        ),
        c(
            "tke vip prefix",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("192.168.1.10/24"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "valid IP",
        ),
        c(
            "tke vip unspecified",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("0.0.0.0"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "unspecified",
        ),
        c(
            "tke vip loopback",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("127.0.0.5"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "loopback",
        ),
        c(
            "tke vip multicast",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("224.0.0.18"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "multicast",
        ),
        c(
            "tke vip link-local",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("169.254.1.1"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "link-local",
        ),
        c(
            "tke vip v6 link-local",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("fe80::1"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "link-local",
        ),
        c(
            "tke vip = machine",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("192.168.1.3"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "spec.machines[1].ip",
        ),
        c(
            "tke vip in clusterCIDR",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("10.244.3.3"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "spec.clusterCIDR",
        ),
        c(
            "tke vip in serviceCIDR",
            tke3,
            vec![
                ("/spec/serviceCIDR", s("10.96.0.0/16")),
                ("/spec/features/ha/tke/vip", s("10.96.0.7")),
            ],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "spec.serviceCIDR",
        ),
        c(
            "tke vip family",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("2001:db8::10"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "IPv6",
        ),
        c(
            "tke vip v6 ok",
            tke3,
            vec![
                ("/spec/features/ha/tke/vip", s("2001:db8::10")),
                ("/spec/machines/0/ip", s("2001:db8::2")),
                ("/spec/machines/1/ip", s("2001:db8::3")),
                ("/spec/machines/2/ip", s("2001:db8::4")),
                ("/spec/clusterCIDR", s("fd00:10:244::/56")),
            ],
            None,
            "",
        ),
        // --- vrid
        c(
            "vrid 0",
            tke3,
            vec![("/spec/features/ha/tke/vrid", Some(json!(0)))],
            Some(("spec.features.ha.tke.vrid", Invalid)),
            "must be a valid vrid, range [1, 255]",
        ),
        c(
            "vrid 256",
            tke3,
            vec![("/spec/features/ha/tke/vrid", Some(json!(256)))],
            Some(("spec.features.ha.tke.vrid", Invalid)),
            "must be a valid vrid, range [1, 255]",
        ),
        c(
            "vrid 255 ok",
            tke3,
            vec![("/spec/features/ha/tke/vrid", Some(json!(255)))],
            None,
            "",
        ),
        c(
            "vrid 1 ok",
            tke3,
            vec![("/spec/features/ha/tke/vrid", Some(json!(1)))],
            None,
            "",
        ),
        // --- third party
        c(
            "tp vip missing",
            tp3,
            vec![("/spec/features/ha/thirdParty/vip", None)],
            Some(("spec.features.ha.thirdParty.vip", Required)),
            "",
        ),
        c(
            "tp vip bad",
            tp3,
            vec![("/spec/features/ha/thirdParty/vip", s("lb.example.com"))],
            Some(("spec.features.ha.thirdParty.vip", Invalid)),
            "valid IP",
        ),
        c(
            "tp vip = machine",
            tp3,
            vec![("/spec/features/ha/thirdParty/vip", s("192.168.1.2"))],
            Some(("spec.features.ha.thirdParty.vip", Invalid)),
            "spec.machines[0].ip",
        ),
        c(
            "tp vport missing",
            tp3,
            vec![("/spec/features/ha/thirdParty/vport", None)],
            Some(("spec.features.ha.thirdParty.vport", Required)),
            "6443",
        ),
        c(
            "tp vport 0",
            tp3,
            vec![("/spec/features/ha/thirdParty/vport", Some(json!(0)))],
            Some(("spec.features.ha.thirdParty.vport", Invalid)),
            "between 1 and 65535",
        ),
        c(
            "tp vport 65536",
            tp3,
            vec![("/spec/features/ha/thirdParty/vport", Some(json!(65536)))],
            Some(("spec.features.ha.thirdParty.vport", Invalid)),
            "between 1 and 65535",
        ),
        c(
            "tp one machine",
            tp3,
            vec![("/spec/machines/2", None), ("/spec/machines/1", None)],
            Some(("spec.machines", Invalid)),
            "self-connect",
        ),
        c(
            "tp two machines ok",
            tp3,
            vec![("/spec/machines/2", None)],
            None,
            "",
        ),
        // --- machines
        c(
            "machines missing with HA",
            tke3,
            vec![("/spec/machines", None)],
            Some(("spec.machines", Required)),
            "",
        ),
        c(
            "machines empty with HA",
            tp3,
            vec![("/spec/machines", Some(json!([])))],
            Some(("spec.machines", Required)),
            "",
        ),
        c(
            "machines missing without HA ok",
            tke3,
            vec![("/spec/machines", None), ("/spec/features", None)],
            None,
            "",
        ),
        c(
            "machine ip missing",
            tke3,
            vec![("/spec/machines/1/ip", None)],
            Some(("spec.machines[1].ip", Required)),
            "",
        ),
        c(
            "machine ip bad",
            tke3,
            vec![("/spec/machines/1/ip", s("192.168.1"))],
            Some(("spec.machines[1].ip", Invalid)),
            "valid IP",
        ),
        c(
            "machine ip leading zero",
            tke3,
            vec![("/spec/machines/2/ip", s("192.168.01.4"))],
            Some(("spec.machines[2].ip", Invalid)),
            "",
        ),
        c(
            "machine ip duplicate",
            tke3,
            vec![("/spec/machines/2/ip", s("192.168.1.2"))],
            Some(("spec.machines[2].ip", Duplicate)),
            "spec.machines[0].ip",
        ),
        c(
            "machine port 0",
            tke3,
            vec![("/spec/machines/0/port", Some(json!(0)))],
            Some(("spec.machines[0].port", Invalid)),
            "between 1 and 65535",
        ),
        c(
            "machine port 70000",
            tke3,
            vec![("/spec/machines/0/port", Some(json!(70000)))],
            Some(("spec.machines[0].port", Invalid)),
            "",
        ),
        c(
            "machine port 2222 ok",
            tke3,
            vec![("/spec/machines/0/port", Some(json!(2222)))],
            None,
            "",
        ),
        c(
            "machine username missing",
            tke3,
            vec![("/spec/machines/1/username", None)],
            Some(("spec.machines[1].username", Required)),
            "root",
        ),
        c(
            "machine password not base64",
            tke3,
            vec![("/spec/machines/0/password", s("123456!"))],
            Some(("spec.machines[0].password", Invalid)),
            "kubectl tkeha encode-password",
        ),
        c(
            "machine password unpadded",
            tke3,
            vec![("/spec/machines/0/password", s("MTIzNDU"))],
            Some(("spec.machines[0].password", Invalid)),
            "base64",
        ),
        c(
            "machine privateKey not base64",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s("-----BEGIN")),
            ],
            Some(("spec.machines[0].privateKey", Invalid)),
            "base64",
        ),
        c(
            "machine passPhrase not base64",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key("id_ed25519_enc"))),
                ("/spec/machines/0/passPhrase", s("p@ss")),
            ],
            Some(("spec.machines[0].passPhrase", Invalid)),
            "base64",
        ),
        c(
            "machine key ok",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key("id_ed25519"))),
            ],
            None,
            "",
        ),
        c(
            "machine encrypted key with its passPhrase ok",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key("id_ed25519_enc"))),
                ("/spec/machines/0/passPhrase", s(&b64("s3cret"))),
            ],
            None,
            "",
        ),
        c(
            "machine PEM key ok, beside a password",
            tke3,
            vec![("/spec/machines/0/privateKey", s(&key("id_rsa_pem")))],
            None,
            "",
        ),
        c(
            "machine privateKey a public key",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key("id_ed25519.pub"))),
            ],
            Some(("spec.machines[0].privateKey", Invalid)),
            "once decoded, this is a public key; give the private key file (the same name without .pub",
        ),
        c(
            "machine privateKey a public key, beside a password",
            tke3,
            vec![("/spec/machines/2/privateKey", s(&key("id_ed25519.pub")))],
            Some(("spec.machines[2].privateKey", Invalid)),
            "public key",
        ),
        c(
            "machine privateKey the word key",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s("a2V5")),
            ],
            Some(("spec.machines[0].privateKey", Invalid)),
            "not a private key: expected an OpenSSH private key",
        ),
        c(
            "machine privateKey a host name",
            tke3,
            vec![
                ("/spec/machines/1/password", None),
                ("/spec/machines/1/privateKey", s(&b64("vm-host-1\n"))),
            ],
            Some(("spec.machines[1].privateKey", Invalid)),
            "`kubectl tkeha init --ssh-key FILE`",
        ),
        c(
            "machine privateKey blank",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&b64(" \n"))),
            ],
            Some(("spec.machines[0].privateKey", Invalid)),
            "it is empty",
        ),
        c(
            "machine privateKey a certificate",
            tke3,
            vec![(
                "/spec/machines/0/privateKey",
                s(&b64("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")),
            )],
            Some(("spec.machines[0].privateKey", Invalid)),
            "this is a certificate, not a private key",
        ),
        c(
            "machine privateKey cut short",
            tke3,
            vec![(
                "/spec/machines/0/privateKey",
                s(&b64(&key_file("id_ed25519")[..300])),
            )],
            Some(("spec.machines[0].privateKey", Invalid)),
            "not a readable OpenSSH private key",
        ),
        c(
            "machine encrypted key without passPhrase",
            tke3,
            vec![
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key("id_ed25519_enc"))),
            ],
            Some(("spec.machines[0].passPhrase", Required)),
            "the provisioner cannot log in with it without its passphrase: set passPhrase to the \
             passphrase in base64 (`kubectl tkeha encode-password` makes it)",
        ),
        c(
            "machine encrypted key with an empty passPhrase",
            tke3,
            vec![
                ("/spec/machines/1/privateKey", s(&key("id_ed25519_enc"))),
                ("/spec/machines/1/passPhrase", s("")),
            ],
            Some(("spec.machines[1].passPhrase", Required)),
            "encrypted",
        ),
        c(
            "machine no credentials",
            tke3,
            vec![("/spec/machines/1/password", None)],
            Some(("spec.machines[1]", Required)),
            "password or privateKey",
        ),
        c(
            "machine empty password",
            tke3,
            vec![("/spec/machines/1/password", s(""))],
            Some(("spec.machines[1]", Required)),
            "",
        ),
        // --- clusterCIDR
        c(
            "clusterCIDR bad",
            tke3,
            vec![("/spec/clusterCIDR", s("10.244.0.0"))],
            Some(("spec.clusterCIDR", Invalid)),
            "valid CIDR",
        ),
        c(
            "clusterCIDR empty",
            tke3,
            vec![("/spec/clusterCIDR", s(""))],
            Some(("spec.clusterCIDR", Invalid)),
            "",
        ),
        c(
            "clusterCIDR bad prefix",
            tke3,
            vec![("/spec/clusterCIDR", s("10.244.0.0/33"))],
            Some(("spec.clusterCIDR", Invalid)),
            "",
        ),
        c(
            "clusterCIDR two without dual",
            tke3,
            vec![("/spec/clusterCIDR", s("10.244.0.0/16,fd00::/56"))],
            Some(("spec.clusterCIDR", Invalid)),
            "only one CIDR",
        ),
        c(
            "clusterCIDR dual ok",
            tke3,
            vec![
                ("/spec/clusterCIDR", s("10.244.0.0/16,fd00::/56")),
                ("/spec/features/ipv6DualStack", Some(json!(true))),
            ],
            None,
            "",
        ),
        c(
            "clusterCIDR dual same family",
            tke3,
            vec![
                ("/spec/clusterCIDR", s("10.244.0.0/16,10.245.0.0/16")),
                ("/spec/features/ipv6DualStack", Some(json!(true))),
            ],
            Some(("spec.clusterCIDR", Invalid)),
            "one IPv4 and one IPv6",
        ),
        c(
            "clusterCIDR contains machine",
            tke3,
            vec![
                ("/spec/clusterCIDR", s("192.168.0.0/16")),
                ("/spec/features/ha/tke/vip", s("10.0.0.10")),
            ],
            Some(("spec.clusterCIDR", Invalid)),
            "spec.machines[0].ip",
        ),
        c(
            "clusterCIDR missing ok",
            tke3,
            vec![("/spec/clusterCIDR", None)],
            None,
            "",
        ),
        // --- serviceCIDR
        c(
            "serviceCIDR bad",
            tke3,
            vec![("/spec/serviceCIDR", s("10.96.0.0/99"))],
            Some(("spec.serviceCIDR", Invalid)),
            "valid CIDR",
        ),
        c(
            "serviceCIDR overlaps",
            tke3,
            vec![("/spec/serviceCIDR", s("10.244.128.0/20"))],
            Some(("spec.serviceCIDR", Invalid)),
            "overlaps spec.clusterCIDR",
        ),
        c(
            "serviceCIDR too small",
            tke3,
            vec![("/spec/serviceCIDR", s("10.96.0.0/29"))],
            Some(("spec.serviceCIDR", Invalid)),
            "at least 11",
        ),
        c(
            "serviceCIDR /28 ok",
            tke3,
            vec![("/spec/serviceCIDR", s("10.96.0.0/28"))],
            None,
            "",
        ),
        c(
            "serviceCIDR with maxClusterServiceNum",
            tke3,
            vec![
                ("/spec/serviceCIDR", s("10.96.0.0/16")),
                ("/spec/properties/maxClusterServiceNum", Some(json!(256))),
            ],
            Some(("spec.properties.maxClusterServiceNum", Forbidden)),
            "spec.serviceCIDR",
        ),
        c(
            "ipvs without serviceCIDR",
            tke3,
            vec![("/spec/features/ipvs", Some(json!(true)))],
            Some(("spec.features.ipvs", Invalid)),
            "spec.serviceCIDR",
        ),
        c(
            "ipvs with serviceCIDR ok",
            tke3,
            vec![
                ("/spec/features/ipvs", Some(json!(true))),
                ("/spec/serviceCIDR", s("10.96.0.0/16")),
            ],
            None,
            "",
        ),
        // --- properties
        c(
            "maxNodePodNum 100",
            tke3,
            vec![("/spec/properties/maxNodePodNum", Some(json!(100)))],
            Some(("spec.properties.maxNodePodNum", NotSupported)),
            "\"256\"",
        ),
        c(
            "maxNodePodNum 64 ok",
            tke3,
            vec![("/spec/properties/maxNodePodNum", Some(json!(64)))],
            None,
            "",
        ),
        c(
            "maxClusterServiceNum 300",
            tke3,
            vec![("/spec/properties/maxClusterServiceNum", Some(json!(300)))],
            Some(("spec.properties.maxClusterServiceNum", NotSupported)),
            "\"32768\"",
        ),
        c(
            "maxClusterServiceNum 16",
            tke3,
            vec![("/spec/properties/maxClusterServiceNum", Some(json!(16)))],
            Some(("spec.properties.maxClusterServiceNum", NotSupported)),
            "",
        ),
        c(
            "maxClusterServiceNum 32768 ok",
            tke3,
            vec![("/spec/properties/maxClusterServiceNum", Some(json!(32768)))],
            None,
            "",
        ),
        // --- header
        c(
            "wrong kind",
            tke3,
            vec![("/kind", s("Machine"))],
            Some(("kind", Invalid)),
            "Cluster",
        ),
        c(
            "wrong apiVersion",
            tke3,
            vec![("/apiVersion", s("v1"))],
            Some(("apiVersion", Invalid)),
            "platform.tkestack.io/v1",
        ),
        c(
            "spec missing",
            tke3,
            vec![("/spec", None)],
            Some(("spec", Required)),
            "",
        ),
        // --- stricter than TKEStack: each says so
        c(
            "both modes say TKEStack accepts them",
            tke3,
            vec![(
                "/spec/features/ha/thirdParty",
                Some(json!({"vip": "192.168.1.5", "vport": 6443})),
            )],
            Some(("spec.features.ha", Forbidden)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "third party on one master says TKEStack accepts it",
            tp3,
            vec![("/spec/machines/2", None), ("/spec/machines/1", None)],
            Some(("spec.machines", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "VIP equal to a node says TKEStack accepts it",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("192.168.1.3"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "VIP in the pod network says TKEStack accepts it",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("10.244.0.10"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "VIP in the service network says TKEStack accepts it",
            tke3,
            vec![
                ("/spec/serviceCIDR", s("10.96.0.0/16")),
                ("/spec/features/ha/tke/vip", s("10.96.0.10")),
            ],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "VIP of the other family says TKEStack accepts it",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("2001:db8::10"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        c(
            "reserved VIP says TKEStack accepts it",
            tke3,
            vec![("/spec/features/ha/tke/vip", s("127.0.0.1"))],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "TKEStack's own API accepts this, tkeha does not",
        ),
        // --- the clusterCIDR default makes the pod-network checks run
        c(
            "clusterCIDR omitted: VIP still checked against 10.244.0.0/16",
            tke3,
            vec![
                ("/spec/clusterCIDR", None),
                ("/spec/features/ha/tke/vip", s("10.244.3.3")),
            ],
            Some(("spec.features.ha.tke.vip", Invalid)),
            "spec.clusterCIDR 10.244.0.0/16",
        ),
        c(
            "dnsDomain not a domain",
            tke3,
            vec![("/spec/dnsDomain", s("Corp_Local"))],
            Some(("spec.dnsDomain", Invalid)),
            "cluster.local",
        ),
        // --- machine addresses as reserved as the VIP's
        c(
            "machine ip loopback",
            tke3,
            vec![("/spec/machines/0/ip", s("127.0.0.1"))],
            Some(("spec.machines[0].ip", Invalid)),
            "must not be a loopback address",
        ),
        c(
            "machine ip unspecified",
            tke3,
            vec![("/spec/machines/0/ip", s("0.0.0.0"))],
            Some(("spec.machines[0].ip", Invalid)),
            "must not be the unspecified address",
        ),
        c(
            "machine ip broadcast",
            tke3,
            vec![("/spec/machines/0/ip", s("255.255.255.255"))],
            Some(("spec.machines[0].ip", Invalid)),
            "must not be the broadcast address",
        ),
        c(
            "machine ip multicast v6",
            tke3,
            vec![("/spec/machines/0/ip", s("ff02::1"))],
            Some(("spec.machines[0].ip", Invalid)),
            "must not be a multicast address",
        ),
        // --- usernames are POSIX login names
        c(
            "username with a newline",
            tke3,
            vec![("/spec/machines/0/username", s("root\ncheck succeeded"))],
            Some(("spec.machines[0].username", Invalid)),
            "POSIX login name",
        ),
        c(
            "username with shell syntax",
            tke3,
            vec![("/spec/machines/0/username", s("a;$(id)"))],
            Some(("spec.machines[0].username", Invalid)),
            "POSIX login name",
        ),
        c(
            "username with ESC",
            tke3,
            vec![("/spec/machines/0/username", s("\u{1b}[8m"))],
            Some(("spec.machines[0].username", Invalid)),
            "\\u001b[8m",
        ),
        c(
            "username with NUL",
            tke3,
            vec![("/spec/machines/0/username", s("ro\u{0}ot"))],
            Some(("spec.machines[0].username", Invalid)),
            "\\u0000",
        ),
        c(
            "username of 70 KB",
            tke3,
            vec![("/spec/machines/0/username", Some(json!("a".repeat(70_000))))],
            Some(("spec.machines[0].username", TooLong)),
            "may not be more than 32 characters",
        ),
        c(
            "username starting with a dash",
            tke3,
            vec![("/spec/machines/0/username", s("-oProxyCommand=x"))],
            Some(("spec.machines[0].username", Invalid)),
            "not starting with '-'",
        ),
        c(
            "username of a sudo user",
            tke3,
            vec![("/spec/machines/0/username", s("ops_admin.1"))],
            None,
            "",
        ),
        // --- secrets the provisioner can use
        c(
            "password not UTF-8 once decoded",
            tke3,
            vec![("/spec/machines/1/password", s("//4="))],
            Some(("spec.machines[1].password", Invalid)),
            "not UTF-8 text (the password itself is not shown)",
        ),
        c(
            "privateKey not UTF-8 once decoded",
            tke3,
            vec![("/spec/machines/1/privateKey", s("gA=="))],
            Some(("spec.machines[1].privateKey", Invalid)),
            "not UTF-8",
        ),
        c(
            "password over sshd's limit",
            tke3,
            vec![(
                "/spec/machines/1/password",
                Some(json!(tkeha_api::secret::encode(&[b'a'; 1025]))),
            )],
            Some(("spec.machines[1].password", Invalid)),
            "more than 1024",
        ),
        c(
            "password base64 text over the bound",
            tke3,
            vec![("/spec/machines/1/password", Some(json!("QUFB".repeat(600))))],
            Some(("spec.machines[1].password", TooLong)),
            "the value is not shown",
        ),
        // --- taints as core/v1 requires them
        c(
            "taint without key",
            tke3,
            vec![("/spec/machines/0/taints", Some(json!([{"effect": "NoSchedule"}])))],
            Some(("spec.machines[0].taints[0].key", Required)),
            "",
        ),
        c(
            "taint without effect",
            tke3,
            vec![("/spec/machines/0/taints", Some(json!([{"key": "a"}])))],
            Some(("spec.machines[0].taints[0].effect", Required)),
            "",
        ),
        c(
            "taint with an unknown effect",
            tke3,
            vec![(
                "/spec/machines/0/taints",
                Some(json!([{"key": "a", "effect": "NoWay"}])),
            )],
            Some(("spec.machines[0].taints[0].effect", NotSupported)),
            "PreferNoSchedule",
        ),
        c(
            "taint ok",
            tke3,
            vec![(
                "/spec/machines/0/taints",
                Some(json!([{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}])),
            )],
            None,
            "",
        ),
        // --- bounds
        c(
            "too many machines",
            tke3,
            vec![(
                "/spec/machines",
                Some(Value::Array(
                    (1..=17)
                        .map(|i| json!({"ip": format!("192.168.2.{i}"), "username": "root", "password": "MTIzNDU2"}))
                        .collect(),
                )),
            )],
            Some(("spec.machines", TooMany)),
            "must have at most 16 items",
        ),
        c(
            "too many labels",
            tke3,
            vec![(
                "/spec/machines/0/labels",
                Some(Value::Object(
                    (0..65).map(|i| (format!("k{i}"), json!("v"))).collect(),
                )),
            )],
            Some(("spec.machines[0].labels", TooMany)),
            "at most 64",
        ),
        c(
            "label value with a space",
            tke3,
            vec![("/spec/machines/0/labels", Some(json!({"role": "a b"})))],
            Some(("spec.machines[0].labels[role]", Invalid)),
            "label value",
        ),
        c(
            "too many taints",
            tke3,
            vec![(
                "/spec/machines/0/taints",
                Some(Value::Array(
                    (0..33).map(|i| json!({"key": format!("k{i}"), "effect": "NoSchedule"})).collect(),
                )),
            )],
            Some(("spec.machines[0].taints", TooMany)),
            "at most 32",
        ),
        c(
            "too many alternative names",
            tke3,
            vec![(
                "/spec/publicAlternativeNames",
                Some(Value::Array((0..65).map(|i| json!(format!("n{i}.example"))).collect())),
            )],
            Some(("spec.publicAlternativeNames", TooMany)),
            "at most 64",
        ),
        c(
            "too many extra args",
            tke3,
            vec![(
                "/spec/apiServerExtraArgs",
                Some(Value::Object(
                    (0..257).map(|i| (format!("flag-{i}"), json!("x"))).collect(),
                )),
            )],
            Some(("spec.apiServerExtraArgs", TooMany)),
            "at most 256",
        ),
        c(
            "an extra arg too long",
            tke3,
            vec![(
                "/spec/kubeletExtraArgs",
                Some(json!({"feature-gates": "x".repeat(4097)})),
            )],
            Some(("spec.kubeletExtraArgs[feature-gates]", TooLong)),
            "4096",
        ),
        c(
            "machine ip too long",
            tke3,
            vec![("/spec/machines/0/ip", Some(json!("1".repeat(46))))],
            Some(("spec.machines[0].ip", TooLong)),
            "45",
        ),
        // --- names
        c(
            "name not a subdomain",
            tke3,
            vec![("/metadata/name", s("Prod_1"))],
            Some(("metadata.name", Invalid)),
            "RFC 1123 subdomain",
        ),
        c(
            "generateName not a subdomain prefix",
            tke3,
            vec![("/metadata/name", None), ("/metadata/generateName", s("Prod-"))],
            Some(("metadata.generateName", Invalid)),
            "RFC 1123 subdomain",
        ),
        c(
            "generateName with a trailing dash",
            tke3,
            vec![("/metadata/name", None), ("/metadata/generateName", s("cls-prod-"))],
            None,
            "",
        ),
        // --- proxies
        c(
            "proxy of an unknown type",
            tke3,
            vec![(
                "/spec/machines/0/proxy",
                Some(json!({"type": "HTTP", "ip": "10.0.0.1", "port": 22})),
            )],
            Some(("spec.machines[0].proxy.type", NotSupported)),
            "SSHJumpServer",
        ),
        c(
"jump server with a password",
            tke3,
            vec![("/spec/machines/0/proxy", Some(jump()))],
            None,
            "",
        ),
        c(
            "jump server with a key ok",
            tke3,
            vec![(
                "/spec/machines/0/proxy",
                Some(json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
                    "username": "jump", "privateKey": key("id_ed25519_enc"),
                    "passPhrase": b64("s3cret")})),
            )],
            None,
            "",
        ),
        c(
            "jump server privateKey a public key",
            tke3,
            vec![(
                "/spec/machines/0/proxy",
                Some(json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
                    "username": "jump", "privateKey": key("id_ed25519.pub")})),
            )],
            Some(("spec.machines[0].proxy.privateKey", Invalid)),
            "this is a public key",
        ),
        c(
            "jump server encrypted key without passPhrase",
            tke3,
            vec![(
                "/spec/machines/2/proxy",
                Some(json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
                    "username": "jump", "privateKey": key("id_ed25519_enc")})),
            )],
            Some(("spec.machines[2].proxy.passPhrase", Required)),
            "kubectl tkeha encode-password",
        ),
        c(
            "jump server without a username",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/username", None),
            ],
            Some(("spec.machines[0].proxy.username", Required)),
            "user to log in to it as",
        ),
        c(
            "jump server username not a login name",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/username", s("a;b")),
            ],
            Some(("spec.machines[0].proxy.username", Invalid)),
            "POSIX login name",
        ),
        c(
            "jump server without a password or key",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/password", None),
            ],
            Some(("spec.machines[0].proxy", Required)),
            "a password or a privateKey",
        ),
        c(
            "jump server password not base64",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/password", s("jumper-pw!")),
            ],
            Some(("spec.machines[0].proxy.password", Invalid)),
            "standard base64",
        ),
        c(
            "jump server password not UTF-8",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/password", s("//4=")),
            ],
            Some(("spec.machines[0].proxy.password", Invalid)),
            "not UTF-8",
        ),
        c(
            "proxy ip invalid",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/ip", s("10.0.0.300")),
            ],
            Some(("spec.machines[0].proxy.ip", Invalid)),
            "valid IP address",
        ),
        c(
            "proxy ip missing",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/ip", None),
            ],
            Some(("spec.machines[0].proxy.ip", Required)),
            "proxy's address",
        ),
        c(
            "proxy ip unspecified",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/ip", s("0.0.0.0")),
            ],
            Some(("spec.machines[0].proxy.ip", Invalid)),
            "the unspecified address",
        ),
        c(
            "proxy ip broadcast",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/ip", s("255.255.255.255")),
            ],
            Some(("spec.machines[0].proxy.ip", Invalid)),
            "the broadcast address",
        ),
        c(
            "a local SOCKS5 proxy (ssh -D) is allowed",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/ip", s("127.0.0.1")),
            ],
            None,
            "",
        ),
        c(
            "proxy port missing",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/port", None),
            ],
            Some(("spec.machines[0].proxy.port", Required)),
            "1080 for SOCKS5",
        ),
        c(
            "proxy port out of range",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/port", Some(json!(65536))),
            ],
            Some(("spec.machines[0].proxy.port", Invalid)),
            "between 1 and 65535",
        ),
        c(
            "proxy port zero (TKEStack's unset int32)",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/port", Some(json!(0))),
            ],
            Some(("spec.machines[0].proxy.port", Invalid)),
            "between 1 and 65535",
        ),
        c(
            "SOCKS5 without credentials, as TKEStack",
            tp3,
            vec![("/spec/machines/1/proxy", Some(socks()))],
            None,
            "",
        ),
        c(
            "SOCKS5 with a username and password (RFC 1929)",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/username", s("proxy@corp")),
                ("/spec/machines/0/proxy/password", s("c29ja3Nwdw==")),
            ],
            None,
            "",
        ),
        c(
            "SOCKS5 username without password",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/username", s("socksuser")),
            ],
            Some(("spec.machines[0].proxy.password", Required)),
            "RFC 1929",
        ),
        c(
            "SOCKS5 password without username",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/password", s("c29ja3Nwdw==")),
            ],
            Some(("spec.machines[0].proxy.username", Required)),
            "RFC 1929",
        ),
        c(
            "SOCKS5 with a key",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/privateKey", s("a2V5")),
            ],
            Some(("spec.machines[0].proxy.privateKey", Forbidden)),
            "takes no key",
        ),
        c(
            "SOCKS5 password longer than RFC 1929 allows",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/username", s("u")),
                ("/spec/machines/0/proxy/password", Some(json!(b64("p".repeat(256))))),
            ],
            Some(("spec.machines[0].proxy.password", Invalid)),
            "more than the 255",
        ),
        c(
            "SOCKS5 username with a control character",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(socks())),
                ("/spec/machines/0/proxy/username", s("a\u{1b}[8mb")),
                ("/spec/machines/0/proxy/password", s("c29ja3Nwdw==")),
            ],
            Some(("spec.machines[0].proxy.username", Invalid)),
            "control characters",
        ),
        c(
            "proxy type missing",
            tke3,
            vec![
                ("/spec/machines/0/proxy", Some(jump())),
                ("/spec/machines/0/proxy/type", None),
            ],
            Some(("spec.machines[0].proxy.type", Required)),
            "SSHJumpServer or SOCKS5",
        ),
    ]
}

#[test]
fn every_rule_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let v = with((case.base)(), &case.muts);
        let r = run(&v);
        match case.want {
            None => {
                if !r.errors.is_empty() {
                    failures.push(format!(
                        "{}: expected allowed, got\n{}",
                        case.name,
                        dump(&r)
                    ));
                }
            }
            Some((field, kind)) => {
                let hit = r.errors.iter().find(|e| e.field == field && e.kind == kind);
                match hit {
                    None => failures.push(format!(
                        "{}: expected {field} {kind:?}, got\n{}",
                        case.name,
                        dump(&r)
                    )),
                    Some(e) if !e.to_string().contains(case.msg) => failures.push(format!(
                        "{}: message {:?} lacks {:?}",
                        case.name,
                        e.to_string(),
                        case.msg
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn all_errors_reported_at_once() {
    let v = with(
        tke3(),
        &[
            ("/spec/type", None),
            ("/spec/features/ha/tke/vip", s("1.2.3.300")),
            ("/spec/features/ha/tke/vrid", Some(json!(0))),
            ("/spec/machines/1/port", Some(json!(0))),
            ("/spec/machines/2/ip", s("192.168.1.2")),
            ("/spec/serviceCIDR", s("10.244.0.0/24")),
        ],
    );
    let got = pairs(&run(&v));
    for want in [
        ("spec.type", Required),
        ("spec.features.ha.tke.vip", Invalid),
        ("spec.features.ha.tke.vrid", Invalid),
        ("spec.machines[1].port", Invalid),
        ("spec.machines[2].ip", Duplicate),
        ("spec.serviceCIDR", Invalid),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1)),
            "missing {want:?} in {got:?}"
        );
    }
}

#[test]
fn kubernetes_error_form() {
    let v = with(tke3(), &[("/spec/features/ha/tke/vip", s("192.168.1.300"))]);
    let r = run(&v);
    let e = r
        .errors
        .iter()
        .find(|e| e.field == "spec.features.ha.tke.vip")
        .unwrap();
    let text = e.to_string();
    assert!(
        text.starts_with(
            "spec.features.ha.tke.vip: Invalid value: \"192.168.1.300\": must be a valid IP address"
        ),
        "{text}"
    );
    let j = serde_json::to_value(e).unwrap();
    assert_eq!(j["field"], "spec.features.ha.tke.vip");
    assert_eq!(j["type"], "FieldValueInvalid");
    assert_eq!(j["message"], text);

    let v = with(tke3(), &[("/spec/features/ha/tke/vrid", Some(json!(300)))]);
    let r = run(&v);
    assert_eq!(
        r.errors[0].to_string(),
        "spec.features.ha.tke.vrid: Invalid value: 300: must be a valid vrid, range [1, 255]"
    );
}

#[test]
fn secrets_never_echoed() {
    let v = with(
        tke3(),
        &[("/spec/machines/0/password", s("hunter2!secret"))],
    );
    let r = run(&v);
    assert_eq!(r.errors.len(), 1, "{}", dump(&r));
    assert!(!r.errors[0].to_string().contains("hunter2"));
    assert!(!format!("{:?}", r.errors).contains("hunter2"));
}

#[test]
fn every_usable_key_type_and_container_is_allowed_and_the_rest_refused() {
    // Real keys from ssh-keygen (api/tests/fixtures/keys/README.md), as machine and jump server
    // keys; encrypted ones with their passPhrase.
    for (name, pass_phrase) in [
        ("id_ed25519", None),
        ("id_ed25519_enc", Some("s3cret")),
        ("id_rsa", None),
        ("id_ecdsa", None),
        ("id_rsa_pem", None),
        ("id_rsa_pem_enc", Some("s3cret")),
        ("id_ecdsa_pem", None),
        ("id_rsa_pkcs8", None),
        ("id_rsa_pkcs8_enc", Some("s3cret")),
        ("id_ecdsa_pkcs8", None),
    ] {
        let pass_phrase = pass_phrase.map(|p| Value::from(b64(p)));
        let mut proxy = json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
            "username": "jump", "privateKey": key(name)});
        if let Some(p) = &pass_phrase {
            proxy["passPhrase"] = p.clone();
        }
        let v = with(
            tke3(),
            &[
                ("/spec/machines/0/password", None),
                ("/spec/machines/0/privateKey", s(&key(name))),
                ("/spec/machines/0/passPhrase", pass_phrase.clone()),
                ("/spec/machines/1/proxy", Some(proxy)),
            ],
        );
        let r = run(&v);
        assert!(r.allowed() && r.warnings.is_empty(), "{name}: {}", dump(&r));
        // Without its passPhrase, an encrypted key is refused at both places.
        if pass_phrase.is_some() {
            let mut v = v.clone();
            v["spec"]["machines"][0]
                .as_object_mut()
                .unwrap()
                .remove("passPhrase");
            v["spec"]["machines"][1]["proxy"]
                .as_object_mut()
                .unwrap()
                .remove("passPhrase");
            assert_eq!(
                pairs(&run(&v)),
                [
                    ("spec.machines[0].passPhrase".to_string(), Required),
                    ("spec.machines[1].proxy.passPhrase".to_string(), Required)
                ],
                "{name}"
            );
        }
    }
    // DSA, in OpenSSH's format and in PEM: a key, but not one to log in with.
    for name in ["id_dsa", "id_dsa_pem"] {
        let v = with(tke3(), &[("/spec/machines/2/privateKey", s(&key(name)))]);
        let r = run(&v);
        assert_eq!(
            pairs(&r),
            [("spec.machines[2].privateKey".to_string(), Invalid)],
            "{name}"
        );
        let msg = &r.errors[0].detail;
        assert!(
            msg.contains("once decoded, this is a DSA key (")
                && msg.contains("use an ed25519, RSA or ECDSA"),
            "{msg}"
        );
    }
    // PEM armour around what is not a key.
    let garbage = b64("-----BEGIN RSA PRIVATE KEY-----\nMAA=\n-----END RSA PRIVATE KEY-----\n");
    let r = run(&with(
        tke3(),
        &[("/spec/machines/0/privateKey", s(&garbage))],
    ));
    assert_eq!(
        pairs(&r),
        [("spec.machines[0].privateKey".to_string(), Invalid)]
    );
    assert!(
        r.errors[0]
            .detail
            .contains("once decoded, not a readable PKCS#1 RSA private key ("),
        "{}",
        dump(&r)
    );
}

#[test]
fn private_keys_are_never_echoed() {
    // Whatever is refused, the message shows neither the base64 nor what it decodes to.
    let public = String::from_utf8(key_file("id_ed25519.pub")).unwrap();
    let private = String::from_utf8(key_file("id_ed25519")).unwrap();
    let cut = &private[..300];
    for (text, field) in [
        (public.as_str(), "privateKey"),
        ("vm-host-1 s3cret-hostname", "privateKey"),
        (cut, "privateKey"),
    ] {
        let encoded = b64(text);
        let v = with(
            tke3(),
            &[
                ("/spec/machines/0/privateKey", s(&encoded)),
                (
                    "/spec/machines/1/proxy",
                    Some(
                        json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
                        "username": "jump", "privateKey": encoded}),
                    ),
                ),
            ],
        );
        let r = run(&v);
        assert_eq!(
            pairs(&r),
            [
                (format!("spec.machines[0].{field}"), Invalid),
                (format!("spec.machines[1].proxy.{field}"), Invalid)
            ],
            "{}",
            dump(&r)
        );
        let shown = format!(
            "{} {:?} {}",
            dump(&r),
            r.errors,
            serde_json::to_string(&r.errors).unwrap()
        );
        assert!(
            shown.contains("the privateKey itself is not shown"),
            "{shown}"
        );
        assert!(!shown.contains(&encoded[..16]), "{shown}");
        // Every word of it (the PEM armour lines aside, which the messages name as formats).
        for word in text
            .split_whitespace()
            .filter(|w| w.len() > 8 && !w.contains("-----"))
        {
            assert!(!shown.contains(word), "{word:?} shown in {shown}");
        }
    }
}

#[test]
fn secrets_of_the_wrong_type_are_never_echoed() {
    // serde would quote a number or a bool it could not use; at a secret's path that is the secret.
    for (field, value) in [
        ("password", json!(987654321)),
        ("privateKey", json!(3.25)),
        ("passPhrase", json!(true)),
    ] {
        let v = with(
            tke3(),
            &[(&*format!("/spec/machines/1/{field}"), Some(value.clone()))],
        );
        let err = review(&v, None, &Policy::default()).unwrap_err();
        assert_eq!(err.path, format!("spec.machines[1].{field}"), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&value.to_string()), "{field}: {shown}");
        assert!(shown.contains("not shown"), "{shown}");
    }
}

#[test]
fn third_party_single_master_policy_warning() {
    let v = with(
        tp3(),
        &[("/spec/machines/2", None), ("/spec/machines/1", None)],
    );
    let policy = Policy {
        third_party_single_master: SingleMasterPolicy::Warning,
        version_allow_list: None,
        ..Policy::default()
    };
    let r = review(&v, None, &policy).unwrap();
    assert!(r.allowed(), "{}", dump(&r));
    assert!(
        r.warnings.iter().any(|w| w.starts_with("spec.machines: ")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn version_allow_list() {
    let policy = Policy {
        third_party_single_master: SingleMasterPolicy::Error,
        version_allow_list: Some(vec!["1.20.6-tke.2".into(), "1.21.4-tke.3".into()]),
        ..Policy::default()
    };
    let r = review(&tke3(), None, &policy).unwrap();
    assert!(r.allowed(), "{}", dump(&r));
    let v = with(tke3(), &[("/spec/version", s("1.22.0"))]);
    let r = review(&v, None, &policy).unwrap();
    assert_eq!(pairs(&r), vec![("spec.version".to_string(), NotSupported)]);
    assert!(
        r.errors[0]
            .to_string()
            .contains("\"1.20.6-tke.2\", \"1.21.4-tke.3\"")
    );
}

#[test]
fn warnings() {
    let check = |v: Value, prefix: &str, needle: &str| {
        let r = run(&v);
        assert!(r.allowed(), "{}", dump(&r));
        let w = r.warnings.iter().find(|w| w.starts_with(prefix));
        let w = w.unwrap_or_else(|| panic!("no warning {prefix} in {:?}", r.warnings));
        assert!(w.contains(needle), "{w}");
        for w in &r.warnings {
            assert!(w.len() < 120, "warning too long ({}): {w}", w.len());
        }
    };
    check(
        with(
            tke3(),
            &[("/spec/machines/2", None), ("/spec/machines/1", None)],
        ),
        "spec.features.ha.tke: ",
        "failover",
    );
    check(
        with(tke3(), &[("/spec/machines/2", None)]),
        "spec.machines: ",
        "even",
    );
    check(
        with(
            tke3(),
            &[(
                "/spec/machines/3",
                Some(json!({"ip": "192.168.1.9", "username": "root", "password": "MTIzNDU2"})),
            )],
        ),
        "spec.machines: ",
        "4 masters",
    );
    check(
        with(
            tp3(),
            &[("/spec/features/ha/thirdParty/vport", Some(json!(8443)))],
        ),
        "spec.features.ha.thirdParty.vport: ",
        "6443",
    );
    check(
        with(tke3(), &[("/spec/clusterCIDR", s("10.244.1.0/16"))]),
        "spec.clusterCIDR: ",
        "10.244.0.0/16",
    );
    check(
        with(tke3(), &[("/spec/features/ha", Some(json!({})))]),
        "spec.features.ha: ",
        "no HA",
    );
    check(
        with(
            tke3(),
            &[
                ("/spec/machines/0/privateKey", s(&key("id_ed25519"))),
                ("/spec/machines/0/passPhrase", s(&b64("s3cret"))),
            ],
        ),
        "spec.machines[0].passPhrase: ",
        "the privateKey is not encrypted, so this passPhrase is never used; remove it",
    );
    check(
        with(
            tke3(),
            &[(
                "/spec/machines/1/proxy",
                Some(
                    json!({"type": "SSHJumpServer", "ip": "10.0.0.1", "port": 22,
                    "username": "jump", "privateKey": key("id_rsa_pem"),
                    "passPhrase": b64("s3cret")}),
                ),
            )],
        ),
        "spec.machines[1].proxy.passPhrase: ",
        "never used",
    );
    // An encrypted key with its passPhrase, or a plain key without one: no warning.
    for (name, pass_phrase) in [
        ("id_ed25519_enc", Some(b64("s3cret"))),
        ("id_ed25519", None),
    ] {
        let v = with(
            tke3(),
            &[
                ("/spec/machines/0/privateKey", s(&key(name))),
                ("/spec/machines/0/passPhrase", pass_phrase.map(Value::from)),
            ],
        );
        let r = run(&v);
        assert!(r.allowed() && r.warnings.is_empty(), "{name}: {}", dump(&r));
    }
    // and none on the valid 3-master bases
    assert!(run(&tke3()).warnings.is_empty());
    assert!(run(&tp3()).warnings.is_empty());
}

#[test]
fn decode_errors_carry_the_path() {
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("/spec/machines/0/port", s("22"), "spec.machines[0].port"),
        (
            "/spec/features/ha/tke/vip",
            Some(json!(192)),
            "spec.features.ha.tke.vip",
        ),
        ("/spec/machines", s("192.168.1.2"), "spec.machines"),
        (
            "/spec/machines/1",
            Some(json!(["192.168.1.3"])),
            "spec.machines[1]",
        ),
        ("/spec/features", Some(json!([])), "spec.features"),
        (
            "/spec/features/ha/tke",
            Some(json!([1])),
            "spec.features.ha.tke",
        ),
        (
            "/spec/properties/maxNodePodNum",
            Some(json!(1.5)),
            "spec.properties.maxNodePodNum",
        ),
        (
            "/spec/publicAlternativeNames",
            Some(json!([1])),
            "spec.publicAlternativeNames[0]",
        ),
        ("/spec", Some(json!("x")), "spec"),
    ];
    for (ptr, val, path) in cases {
        let v = with(tke3(), &[(ptr, val)]);
        let e = review(&v, None, &Policy::default()).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    }
    let e = review(&json!([1]), None, &Policy::default()).unwrap_err();
    assert_eq!(e.path, ".");
}

/// Every order of the rule groups gives the same findings: no group depends on state another
/// fills in (Ctx parses what they share when it is built).
#[test]
fn rule_groups_give_the_same_findings_in_any_order() {
    use tkeha_api::validation::{Ctx, GROUPS};
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }
    let objects = [
        tke3(),
        tp3(),
        with(
            tke3(),
            &[
                ("/spec/serviceCIDR", s("10.96.0.0/30")),
                ("/spec/features/ha/tke/vip", s("10.96.0.1")),
                ("/spec/clusterCIDR", s("192.168.0.0/16")),
                ("/spec/machines/1/ip", s("127.0.0.1")),
                ("/spec/machines/2/username", s("a b")),
                ("/spec/type", s("Imported")),
            ],
        ),
    ];
    let policy = Policy::default();
    for object in &objects {
        let mut spec: tkeha_api::types::ClusterSpec =
            serde_json::from_value(object["spec"].clone()).unwrap();
        tkeha_api::defaults::apply_defaults(&mut spec);
        let mut reference: Option<(Vec<String>, Vec<String>)> = None;
        for order in permutations(GROUPS.len()) {
            let mut ctx = Ctx::new(&spec, &policy);
            for i in &order {
                GROUPS[*i](&mut ctx);
            }
            let mut errors: Vec<String> = ctx.errors.iter().map(ToString::to_string).collect();
            let mut warnings = ctx.warnings.clone();
            errors.sort();
            warnings.sort();
            match &reference {
                None => reference = Some((errors, warnings)),
                Some(r) => assert_eq!(r, &(errors, warnings), "order {order:?}"),
            }
        }
        assert!(reference.is_some());
    }
}

/// Whatever text a manifest holds, no message, warning or report line carries a control
/// character, a line separator or a bidi override.
#[test]
fn every_message_escapes_what_it_echoes() {
    let hostile = "x\n\u{1b}[8mcheck succeeded\r\u{0}\u{7f}\u{85}\u{202e}\u{2028}";
    let mut v = tke3();
    for ptr in [
        "/metadata/name",
        "/spec/type",
        "/spec/version",
        "/spec/clusterCIDR",
        "/spec/serviceCIDR",
        "/spec/dnsDomain",
        "/spec/networkDevice",
        "/spec/machines/0/ip",
        "/spec/machines/1/username",
        "/spec/machines/2/labels",
        "/spec/features/ha/tke/vip",
    ] {
        let value = if ptr.ends_with("labels") {
            json!({hostile: hostile})
        } else {
            json!(hostile)
        };
        set(&mut v, ptr, Some(value));
    }
    set(&mut v, &format!("/spec/{hostile}"), Some(json!(1)));
    set(
        &mut v,
        "/spec/machines/0/taints",
        Some(json!([{"key": hostile, "effect": hostile}])),
    );
    let clean = |s: &str| {
        !s.chars()
            .any(|c| c.is_control() || matches!(c, '\u{202e}' | '\u{2028}'))
    };
    for policy in [
        Policy::default(),
        Policy {
            field_validation: tkeha_api::FieldValidation::Strict,
            ..Policy::default()
        },
    ] {
        let r = review(&v, None, &policy).unwrap();
        assert!(r.errors.len() > 10, "{}", dump(&r));
        for e in &r.errors {
            assert!(clean(&e.to_string()), "{e}");
            assert!(clean(&e.body()), "{e}");
        }
        for w in &r.warnings {
            assert!(clean(w), "{w:?}");
        }
        let old = tke3();
        let r = review(&v, Some(&old), &policy).unwrap();
        for line in r.errors.iter().map(ToString::to_string).chain(r.warnings) {
            assert!(clean(&line), "{line:?}");
        }
    }
    // A value of the wrong type: the decode error escapes it too.
    let mut wrong = tke3();
    set(&mut wrong, "/spec/machines/0/port", Some(json!(hostile)));
    let e = review(&wrong, None, &Policy::default()).unwrap_err();
    assert!(clean(&e.to_string()), "{e}");
}

#[test]
fn the_missing_vip_hint_is_a_free_address_or_none() {
    let hint = |v: &Value| {
        let r = run(v);
        r.errors
            .iter()
            .find(|e| e.field == "spec.features.ha.tke.vip")
            .map(ToString::to_string)
            .unwrap()
    };
    // The seed's masters 192.168.1.2-4: never suggest one of them.
    let e = hint(&with(tke3(), &[("/spec/features/ha/tke/vip", None)]));
    assert!(e.ends_with("e.g. 192.168.1.250"), "{e}");
    // A master already at .250: the next free one.
    let e = hint(&with(
        tke3(),
        &[
            ("/spec/features/ha/tke/vip", None),
            ("/spec/machines/2/ip", s("192.168.1.250")),
        ],
    ));
    assert!(e.ends_with("e.g. 192.168.1.249"), "{e}");
    // No IPv4 master: no guess.
    let mut v6 = with(tke3(), &[("/spec/features/ha/tke/vip", None)]);
    for i in 0..3 {
        set(
            &mut v6,
            &format!("/spec/machines/{i}/ip"),
            s(&format!("2001:db8::{}", i + 2)),
        );
    }
    let e = hint(&v6);
    assert!(
        e.ends_with("an unused address in the masters' network"),
        "{e}"
    );
}

#[test]
fn warnings_for_what_tkestack_would_pick_or_change() {
    let warnings = |v: &Value| run(v).warnings;
    let w = warnings(&with(tke3(), &[("/spec/version", None)]));
    assert_eq!(
        w,
        [
            "spec.version: not set, so TKEStack picks its newest supported version (1.21.4-tke.3 at TKEStack HEAD)"
        ]
    );
    let w = warnings(&with(tke3(), &[("/metadata/name", s("prod"))]));
    assert_eq!(
        w,
        [
            "metadata.name: TKEStack's own API would replace \"prod\" by a generated cls- name; use \"cls-prod\" to keep it"
        ]
    );
    let w = warnings(&with(tke3(), &[("/metadata/name", s("cls-my-prod"))]));
    assert_eq!(
        w,
        [
            "metadata.name: TKEStack's own API would store \"cls-my-prod\" as \"cls-myprod\" (it drops '-' after cls-)"
        ]
    );
    assert!(warnings(&with(tke3(), &[("/metadata/name", s("global"))])).is_empty());
    let w = warnings(&with(
        tke3(),
        &[
            ("/metadata/name", None),
            ("/metadata/generateName", s("prod-")),
        ],
    ));
    assert_eq!(
        w,
        [
            "metadata.generateName: TKEStack names clusters cls-[a-z0-9]+; \"prod-\" generates names outside that pattern"
        ]
    );
}

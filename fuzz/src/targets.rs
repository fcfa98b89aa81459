//! The targets: each takes arbitrary bytes to one input boundary of tkeha and checks what must
//! hold for every input: no panic, and a peak allocation within the target's [`Bound`].
//!
//! A finding is a panic (the fuzzer keeps the input; the tests fail with it). The bounds are
//! `K x input + C` with K and C measured and explained at each constant.

use std::io::Write as _;
use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::Value;
use tkeha_api::{FieldValidation, Policy, SingleMasterPolicy};
use tkeha_webhook::{Endpoint, admit as webhook_admit};

use crate::meter::{Bound, within};

/// The input boundaries, by name (the corpus directory of each is `fuzz/corpus/<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `tkeha_api::parse_manifest`: JSON, JSON with comments, YAML.
    Manifest,
    /// `tkeha_api::review` on a create and on updates.
    Review,
    /// The webhook's AdmissionReview reader and answer (`tkeha_webhook::admit`).
    Admit,
    /// The provisioner's known_hosts reader (`hostkeys::check_key`).
    KnownHosts,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 4] = [
        Target::Manifest,
        Target::Review,
        Target::Admit,
        Target::KnownHosts,
    ];

    /// The name of the target (its corpus directory and libFuzzer binary).
    pub fn name(self) -> &'static str {
        match self {
            Target::Manifest => "manifest",
            Target::Review => "review",
            Target::Admit => "admit",
            Target::KnownHosts => "known_hosts",
        }
    }

    /// Run the target on `data`: panics on a finding.
    pub fn run(self, data: &[u8]) {
        warm_up();
        match self {
            Target::Manifest => manifest(data),
            Target::Review => review(data),
            Target::Admit => admit(data),
            Target::KnownHosts => known_hosts(data),
        }
    }
}

/// `parse_manifest` builds the whole document as a `serde_json::Value`. Measured worst
/// (`examples/measure.rs`): a list of one-key objects (`{"x":1},`, 8 bytes of text each) at
/// 57.6 bytes per byte of text: each object is a map with its own table and entry list, about
/// 430 bytes. 64 per byte covers it.
pub const MANIFEST: Bound = Bound {
    per_byte: 64,
    fixed: 64 * 1024,
};

/// A review of an object already read: the typed spec holds at most `limits::decoded(bound) +
/// 1` entries of any list (the rest is counted, not decoded), the defaulted copy of the object
/// and the findings. Measured worst at 3 MiB for a create: 14 bytes per byte (a spec of unknown
/// fields, each reported with its path). An update whose stored object breaks a bound copies
/// the stored object's tree to ratchet against it: 96 bytes per byte for an update of 64 KiB of
/// empty `publicAlternativeNames` to itself (the copy of a `Value` tree of empty strings). 128
/// per byte covers both.
pub const REVIEW: Bound = Bound {
    per_byte: 128,
    fixed: 256 * 1024,
};

/// The webhook's answer to a body of `n` bytes. A named CREATE without `\u` escapes takes the
/// fast path, which decodes the spec from the text (bounded as [`REVIEW`]): at most 0.1 MiB for
/// any 3 MiB shape. Every other review (UPDATE, `\u` escapes) reads the body into a
/// `serde_json::Value` first: up to 57.6 bytes per byte, as [`MANIFEST`].
pub const ADMIT: Bound = Bound {
    per_byte: 64,
    fixed: 256 * 1024,
};

/// The known_hosts check: the file's text and what the Rust side keeps of it.
pub const KNOWN_HOSTS: Bound = Bound {
    per_byte: 8,
    fixed: 64 * 1024,
};

/// Build what the code under test builds once per process (the CRD schema behind the
/// unknown-field suggestions, the schema tree, compiled patterns, the policies here), outside
/// the meter: a one-time static is not memory of any one input.
fn warm_up() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let object = serde_json::json!({
            "apiVersion": "platform.tkestack.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "cls-a", "unknownMeta": 1},
            "spec": {
                "type": "Baremetal", "version": "1.30.4", "unknwn": 1,
                "machines": [{"ip": "10.0.0.1", "username": "root", "password": "MTIzNDU2",
                              "proxy": {"type": "SOCKS5", "ip": "10.0.0.5", "port": 1080}, "x": 1}],
                "features": {"ha": {"tke": {"vip": "10.0.0.9"}, "x": 1}}
            }
        });
        for policy in policies() {
            let _ = tkeha_api::review(&object, None, policy);
            let _ = tkeha_api::review(&object, Some(stored()), policy);
            let _ = tkeha_api::review(stored(), Some(&object), policy);
        }
        let _ = tkeha_api::parse_manifest("a: [1, {b: c}]\n");
        let _ = tkeha_api::parse_manifest("{\"a\": [1] // c\n}");
        let fixtures = [
            include_str!("../../webhook/tests/fixtures/review-create-broken.json"),
            include_str!("../../webhook/tests/fixtures/review-update-third-party-vip.json"),
        ];
        for review in fixtures {
            for policy in policies() {
                for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
                    let _ = webhook_admit(endpoint, review.as_bytes(), policy);
                }
            }
        }
        let path = known_hosts_file().join("known_hosts");
        if std::fs::write(&path, "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB\n").is_ok() {
            let _ = tkeha_provisioner::hostkeys::check_key(&path, IpAddr::from([10, 0, 0, 1]), 22, &ed25519_blob(1));
        }
    });
}

/// `parse_manifest` on the bytes as text (invalid UTF-8 replaced: the CLI reads files as UTF-8
/// and refuses others before parsing).
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    within("parse_manifest", data.len(), MANIFEST, || {
        let _ = tkeha_api::parse_manifest(&text);
    });
}

/// The policies every review runs under.
fn policies() -> &'static [Policy; 3] {
    static POLICIES: OnceLock<[Policy; 3]> = OnceLock::new();
    POLICIES.get_or_init(|| {
        [
            Policy::default(),
            Policy {
                field_validation: FieldValidation::Strict,
                third_party_single_master: SingleMasterPolicy::Warning,
                version_allow_list: Some(vec!["1.30.4".into(), "1.14.10".into()]),
            },
            Policy {
                field_validation: FieldValidation::Ignore,
                ..Policy::default()
            },
        ]
    })
}

/// A valid stored Cluster (the seed's 3-master third-party cluster) for the updates.
fn stored() -> &'static Value {
    static STORED: OnceLock<Value> = OnceLock::new();
    STORED.get_or_init(|| {
        let review: Value = serde_json::from_str(include_str!(
            "../../webhook/tests/fixtures/review-update-third-party-vip.json"
        ))
        .unwrap_or(Value::Null);
        review["request"]["oldObject"].clone()
    })
}

/// `review_owned` of the manifest in the bytes: as a create under each policy, as an update of a
/// stored Cluster, as the stored object of an update, and as an update that leaves it as it is.
pub fn review(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(object) = tkeha_api::parse_manifest(&text) else {
        return;
    };
    let n = data.len();
    // `review_owned`, as the webhook calls it: the caller's copy of the object (made outside the
    // meter) becomes the answer's, so what is measured is the review's own memory.
    for policy in policies() {
        let copy = object.clone();
        within("review (create)", n, REVIEW, || {
            let _ = tkeha_api::review_owned(copy, None, policy);
        });
    }
    let policy = &policies()[0];
    let copy = object.clone();
    within("review (update of a stored Cluster)", n, REVIEW, || {
        let _ = tkeha_api::review_owned(copy, Some(stored()), policy);
    });
    let copy = stored().clone();
    within("review (update of this stored object)", n, REVIEW, || {
        let _ = tkeha_api::review_owned(copy, Some(&object), policy);
    });
    let copy = object.clone();
    within("review (update to the same object)", n, REVIEW, || {
        let _ = tkeha_api::review_owned(copy, Some(&object), policy);
    });
}

/// The webhook's `admit` on the bytes as an AdmissionReview body, at both endpoints and under
/// each policy; every answer stays small whatever was asked.
pub fn admit(data: &[u8]) {
    let n = data.len();
    for (i, policy) in policies().iter().enumerate() {
        for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
            // The default policy at both endpoints; the others at /validate (their difference).
            if i > 0 && endpoint == Endpoint::Mutate {
                continue;
            }
            let answer = within("admit", n, ADMIT, || webhook_admit(endpoint, data, policy));
            if let Ok(answer) = answer {
                let bytes = serde_json::to_vec(&answer.review).unwrap_or_default();
                let limit = match endpoint {
                    Endpoint::Validate => MAX_VALIDATE_ANSWER,
                    Endpoint::Mutate => MAX_MUTATE_ANSWER,
                };
                assert!(
                    bytes.len() <= limit,
                    "admit {}: an answer of {} bytes, over {limit}",
                    endpoint.as_str(),
                    bytes.len()
                );
            }
        }
    }
}

/// Largest /validate answer: 16 KiB of message, 51 causes of at most 256 + 512 characters (up to
/// 4 bytes each in UTF-8, 6 for an escaped control character), 20 warnings of 119 characters.
pub const MAX_VALIDATE_ANSWER: usize = 128 * 1024;

/// Largest /mutate answer: a patch of at most `MAX_PATCH_BYTES` in base64, or a denial.
pub const MAX_MUTATE_ANSWER: usize = tkeha_webhook::MAX_PATCH_BYTES / 3 * 4 + 8 * 1024;

/// The known_hosts file the check reads (rewritten for each input).
fn known_hosts_file() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("tkeha-fuzz-known-hosts.")
            .tempdir()
            .unwrap_or_else(|e| panic!("a temporary directory for known_hosts: {e}"))
    })
    .path()
}

/// An ed25519 public key blob (`string "ssh-ed25519"`, then 32 key bytes of `fill`).
fn ed25519_blob(fill: u8) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 11];
    b.extend_from_slice(b"ssh-ed25519");
    b.extend_from_slice(&[0, 0, 0, 32]);
    b.extend_from_slice(&[fill; 32]);
    b
}

/// `hostkeys::check_key` with the bytes as the known_hosts file, for hosts and keys that a
/// mutated line could name (the corpus uses these addresses and keys).
pub fn known_hosts(data: &[u8]) {
    let path = known_hosts_file().join("known_hosts");
    {
        let mut f =
            std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        f.write_all(data)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let hosts: [(IpAddr, u16, u8); 3] = [
        (IpAddr::from([10, 0, 0, 1]), 22, 1),
        (IpAddr::from([10, 0, 0, 2]), 2222, 2),
        (IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 1]), 22, 3),
    ];
    for (host, port, fill) in hosts {
        let key = ed25519_blob(fill);
        within("known_hosts check_key", data.len(), KNOWN_HOSTS, || {
            let _ = tkeha_provisioner::hostkeys::check_key(&path, host, port, &key);
        });
    }
}

//! Bounds on every list, map and string of a Cluster: one place for the numbers the rules
//! enforce and the generated CRD declares (`maxItems`, `maxLength`, `maxProperties`), each
//! with its source or reason.
//!
//! The rules (`validation::bounds`) and the schema attributes in [`crate::types`] read the same
//! constants, and `api/tests/crd.rs` checks that the generated CRD carries them, so the API
//! server refuses an oversized object before the webhook is called and `kubectl tkeha
//! validate` refuses it offline with the same numbers. Nothing here limits a real cluster:
//! every bound sits well above what a working TKEStack cluster uses.

/// Master machines per cluster (`spec.machines`, `spec.scalingMachines`). Each master runs a
/// stacked etcd member, and etcd recommends at most 7 voting members (etcd FAQ, "What is
/// maximum cluster size?"); 16 leaves room to replace masters one update at a time.
pub const MAX_MACHINES: usize = 16;

/// An IP address as text: `INET6_ADDRSTRLEN` is 46 including the terminating NUL, so the
/// longest textual IPv6 address (`ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`) is 45.
pub const MAX_IP: usize = 45;

/// A CIDR field: one IPv4 and one IPv6 block with their prefixes and a comma (45 + 4, twice,
/// plus 1, rounded up).
pub const MAX_CIDR: usize = 128;

/// An SSH user name: POSIX portable characters, at most 32 bytes, the limit of shadow-utils'
/// `useradd` (and of utmp's `ut_user`), so longer names cannot exist on the masters.
pub const MAX_USERNAME: usize = 32;

/// Decoded SSH password bytes: OpenSSH's sshd refuses longer passwords outright
/// (`MAX_PASSWORD_LEN` in `auth-passwd.c`). The same bound applies to key passphrases.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The base64 text of a password or passphrase: 1024 bytes encode to 1368 characters; the rest
/// allows for line breaks (Go's decoder skips `\r` and `\n`).
pub const MAX_PASSWORD_BASE64: usize = 2048;

/// Decoded private key bytes: the size `kubectl tkeha init --ssh-key` accepts (a 16384-bit
/// RSA key in PEM is under 13 KiB).
pub const MAX_PRIVATE_KEY_BYTES: usize = 64 * 1024;

/// The base64 text of a private key: 64 KiB encode to 87384 characters, plus line breaks.
pub const MAX_PRIVATE_KEY_BASE64: usize = 96 * 1024;

/// A DNS name (RFC 1035 §2.3.4: 255 octets on the wire, 253 characters as text), the
/// Kubernetes limit for a DNS-1123 subdomain (`metadata.name`, `dnsDomain`, SANs).
pub const MAX_DNS_NAME: usize = 253;

/// `spec.publicAlternativeNames`: extra SANs of the apiserver certificate. Real lists hold a
/// few names; 64 keeps the certificate small.
pub const MAX_ALTERNATIVE_NAMES: usize = 64;

/// Labels per machine. Kubernetes bounds keys and values, not their number; 64 is far more
/// than any node carries from its Cluster entry.
pub const MAX_LABELS: usize = 64;

/// A label or taint key: a DNS subdomain prefix (253), `/`, and a 63-character name.
pub const MAX_LABEL_KEY: usize = 253 + 1 + 63;

/// A label or taint value (Kubernetes label value syntax).
pub const MAX_LABEL_VALUE: usize = 63;

/// Taints per machine. A node rarely has more than a handful.
pub const MAX_TAINTS: usize = 32;

/// Entries of one `*ExtraArgs` or `networkArgs` map: kube-apiserver, the component with the
/// most flags, has about 250.
pub const MAX_EXTRA_ARGS: usize = 256;

/// One extra argument's value: 4 KiB holds the longest real values (`--feature-gates`,
/// `--tls-cipher-suites`, admission plugin lists).
pub const MAX_EXTRA_ARG_VALUE: usize = 4096;

/// An extra argument's name (a command-line flag name).
pub const MAX_EXTRA_ARG_NAME: usize = 128;

/// A path on a master (`PATH_MAX` on Linux, including the terminating NUL).
pub const MAX_PATH: usize = 4096;

/// A network interface name: `IFNAMSIZ` is 16 including the NUL.
pub const MAX_INTERFACE: usize = 15;

/// Short identifiers: `type`, `version`, `networkType`, `tenantID`, enum-like strings, a
/// Kubernetes version with a vendor suffix (`1.21.4-tke.3`).
pub const MAX_SHORT: usize = 64;

/// Free text shown to people (`displayName`).
pub const MAX_TEXT: usize = 1024;

/// Generic lists of short strings: `finalizers`, `skipConditions` (TKEStack's provider has
/// about 60 handler names a cluster could skip), etcd SANs and endpoints, `files`.
pub const MAX_LIST: usize = 128;

/// Free-form objects carried through untouched (`bootstrapApps`).
pub const MAX_APPS: usize = 64;

/// Keys of a small map (`hooks`, `oversoldRatio`): TKEStack defines 10 hook types.
pub const MAX_SMALL_MAP: usize = 32;

/// How many entries of a list or map bounded by `max` are decoded: four times its bound. An
/// object that breaks a bound is refused for its length alone, but a Cluster stored before a
/// bound existed (or got stricter) must still be checked master by master on an update
/// (ratcheting), so the decode keeps that much more. Past `decoded(max)` entries only the length
/// is counted (`crate::unknown::Lengths`): nothing in such a list is read, and the rules that
/// compare entries do not run.
pub const fn decoded(max: usize) -> usize {
    max.saturating_mul(4)
}

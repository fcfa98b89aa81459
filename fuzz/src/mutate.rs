//! A seeded, structure-aware mutator: turns a corpus input into a nearby one the way an
//! attacker or a careless user would, so that a fixed number of steps from a fixed seed explores
//! past the syntax checks into the rules.
//!
//! A JSON input is mutated as a tree (a value swapped for an interesting one, a key added from
//! the Cluster and AdmissionReview vocabulary or misspelt, a list element repeated past a
//! bound, a subtree nested or copied), then written compact or pretty, and sometimes damaged
//! as text (`\u` escapes, a duplicated key, a cut, a flipped byte). Any other input (YAML,
//! known_hosts) is mutated by lines and tokens. The generator is ChaCha8, whose sequence is
//! fixed by its specification: the same seed gives the same inputs on every machine.

use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::targets::Target;

/// Field names the rule engine and the AdmissionReview reader look for.
pub const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "generateName",
    "labels",
    "annotations",
    "spec",
    "status",
    "type",
    "version",
    "clusterCIDR",
    "serviceCIDR",
    "dnsDomain",
    "networkDevice",
    "publicAlternativeNames",
    "finalizers",
    "machines",
    "scalingMachines",
    "ip",
    "port",
    "username",
    "password",
    "privateKey",
    "passPhrase",
    "taints",
    "key",
    "value",
    "effect",
    "proxy",
    "features",
    "ha",
    "tke",
    "thirdParty",
    "vip",
    "vrid",
    "vport",
    "ipvs",
    "ipv6DualStack",
    "files",
    "src",
    "dst",
    "hooks",
    "skipConditions",
    "properties",
    "maxNodePodNum",
    "maxClusterServiceNum",
    "oversoldRatio",
    "etcd",
    "local",
    "external",
    "endpoints",
    "serverCertSANs",
    "kubeletExtraArgs",
    "apiServerExtraArgs",
    "bootstrapApps",
    "request",
    "object",
    "oldObject",
    "operation",
    "uid",
    "resource",
    "subResource",
    "dryRun",
    "group",
];

/// Strings that sit on the edges of the rules.
const STRINGS: &[&str] = &[
    "",
    "192.168.1.2",
    "192.168.1.10",
    "10.0.0.1",
    "127.0.0.1",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "169.254.0.1",
    "192.168.1.300",
    "010.0.0.1",
    "::1",
    "fd00::1",
    "2001:db8::10",
    "fe80::1%eth0",
    "10.244.0.0/16",
    "10.96.0.0/12",
    "10.244.0.0/16,fd00::/64",
    "10.0.0.1/33",
    "MTIzNDU2",
    "MTIzNDU2=",
    "!",
    "/w==",
    "root",
    "Root",
    "-root",
    "a;b",
    "$(id)",
    "x\ny",
    "\u{1b}[8m",
    "\u{0}",
    "\u{85}",
    "é",
    "😀",
    "Baremetal",
    "Imported",
    "1.30.4",
    "1.30.4-tke.1",
    "1.30",
    "NoSchedule",
    "SSHJumpServer",
    "SOCKS5",
    "CREATE",
    "UPDATE",
    "DELETE",
    "CONNECT",
    "admission.k8s.io/v1",
    "admission.k8s.io/v1beta1",
    "AdmissionReview",
    "platform.tkestack.io",
    "platform.tkestack.io/v1",
    "clusters",
    "Cluster",
    "cls-a",
    "status",
];

/// Lengths around the bounds of `tkeha_api::limits`.
const LENGTHS: &[usize] = &[
    15, 16, 32, 33, 45, 46, 63, 64, 65, 128, 129, 253, 254, 1025, 2049, 4097,
];

/// Numbers on the edges of ports, VRIDs and counts.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "22",
    "255",
    "256",
    "6443",
    "65535",
    "65536",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1e308",
    "1.5",
    "-0",
];

/// Lines and tokens for inputs that are not JSON (YAML manifests, known_hosts files).
const TOKENS: &[&str] = &[
    "\n",
    "\r\n",
    " ",
    "\t",
    "#",
    ":",
    ": ",
    "- ",
    "---\n",
    "...\n",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "!!str ",
    "? ",
    "|\n",
    ">-\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "\\",
    "@revoked ",
    "@cert-authority ",
    "@unknown ",
    "|1|",
    "|1|AAAA|BBBB ",
    "10.0.0.1",
    "[10.0.0.2]:2222",
    "[10.0.0.1]:22",
    "fd00::1",
    "*.example",
    "!10.0.0.1",
    "10.0.0.1,10.0.0.2",
    "ssh-ed25519 ",
    "ssh-rsa ",
    "ecdsa-sha2-nistp256 ",
    "ssh-ed25519-cert-v01@openssh.com ",
    "AAAAC3NzaC1lZDI1NTE5AAAAIAEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB",
    "AAAAC3NzaC1lZDI1NTE5AAAAIAICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIC",
    "AAAA",
    "=",
    "\u{0}",
    "\u{1b}[8m",
];

/// A seeded mutator.
#[derive(Debug)]
pub struct Mutator {
    rng: ChaCha8Rng,
    /// Longest input produced (bigger ones are cut back), so a fixed run takes a fixed time.
    pub max_len: usize,
}

impl Mutator {
    /// A mutator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            max_len: 64 * 1024,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.rng.random_range(0..n)
        }
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One to four mutations of `input` for `target`.
    pub fn mutate(&mut self, input: &[u8], target: Target) -> Vec<u8> {
        let mut out = input.to_vec();
        let rounds = 1 + self.below(4);
        for _ in 0..rounds {
            out = match (target, serde_json::from_slice::<Value>(&out)) {
                (Target::KnownHosts, _) | (_, Err(_)) => self.text(&out),
                (_, Ok(mut value)) => {
                    self.tree(&mut value);
                    let mut text = if self.chance(50) {
                        serde_json::to_vec(&value).unwrap_or_default()
                    } else {
                        serde_json::to_vec_pretty(&value).unwrap_or_default()
                    };
                    if self.chance(20) {
                        text = self.text(&text);
                    }
                    text
                }
            };
            out.truncate(self.max_len);
        }
        out
    }

    /// A mutation of a JSON tree.
    fn tree(&mut self, root: &mut Value) {
        let count = nodes(root);
        let target = self.below(count);
        let mut seen = 0;
        let Some(node) = nth_node(root, target, &mut seen) else {
            return;
        };
        match self.below(10) {
            0 | 1 => *node = self.scalar(),
            2 => {
                let key = self.key();
                let value = self.scalar();
                match node {
                    Value::Object(o) => {
                        o.insert(key, value);
                    }
                    other => {
                        let mut o = Map::new();
                        o.insert(key, value);
                        *other = Value::Object(o);
                    }
                }
            }
            3 => match node {
                Value::Object(o) if !o.is_empty() => {
                    let i = self.below(o.len());
                    if let Some(k) = o.keys().nth(i).cloned() {
                        o.shift_remove(&k);
                    }
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = self.below(a.len());
                    a.remove(i);
                }
                other => *other = Value::Null,
            },
            4 | 5 => match node {
                // Repeat an element: past the bounds on machines, taints, names...
                Value::Array(a) if !a.is_empty() => {
                    let i = self.below(a.len());
                    let times = *self.pick(&[1usize, 2, 15, 16, 17, 33, 65, 129, 300]);
                    let item = a[i].clone();
                    a.extend(std::iter::repeat_n(item, times));
                }
                Value::Object(o) if !o.is_empty() => {
                    let i = self.below(o.len());
                    if let Some((k, v)) = o.iter().nth(i).map(|(k, v)| (k.clone(), v.clone())) {
                        let times = *self.pick(&[1usize, 33, 65, 257]);
                        for n in 0..times {
                            o.insert(format!("{k}{n}"), v.clone());
                        }
                    }
                }
                other => *other = Value::Array(vec![other.clone(); 17]),
            },
            6 => {
                let inner = node.clone();
                *node = if self.chance(50) {
                    Value::Array(vec![inner])
                } else {
                    let mut o = Map::new();
                    o.insert(self.key(), inner);
                    Value::Object(o)
                };
            }
            7 => match node {
                // Rename a key to a near miss (the unknown-field rules).
                Value::Object(o) if !o.is_empty() => {
                    let i = self.below(o.len());
                    if let Some(k) = o.keys().nth(i).cloned()
                        && let Some(v) = o.shift_remove(&k)
                    {
                        let misspelt = self.misspell(&k);
                        o.insert(misspelt, v);
                    }
                }
                other => *other = Value::String(self.misspell("machines")),
            },
            8 => {
                *node = if self.chance(50) {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            }
            _ => {
                // A long string at a length bound, sometimes with control characters.
                let len = *self.pick(LENGTHS);
                let fill = *self.pick(&["a", "1", "é", "\u{1b}", "-", "a."]);
                *node = Value::String(fill.repeat(len));
            }
        }
    }

    fn scalar(&mut self) -> Value {
        match self.below(4) {
            0 => {
                let n = self.pick(NUMBERS);
                serde_json::from_str(n).unwrap_or(Value::Null)
            }
            1 => self
                .pick(&[Value::Null, Value::Bool(true), Value::Bool(false)])
                .clone(),
            _ => Value::String(self.pick(STRINGS).to_string()),
        }
    }

    fn key(&mut self) -> String {
        if self.chance(80) {
            self.pick(KEYS).to_string()
        } else {
            let k = self.pick(KEYS).to_string();
            self.misspell(&k)
        }
    }

    /// A near miss of `word`: a case change, a dropped, doubled or swapped letter.
    fn misspell(&mut self, word: &str) -> String {
        let mut chars: Vec<char> = word.chars().collect();
        if chars.is_empty() {
            return "x".into();
        }
        let i = self.below(chars.len());
        match self.below(4) {
            0 => {
                chars[i] = if chars[i].is_uppercase() {
                    chars[i].to_ascii_lowercase()
                } else {
                    chars[i].to_ascii_uppercase()
                }
            }
            1 => {
                chars.remove(i);
            }
            2 => chars.insert(i, chars[i]),
            _ if chars.len() > 1 => {
                let j = (i + 1) % chars.len();
                chars.swap(i, j);
            }
            _ => chars.push('x'),
        }
        chars.into_iter().collect()
    }

    /// A mutation of an input as text: lines and tokens, escapes, cuts and flipped bytes.
    fn text(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        match self.below(9) {
            0 => {
                let at = self.below(out.len() + 1);
                let token = self.pick(TOKENS).as_bytes().to_vec();
                out.splice(at..at, token);
            }
            1 => {
                // Repeat a line.
                let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
                let i = self.below(lines.len());
                let times = *self.pick(&[1usize, 2, 10, 100]);
                let mut o = Vec::with_capacity(input.len() + lines[i].len() * times);
                for (j, line) in lines.iter().enumerate() {
                    let n = if j == i { times + 1 } else { 1 };
                    for _ in 0..n {
                        o.extend_from_slice(line);
                        o.push(b'\n');
                    }
                }
                out = o;
            }
            2 => {
                // Drop a line.
                let lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
                let i = self.below(lines.len());
                out = lines
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, l)| l.iter().copied().chain(std::iter::once(b'\n')))
                    .collect();
            }
            3 if !out.is_empty() => {
                let at = self.below(out.len());
                out[at] ^= 1 << self.below(8);
            }
            4 if !out.is_empty() => {
                let cut = self.below(out.len());
                out.truncate(cut);
            }
            5 => {
                // A `\u` escape inside a string (the webhook's fast path steps aside).
                let escape =
                    *self.pick(&["\\u0041", "\\ud800", "\\udc00\\ud800", "\\u0000", "\\u001b"]);
                if let Some(at) = find_quote(&out, self.below(out.len() + 1)) {
                    out.splice(at + 1..at + 1, escape.bytes());
                }
            }
            6 => {
                // Duplicate a key in the text (`"spec":{` -> `"spec":{"spec":1,`).
                let key = *self.pick(KEYS);
                let needle = format!("\"{key}\":");
                if let Some(at) = memfind(&out, needle.as_bytes()) {
                    out.splice(at..at, format!("\"{key}\":null,").bytes());
                }
            }
            7 => {
                let at = self.below(out.len() + 1);
                let len = *self.pick(LENGTHS);
                out.splice(at..at, std::iter::repeat_n(b'a', len));
            }
            _ => {
                let at = self.below(out.len() + 1);
                let byte = self.below(256) as u8;
                out.insert(at, byte);
            }
        }
        out
    }
}

/// Number of nodes of a tree.
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(o) => o.values().map(nodes).sum(),
        _ => 0,
    }
}

/// The `n`-th node in pre-order.
fn nth_node<'v>(v: &'v mut Value, n: usize, seen: &mut usize) -> Option<&'v mut Value> {
    if *seen == n {
        return Some(v);
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().find_map(|c| nth_node_inner(c, n, seen)),
        Value::Object(o) => o.values_mut().find_map(|c| nth_node_inner(c, n, seen)),
        _ => None,
    }
}

fn nth_node_inner<'v>(v: &'v mut Value, n: usize, seen: &mut usize) -> Option<&'v mut Value> {
    nth_node(v, n, seen)
}

/// The first `"` at or after `from`.
fn find_quote(text: &[u8], from: usize) -> Option<usize> {
    text.get(from..)?
        .iter()
        .position(|b| *b == b'"')
        .map(|i| i + from)
}

fn memfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let seed = br#"{"spec":{"machines":[{"ip":"10.0.0.1"}]}}"#;
        let run = |s| {
            let mut m = Mutator::new(s);
            (0..50)
                .map(|_| m.mutate(seed, Target::Review))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}

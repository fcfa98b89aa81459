//! TKEStack's own keepalived on a master: where it lives, how to recognise its config (the template's fixed parts, not its variables), and the known weaknesses of that config.
//!
//! Facts, from tkestack/tke:
//! - `pkg/platform/provider/baremetal/phases/keepalived/keepalived.go` (`Install`) renders the
//!   config template with three variables (`.Interface`, `.VRID`, `.VIP`) into
//!   `/etc/keepalived/keepalived.conf`, and the pod template (variable `.Image`) into the kubelet
//!   static pod manifest `/etc/kubernetes/manifests/keepalived.yaml`; the paths are the
//!   `KeepavliedConfigFile` and `KeepavlivedManifestFile` constants of
//!   `pkg/platform/provider/baremetal/constants/constants.go`.
//! - `pkg/platform/provider/baremetal/manifests/keepalived/keepalived.conf`: `global_defs` with
//!   `enable_script_security` and `script_user root`; a `vrrp_script chk` (a curl of the local
//!   apiserver, `interval 2`, `weight -10`, `fall 3`, `rise 1`); a `vrrp_instance VI_1` with
//!   `state BACKUP`, `priority 100`, `advert_int 1`, `auth_type PASS` / `auth_pass 1111`, the VIP
//!   without a prefix, `track_script { chk }`, and neither `nopreempt` nor unicast peers.
//! - `manifests/keepalived/keepalived.yaml`: a Pod `keepalived` in `kube-system`, `hostNetwork:
//!   true`, args `--log-console --dont-fork`, `NET_ADMIN`, hostPath `/etc/keepalived/` mounted at
//!   `/etc/keepalived/`.
//!
//! "Matches the template" means: the same statements in the same blocks (in any order, with any
//! spacing and comments), every fixed value equal, and the variables well-formed (an interface
//! name, a VRID in 1..=255, one IP address). The values inside `vrrp_script chk` also count as
//! variables: they changed between TKEStack releases (an `nc` probe, then curl of
//! `http://127.0.0.1/healthz` with `fall 1`, then curl of `https://127.0.0.1:6443/healthz` with
//! `fall 3`), and a config from any of them is TKEStack's.

use std::net::IpAddr;

use crate::report::Warning;

/// TKEStack's kubelet static pod manifest for keepalived.
pub const STATIC_POD_MANIFEST: &str = "/etc/kubernetes/manifests/keepalived.yaml";
/// Where a tkeha drill parks that manifest: a root-owned directory (mode 0700) beside the
/// manifests directory, outside kubelet's `staticPodPath` and on the same file system (the moves
/// are renames).
pub const DRILL_DIR: &str = "/etc/kubernetes/tkeha-drill";
/// The parked manifest during a drill.
pub const PARKED_MANIFEST: &str = "/etc/kubernetes/tkeha-drill/keepalived.yaml";
/// Largest config or manifest read from a master.
pub const MAX_FILE_BYTES: usize = 64 * 1024;

/// The fixed `auth_pass` of TKEStack's template.
pub const AUTH_PASS: &str = "1111";

/// The health check of TKEStack's config (the values of its `vrrp_script chk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// Seconds between two runs.
    pub interval: u32,
    /// Failures in a row before the check counts as failed.
    pub fall: u32,
    /// Successes in a row before it counts as passing again.
    pub rise: u32,
    /// Priority change while it fails.
    pub weight: i32,
}

/// A keepalived.conf that matches TKEStack's template, with its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TkestackConf {
    /// `interface` of `VI_1`.
    pub interface: String,
    /// `virtual_router_id` of `VI_1`.
    pub vrid: u8,
    /// The one address of `virtual_ipaddress`.
    pub vip: IpAddr,
    /// The values of `vrrp_script chk`.
    pub check: HealthCheck,
}

/// One word of the template: fixed, or a variable of some kind.
#[derive(Debug, Clone, Copy)]
enum Word {
    Is(&'static str),
    Interface,
    Vrid,
    Ip,
    Uint,
    Int,
    Text,
}

/// One statement of the template: its words and, for a block, its statements.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    words: &'static [Word],
    block: Option<&'static [Pattern]>,
}

const fn line(words: &'static [Word]) -> Pattern {
    Pattern { words, block: None }
}

const fn block(words: &'static [Word], block: &'static [Pattern]) -> Pattern {
    Pattern {
        words,
        block: Some(block),
    }
}

use Word::{Int, Interface, Ip, Is, Text, Uint, Vrid};

/// TKEStack's template as statements.
const TEMPLATE: &[Pattern] = &[
    block(
        &[Is("global_defs")],
        &[
            line(&[Is("enable_script_security")]),
            line(&[Is("script_user"), Is("root")]),
        ],
    ),
    block(
        &[Is("vrrp_script"), Is("chk")],
        &[
            line(&[Is("script"), Text]),
            line(&[Is("interval"), Uint]),
            line(&[Is("weight"), Int]),
            line(&[Is("fall"), Uint]),
            line(&[Is("rise"), Uint]),
        ],
    ),
    block(
        &[Is("vrrp_instance"), Is("VI_1")],
        &[
            line(&[Is("state"), Is("BACKUP")]),
            line(&[Is("interface"), Interface]),
            line(&[Is("virtual_router_id"), Vrid]),
            line(&[Is("priority"), Is("100")]),
            line(&[Is("advert_int"), Is("1")]),
            block(
                &[Is("authentication")],
                &[
                    line(&[Is("auth_type"), Is("PASS")]),
                    line(&[Is("auth_pass"), Is(AUTH_PASS)]),
                ],
            ),
            block(&[Is("virtual_ipaddress")], &[line(&[Ip])]),
            block(&[Is("track_script")], &[line(&[Is("chk")])]),
        ],
    ),
];

/// One statement of a config: its words, and its statements when it opens a block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stmt {
    words: Vec<String>,
    block: Option<Vec<Stmt>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

/// Deepest block nesting accepted (keepalived's own configs nest 3 deep).
const MAX_DEPTH: usize = 8;

/// keepalived's syntax as tokens: words (a `"quoted text"` is one word), `{`, `}`, and the end
/// of each line. `#` and `!` start a comment outside quotes.
fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, tokens: &mut Vec<Token>| {
        if !word.is_empty() {
            tokens.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                flush(&mut word, &mut tokens);
                tokens.push(Token::End);
            }
            '#' | '!' if word.is_empty() => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '"' => {
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\n') | None => return Err("a quote is not closed".into()),
                        Some(c) => quoted.push(c),
                    }
                }
                word.push_str(&quoted);
                if word.is_empty() {
                    tokens.push(Token::Word(String::new()));
                }
            }
            '{' | '}' => {
                flush(&mut word, &mut tokens);
                tokens.push(if c == '{' { Token::Open } else { Token::Close });
            }
            c if c.is_whitespace() => flush(&mut word, &mut tokens),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut tokens);
    tokens.push(Token::End);
    Ok(tokens)
}

/// The statements up to the end of the block (or of the text at depth 0).
fn parse_block(tokens: &[Token], at: &mut usize, depth: usize) -> Result<Vec<Stmt>, String> {
    if depth > MAX_DEPTH {
        return Err(format!("blocks nest deeper than {MAX_DEPTH}"));
    }
    let mut stmts = Vec::new();
    loop {
        let mut words = Vec::new();
        loop {
            match tokens.get(*at) {
                Some(Token::Word(w)) => {
                    words.push(w.clone());
                    *at += 1;
                }
                Some(Token::End) => {
                    *at += 1;
                    if !words.is_empty() {
                        stmts.push(Stmt { words, block: None });
                    }
                    break;
                }
                Some(Token::Open) => {
                    *at += 1;
                    let inner = parse_block(tokens, at, depth + 1)?;
                    stmts.push(Stmt {
                        words,
                        block: Some(inner),
                    });
                    break;
                }
                Some(Token::Close) => {
                    *at += 1;
                    if depth == 0 {
                        return Err("a `}` closes no block".into());
                    }
                    if !words.is_empty() {
                        stmts.push(Stmt { words, block: None });
                    }
                    return Ok(stmts);
                }
                None => {
                    if depth > 0 {
                        return Err("a block is not closed".into());
                    }
                    if !words.is_empty() {
                        stmts.push(Stmt { words, block: None });
                    }
                    return Ok(stmts);
                }
            }
        }
    }
}

fn parse_conf(text: &str) -> Result<Vec<Stmt>, String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(format!("it is larger than {MAX_FILE_BYTES} bytes"));
    }
    let tokens = tokenize(text)?;
    parse_block(&tokens, &mut 0, 0)
}

fn word_matches(pattern: Word, word: &str) -> bool {
    match pattern {
        Is(fixed) => word == fixed,
        Interface => {
            !word.is_empty()
                && word.len() <= 15
                && word
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '/' && c != ':')
        }
        Vrid => word.parse::<u8>().is_ok_and(|v| v >= 1),
        Ip => word.parse::<IpAddr>().is_ok(),
        Uint => word.parse::<u32>().is_ok(),
        Int => word.parse::<i32>().is_ok(),
        Text => true,
    }
}

fn describe_word(w: &Word) -> String {
    match w {
        Is(fixed) => (*fixed).to_string(),
        Interface => "<interface>".into(),
        Vrid => "<vrid>".into(),
        Ip => "<VIP>".into(),
        Uint | Int => "<number>".into(),
        Text => "<text>".into(),
    }
}

fn describe_pattern(p: &Pattern) -> String {
    p.words
        .iter()
        .map(describe_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A statement's words for a message: control characters escaped, at most 60 characters.
fn describe_stmt(s: &Stmt) -> String {
    let text = s.words.join(" ");
    let mut shown: String = text
        .chars()
        .take(60)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().count() > 60 {
        shown.push_str("...");
    }
    shown
}

fn stmt_matches(p: &Pattern, s: &Stmt) -> bool {
    p.words.len() == s.words.len()
        && p.words
            .iter()
            .zip(&s.words)
            .all(|(p, w)| word_matches(*p, w))
        && p.block.is_some() == s.block.is_some()
}

/// Match the statements of one block; `place` names the block in the reason for a mismatch.
fn match_block(patterns: &[Pattern], stmts: &[Stmt], place: &str) -> Result<(), String> {
    let mut used = vec![false; stmts.len()];
    for p in patterns {
        let found = stmts
            .iter()
            .enumerate()
            .find(|(i, s)| !used[*i] && stmt_matches(p, s));
        let Some((i, s)) = found else {
            // The statement the reader would compare it with: the same keyword, or, for a
            // statement of variables only, the first one left over.
            let near = match p.words.first() {
                Some(Is(keyword)) => stmts
                    .iter()
                    .find(|s| s.words.first().map(String::as_str) == Some(*keyword)),
                _ => stmts
                    .iter()
                    .enumerate()
                    .find(|(i, _)| !used[*i])
                    .map(|(_, s)| s),
            };
            return Err(match near {
                Some(s) => format!(
                    "{place} has `{}` where TKEStack's template has `{}`",
                    describe_stmt(s),
                    describe_pattern(p)
                ),
                None => format!("{place} has no `{}`", describe_pattern(p)),
            });
        };
        used[i] = true;
        if let (Some(inner), Some(inner_stmts)) = (p.block, &s.block) {
            let name = format!("`{}`", describe_pattern(p));
            let inner_place = if place == "it" {
                name
            } else {
                format!("{place} > {name}")
            };
            match_block(inner, inner_stmts, &inner_place)?;
        }
    }
    if let Some((_, extra)) = stmts.iter().enumerate().find(|(i, _)| !used[*i]) {
        return Err(format!(
            "{place} has `{}`, which TKEStack's template does not",
            describe_stmt(extra)
        ));
    }
    Ok(())
}

/// The words of the statement at `path` (keywords, one per block level).
fn find<'a>(stmts: &'a [Stmt], path: &[&str]) -> Option<&'a Stmt> {
    let (first, rest) = path.split_first()?;
    let s = stmts
        .iter()
        .find(|s| s.words.first().map(String::as_str) == Some(*first))?;
    if rest.is_empty() {
        Some(s)
    } else {
        find(s.block.as_deref()?, rest)
    }
}

fn value<T: std::str::FromStr>(stmts: &[Stmt], path: &[&str]) -> Option<T> {
    find(stmts, path)?.words.get(1)?.parse().ok()
}

/// Whether `text` is a keepalived.conf from TKEStack's template, and its variables; `Err` says
/// where it departs from the template (for a message).
pub fn match_conf(text: &str) -> Result<TkestackConf, String> {
    let stmts = parse_conf(text).map_err(|e| format!("it cannot be read: {e}"))?;
    match_block(TEMPLATE, &stmts, "it")?;
    let instance = find(&stmts, &["vrrp_instance"])
        .and_then(|s| s.block.as_deref())
        .unwrap_or_default();
    let vip = find(instance, &["virtual_ipaddress"])
        .and_then(|s| s.block.as_deref())
        .and_then(|b| b.first())
        .and_then(|s| s.words.first())
        .and_then(|w| w.parse().ok());
    let script = find(&stmts, &["vrrp_script"])
        .and_then(|s| s.block.as_deref())
        .unwrap_or_default();
    let conf = (|| {
        Some(TkestackConf {
            interface: find(instance, &["interface"])?.words.get(1)?.clone(),
            vrid: value(instance, &["virtual_router_id"])?,
            vip: vip?,
            check: HealthCheck {
                interval: value(script, &["interval"])?,
                fall: value(script, &["fall"])?,
                rise: value(script, &["rise"])?,
                weight: value(script, &["weight"])?,
            },
        })
    })();
    conf.ok_or_else(|| "its variables cannot be read".into())
}

/// Whether `text` is a keepalived static pod as TKEStack writes it: a Pod on the host network
/// that mounts the host's `/etc/keepalived` (where its config lives). `Err` says what is missing.
pub fn match_static_pod(text: &str) -> Result<(), String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(format!("it is larger than {MAX_FILE_BYTES} bytes"));
    }
    let pod = tkeha_api::manifest::parse_manifest(text)
        .map_err(|e| format!("it is not YAML or JSON: {e}"))?;
    if pod.get("kind").and_then(|k| k.as_str()) != Some("Pod") {
        return Err("it is not a Pod".into());
    }
    let spec = pod.get("spec");
    if spec
        .and_then(|s| s.get("hostNetwork"))
        .and_then(|h| h.as_bool())
        != Some(true)
    {
        return Err("the Pod is not on the host network (hostNetwork: true)".into());
    }
    let mounts_conf = spec
        .and_then(|s| s.get("volumes"))
        .and_then(|v| v.as_array())
        .is_some_and(|volumes| {
            volumes.iter().any(|v| {
                v.get("hostPath")
                    .and_then(|h| h.get("path"))
                    .and_then(|p| p.as_str())
                    .is_some_and(|p| p.trim_end_matches('/') == "/etc/keepalived")
            })
        });
    if !mounts_conf {
        return Err("the Pod does not mount the host's /etc/keepalived".into());
    }
    Ok(())
}

/// tkeha's own detection figure (interval 1, fall 2), measured: BENCHMARKS.md, apiserver death.
const TKEHA_DETECTION: &str = "about 1.7 s";

/// The weaknesses of a TKEStack config, each with its effect. Codes: `tkestack-preempt`,
/// `tkestack-auth-pass`, `tkestack-multicast`, `tkestack-slow-detection`.
pub fn weaknesses(conf: &TkestackConf) -> Vec<Warning> {
    let mut out = vec![
        Warning {
            code: "tkestack-preempt".into(),
            message: "no `nopreempt`: a master whose priority is above the holder's takes the VIP \
                      at once, so a master that recovers while the holder's check fails (100 \
                      against 90) takes the VIP back: a second move, a second short outage \
                      (tkeha's masters use nopreempt and stay BACKUP)"
                .into(),
        },
        Warning {
            code: "tkestack-auth-pass".into(),
            message: format!(
                "`auth_pass {AUTH_PASS}` is the same on every TKEStack cluster and printed in its \
                 source: any host on the segment can send adverts this cluster accepts and take \
                 the VIP (tkeha generates one per cluster)"
            ),
        },
        Warning {
            code: "tkestack-multicast".into(),
            message: format!(
                "VRRP adverts go to multicast 224.0.0.18 (no unicast_peer): many cloud and \
                 L2-restricted networks drop multicast, and then every master takes the VIP \
                 (split brain); virtual_router_id {} must also be unique on the segment (tkeha \
                 sends unicast adverts to the other masters)",
                conf.vrid
            ),
        },
    ];
    let detect = u64::from(conf.check.interval) * u64::from(conf.check.fall);
    if detect > 2 {
        out.push(Warning {
            code: "tkestack-slow-detection".into(),
            message: format!(
                "the health check (every {} s, fall {}) notices a dead apiserver after about {detect} s, \
                 and only then does the VIP start to move; tkeha checks every 1 s with fall 2 and \
                 moves the VIP in {TKEHA_DETECTION}",
                conf.check.interval, conf.check.fall
            ),
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;

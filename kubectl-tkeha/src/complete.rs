//! The hidden `__complete` command: Cobra's completion protocol, which kubectl >= 1.26 uses for plugins.
//!
//! kubectl runs `kubectl_complete-tkeha ARGS... PARTIAL`, which runs `kubectl tkeha __complete
//! ARGS... PARTIAL`. We print one candidate per line (`value<TAB>description`), then a line
//! `:<directive>`: `:4` (no file completion) or `:0` (let the shell complete file names, after
//! flags that take a file such as `-f`). Candidates come from the clap definition itself.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Arg, Command, CommandFactory, ValueHint};

use crate::cli::Cli;

/// Cobra's `ShellCompDirectiveDefault`: the shell may fall back to file names.
pub const DIRECTIVE_DEFAULT: u32 = 0;
/// Cobra's `ShellCompDirectiveNoFileComp`.
pub const DIRECTIVE_NO_FILE: u32 = 4;

/// The name of the hidden command.
pub const COMMAND: &str = "__complete";

/// The candidates for one completion request and the directive for the shell.
#[derive(Debug, PartialEq, Eq)]
pub struct Completion {
    /// `(value, description)`; the description may be empty.
    pub candidates: Vec<(String, String)>,
    pub directive: u32,
}

impl Completion {
    fn none(directive: u32) -> Self {
        Completion {
            candidates: Vec::new(),
            directive,
        }
    }

    /// The protocol text: candidates, one per line, then `:<directive>`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (value, help) in &self.candidates {
            out.push_str(value);
            if !help.is_empty() {
                out.push('\t');
                out.push_str(help);
            }
            out.push('\n');
        }
        out.push_str(&format!(":{}\n", self.directive));
        out
    }
}

/// The words after `__complete` when the process was started as `kubectl-tkeha __complete ...`.
pub fn requested(args: &[OsString]) -> Option<Vec<String>> {
    if args.get(1)? != COMMAND {
        return None;
    }
    Some(
        args.iter()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
}

pub fn run(words: &[String]) -> ExitCode {
    let mut cmd = Cli::command();
    cmd.build();
    match crate::render::to_stdout(complete(&cmd, words).render()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// Complete the last word of `words` (empty string = a new word) against a built `root`.
pub fn complete(root: &Command, words: &[String]) -> Completion {
    let (partial, done) = match words.split_last() {
        Some((last, rest)) => (last.as_str(), rest),
        None => ("", &[][..]),
    };
    let mut cur = root;
    let mut pending: Option<&Arg> = None;
    let mut seen: Vec<&str> = Vec::new();
    let mut positionals = 0usize;
    for word in done {
        if pending.take().is_some() {
            continue;
        }
        if word == "--" {
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            if let Some(arg) = find_long(cur, name) {
                seen.push(arg.get_id().as_str());
                if takes_value(arg) && !inline_value {
                    pending = Some(arg);
                }
            }
            continue;
        }
        if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = shorts.chars();
            if let Some(arg) = chars.next().and_then(|c| find_short(cur, c)) {
                seen.push(arg.get_id().as_str());
                if takes_value(arg) && chars.as_str().is_empty() {
                    pending = Some(arg);
                }
            }
            continue;
        }
        if let Some(sub) = cur.find_subcommand(word) {
            cur = sub;
            seen.clear();
            positionals = 0;
        } else {
            positionals += 1;
        }
    }
    if let Some(arg) = pending {
        return complete_value(arg, partial, "");
    }
    if let Some((name, value)) = partial.strip_prefix("--").and_then(|p| p.split_once('=')) {
        return match find_long(cur, name) {
            Some(arg) if takes_value(arg) => complete_value(arg, value, &format!("--{name}=")),
            _ => Completion::none(DIRECTIVE_NO_FILE),
        };
    }
    if partial.starts_with('-') {
        return complete_flags(cur, partial, &seen);
    }
    if cur.has_subcommands() {
        let candidates = cur
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name().starts_with(partial))
            .map(|s| (s.get_name().to_owned(), first_line(s.get_about())))
            .collect();
        return Completion {
            candidates,
            directive: DIRECTIVE_NO_FILE,
        };
    }
    match cur.get_positionals().nth(positionals) {
        Some(arg) => complete_value(arg, partial, ""),
        None => Completion::none(DIRECTIVE_NO_FILE),
    }
}

fn complete_value(arg: &Arg, partial: &str, prefix: &str) -> Completion {
    let values = arg.get_possible_values();
    if !values.is_empty() {
        let candidates = values
            .iter()
            .filter(|v| !v.is_hide_set() && v.get_name().starts_with(partial))
            .map(|v| {
                (
                    format!("{prefix}{}", v.get_name()),
                    first_line(v.get_help()),
                )
            })
            .collect();
        return Completion {
            candidates,
            directive: DIRECTIVE_NO_FILE,
        };
    }
    match arg.get_value_hint() {
        ValueHint::FilePath | ValueHint::AnyPath | ValueHint::DirPath => {
            Completion::none(DIRECTIVE_DEFAULT)
        }
        _ => Completion::none(DIRECTIVE_NO_FILE),
    }
}

fn complete_flags(cur: &Command, partial: &str, seen: &[&str]) -> Completion {
    let with_shorts = !partial.starts_with("--");
    let mut candidates = Vec::new();
    for arg in cur.get_arguments() {
        if arg.is_hide_set() || arg.is_positional() {
            continue;
        }
        let repeatable = matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        ) || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        if !repeatable && seen.contains(&arg.get_id().as_str()) {
            continue;
        }
        let help = first_line(arg.get_help());
        if let Some(long) = arg.get_long() {
            let flag = format!("--{long}");
            if flag.starts_with(partial) {
                candidates.push((flag, help.clone()));
            }
        }
        if with_shorts && let Some(short) = arg.get_short() {
            let flag = format!("-{short}");
            if flag.starts_with(partial) {
                candidates.push((flag, help));
            }
        }
    }
    Completion {
        candidates,
        directive: DIRECTIVE_NO_FILE,
    }
}

fn find_long<'a>(cmd: &'a Command, name: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(name)
            || a.get_all_aliases()
                .is_some_and(|aliases| aliases.contains(&name))
    })
}

fn find_short(cmd: &Command, c: char) -> Option<&Arg> {
    cmd.get_arguments().find(|a| a.get_short() == Some(c))
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn first_line(text: Option<&clap::builder::StyledStr>) -> String {
    text.map(|t| t.to_string())
        .and_then(|t| t.lines().next().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_words(words: &[&str]) -> Completion {
        let mut cmd = Cli::command();
        cmd.build();
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        complete(&cmd, &words)
    }

    fn values(c: &Completion) -> Vec<&str> {
        c.candidates.iter().map(|(v, _)| v.as_str()).collect()
    }

    #[test]
    fn lists_commands_without_files() {
        let c = run_words(&[""]);
        assert_eq!(c.directive, DIRECTIVE_NO_FILE);
        for name in [
            "init",
            "encode-password",
            "validate",
            "check",
            "provision",
            "status",
            "drill",
            "uninstall",
            "completion",
        ] {
            assert!(
                values(&c).contains(&name),
                "{name} missing from {:?}",
                values(&c)
            );
        }
        assert!(!values(&c).contains(&COMMAND));
    }

    #[test]
    fn filters_commands_by_prefix() {
        let c = run_words(&["va"]);
        assert_eq!(values(&c), ["validate"]);
        assert!(c.candidates[0].1.contains("webhook"), "{:?}", c.candidates);
    }

    #[test]
    fn files_after_filename_flag() {
        assert_eq!(
            run_words(&["validate", "-f", ""]),
            Completion::none(DIRECTIVE_DEFAULT)
        );
        assert_eq!(
            run_words(&["validate", "--old", "cl"]),
            Completion::none(DIRECTIVE_DEFAULT)
        );
        assert_eq!(
            run_words(&["init", "--ssh-key", ""]).directive,
            DIRECTIVE_DEFAULT
        );
        assert_eq!(run_words(&["check", "-f", ""]).directive, DIRECTIVE_DEFAULT);
    }

    #[test]
    fn enum_values_after_value_flags() {
        assert_eq!(
            values(&run_words(&["validate", "-f", "x", "-o", ""])),
            ["text", "json", "yaml"]
        );
        assert_eq!(
            values(&run_words(&["init", "--ha", "t"])),
            ["tke", "third-party"]
        );
        assert_eq!(
            values(&run_words(&["init", "--ha=th"])),
            ["--ha=third-party"]
        );
        assert_eq!(values(&run_words(&["completion", "k"])), ["kubectl"]);
    }

    #[test]
    fn flags_of_the_current_command_skip_used_ones() {
        let c = run_words(&["validate", "-f", "x.yaml", "--"]);
        let v = values(&c);
        assert!(
            v.contains(&"--old") && v.contains(&"--output") && v.contains(&"--kubeconfig"),
            "{v:?}"
        );
        assert!(!v.contains(&"--filename"), "{v:?}");
        let c = run_words(&["init", "--master", "1.2.3.4", "--ma"]);
        assert_eq!(values(&c), ["--master"]);
        let c = run_words(&["validate", "-"]);
        assert!(values(&c).contains(&"-f"), "{:?}", values(&c));
    }

    #[test]
    fn free_values_complete_nothing() {
        assert_eq!(
            run_words(&["init", "--vip", ""]),
            Completion::none(DIRECTIVE_NO_FILE)
        );
        assert_eq!(
            run_words(&["encode-password", ""]),
            Completion::none(DIRECTIVE_NO_FILE)
        );
    }

    #[test]
    fn render_ends_with_the_directive() {
        let c = Completion {
            candidates: vec![("a".into(), "first".into()), ("b".into(), String::new())],
            directive: 4,
        };
        assert_eq!(c.render(), "a\tfirst\nb\n:4\n");
    }

    #[test]
    fn requested_only_for_the_hidden_command() {
        let args: Vec<OsString> = ["kubectl-tkeha", "__complete", "va"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(requested(&args), Some(vec!["va".to_owned()]));
        let args: Vec<OsString> = ["kubectl-tkeha", "validate"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(requested(&args), None);
    }
}

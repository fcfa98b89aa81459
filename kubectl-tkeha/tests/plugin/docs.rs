//! The documentation against the code: every relative link and anchor in the Markdown pages
//! resolves, and every `console` block of README.md and docs/*.md is run against the built
//! binaries and matches them byte for byte, or says in a marker why it cannot run offline.
//!
//! How a page feeds this test:
//! - A ```` ```console ```` block holds `$ COMMAND` lines (a line ending in `\` continues the
//!   command on the next line) and, after each, exactly what it prints: stdout and stderr merged in
//!   the order they are written, as a terminal shows them. Each block runs in a fresh directory
//!   under bash, with `kubectl` and the freshly built `kubectl-tkeha` (and its completion shim) on
//!   `PATH`, `HOME` set to that directory, `$KUBECONFIG` naming a file that does not exist, and
//!   stdin empty; so `$ kubectl tkeha ...` runs through kubectl's plugin dispatch, and `$ echo $?`
//!   prints the previous command's exit code.
//! - The directory holds every file of `docs/examples/`, and every earlier block of the same page
//!   whose info string names a file (```` ```yaml file=cls-broken.yaml ````), with that block's text.
//! - A block that cannot run here (it needs masters over SSH, an API server, a cluster or root's
//!   system directories) is preceded directly by `<!-- not run: REASON -->`. Every other console
//!   block is run: none escapes silently. A fenced block with `$ ` lines must be a console block.
//! - Normalised, because it must vary: the plugin's version in the output is shown as
//!   [`DOC_VERSION`]. Nothing else is.

use super::harness::Kubectl;
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The version the documentation's examples show; the binary's own version is replaced by it.
const DOC_VERSION: &str = "0.1.0";

/// The marker that exempts the console block right after it from being run.
const NOT_RUN: &str = "<!-- not run:";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// README.md and docs/*.md: the pages whose console blocks run.
fn doc_pages() -> Vec<PathBuf> {
    let root = repo();
    let mut pages = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Every page whose links are checked: the doc pages, ARCHITECTURE.md, BENCHMARKS.md and the
/// chart's Markdown files.
fn linked_pages() -> Vec<PathBuf> {
    let root = repo();
    let mut pages = doc_pages();
    pages.push(root.join("ARCHITECTURE.md"));
    pages.push(root.join("BENCHMARKS.md"));
    let mut dirs = vec![root.join("charts")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// GitHub's anchor for a heading: lower case, letters, digits, `-` and `_` kept, spaces become
/// `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut found = HashSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = &mut heading {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let mut anchor = base.clone();
                let mut n = 0;
                while found.contains(&anchor) {
                    n += 1;
                    anchor = format!("{base}-{n}");
                }
                found.insert(anchor);
            }
            _ => {}
        }
    }
    found
}

/// Every relative link of `page` that does not resolve: a missing file, or a missing anchor in
/// a Markdown file (the page itself for `#anchor`). One line each, with the page's line number.
fn broken_links(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut broken = Vec::new();
    for (event, range) in Parser::new(&text).into_offset_iter() {
        let dest = match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => dest_url.to_string(),
            _ => continue,
        };
        if dest.contains("://") || dest.starts_with("mailto:") {
            continue;
        }
        let at = format!("{}:{}", page.display(), line_of(&text, range.start));
        let (path, anchor) = dest.split_once('#').unwrap_or((&dest, ""));
        let target = if path.is_empty() {
            page.to_path_buf()
        } else {
            page.parent().unwrap().join(path)
        };
        if !target.exists() {
            broken.push(format!("{at}: {dest}: no file {}", target.display()));
            continue;
        }
        if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
            let target_text = std::fs::read_to_string(&target).unwrap();
            if !anchors(&target_text).contains(anchor) {
                broken.push(format!("{at}: {dest}: no heading with anchor #{anchor}"));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let pages = linked_pages();
    assert!(pages.len() >= 12, "{pages:?}");
    let broken: Vec<String> = pages.iter().flat_map(|p| broken_links(p)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_link_check_finds_a_missing_file_and_a_missing_anchor() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(
        dir.path().join("docs/a.md"),
        "# Page A\n\n## What `kubectl create -f` shows\n\n## Twice\n\n## Twice\n",
    )
    .unwrap();
    let page = dir.path().join("README.md");
    std::fs::write(
        &page,
        "# Top\n\n[ok](docs/a.md#what-kubectl-create--f-shows) [ok](docs/a.md#twice-1) \
         [ok](#top) [ext](https://example.com/#x)\n\n[gone](docs/b.md) [moved](docs/a.md#usage) \
         [self](#nowhere)\n",
    )
    .unwrap();
    let broken = broken_links(&page);
    assert_eq!(broken.len(), 3, "{broken:?}");
    assert!(broken[0].contains("docs/b.md: no file"), "{broken:?}");
    assert!(broken[1].ends_with("docs/a.md#usage: no heading with anchor #usage"));
    assert!(broken[2].ends_with("#nowhere: no heading with anchor #nowhere"));
}

/// A fenced code block of a page.
#[derive(Debug)]
struct Block {
    /// `page:line` of its opening fence.
    at: String,
    /// Its info string (`console`, `yaml file=x.yaml`, ...).
    info: String,
    text: String,
    /// The reason of a `<!-- not run: REASON -->` line directly before it.
    not_run: Option<String>,
}

fn blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (event, range) in Parser::new(&text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let before = text[..range.start].trim_end();
                let last = before.lines().last().unwrap_or("").trim();
                let not_run = last
                    .strip_prefix(NOT_RUN)
                    .and_then(|r| r.strip_suffix("-->"))
                    .map(|r| r.trim().to_string());
                open = Some(Block {
                    at: format!("{}:{}", page.display(), line_of(&text, range.start)),
                    info: info.to_string(),
                    text: String::new(),
                    not_run,
                });
            }
            Event::Text(t) => {
                if let Some(b) = &mut open {
                    b.text.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => found.extend(open.take()),
            _ => {}
        }
    }
    found
}

/// One `$ COMMAND` of a console block and what the block says it prints.
#[derive(Debug)]
struct Step {
    command: String,
    expected: String,
}

fn steps(block: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if continued {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: String::new(),
            });
            continued = command.ends_with('\\');
        } else {
            let step = steps
                .last_mut()
                .unwrap_or_else(|| panic!("output before any `$ ` line: {line:?}"));
            step.expected.push_str(line);
            step.expected.push('\n');
        }
    }
    steps
}

/// Runs a console block's steps in a fresh directory holding `docs/examples/` and `files`; returns
/// what each step printed, stdout and stderr merged.
fn run(steps: &[Step], files: &[(String, String)]) -> Vec<String> {
    let k = Kubectl::new();
    let work = k.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    for entry in std::fs::read_dir(repo().join("docs/examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, work.join(path.file_name().unwrap())).unwrap();
        }
    }
    for (name, text) in files {
        std::fs::write(work.join(name), text).unwrap();
    }
    // Each step's output ends with a NUL; the step's exit status is restored for the next one.
    let mut script = String::from("rc=0\n");
    for step in steps {
        script.push_str(&format!(
            "(exit $rc); {{ {}\n}} 2>&1; rc=$?; printf '\\0'\n",
            step.command
        ));
    }
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .current_dir(&work)
        .env("PATH", k.path())
        .env("HOME", &work)
        .env("KUBECONFIG", k.dir().join("no-kubeconfig"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("bash must be installed");
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(env!("CARGO_PKG_VERSION"), DOC_VERSION);
    let mut printed: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(printed.pop().as_deref(), Some(""), "{text:?}");
    assert_eq!(printed.len(), steps.len(), "{text:?}");
    printed
}

#[test]
fn every_console_block_matches_the_binaries_or_says_why_it_cannot_run() {
    let mut failures = Vec::new();
    let (mut ran, mut exempt) = (0, 0);
    for page in doc_pages() {
        let mut files: Vec<(String, String)> = Vec::new();
        for block in blocks(&page) {
            let mut info = block.info.split_whitespace();
            let language = info.next().unwrap_or("");
            if let Some(name) = info.find_map(|w| w.strip_prefix("file=")) {
                assert!(
                    !name.is_empty() && !name.contains('/') && !name.starts_with('.'),
                    "{}: file={name} must be a plain file name",
                    block.at
                );
                files.push((name.to_string(), block.text.clone()));
            }
            if language != "console" {
                if block.text.lines().any(|l| l.starts_with("$ ")) {
                    failures.push(format!(
                        "{}: a block with `$ ` commands must be ```console (run, or marked `{NOT_RUN} REASON -->`)",
                        block.at
                    ));
                }
                continue;
            }
            if let Some(reason) = &block.not_run {
                assert!(
                    !reason.is_empty(),
                    "{}: the not-run marker needs a reason",
                    block.at
                );
                exempt += 1;
                continue;
            }
            let steps = steps(&block.text);
            assert!(
                !steps.is_empty(),
                "{}: a console block without `$ `",
                block.at
            );
            ran += 1;
            for (step, printed) in steps.iter().zip(run(&steps, &files)) {
                if printed != step.expected {
                    failures.push(format!(
                        "{}: $ {}\n--- the page says:\n{}--- the binary printed:\n{}---",
                        block.at, step.command, step.expected, printed
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The pages hold a dozen runnable blocks; far fewer means the parsing broke.
    assert!(
        ran >= 10,
        "only {ran} console blocks ran ({exempt} marked not run)"
    );
}

#[test]
fn a_console_block_with_wrong_output_is_caught() {
    let steps = steps(
        "$ printf 123456 | kubectl tkeha \\\n    encode-password\nMTIzNDU2\n$ echo $?\n0\n$ kubectl tkeha encode-password 1\n$ echo $?\n1\n",
    );
    assert_eq!(steps.len(), 4, "{steps:?}");
    let printed = run(&steps, &[]);
    assert_eq!(printed[0], steps[0].expected);
    assert_eq!(printed[1], "0\n");
    assert!(printed[2].starts_with("error: encode-password takes no argument"));
    // The step said nothing was printed and exit 1: both are caught.
    assert_ne!(printed[2], steps[2].expected);
    assert_eq!(printed[3], "2\n");
    assert_ne!(printed[3], steps[3].expected);
}

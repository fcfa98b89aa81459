//! `kubectl-tkeha completion bash|zsh` in a real interactive shell on a pseudo-terminal (tmux): what TAB offers.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Kubectl;

/// One interactive shell in its own tmux server (its own socket), killed on drop.
struct Shell {
    socket: String,
}

impl Shell {
    /// Start `argv` in a detached 200x50 tmux session with a clean environment (`PATH` only).
    fn start(k: &Kubectl, argv: &[&str]) -> Shell {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("tkeha-completion-{}-{n}", std::process::id());
        let path = k.path().to_str().unwrap().to_string();
        let home = k.dir().to_str().unwrap().to_string();
        let mut command = Command::new("tmux");
        command
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "200", "-y", "50", "-c", &home])
            .args(["env", "-i"])
            .arg(format!("PATH={path}"))
            .arg(format!("HOME={home}"))
            .arg("TERM=xterm")
            .args(argv);
        let status = command.status().expect("tmux must be installed");
        assert!(status.success(), "tmux new-session failed");
        Shell { socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `keys` (tmux key names such as `Tab`, `Enter`, `C-c` are sent as keys).
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "0", "-S", "-200"])
    }

    /// Wait until the screen shows `text`; the screen then. Panics with the screen if it never does.
    fn wait_for(&self, text: &str) -> String {
        // Guard against a hang only; nothing here measures time.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("the terminal never showed {text:?}:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Drop the line being typed (C-u, which neither shell treats as a signal), run a marker
    /// command and wait for its answer: every key sent before has been handled.
    fn settle(&self, n: usize) -> String {
        self.send(&["C-u"]);
        self.send(&[&format!("echo settled-$((40+{n}))"), "Enter"]);
        self.wait_for(&format!("settled-{}", 40 + n))
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// The completion script for `shell`, written next to a file whose name must never be offered.
fn script(k: &Kubectl, shell: &str) -> String {
    let out = k.tkeha(&["completion", shell]);
    assert_eq!(out.code, 0, "{out:?}");
    k.file("zz-not-a-candidate", "");
    let path = k.file(&format!("completion.{shell}"), &out.stdout);
    path.to_str().unwrap().to_string()
}

/// The cases both shells must get right: values of an enum flag, a subcommand's flags, no file
/// names where a flag takes a fixed set of values.
fn assert_completes(shell: &Shell) {
    // Both values start with `t`: two TABs list them (bash inserts nothing, zsh lists, then cycles).
    shell.send(&["kubectl-tkeha init --ha t", "Tab", "Tab"]);
    let screen = shell.wait_for("third-party");
    assert!(screen.contains("tke"), "{screen}");
    assert!(!screen.contains("zz-not-a-candidate"), "{screen}");
    shell.settle(1);

    shell.send(&["kubectl-tkeha validate -o ", "Tab", "Tab"]);
    let screen = shell.wait_for("json");
    assert!(screen.contains("text"), "{screen}");
    assert!(!screen.contains("zz-not-a-candidate"), "{screen}");
    shell.settle(2);

    // A subcommand's own flag, one level down: a unique prefix is completed in place.
    shell.send(&["kubectl-tkeha init --passph", "Tab"]);
    shell.wait_for("--passphrase-stdin");
    shell.settle(3);

    shell.send(&["kubectl-tkeha provision --insecure-ig", "Tab"]);
    shell.wait_for("--insecure-ignore-host-keys");
    shell.settle(4);
}

#[test]
fn bash_completes_below_the_first_word() {
    let k = Kubectl::new();
    let script = script(&k, "bash");
    let shell = Shell::start(&k, &["bash", "--norc", "--noprofile", "-i"]);
    shell.send(&[&format!("source {script}"), "Enter"]);
    shell.settle(0);
    assert_completes(&shell);
}

#[test]
fn zsh_completes_below_the_first_word() {
    let k = Kubectl::new();
    let script = script(&k, "zsh");
    assert!(which("zsh"), "zsh must be installed (scripts/deps.sh)");
    let shell = Shell::start(&k, &["zsh", "-f", "-i"]);
    shell.send(&[
        &format!("autoload -U compinit && compinit -u -D && source {script}"),
        "Enter",
    ]);
    shell.settle(0);
    assert_completes(&shell);
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .status()
        .is_ok_and(|s| s.success())
}

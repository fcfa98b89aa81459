//! Test harness: a temp dir holding `kubectl-tkeha` (and the completion shim) first on PATH, and runners.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PATH on which the real `kubectl` finds the freshly built plugin, and no other copy of it.
pub struct Kubectl {
    dir: tempfile::TempDir,
    path: OsString,
    /// `$KUBECONFIG` of the child; by default a file that does not exist, so no test can reach
    /// the machine's own clusters.
    kubeconfig: PathBuf,
}

/// What a finished process left behind.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new(env!("CARGO_BIN_EXE_kubectl-tkeha"));
        std::os::unix::fs::symlink(bin, dir.path().join("kubectl-tkeha")).unwrap();
        let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("kubectl_complete-tkeha");
        std::fs::copy(&shim, dir.path().join("kubectl_complete-tkeha")).unwrap();
        // Drop PATH entries holding another kubectl-tkeha (e.g. target/debug from the Makefile),
        // so dispatch is unambiguous and `kubectl plugin list` reports no shadowing.
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.path().to_path_buf()];
        dirs.extend(std::env::split_paths(&inherited).filter(|d| {
            !d.join("kubectl-tkeha").exists() && !d.join("kubectl_complete-tkeha").exists()
        }));
        let path = std::env::join_paths(dirs).unwrap();
        let kubeconfig = dir.path().join("no-kubeconfig");
        Kubectl {
            dir,
            path,
            kubeconfig,
        }
    }

    /// The PATH children get: the plugin's directory first.
    pub fn path(&self) -> &std::ffi::OsStr {
        &self.path
    }

    /// The temp dir (for kubeconfigs and manifests).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run children with `KUBECONFIG=path`.
    pub fn set_kubeconfig_env(&mut self, path: &Path) {
        self.kubeconfig = path.to_path_buf();
    }

    /// A file in the temp dir with `content`.
    pub fn file(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// `kubectl tkeha ARGS`, stdin closed (not a terminal).
    pub fn tkeha(&self, args: &[&str]) -> Output {
        self.tkeha_stdin(args, b"")
    }

    /// `kubectl tkeha ARGS` with `stdin` piped in.
    pub fn tkeha_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut all = vec!["tkeha"];
        all.extend_from_slice(args);
        self.kubectl(&all, stdin)
    }

    /// `kubectl tkeha ARGS` on a pseudo-terminal (util-linux `script`), answering each prompt
    /// with its answer once the prompt has appeared. Returns everything the terminal showed.
    pub fn tkeha_tty(&self, args: &[&str], answers: &[(&str, &str)]) -> Output {
        let command = std::iter::once("kubectl tkeha")
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = self
            .command("script")
            .args(["-qec", &command, "/dev/null"])
            .spawn()
            .expect("util-linux script must be installed");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let reader = std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let mut from = 0;
        for (prompt, answer) in answers {
            // Guard against a hang only; nothing here measures time.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let text = String::from_utf8_lossy(&seen[from..]).into_owned();
                if let Some(at) = text.find(prompt) {
                    from += at + prompt.len();
                    break;
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(chunk) => seen.extend_from_slice(&chunk),
                    Err(_) => {
                        let _ = child.kill();
                        panic!(
                            "no prompt {prompt:?}; terminal showed {:?}",
                            String::from_utf8_lossy(&seen)
                        );
                    }
                }
            }
            // Type like a person: rpassword prints the prompt before it turns echo off, so
            // input sent in the same instant could still be echoed by the terminal.
            std::thread::sleep(std::time::Duration::from_millis(200));
            stdin.write_all(answer.as_bytes()).unwrap();
            stdin.write_all(b"\n").unwrap();
            stdin.flush().unwrap();
        }
        let status = child.wait().unwrap();
        drop(stdin);
        reader.join().unwrap();
        seen.extend(rx.try_iter().flatten());
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            e.read_to_string(&mut stderr).unwrap();
        }
        Output {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&seen).replace("\r\n", "\n"),
            stderr,
        }
    }

    /// `program` with this test's PATH and KUBECONFIG, all three streams piped.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// `kubectl ARGS` with `stdin` piped in.
    pub fn kubectl(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .command("kubectl")
            .args(args)
            .spawn()
            .expect("kubectl must be installed");
        let mut pipe = child.stdin.take().unwrap();
        // Our process may exit before reading stdin; a broken pipe is fine.
        let _ = pipe.write_all(stdin);
        drop(pipe);
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

/// The seed manifests of `seeds/ha.md`, verbatim with their `//` comments (kept by the api crate).
pub fn seed_fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonc"))
        .collect();
    files.sort();
    files
}

/// Parse stdout as JSON, with the whole output in the panic message.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

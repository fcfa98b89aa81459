//! tkeha-fake-kubelet: a stand-in for kubelet's static-pod behaviour on a lab master (no kubelet and no container engine run here). While the manifest exists it runs the pod's command in the foreground, restarting it when it exits or when the manifest changes; when the manifest goes away it sends the command SIGTERM (kubelet's graceful stop) and waits for it. std only.
//!
//! `tkeha-fake-kubelet --manifest FILE [--poll-ms N] [--pid-file FILE] -- COMMAND ARGS...`
//!
//! Real kubelet watches its `staticPodPath` with inotify and also re-reads it every 20 s
//! (`fileCheckFrequency`); `--poll-ms` stands for that delay (default 100 ms).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a stopped pod may take before it is killed (kubelet's default grace period is 30 s).
const GRACE: Duration = Duration::from_secs(10);
/// Wait before starting again a command that exited (kubelet's back-off starts at 10 s).
const BACKOFF: Duration = Duration::from_secs(1);

struct Args {
    manifest: PathBuf,
    poll: Duration,
    pid_file: Option<PathBuf>,
    command: Vec<String>,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "tkeha-fake-kubelet: {why}\nusage: tkeha-fake-kubelet --manifest FILE [--poll-ms N] [--pid-file FILE] -- COMMAND ARGS..."
    );
    std::process::exit(2);
}

fn args() -> Args {
    let mut manifest = None;
    let mut poll = Duration::from_millis(100);
    let mut pid_file = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--manifest" => manifest = it.next().map(PathBuf::from),
            "--poll-ms" => {
                let ms = it
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .filter(|ms| (1..=60_000).contains(ms))
                    .unwrap_or_else(|| usage("--poll-ms takes 1..=60000"));
                poll = Duration::from_millis(ms);
            }
            "--pid-file" => pid_file = it.next().map(PathBuf::from),
            "--" => break,
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let command: Vec<String> = it.collect();
    let Some(manifest) = manifest else {
        usage("--manifest is required")
    };
    if command.is_empty() {
        usage("the pod's command is missing after --");
    }
    Args {
        manifest,
        poll,
        pid_file,
        command,
    }
}

fn log(what: &str) {
    eprintln!("tkeha-fake-kubelet: {what}");
}

fn start(command: &[String]) -> Option<Child> {
    match Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => {
            log(&format!("started {} (pid {})", command[0], child.id()));
            Some(child)
        }
        Err(e) => {
            log(&format!("cannot start {}: {e}", command[0]));
            None
        }
    }
}

/// SIGTERM, then (after the grace period) SIGKILL; waits for the end.
fn stop(mut child: Child) {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            log(&format!("pod stopped (pid {pid}, {status})"));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    log(&format!(
        "pod killed after {} s (pid {pid})",
        GRACE.as_secs()
    ));
}

fn main() {
    let args = args();
    if let Some(f) = &args.pid_file
        && let Err(e) = std::fs::write(f, format!("{}\n", std::process::id()))
    {
        log(&format!("cannot write {}: {e}", f.display()));
    }
    // The pod: its process and the manifest it was started from.
    let mut pod: Option<(Child, Vec<u8>)> = None;
    let mut not_before = Instant::now();
    loop {
        let manifest = std::fs::read(&args.manifest).ok();
        pod = match (pod, manifest) {
            (Some((child, _)), None) => {
                log("manifest removed: stopping the pod");
                stop(child);
                None
            }
            (Some((child, started_from)), Some(now)) if now != started_from => {
                log("manifest changed: restarting the pod");
                stop(child);
                start(&args.command).map(|c| (c, now))
            }
            (Some((mut child, started_from)), Some(_)) => match child.try_wait() {
                Ok(Some(status)) => {
                    log(&format!("pod exited ({status}): restarting after back-off"));
                    not_before = Instant::now() + BACKOFF;
                    None
                }
                _ => Some((child, started_from)),
            },
            (None, Some(now)) if Instant::now() >= not_before => {
                let started = start(&args.command);
                if started.is_none() {
                    not_before = Instant::now() + BACKOFF;
                }
                started.map(|c| (c, now))
            }
            (None, _) => None,
        };
        std::thread::sleep(args.poll);
    }
}

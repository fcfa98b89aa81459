//! `provision NAME --in-cluster`: submit the provisioner Job and follow it (tkeha-kube's `job`), its events on stderr and its pod's log on stdout; exit with the Job's result.

use std::process::ExitCode;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::Client;
use tkeha_kube::job::{self, FollowError, JobEvent, JobObserver, JobResult};

use crate::create::FIELD_MANAGER;
use crate::job::CONTAINER;

/// Prints a followed Job: what happens on stderr, the provisioner's log on stdout.
struct Terminal;

impl JobObserver for Terminal {
    fn event(&mut self, event: JobEvent<'_>) {
        match event {
            JobEvent::Created { job, namespace } => {
                eprintln!("job.batch/{job} created in namespace {namespace}");
            }
            JobEvent::Following {
                pod,
                job,
                namespace,
            } => eprintln!(
                "Following pod/{pod} (Ctrl-C stops following; the Job keeps running: kubectl -n {namespace} logs -f job/{job})"
            ),
            JobEvent::Reconnecting { pod } => eprintln!(
                "(the log stream of pod/{pod} ended while it still runs; reconnecting, lines written in between are not shown)"
            ),
        }
    }

    fn log_line(&mut self, line: &str) -> std::io::Result<()> {
        crate::render::to_stdout(format!("{line}\n"))
    }
}

/// Create `job` in `namespace`, follow its pod's log to stdout, and return the Job's result
/// (0 complete, else the provisioner's exit code, 1 when unknown). Progress goes to stderr.
pub async fn run(
    client: Client,
    namespace: &str,
    job: &Job,
    start_timeout: Duration,
) -> Result<ExitCode, FollowError> {
    let followed = job::run(
        client,
        namespace,
        job,
        FIELD_MANAGER,
        CONTAINER,
        start_timeout,
        &mut Terminal,
    )
    .await?;
    Ok(match followed.result {
        JobResult::Complete => {
            eprintln!("job.batch/{} complete", followed.job);
            ExitCode::SUCCESS
        }
        JobResult::Failed { reason, exit_code } => {
            eprintln!("job.batch/{} failed: {reason}", followed.job);
            ExitCode::from(exit_code.map_or(1, process_code))
        }
        JobResult::Exited { exit_code } => ExitCode::from(process_code(exit_code)),
    })
}

/// Submit `job` with `dryRun=All` (see [`job::submit_dry_run`]).
pub async fn submit_dry_run(
    client: Client,
    namespace: &str,
    job: &Job,
) -> Result<Job, FollowError> {
    job::submit_dry_run(client, namespace, job, FIELD_MANAGER).await
}

/// The container's exit code as ours; one that does not fit a process exit code is a failure.
fn process_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_codes_become_process_codes() {
        assert_eq!(process_code(0), 0);
        assert_eq!(process_code(2), 2);
        assert_eq!(process_code(-1), 1);
        assert_eq!(process_code(300), 1);
    }
}

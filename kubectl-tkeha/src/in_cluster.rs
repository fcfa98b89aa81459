//! `provision NAME --in-cluster`: submit the provisioner Job, wait for its pod, stream the pod's log, exit with the Job's result.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures::AsyncBufReadExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};

use crate::create::FIELD_MANAGER;
use crate::job::CONTAINER;
use tkeha_provisioner::kubeapi::describe_error;

/// Between two looks at the pod or the Job while nothing streams.
const POLL: Duration = Duration::from_secs(1);

/// How often a log stream that ends while the container still runs is reopened.
const MAX_RECONNECTS: usize = 5;

/// How long to wait for the Job controller to record the result once the log has ended.
const RESULT_WAIT: Duration = Duration::from_secs(60);

/// Container states that will not resolve by waiting (the Job would only end at its deadline).
const STUCK_REASONS: [&str; 5] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// What went wrong while following, printed as one `error:` line; the Job is left for inspection.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{}", describe_error(.0))]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Stuck(String),
    #[error("reading the pod's log: {0}")]
    Log(#[from] std::io::Error),
}

/// Create `job` in `namespace`, follow its pod's log to stdout, and return the Job's result
/// (0 complete, else the provisioner's exit code, 1 when unknown). Progress goes to stderr.
pub async fn run(
    client: Client,
    namespace: &str,
    job: &Job,
    start_timeout: Duration,
) -> Result<ExitCode, FollowError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let params = PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    let created = jobs.create(&params, job).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let uid = created.metadata.uid.clone().unwrap_or_default();
    eprintln!("job.batch/{name} created in namespace {namespace}");

    let pod = wait_for_pod(&jobs, &pods, &name, &uid, start_timeout).await?;
    eprintln!(
        "Following pod/{pod} (Ctrl-C stops following; the Job keeps running: kubectl -n {namespace} logs -f job/{name})"
    );
    let mut from_now = false;
    for _ in 0..=MAX_RECONNECTS {
        stream_log(&pods, &pod, from_now).await?;
        match after_log(&jobs, &pods, &name, &pod).await? {
            AfterLog::Done(code) => return Ok(code),
            AfterLog::StillRunning => {
                eprintln!(
                    "(the log stream of pod/{pod} ended while it still runs; reconnecting, lines written in between are not shown)"
                );
                from_now = true;
                tokio::time::sleep(POLL).await;
            }
        }
    }
    Err(FollowError::Stuck(format!(
        "the log stream of pod/{pod} keeps ending while it runs; follow it with \
         kubectl -n {namespace} logs -f job/{name}"
    )))
}

/// Submit `job` with `dryRun=All`: the API server authorizes and admits it (Pod Security
/// included) and answers with the Job it would have stored; nothing runs.
pub async fn submit_dry_run(
    client: Client,
    namespace: &str,
    job: &Job,
) -> Result<Job, FollowError> {
    let jobs: Api<Job> = Api::namespaced(client, namespace);
    let params = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.to_string()),
    };
    Ok(jobs.create(&params, job).await?)
}

/// The Job's pod once its container has started (its log can be read), or why it never will.
async fn wait_for_pod(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    job: &str,
    uid: &str,
    start_timeout: Duration,
) -> Result<String, FollowError> {
    // The Job controller labels its pods with the Job's uid: a leftover Job of the same name
    // (generateName makes that unlikely) cannot be mistaken for this one.
    let selector =
        ListParams::default().labels(&format!("batch.kubernetes.io/controller-uid={uid}"));
    let started = Instant::now();
    loop {
        let list = pods.list(&selector).await?;
        if let Some(pod) = list.items.first() {
            let name = pod.metadata.name.clone().unwrap_or_default();
            if let Some(reason) = stuck_reason(pod) {
                return Err(FollowError::Stuck(format!(
                    "pod/{name} cannot start: {reason}; fix it (--image, --known-hosts-configmap, \
                     the chart's ServiceAccount) and delete the Job: kubectl -n {ns} delete job {job}",
                    ns = pods_namespace(pods)
                )));
            }
            if has_started(pod) {
                return Ok(name);
            }
        } else if let Some(failed) = failure(&jobs.get(job).await?) {
            return Err(FollowError::Stuck(format!(
                "job.batch/{job} failed: {failed}"
            )));
        }
        if started.elapsed() >= start_timeout {
            return Err(FollowError::Stuck(format!(
                "job.batch/{job}: no running pod after {}s; see `kubectl -n {ns} describe job {job}` \
                 (is the tkeha chart installed there, with ServiceAccount and RBAC for the provisioner?)",
                start_timeout.as_secs(),
                ns = pods_namespace(pods)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

fn pods_namespace(pods: &Api<Pod>) -> String {
    pods.namespace().unwrap_or_default().to_string()
}

/// Copy the container's log to stdout line by line until the container exits.
/// `from_now`: only lines written from now on (after a cut stream; the earlier ones were shown).
async fn stream_log(pods: &Api<Pod>, pod: &str, from_now: bool) -> Result<(), FollowError> {
    let params = LogParams {
        follow: true,
        container: Some(CONTAINER.to_string()),
        tail_lines: from_now.then_some(0),
        ..Default::default()
    };
    let mut lines = pods.log_stream(pod, &params).await?.lines();
    use futures::StreamExt as _;
    while let Some(line) = lines.next().await {
        let line = line?;
        crate::render::to_stdout(format!("{line}\n"))?;
    }
    Ok(())
}

/// What the Job and its pod say once the log stream has ended.
#[derive(Debug)]
enum AfterLog {
    /// The Job's result (or, lacking one, the exited container's code).
    Done(ExitCode),
    /// The container still runs: the stream was cut (API server or network), not finished.
    StillRunning,
}

/// Wait for the Job controller's verdict and turn it into an exit code.
async fn after_log(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    job: &str,
    pod: &str,
) -> Result<AfterLog, FollowError> {
    let started = Instant::now();
    loop {
        let current = jobs.get(job).await?;
        if succeeded(&current) {
            eprintln!("job.batch/{job} complete");
            return Ok(AfterLog::Done(ExitCode::SUCCESS));
        }
        let failed = failure(&current);
        let current_pod = pods.get(pod).await?;
        let code = exit_code(&current_pod);
        if let Some(why) = failed {
            eprintln!("job.batch/{job} failed: {why}");
            return Ok(AfterLog::Done(ExitCode::from(code.unwrap_or(1))));
        }
        if code.is_none() && is_running(&current_pod) {
            return Ok(AfterLog::StillRunning);
        }
        if started.elapsed() >= RESULT_WAIT {
            // No verdict yet, but the container has exited: its code is the answer.
            return match code {
                Some(code) => Ok(AfterLog::Done(ExitCode::from(code))),
                None => Err(FollowError::Stuck(format!(
                    "job.batch/{job}: the log ended but the Job has no result after {}s; \
                     see `kubectl describe job {job}`",
                    RESULT_WAIT.as_secs()
                ))),
            };
        }
        tokio::time::sleep(POLL).await;
    }
}

fn condition_true(job: &Job, kind: &str) -> Option<String> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            let reason = c.reason.clone().unwrap_or_default();
            match c.message.as_deref() {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason,
            }
        })
}

fn succeeded(job: &Job) -> bool {
    condition_true(job, "Complete").is_some()
}

fn failure(job: &Job) -> Option<String> {
    condition_true(job, "Failed")
}

/// The container is running or has run, so its log can be read.
fn has_started(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Running" | "Succeeded" | "Failed"))
}

/// The provisioner's container is running (so a log stream that ended was cut short).
fn is_running(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|s| s.name == CONTAINER))
        .and_then(|s| s.state.as_ref())
        .is_some_and(|state| state.running.is_some())
}

/// Why the container waits, when waiting will not help.
fn stuck_reason(pod: &Pod) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|s| {
        let waiting = s.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        STUCK_REASONS
            .contains(&reason)
            .then(|| match &waiting.message {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason.to_string(),
            })
    })
}

/// The provisioner's exit code, once its container has terminated.
fn exit_code(pod: &Pod) -> Option<u8> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == CONTAINER)?;
    let code = status.state.as_ref()?.terminated.as_ref()?.exit_code;
    Some(u8::try_from(code).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn an_image_that_cannot_be_pulled_is_reported_not_waited_for() {
        let p = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "provisioner", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}));
        assert!(!has_started(&p));
        assert_eq!(
            stuck_reason(&p).unwrap(),
            "ImagePullBackOff: Back-off pulling image \"x\""
        );
        let creating = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "provisioner", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(stuck_reason(&creating), None);
    }

    #[test]
    fn the_provisioners_exit_code_is_read_from_the_terminated_container() {
        let p = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "provisioner", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}}}]}));
        assert!(has_started(&p));
        assert_eq!(exit_code(&p), Some(2));
    }

    #[test]
    fn job_conditions_decide_the_result() {
        let job: Job = serde_json::from_value(json!({"status": {"conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]}}))
        .unwrap();
        assert!(!succeeded(&job));
        assert_eq!(
            failure(&job).unwrap(),
            "BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        let done: Job = serde_json::from_value(
            json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
        )
        .unwrap();
        assert!(succeeded(&done));
        assert_eq!(failure(&done), None);
    }
}

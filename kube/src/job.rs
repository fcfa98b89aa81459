//! Running a batch/v1 Job and following it: submit it (or a server-side dry run), wait for its pod, stream the pod's log, read the Job's result.
//!
//! What happens on the way is told to a [`JobObserver`] (the plugin prints it); nothing here prints.

use std::time::{Duration, Instant};

use futures::AsyncBufReadExt as _;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams, PostParams};
use kube::{Api, Client};

use crate::describe::describe_error;

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

/// What went wrong while following; the Job is left in place for inspection.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// A request failed; shown as kubectl shows it.
    #[error("{}", describe_error(.0))]
    Api(#[from] kube::Error),
    /// The Job or its pod cannot make progress; the message says why and what to run.
    #[error("{0}")]
    Stuck(String),
    /// The log stream broke, or the observer could not take a line.
    #[error("reading the pod's log: {0}")]
    Log(#[from] std::io::Error),
}

/// What happens while a Job is followed, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent<'a> {
    /// The Job was created (its name comes from `generateName`).
    Created {
        /// The Job's name.
        job: &'a str,
        /// Its namespace.
        namespace: &'a str,
    },
    /// The pod's container started; its log follows.
    Following {
        /// The pod's name.
        pod: &'a str,
        /// The Job's name.
        job: &'a str,
        /// Their namespace.
        namespace: &'a str,
    },
    /// The log stream ended while the container still runs; it is reopened from now on.
    Reconnecting {
        /// The pod's name.
        pod: &'a str,
    },
}

/// Receives a followed Job's events and its pod's log lines.
pub trait JobObserver {
    /// Something happened (see [`JobEvent`]).
    fn event(&mut self, event: JobEvent<'_>);
    /// One line of the container's log, without its newline.
    ///
    /// # Errors
    ///
    /// An error stops following (for example, the line could not be written anywhere).
    fn log_line(&mut self, line: &str) -> std::io::Result<()>;
}

/// How a followed Job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    /// The Job controller recorded `Complete`.
    Complete,
    /// The Job controller recorded `Failed`.
    Failed {
        /// `REASON: message` of the Job's `Failed` condition.
        reason: String,
        /// The container's exit code, when it terminated.
        exit_code: Option<i32>,
    },
    /// No verdict from the Job controller in time, but the container exited with this code.
    Exited {
        /// The container's exit code.
        exit_code: i32,
    },
}

/// A Job that ran to an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The Job's name.
    pub job: String,
    /// How it ended.
    pub result: JobResult,
}

/// Create `job` in `namespace` as `field_manager`, wait (at most `start_timeout`) for the
/// container named `container` to start, hand its log to `observer` line by line, and return
/// the Job's result.
///
/// # Errors
///
/// [`FollowError::Api`] when a request fails (the create first of all: RBAC, admission),
/// [`FollowError::Stuck`] when the pod cannot start or no result comes, [`FollowError::Log`]
/// when the log cannot be read or passed on. The Job is left in place in every case.
pub async fn run(
    client: Client,
    namespace: &str,
    job: &Job,
    field_manager: &str,
    container: &str,
    start_timeout: Duration,
    observer: &mut dyn JobObserver,
) -> Result<Followed, FollowError> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let params = PostParams {
        dry_run: false,
        field_manager: Some(field_manager.to_string()),
    };
    let created = jobs.create(&params, job).await?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let uid = created.metadata.uid.clone().unwrap_or_default();
    observer.event(JobEvent::Created {
        job: &name,
        namespace,
    });

    let pod = wait_for_pod(&jobs, &pods, &name, &uid, start_timeout).await?;
    observer.event(JobEvent::Following {
        pod: &pod,
        job: &name,
        namespace,
    });
    let mut from_now = false;
    for _ in 0..=MAX_RECONNECTS {
        stream_log(&pods, &pod, container, from_now, observer).await?;
        match after_log(&jobs, &pods, &name, &pod, container).await? {
            AfterLog::Done(result) => return Ok(Followed { job: name, result }),
            AfterLog::StillRunning => {
                observer.event(JobEvent::Reconnecting { pod: &pod });
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
///
/// # Errors
///
/// [`FollowError::Api`] with the API server's refusal.
pub async fn submit_dry_run(
    client: Client,
    namespace: &str,
    job: &Job,
    field_manager: &str,
) -> Result<Job, FollowError> {
    let jobs: Api<Job> = Api::namespaced(client, namespace);
    let params = PostParams {
        dry_run: true,
        field_manager: Some(field_manager.to_string()),
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

/// Pass the container's log to the observer line by line until the container exits.
/// `from_now`: only lines written from now on (after a cut stream; the earlier ones were passed on).
async fn stream_log(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    from_now: bool,
    observer: &mut dyn JobObserver,
) -> Result<(), FollowError> {
    let params = LogParams {
        follow: true,
        container: Some(container.to_string()),
        tail_lines: from_now.then_some(0),
        ..Default::default()
    };
    let mut lines = pods.log_stream(pod, &params).await?.lines();
    use futures::StreamExt as _;
    while let Some(line) = lines.next().await {
        observer.log_line(&line?)?;
    }
    Ok(())
}

/// What the Job and its pod say once the log stream has ended.
#[derive(Debug)]
enum AfterLog {
    /// The Job's result (or, lacking one, the exited container's code).
    Done(JobResult),
    /// The container still runs: the stream was cut (API server or network), not finished.
    StillRunning,
}

/// Wait for the Job controller's verdict.
async fn after_log(
    jobs: &Api<Job>,
    pods: &Api<Pod>,
    job: &str,
    pod: &str,
    container: &str,
) -> Result<AfterLog, FollowError> {
    let started = Instant::now();
    loop {
        let current = jobs.get(job).await?;
        if succeeded(&current) {
            return Ok(AfterLog::Done(JobResult::Complete));
        }
        let failed = failure(&current);
        let current_pod = pods.get(pod).await?;
        let code = exit_code(&current_pod, container);
        if let Some(reason) = failed {
            return Ok(AfterLog::Done(JobResult::Failed {
                reason,
                exit_code: code,
            }));
        }
        if code.is_none() && is_running(&current_pod, container) {
            return Ok(AfterLog::StillRunning);
        }
        if started.elapsed() >= RESULT_WAIT {
            // No verdict yet, but the container has exited: its code is the answer.
            return match code {
                Some(exit_code) => Ok(AfterLog::Done(JobResult::Exited { exit_code })),
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

/// The container is running (so a log stream that ended was cut short).
fn is_running(pod: &Pod, container: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().find(|s| s.name == container))
        .and_then(|s| s.state.as_ref())
        .is_some_and(|state| state.running.is_some())
}

/// Why a container of the pod waits, when waiting will not help.
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

/// The container's exit code, once it has terminated.
fn exit_code(pod: &Pod, container: &str) -> Option<i32> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let status = statuses.iter().find(|s| s.name == container)?;
    Some(status.state.as_ref()?.terminated.as_ref()?.exit_code)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const CONTAINER: &str = "provisioner";

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
    fn the_containers_exit_code_is_read_from_its_terminated_state() {
        let p = pod(json!({"phase": "Failed", "containerStatuses": [{
            "name": "provisioner", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}}}]}));
        assert!(has_started(&p));
        assert_eq!(exit_code(&p, CONTAINER), Some(2));
        assert_eq!(exit_code(&p, "sidecar"), None);
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

//! `kubectl tkeha provision NAME --in-cluster` against the fake API server (the Job sent, the pod
//! lookup, the log stream, the exit code), and `--dry-run` output as a typed batch/v1 Job.

use std::path::Path;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::batch::v1::Job;
use serde_json::{Value, json};

use crate::fake_apiserver::{FakeApiServer, Recorded, Reply};
use crate::harness::{Kubectl, Output};

const JOB: &str = "tkeha-provision-prod-q8x2v";
const UID: &str = "3f0a7a52-0000-4000-8000-00000000beef";
const POD: &str = "tkeha-provision-prod-q8x2v-7hk4m";
const LOG: &str = "apply tke HA of 3 master(s), VIP 192.168.1.10\n\
                   192.168.1.2  ok  keepalived MASTER\n\
                   192.168.1.3  ok  keepalived BACKUP\n";

/// How the fake cluster behaves after the Job is created.
#[derive(Clone, Copy)]
enum Outcome {
    /// The pod runs, logs, and the Job completes.
    Complete,
    /// The provisioner exits 2; the Job fails.
    Failed,
    /// The image cannot be pulled.
    ImagePullBackOff,
}

fn pod(outcome: Outcome) -> Value {
    let state = match outcome {
        Outcome::Complete => json!({"terminated": {"exitCode": 0}}),
        Outcome::Failed => json!({"terminated": {"exitCode": 2, "reason": "Error"}}),
        Outcome::ImagePullBackOff => json!({"waiting": {"reason": "ImagePullBackOff",
            "message": "Back-off pulling image \"registry.invalid/tkeha:0\""}}),
    };
    let phase = match outcome {
        Outcome::Complete => "Succeeded",
        Outcome::Failed => "Failed",
        Outcome::ImagePullBackOff => "Pending",
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD, "namespace": "ha",
                     "labels": {"batch.kubernetes.io/controller-uid": UID, "job-name": JOB}},
        "status": {"phase": phase, "containerStatuses": [{
            "name": "provisioner", "image": "x", "imageID": "", "ready": false,
            "restartCount": 0, "state": state}]}
    })
}

/// A fake cluster in namespace `ha` where the Job controller and kubelet act at once.
fn cluster(outcome: Outcome) -> FakeApiServer {
    let created = Arc::new(Mutex::new(Value::Null));
    FakeApiServer::start(move |r: &Recorded| {
        let jobs = "/apis/batch/v1/namespaces/ha/jobs";
        match (r.method.as_str(), r.path.as_str()) {
            ("POST", p) if p == jobs => {
                let mut job = r.json();
                job["metadata"]["name"] = json!(JOB);
                job["metadata"]["uid"] = json!(UID);
                *created.lock().unwrap() = job.clone();
                Reply::json(201, job)
            }
            ("GET", "/api/v1/namespaces/ha/pods") => Reply::json(
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                       "items": [pod(outcome)]}),
            ),
            ("GET", p) if p == format!("/api/v1/namespaces/ha/pods/{POD}/log") => {
                Reply::text(200, LOG)
            }
            ("GET", p) if p == format!("/api/v1/namespaces/ha/pods/{POD}") => {
                Reply::json(200, pod(outcome))
            }
            ("GET", p) if p == format!("{jobs}/{JOB}") => {
                let mut job = created.lock().unwrap().clone();
                job["status"] = match outcome {
                    Outcome::Complete => json!({"succeeded": 1, "conditions": [
                        {"type": "Complete", "status": "True"}]}),
                    Outcome::Failed => json!({"failed": 1, "conditions": [
                        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                         "message": "Job has reached the specified backoff limit"}]}),
                    Outcome::ImagePullBackOff => json!({"active": 1}),
                };
                Reply::json(200, job)
            }
            _ => Reply::not_found(&r.line()),
        }
    })
}

/// The query's parameters, decoded, in order.
fn query(request: &Recorded) -> Vec<String> {
    crate::fake_queries::pairs(&request.query)
}

fn provision(k: &Kubectl, kubeconfig: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "provision",
        "prod",
        "--in-cluster",
        "--namespace",
        "ha",
        "--known-hosts-configmap",
        "prod-known-hosts",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    k.tkeha(&args)
}

#[test]
fn the_job_is_posted_its_pod_found_by_uid_and_its_log_streamed_to_stdout() {
    let server = cluster(Outcome::Complete);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout, LOG,
        "stdout carries the provisioner's report only"
    );
    assert!(
        out.stderr
            .contains(&format!("job.batch/{JOB} created in namespace ha")),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(&format!("job.batch/{JOB} complete")),
        "{out:?}"
    );

    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        [
            "POST /apis/batch/v1/namespaces/ha/jobs".to_string(),
            "GET /api/v1/namespaces/ha/pods".to_string(),
            format!("GET /api/v1/namespaces/ha/pods/{POD}/log"),
            format!("GET /apis/batch/v1/namespaces/ha/jobs/{JOB}"),
        ]
    );
    let post = &requests[0];
    assert_eq!(post.content_type, "application/json");
    assert_eq!(query(post), ["fieldManager=kubectl-tkeha"]);
    // The Job sent is exactly the one --dry-run prints.
    let dry = provision(&k, &kubeconfig, &["--dry-run", "-o", "json"]);
    assert_eq!(dry.code, 0, "{dry:?}");
    let printed: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(post.json(), printed);
    assert_eq!(server.requests().len(), 4, "--dry-run contacted the server");

    assert_eq!(
        query(&requests[1]),
        [format!(
            "labelSelector=batch.kubernetes.io/controller-uid={UID}"
        )]
    );
    assert_eq!(
        query(&requests[2]),
        ["container=provisioner", "follow=true"]
    );
}

#[test]
fn a_failed_job_exits_with_the_provisioners_code_and_says_why() {
    let server = cluster(Outcome::Failed);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &["-o", "json"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, LOG);
    assert!(
        out.stderr.contains(&format!(
            "job.batch/{JOB} failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        )),
        "{out:?}"
    );
    let requests = server.requests();
    let args = &requests[0].json()["spec"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(
        args,
        &json!([
            "apply",
            "prod",
            "--known-hosts",
            "/etc/tkeha/known-hosts/known_hosts",
            "-o",
            "json"
        ]),
        "-o json reaches the provisioner in the Job"
    );
    assert_eq!(
        requests.last().unwrap().line(),
        format!("GET /api/v1/namespaces/ha/pods/{POD}"),
        "the exit code is read from the pod"
    );
}

#[test]
fn a_pod_that_cannot_start_is_reported_without_waiting_for_the_deadline() {
    let server = cluster(Outcome::ImagePullBackOff);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &["--image", "registry.invalid/tkeha:0"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("ImagePullBackOff"), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("kubectl -n ha delete job {JOB}")),
        "{out:?}"
    );
    assert!(
        server.requests().iter().all(|r| !r.path.ends_with("/log")),
        "{:?}",
        server.requests()
    );
}

#[test]
fn a_forbidden_job_reads_like_kubectl() {
    let message = "jobs.batch is forbidden: User \"dev\" cannot create resource \"jobs\" \
                   in API group \"batch\" in the namespace \"ha\"";
    let server = FakeApiServer::start(move |_| Reply::status(403, "Forbidden", message));
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        format!("Error from server (Forbidden): {message}\n")
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn context_selects_the_cluster_the_job_goes_to() {
    let server = cluster(Outcome::Complete);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "decoy");
    let out = provision(&k, &kubeconfig, &["--context", "fake"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.requests()[0].method, "POST");
}

#[test]
fn dry_run_yaml_is_a_batch_v1_job_with_the_charts_defaults() {
    let k = Kubectl::new();
    let out = k.tkeha(&[
        "provision",
        "prod",
        "--in-cluster",
        "--insecure-ignore-host-keys",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let job: Job = serde_saphyr::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let meta = &job.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("tkeha-system"));
    assert_eq!(meta.generate_name.as_deref(), Some("tkeha-provision-prod-"));
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert!(spec.ttl_seconds_after_finished.is_some());
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(chart_provisioner_sa().as_str())
    );
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(chart_image().as_str()));
    assert_eq!(
        container.command.as_deref(),
        Some(&["/usr/local/bin/tkeha-provisioner".to_string()][..])
    );
    assert_eq!(
        container.args.as_deref(),
        Some(
            &[
                "apply".to_string(),
                "prod".into(),
                "--insecure-ignore-host-keys".into()
            ][..]
        )
    );
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_string()][..])
    );

    // Flags override every default; the ConfigMap is mounted read-only where the args point.
    let out = k.tkeha(&[
        "provision",
        "prod",
        "--in-cluster",
        "-n",
        "ops",
        "--image",
        "registry.example/tkeha:dev",
        "--service-account",
        "ha-runner",
        "--known-hosts-configmap",
        "hosts",
        "--dry-run",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let job: Job = serde_saphyr::from_str(&out.stdout).unwrap();
    assert_eq!(job.metadata.namespace.as_deref(), Some("ops"));
    let pod = job.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("ha-runner"));
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example/tkeha:dev")
    );
    let args = container.args.clone().unwrap();
    assert_eq!(
        args[2..],
        ["--known-hosts", "/etc/tkeha/known-hosts/known_hosts"]
    );
    let mount = container
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.mount_path == "/etc/tkeha/known-hosts")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(volume.config_map.unwrap().name, "hosts");
}

/// `image.repository` in the chart's values at the chart's appVersion.
fn chart_image() -> String {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/tkeha");
    let values: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    let meta: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart.join("Chart.yaml")).unwrap())
            .unwrap();
    let tag = values["image"]["tag"].as_str().unwrap();
    let tag = if tag.is_empty() {
        meta["appVersion"].as_str().unwrap()
    } else {
        tag
    };
    format!("{}:{tag}", values["image"]["repository"].as_str().unwrap())
}

fn chart_provisioner_sa() -> String {
    let values: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/tkeha/values.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    values["provisioner"]["serviceAccount"]["name"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn in_cluster_needs_a_name_and_a_host_key_policy_the_job_can_use() {
    let k = Kubectl::new();
    let refuse = |args: &[&str], needle: &str| {
        let out = k.tkeha(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    };
    let no_policy = &["provision", "prod", "--in-cluster", "--dry-run"];
    let out = k.tkeha(no_policy);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--known-hosts-configmap"), "{out:?}");
    assert!(
        out.stderr.contains("--insecure-ignore-host-keys"),
        "{out:?}"
    );
    refuse(
        &[
            "provision",
            "prod",
            "--in-cluster",
            "--dry-run",
            "--known-hosts",
            "/etc/ssh/known",
        ],
        "--known-hosts-configmap",
    );
    refuse(
        &[
            "provision",
            "prod",
            "--in-cluster",
            "--dry-run",
            "--known-hosts-configmap",
            "hosts",
            "--insecure-ignore-host-keys",
        ],
        "choose one",
    );
    refuse(
        &[
            "provision",
            "--in-cluster",
            "--dry-run",
            "--insecure-ignore-host-keys",
        ],
        "CLUSTER-NAME",
    );
    refuse(
        &[
            "provision",
            "-f",
            "cluster.yaml",
            "--in-cluster",
            "--dry-run",
            "--insecure-ignore-host-keys",
        ],
        "kubectl tkeha create -f FILE",
    );
    refuse(
        &[
            "provision",
            "-f",
            "cluster.yaml",
            "--insecure-ignore-host-keys",
            "--image",
            "x",
        ],
        "--image is a Job setting",
    );
}

#[test]
fn server_dry_run_submits_the_job_with_dry_run_all_and_follows_nothing() {
    let server = cluster(Outcome::Complete);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &["--dry-run=server"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        format!("job.batch/{JOB} created (server dry run)\n")
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].line(), "POST /apis/batch/v1/namespaces/ha/jobs");
    assert_eq!(
        query(&requests[0]),
        ["dryRun=All", "fieldManager=kubectl-tkeha"]
    );

    // -o prints the server's answer, a Job with the name it generated.
    let out = provision(&k, &kubeconfig, &["--dry-run=server", "-o", "yaml"]);
    assert_eq!(out.code, 0, "{out:?}");
    let job: Job = serde_saphyr::from_str(&out.stdout).unwrap();
    assert_eq!(job.metadata.name.as_deref(), Some(JOB));
}

#[test]
fn a_log_stream_cut_while_the_pod_runs_is_reopened_from_now() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    // The first stream ends early (as when a proxy drops it) while the container still runs;
    // the second one ends with the container, and the Job completes.
    let logs = Arc::new(AtomicUsize::new(0));
    let server = FakeApiServer::start(move |r: &Recorded| {
        let running = json!({"running": {"startedAt": "2026-01-01T00:00:00Z"}});
        let done = json!({"terminated": {"exitCode": 0}});
        let pod_with = |state: &Value, phase: &str| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
                   "status": {"phase": phase, "containerStatuses": [{"name": "provisioner",
                   "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": state}]}})
        };
        let streamed = logs.load(Ordering::SeqCst);
        match (r.method.as_str(), r.path.rsplit('/').next().unwrap_or("")) {
            ("POST", "jobs") => {
                let mut job = r.json();
                job["metadata"]["name"] = json!(JOB);
                job["metadata"]["uid"] = json!(UID);
                Reply::json(201, job)
            }
            ("GET", "pods") => Reply::json(
                200,
                json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                       "items": [pod_with(&running, "Running")]}),
            ),
            ("GET", "log") => {
                let n = logs.fetch_add(1, Ordering::SeqCst);
                Reply::text(200, if n == 0 { "first\n" } else { "second\n" })
            }
            ("GET", POD) if streamed < 2 => Reply::json(200, pod_with(&running, "Running")),
            ("GET", POD) => Reply::json(200, pod_with(&done, "Succeeded")),
            ("GET", JOB) if streamed < 2 => Reply::json(
                200,
                json!({"metadata": {"name": JOB}, "status": {"active": 1}}),
            ),
            ("GET", JOB) => Reply::json(
                200,
                json!({"metadata": {"name": JOB}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}),
            ),
            _ => Reply::not_found(&r.line()),
        }
    });
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let out = provision(&k, &kubeconfig, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "first\nsecond\n");
    assert!(out.stderr.contains("reconnecting"), "{out:?}");
    let logs: Vec<Vec<String>> = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/log"))
        .map(query)
        .collect();
    assert_eq!(
        logs,
        [
            vec!["container=provisioner".to_string(), "follow=true".into()],
            vec![
                "container=provisioner".to_string(),
                "follow=true".into(),
                "tailLines=0".into()
            ],
        ]
    );
}

#[test]
fn the_failover_profile_flag_goes_to_the_jobs_arguments() {
    let k = Kubectl::new();
    let out = k.tkeha(&[
        "provision",
        "prod",
        "--in-cluster",
        "--insecure-ignore-host-keys",
        "--failover-profile",
        "fast",
        "--dry-run",
        "-o",
        "yaml",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let job: Job = serde_saphyr::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    let pod = job.spec.unwrap().template.spec.unwrap();
    let args = pod.containers[0].args.clone().unwrap_or_default();
    assert!(
        args.windows(2).any(|w| w == ["--failover-profile", "fast"]),
        "{args:?}"
    );
    // Without the flag the Job reads the Cluster's annotation: nothing is passed.
    let bad = k.tkeha(&[
        "provision",
        "prod",
        "--in-cluster",
        "--insecure-ignore-host-keys",
        "--failover-profile",
        "fastest",
        "--dry-run",
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("standard") && bad.stderr.contains("fast"),
        "{bad:?}"
    );
}

//! Job mode (`tkeha-provisioner ACTION CLUSTER-NAME`) against a recording fake API server: the
//! requests it sends (method, path, content type, body), how it merges `status.conditions`, and
//! how it refuses a missing or invalid Cluster. The masters are loopback ports where nothing or a
//! watching listener runs, so SSH fails fast (or must never be tried).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::fake_apiserver::{FakeApiServer, Recorded, Reply};

const CLUSTER_PATH: &str = "/apis/platform.tkestack.io/v1/clusters/lab";
const STATUS_PATH: &str = "/apis/platform.tkestack.io/v1/clusters/lab/status";
/// The masters' SSH password, base64 of `hunter2-secret`.
const PASSWORD_B64: &str = "aHVudGVyMi1zZWNyZXQ=";
const PASSWORD: &str = "hunter2-secret";

/// A free loopback port with nothing listening on it (connections are refused at once).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A valid TKE-HA Cluster whose three masters are `203.0.113.{1,2,3}:ports[i]` (TEST-NET-3,
/// RFC 5737: nothing answers there, so every SSH connection fails within `--connect-timeout`;
/// loopback addresses are refused as machine IPs by the rules).
fn cluster(ports: [u16; 3], status: Value) -> Value {
    let machines: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            json!({"ip": format!("203.0.113.{}", i + 1), "port": port, "username": "root",
                   "password": PASSWORD_B64})
        })
        .collect();
    json!({
        "apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
        "metadata": {"name": "lab", "resourceVersion": "7", "uid": "u-1"},
        "spec": {"type": "Baremetal", "version": "1.30.0",
                 "features": {"ha": {"tke": {"vip": "10.99.0.100"}}},
                 "machines": machines},
        "status": status,
    })
}

fn other_conditions() -> Value {
    json!({"phase": "Running", "conditions": [
        {"type": "EnsureKubeadm", "status": "True", "reason": "Done",
         "lastTransitionTime": "2025-01-01T00:00:00Z"},
        {"type": "EnsureEtcd", "status": "False", "message": "waiting"}
    ]})
}

/// Answer GET with `object` and PATCH with the object (as the API server returns the result).
fn serve(object: Value) -> FakeApiServer {
    FakeApiServer::start(
        move |r: &Recorded| match (r.method.as_str(), r.path.as_str()) {
            ("GET", CLUSTER_PATH) | ("PATCH", STATUS_PATH) => Reply::json(200, object.clone()),
            _ => Reply::not_found("path"),
        },
    )
}

fn provisioner(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tkeha-provisioner"))
        .args(args)
        .args(["--insecure-ignore-host-keys", "--connect-timeout", "2"])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_secret(what: &str, s: &str) {
    assert!(!s.contains(PASSWORD), "{what} shows the password: {s}");
    assert!(
        !s.contains(PASSWORD_B64),
        "{what} shows the base64 password: {s}"
    );
}

fn patches(requests: &[Recorded]) -> Vec<&Recorded> {
    requests.iter().filter(|r| r.method == "PATCH").collect()
}

fn ha_ready(patch: &Value) -> Value {
    patch["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "HAReady")
        .cloned()
        .expect("an HAReady condition")
}

#[test]
fn apply_by_name_reads_the_cluster_and_writes_ha_ready_false_when_a_host_fails() {
    let ports = [closed_port(), closed_port(), closed_port()];
    let server = serve(cluster(ports, other_conditions()));
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(&server.kubeconfig(dir.path(), "fake"), &["apply", "lab"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("203.0.113.1"),
        "the report names the host: {all}"
    );
    assert!(all.contains("HAReady=False (ApplyFailed)"), "{all}");
    assert_no_secret("output", &all);

    let requests = server.requests();
    assert_eq!(requests[0].line(), format!("GET {CLUSTER_PATH}"));
    let patch = patches(&requests);
    assert_eq!(patch.len(), 1, "{requests:?}");
    let patch = patch[0];
    assert_eq!(patch.path, STATUS_PATH);
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert!(
        patch.query.contains("fieldManager=tkeha-provisioner"),
        "{}",
        patch.query
    );
    // The status is written from a fresh read, just before the patch.
    let before = &requests[requests.len() - 2];
    assert_eq!(before.line(), format!("GET {CLUSTER_PATH}"));
    assert_no_secret("status patch", &String::from_utf8_lossy(&patch.body));

    let body = patch.json();
    assert_eq!(body["metadata"]["resourceVersion"], "7", "{body}");
    assert!(
        body.get("spec").is_none(),
        "only the status is patched: {body}"
    );
    let conditions = body["status"]["conditions"].as_array().unwrap();
    let types: Vec<&str> = conditions
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["EnsureKubeadm", "EnsureEtcd", "HAReady"]);
    assert_eq!(conditions[0], other_conditions()["conditions"][0]);
    assert_eq!(conditions[1], other_conditions()["conditions"][1]);
    let ready = ha_ready(&body);
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ApplyFailed");
    let message = ready["message"].as_str().unwrap();
    assert!(
        message.contains("203.0.113.1") && message.contains("203.0.113.3"),
        "{message}"
    );
    let probe = ready["lastProbeTime"].as_str().unwrap();
    assert_eq!(
        ready["lastTransitionTime"], probe,
        "first HAReady: flipped now"
    );
    assert!(
        probe.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{probe}"
    );
    assert_eq!(body["status"]["ha"]["lastApplyTime"], probe);
    assert_eq!(body["status"]["ha"]["lastApplySucceeded"], false);
    assert_eq!(body["status"]["ha"]["vipHolder"], Value::Null);
    assert!(
        body["status"].get("phase").is_none(),
        "fields we do not own are left out of the merge patch: {body}"
    );
}

#[test]
fn an_unchanged_ha_ready_status_keeps_its_transition_time() {
    let ports = [closed_port(), closed_port(), closed_port()];
    let status = json!({"conditions": [
        {"type": "HAReady", "status": "False", "reason": "ApplyFailed",
         "lastTransitionTime": "2024-05-05T05:05:05Z", "lastProbeTime": "2024-05-05T05:05:05Z"}
    ]});
    let server = serve(cluster(ports, status));
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(
        &server.kubeconfig(dir.path(), "fake"),
        &["status", "lab", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(report["action"], "status");
    let requests = server.requests();
    let body = patches(&requests)[0].json();
    let conditions = body["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 1, "the old HAReady entry is replaced");
    let ready = &conditions[0];
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "Unhealthy");
    assert_eq!(ready["lastTransitionTime"], "2024-05-05T05:05:05Z");
    assert_ne!(ready["lastProbeTime"], "2024-05-05T05:05:05Z");
    assert!(
        body["status"]["ha"].get("lastApplyTime").is_none(),
        "status does not claim an apply: {body}"
    );
}

#[test]
fn an_invalid_cluster_is_refused_before_any_ssh_and_recorded_as_invalid() {
    // The masters' SSH ports are real listeners: any connection would be seen.
    let listeners: Vec<TcpListener> = (1..=3)
        .map(|i| TcpListener::bind(format!("127.0.0.{i}:0")).unwrap())
        .collect();
    for l in &listeners {
        l.set_nonblocking(true).unwrap();
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    let mut object = cluster([ports[0], ports[1], ports[2]], other_conditions());
    // Not base64: the raw password in the wrong place, and the VIP equal to a master.
    object["spec"]["machines"][1]["password"] = json!(PASSWORD);
    object["spec"]["features"]["ha"]["tke"]["vip"] = json!("127.0.0.1");
    let server = serve(object);
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(&server.kubeconfig(dir.path(), "fake"), &["apply", "lab"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("Cluster lab"), "{all}");
    assert!(all.contains("spec.machines[1].password"), "{all}");
    assert!(all.contains("spec.features.ha.tke.vip"), "{all}");
    assert_no_secret("output", &all);
    for l in &listeners {
        assert!(
            l.accept().is_err(),
            "an SSH connection was attempted to {:?}",
            l.local_addr()
        );
    }

    let requests = server.requests();
    let patch = patches(&requests);
    assert_eq!(patch.len(), 1, "{requests:?}");
    assert_eq!(patch[0].path, STATUS_PATH);
    assert_no_secret("status patch", &String::from_utf8_lossy(&patch[0].body));
    let body = patch[0].json();
    let ready = ha_ready(&body);
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidCluster");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("spec.machines[1].password"),
        "{ready}"
    );
    assert_eq!(body["status"]["conditions"].as_array().unwrap().len(), 3);
    assert!(
        body["status"].get("ha").is_none(),
        "nothing ran: status.ha untouched"
    );
}

#[test]
fn a_missing_cluster_is_a_clear_error_and_nothing_is_written() {
    let server = FakeApiServer::start(|_| {
        Reply::status(
            404,
            "NotFound",
            "clusters.platform.tkestack.io \"ghost\" not found",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(&server.kubeconfig(dir.path(), "fake"), &["apply", "ghost"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("Cluster \"ghost\" not found"), "{all}");
    assert!(
        all.contains("kubectl get clusters.platform.tkestack.io"),
        "{all}"
    );
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(Recorded::line).collect::<Vec<_>>(),
        ["GET /apis/platform.tkestack.io/v1/clusters/ghost"]
    );
}

#[test]
fn check_by_name_only_reads() {
    let ports = [closed_port(), closed_port(), closed_port()];
    let server = serve(cluster(ports, json!({})));
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(&server.kubeconfig(dir.path(), "fake"), &["check", "lab"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let requests = server.requests();
    assert_eq!(
        requests.iter().map(Recorded::line).collect::<Vec<_>>(),
        [format!("GET {CLUSTER_PATH}")]
    );
}

#[test]
fn a_conflicting_status_write_is_re_read_and_retried() {
    let ports = [closed_port(), closed_port(), closed_port()];
    let first = cluster(ports, json!({"conditions": []}));
    // After the first read another controller adds a condition and bumps the resourceVersion.
    let mut second = first.clone();
    second["metadata"]["resourceVersion"] = json!("8");
    second["status"]["conditions"] = json!([{"type": "Late", "status": "True"}]);
    let gets = Arc::new(AtomicUsize::new(0));
    let patches_seen = Arc::new(AtomicUsize::new(0));
    let (g, p) = (gets.clone(), patches_seen.clone());
    let server = FakeApiServer::start(move |r| match r.method.as_str() {
        "GET" => {
            let n = g.fetch_add(1, Ordering::SeqCst);
            Reply::json(200, if n < 2 { first.clone() } else { second.clone() })
        }
        "PATCH" if p.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(
            409,
            "Conflict",
            "the object has been modified; please apply your changes to the latest version",
        ),
        "PATCH" => Reply::json(200, second.clone()),
        _ => Reply::not_found("path"),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(&server.kubeconfig(dir.path(), "fake"), &["apply", "lab"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let requests = server.requests();
    let lines: Vec<String> = requests.iter().map(Recorded::line).collect();
    assert_eq!(
        lines,
        [
            format!("GET {CLUSTER_PATH}"),
            format!("GET {CLUSTER_PATH}"),
            format!("PATCH {STATUS_PATH}"),
            format!("GET {CLUSTER_PATH}"),
            format!("PATCH {STATUS_PATH}"),
        ]
    );
    let last = requests[4].json();
    assert_eq!(last["metadata"]["resourceVersion"], "8");
    let types: Vec<&str> = last["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["Late", "HAReady"],
        "the concurrent writer's condition survives"
    );
}

#[test]
fn a_forbidden_status_write_fails_the_run_with_the_servers_reason() {
    let ports = [closed_port(), closed_port(), closed_port()];
    let object = cluster(ports, json!({}));
    let server = FakeApiServer::start(move |r| match r.method.as_str() {
        "GET" => Reply::json(200, object.clone()),
        _ => Reply::status(
            403,
            "Forbidden",
            "clusters.platform.tkestack.io \"lab\" is forbidden: cannot patch resource \"clusters/status\"",
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(
        &server.kubeconfig(dir.path(), "fake"),
        &["uninstall", "lab"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("writing the status of Cluster lab: Error from server (Forbidden)"),
        "{all}"
    );
}

#[test]
fn the_context_flag_selects_the_api_server() {
    // `decoy` is current and points where nothing listens; --context fake must be used.
    let ports = [closed_port(), closed_port(), closed_port()];
    let server = serve(cluster(ports, json!({})));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = server.kubeconfig(dir.path(), "decoy");
    let out = provisioner(&kubeconfig, &["check", "lab", "--context", "fake"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(server.requests().len(), 1);
    let out = provisioner(&kubeconfig, &["check", "lab"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("reading Cluster lab"), "{all}");
    assert_eq!(
        server.requests().len(),
        1,
        "the decoy was asked, not the fake"
    );
}

#[test]
fn exactly_one_of_file_and_cluster_name() {
    let bin = env!("CARGO_BIN_EXE_tkeha-provisioner");
    let both = Command::new(bin)
        .args([
            "apply",
            "-f",
            "c.yaml",
            "lab",
            "--insecure-ignore-host-keys",
        ])
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
    let err = String::from_utf8_lossy(&both.stderr);
    assert!(
        err.contains("'--filename <FILE>' cannot be used with '[CLUSTER-NAME]'"),
        "{err}"
    );
    let neither = Command::new(bin)
        .args(["apply", "--insecure-ignore-host-keys"])
        .output()
        .unwrap();
    assert_eq!(neither.status.code(), Some(2));
    let err = String::from_utf8_lossy(&neither.stderr);
    assert!(err.contains("<--filename <FILE>|CLUSTER-NAME>"), "{err}");
}

/// A SOCKS5 proxy on loopback that accepts "no authentication", records each CONNECT target
/// and answers it "host unreachable" (RFC 1928 reply 4): enough to see which masters a run asks
/// the proxy for.
fn unreachable_socks5() -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read as _, Write as _};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut head = [0u8; 2];
            if c.read_exact(&mut head).is_err() {
                continue;
            }
            let mut methods = vec![0u8; usize::from(head[1])];
            let _ = c.read_exact(&mut methods);
            let _ = c.write_all(&[5, 0]);
            // CONNECT to an IPv4 address: VER CMD RSV ATYP(1) ADDR(4) PORT(2).
            let mut req = [0u8; 10];
            if c.read_exact(&mut req).is_ok() && req[3] == 1 {
                let ip = std::net::Ipv4Addr::new(req[4], req[5], req[6], req[7]);
                let port = u16::from_be_bytes([req[8], req[9]]);
                seen.lock().unwrap().push(format!("{ip}:{port}"));
            }
            let _ = c.write_all(&[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]);
        }
    });
    (port, asked)
}

#[test]
fn a_cluster_read_by_name_reaches_its_masters_through_their_proxy() {
    let (socks_port, asked) = unreachable_socks5();
    let mut object = cluster([22, 22, 22], json!({}));
    for m in object["spec"]["machines"].as_array_mut().unwrap() {
        m["proxy"] = json!({"type": "SOCKS5", "ip": "127.0.0.1", "port": socks_port});
    }
    let server = serve(object);
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(
        &server.kubeconfig(dir.path(), "fake"),
        &["check", "lab", "-o", "json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    // The plan built from the stored object carries each machine's route: the proxy was asked
    // for every master, and nothing was tried directly (TEST-NET-3 would time out, not this).
    let mut targets = asked.lock().unwrap().clone();
    targets.sort();
    assert_eq!(
        targets,
        ["203.0.113.1:22", "203.0.113.2:22", "203.0.113.3:22"],
        "{all}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    for (i, h) in report["hosts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            h["error"],
            format!(
                "master 203.0.113.{}:22 via SOCKS5 proxy 127.0.0.1:{socks_port}: host unreachable",
                i + 1
            ),
            "{h}"
        );
        assert_eq!(h["via"], format!("SOCKS5 proxy 127.0.0.1:{socks_port}"));
    }
}

#[test]
fn a_jump_server_is_logged_in_to_once_for_all_masters_in_job_mode() {
    // Not an SSH server: it accepts, counts and says nothing, so the handshake times out.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let jump_port = l.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(c);
        }
    });
    let mut object = cluster([22, 22, 22], json!({}));
    for m in object["spec"]["machines"].as_array_mut().unwrap() {
        m["proxy"] = json!({"type": "SSHJumpServer", "ip": "127.0.0.1", "port": jump_port,
                            "username": "jumper", "password": "anVtcGVycHc="});
    }
    let server = serve(object);
    let dir = tempfile::tempdir().unwrap();
    let out = provisioner(
        &server.kubeconfig(dir.path(), "fake"),
        &["apply", "lab", "-o", "json"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        !all.contains("jumperpw") && !all.contains("anVtcGVycHc="),
        "{all}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    for h in report["hosts"].as_array().unwrap() {
        let e = h["error"].as_str().unwrap();
        assert!(
            e.starts_with(&format!(
                "jump server 127.0.0.1:{jump_port}: SSH handshake failed"
            )),
            "{e}"
        );
    }
    // One session per distinct jump server: one connection, its failure shared by three masters.
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{all}");
    assert_eq!(report["jump_servers"][0]["logins"], 1, "{all}");
    assert_eq!(
        report["jump_servers"][0]["server"],
        format!("127.0.0.1:{jump_port}")
    );
    // The HAReady condition written names the hop.
    let requests = server.requests();
    let patch = patches(&requests);
    let ready = ha_ready(&patch[0].json());
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains(&format!("jump server 127.0.0.1:{jump_port}")),
        "{ready}"
    );
}

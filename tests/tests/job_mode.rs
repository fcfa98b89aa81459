//! Job mode on the lab: `tkeha-provisioner apply|status CLUSTER-NAME` reads the Cluster from an
//! API server, provisions the real masters and writes `HAReady` and `status.ha` back. The API
//! server is a small stateful stand-in here (GET returns the object, a merge patch to
//! `/status` is applied to it), since no kube-apiserver runs on these machines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tkeha_e2e::lab::{LabConfig, ManifestOptions};
use tkeha_e2e::scenario::{SETTLE, lab, single_holder};

const PATH: &str = "/apis/platform.tkestack.io/v1/clusters/lab-job";

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// One stored Cluster behind GET `PATH` and PATCH `PATH/status`; records `METHOD path`.
struct StatefulApi {
    url: String,
    object: Arc<Mutex<Value>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl StatefulApi {
    fn start(object: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let object = Arc::new(Mutex::new(object));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (o, l) = (object.clone(), log.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (o, l) = (o.clone(), l.clone());
                std::thread::spawn(move || serve(conn, &o, &l));
            }
        });
        Self { url, object, log }
    }

    fn status(&self) -> Value {
        self.object.lock().unwrap()["status"].clone()
    }

    fn kubeconfig(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("job-mode-kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: lab\n\
                 clusters:\n- name: lab\n  cluster:\n    server: {}\n\
                 contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: u\n\
                 users:\n- name: u\n  user:\n    token: lab-token\n",
                self.url
            ),
        )
        .unwrap();
        path
    }
}

fn serve(conn: TcpStream, object: &Mutex<Value>, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts
            .next()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        log.lock().unwrap().push(format!("{method} {path}"));
        let (code, reply) = {
            let mut o = object.lock().unwrap();
            match (method.as_str(), path.as_str()) {
                ("GET", PATH) => (200, o.clone()),
                ("PATCH", p) if p == format!("{PATH}/status") => {
                    let mut patch: Value = serde_json::from_slice(&body).unwrap();
                    let rv = o["metadata"]["resourceVersion"].clone();
                    if patch["metadata"]["resourceVersion"] != rv {
                        (
                            409,
                            json!({"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"}),
                        )
                    } else {
                        patch.as_object_mut().unwrap().remove("metadata");
                        merge(&mut o, &patch);
                        let next = rv.as_str().unwrap().parse::<u64>().unwrap() + 1;
                        o["metadata"]["resourceVersion"] = json!(next.to_string());
                        (200, o.clone())
                    }
                }
                _ => (
                    404,
                    json!({"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
                ),
            }
        };
        let text = reply.to_string();
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

fn provisioner(args: &[&str], kubeconfig: &Path, known_hosts: &Path) -> Output {
    let bin = tkeha_e2e::provisioner::binary().unwrap();
    Command::new(bin)
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--known-hosts")
        .arg(known_hosts)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ha_ready(status: &Value) -> Value {
    status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "HAReady")
        .cloned()
        .expect("HAReady condition")
}

#[test]
fn apply_by_name_records_the_real_vip_holder_and_status_keeps_the_transition() {
    let lab = lab(LabConfig::default());
    let mut object = lab.manifest(&ManifestOptions::default()).unwrap();
    object["metadata"] = json!({"name": "lab-job", "resourceVersion": "1"});
    object["status"] = json!({"phase": "Running", "conditions": [
        {"type": "EnsureKubeadm", "status": "True", "reason": "Done"}
    ]});
    let api = StatefulApi::start(object);
    let kubeconfig = api.kubeconfig(&lab.dir);
    let known_hosts = lab.known_hosts_path();

    let out = provisioner(&["apply", "lab-job"], &kubeconfig, &known_hosts);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let holder = single_holder(&lab, SETTLE).unwrap();
    let status = api.status();
    assert_eq!(
        status["ha"]["vipHolder"], lab.masters[holder].ip,
        "{status}"
    );
    assert_eq!(status["ha"]["lastApplySucceeded"], true);
    let ready = ha_ready(&status);
    assert_eq!(ready["status"], "True", "{ready}");
    assert_eq!(ready["reason"], "Provisioned");
    assert_eq!(status["conditions"][0]["type"], "EnsureKubeadm");
    assert_eq!(status["phase"], "Running");
    let since = ready["lastTransitionTime"].clone();
    let applied = status["ha"]["lastApplyTime"].clone();

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = provisioner(&["status", "lab-job"], &kubeconfig, &known_hosts);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = api.status();
    let ready = ha_ready(&status);
    assert_eq!(ready["reason"], "Healthy");
    assert_eq!(
        ready["lastTransitionTime"], since,
        "still True: no transition"
    );
    assert_ne!(ready["lastProbeTime"], since, "probed again");
    assert_eq!(
        status["ha"]["lastApplyTime"], applied,
        "status is not an apply"
    );
    assert_eq!(status["conditions"].as_array().unwrap().len(), 2);
    let log = api.log.lock().unwrap().clone();
    assert_eq!(
        log.iter().filter(|l| l.starts_with("PATCH")).count(),
        2,
        "{log:?}"
    );
}

#[test]
fn apply_by_name_reaches_masters_behind_a_jump_server() {
    use tkeha_e2e::lab::LabProxy;
    let lab = lab(LabConfig {
        proxies: true,
        ..LabConfig::masters(3)
    });
    let opts = ManifestOptions {
        proxy: Some(LabProxy::Jump),
        ..ManifestOptions::default()
    };
    let mut object = lab.manifest(&opts).unwrap();
    object["metadata"] = json!({"name": "lab-job", "resourceVersion": "1"});
    let api = StatefulApi::start(object);
    let kubeconfig = api.kubeconfig(&lab.dir);
    let before = lab.jump_connections().unwrap();
    let out = provisioner(
        &["apply", "lab-job", "-o", "json"],
        &kubeconfig,
        &lab.known_hosts_path(),
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["jump_servers"][0]["logins"], 1, "{all}");
    assert_eq!(lab.jump_connections().unwrap() - before, 1);
    let holder = single_holder(&lab, SETTLE).unwrap();
    let status = api.status();
    assert_eq!(
        status["ha"]["vipHolder"], lab.masters[holder].ip,
        "{status}"
    );
    assert_eq!(ha_ready(&status)["reason"], "Provisioned");
}

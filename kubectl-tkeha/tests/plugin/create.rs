//! `kubectl tkeha create` against the fake API server: what is sent (method, path, query, content
//! type, body), what is not sent (invalid input), and how the server's answers are shown.

use serde_json::{Value, json};

use crate::fake_apiserver::{FakeApiServer, Recorded, Reply};
use crate::fake_queries::pairs;
use crate::harness::Kubectl;

const CLUSTERS: &str = "/apis/platform.tkestack.io/v1/clusters";

/// Three masters with a VIP; no port and no vrid, so defaults must be filled in.
const PROD: &str = r#"# the seed shape, as YAML
apiVersion: platform.tkestack.io/v1
kind: Cluster
metadata:
  name: cls-prod
spec:
  clusterCIDR: 10.244.0.0/16
  type: Baremetal
  version: "1.30.0"
  machines:
    - {ip: 192.168.1.2, username: root, password: MTIzNDU2}
    - {ip: 192.168.1.3, username: root, password: MTIzNDU2}
    - {ip: 192.168.1.4, username: root, password: MTIzNDU2}
  features:
    ha:
      tke: {vip: 192.168.1.10}
"#;

/// What the API server stores: the posted object with a uid (and a name from generateName).
/// `kubectl tkeha create -f FILE --kubeconfig KUBECONFIG EXTRA...`
fn create(
    k: &Kubectl,
    file: &std::path::Path,
    kubeconfig: &std::path::Path,
    extra: &[&str],
) -> crate::harness::Output {
    let mut args = vec![
        "create",
        "-f",
        file.to_str().unwrap(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    k.tkeha(&args)
}

fn echo_created(request: &Recorded) -> Reply {
    let mut object = request.json();
    let metadata = object["metadata"].as_object_mut().unwrap();
    if !metadata.contains_key("name") {
        let prefix = metadata["generateName"].as_str().unwrap().to_string();
        metadata.insert("name".into(), json!(format!("{prefix}x7k2p")));
    }
    metadata.insert("uid".into(), json!("7d1c2c4e-0000-4000-8000-000000000001"));
    Reply::json(201, object)
}

fn the_defaulted_prod() -> Value {
    let machine =
        |ip: &str| json!({"ip": ip, "username": "root", "password": "MTIzNDU2", "port": 22});
    json!({
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "cls-prod"},
        "spec": {
            "clusterCIDR": "10.244.0.0/16",
            "type": "Baremetal",
            "version": "1.30.0",
            "machines": [machine("192.168.1.2"), machine("192.168.1.3"), machine("192.168.1.4")],
            "features": {"ha": {"tke": {"vip": "192.168.1.10", "vrid": 11}}},
            "dnsDomain": "cluster.local",
            "publicAlternativeNames": ["192.168.1.10"]
        }
    })
}

#[test]
fn a_valid_cluster_is_posted_once_with_its_defaults_filled_in() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file("prod.yaml", PROD);
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod created\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let post = &requests[0];
    assert_eq!(post.line(), format!("POST {CLUSTERS}"));
    assert_eq!(post.content_type, "application/json");
    assert_eq!(pairs(&post.query), ["fieldManager=kubectl-tkeha"]);
    assert_eq!(post.json(), the_defaulted_prod());
}

#[test]
fn an_invalid_cluster_is_refused_with_validates_report_and_nothing_is_sent() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let bad = PROD.replace("vip: 192.168.1.10", "vip: 192.168.1.300");
    let file = k.file("bad.yaml", bad);
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "nothing was created");
    let validate = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(validate.code, 1, "{validate:?}");
    assert!(
        validate.stdout.contains("spec.features.ha.tke.vip"),
        "{validate:?}"
    );
    assert!(
        out.stderr.ends_with(&validate.stdout),
        "create must refuse with validate's report:\n{}\nvs\n{}",
        out.stderr,
        validate.stdout
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn a_cluster_without_any_name_gets_tkestacks_generate_name_as_validate_says() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file(
        "noname.yaml",
        PROD.replace("  name: cls-prod\n", "  labels: {}\n"),
    );
    // validate and create agree: valid, with generateName cls- as a default
    let validate = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(validate.code, 0, "{validate:?}");
    assert!(
        validate
            .stdout
            .contains("noname.yaml: default: metadata.generateName = \"cls-\""),
        "{validate:?}"
    );
    // A client dry run shows the prefix, as kubectl does, and sends nothing.
    let out = create(&k, &file, &kubeconfig, &["--dry-run=client"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls- created (dry run)\n"
    );
    let out = create(&k, &file, &kubeconfig, &["--dry-run=client", "-o", "name"]);
    assert_eq!(out.stdout, "cluster.platform.tkestack.io/cls-\n", "{out:?}");
    assert!(server.requests().is_empty());
    // The real create sends generateName and shows the name the server picked.
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-x7k2p created\n"
    );
    let body = server.requests()[0].json();
    assert_eq!(
        body["metadata"],
        json!({"labels": {}, "generateName": "cls-"})
    );
}

#[test]
fn unknown_fields_warn_by_default_and_fail_with_validate_strict() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file(
        "typo.yaml",
        PROD.replace(
            "  clusterCIDR: 10.244.0.0/16\n",
            "  clusterCidr: 10.244.0.0/16\n",
        ),
    );
    let warning =
        "Warning: unknown field \"spec.clusterCidr\" (did you mean \"spec.clusterCIDR\"?)\n";
    let out = create(&k, &file, &kubeconfig, &["--dry-run=client"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stderr, warning);
    for strict in ["--validate=strict", "--validate=true", "--validate"] {
        let out = create(&k, &file, &kubeconfig, &[strict]);
        assert_eq!(out.code, 1, "{strict}: {out:?}");
        assert!(
            out.stderr.contains(
                "typo.yaml: unknown field \"spec.clusterCidr\" (did you mean \"spec.clusterCIDR\"?)\n"
            ),
            "{strict}: {out:?}"
        );
    }
    let out = create(
        &k,
        &file,
        &kubeconfig,
        &["--validate=ignore", "--dry-run=client"],
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{out:?}");
    let out = create(&k, &file, &kubeconfig, &["--validate=maybe"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("strict (or true), warn, ignore (or false)"),
        "{out:?}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn generate_name_is_sent_as_is_and_the_servers_name_is_shown() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file(
        "gen.yaml",
        PROD.replace("  name: cls-prod\n", "  generateName: cls-prod-\n"),
    );
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod-x7k2p created\n"
    );
    let body = server.requests()[0].json();
    assert_eq!(body["metadata"], json!({"generateName": "cls-prod-"}));
}

#[test]
fn a_refusal_from_the_server_reads_like_kubectl_and_exits_1() {
    // What the API server sends when the validating webhook denies: the webhook's Status with
    // the API server's prefix on the message, details and causes kept.
    let denial = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "admission webhook \"clusters.validate.tkeha.tkestack.io\" denied the request: \
                    Cluster.platform.tkestack.io \"cls-prod\" is invalid: [...]",
        "reason": "Invalid", "code": 422,
        "details": {"name": "cls-prod", "group": "platform.tkestack.io", "kind": "Cluster", "causes": [
            {"reason": "FieldValueDuplicate", "field": "spec.machines[1].ip",
             "message": "Duplicate value: \"192.168.1.2\""},
            {"reason": "FieldValueRequired", "field": "spec.features.ha.thirdParty.vport",
             "message": "Required value: set the port"}
        ]}
    });
    let server = FakeApiServer::start(move |_| Reply::json(422, denial.clone()));
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file("prod.yaml", PROD);
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "The Cluster \"cls-prod\" is invalid: \n\
         * spec.machines[1].ip: Duplicate value: \"192.168.1.2\"\n\
         * spec.features.ha.thirdParty.vport: Required value: set the port\n"
    );

    // A 422 without details: kubectl's short form with the server's message.
    let bare = FakeApiServer::start(|_| Reply::status(422, "Invalid", "no good"));
    let kubeconfig = bare.kubeconfig(k.dir(), "fake");
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stderr, "The request is invalid: no good\n");
}

#[test]
fn already_exists_and_a_missing_crd_are_explained() {
    let exists = FakeApiServer::start(|_| {
        Reply::status(
            409,
            "AlreadyExists",
            "clusters.platform.tkestack.io \"cls-prod\" already exists",
        )
    });
    let k = Kubectl::new();
    let file = k.file("prod.yaml", PROD);
    let kubeconfig = exists.kubeconfig(k.dir(), "fake");
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "Error from server (AlreadyExists): clusters.platform.tkestack.io \"cls-prod\" already exists\n"
    );

    // kube-apiserver answers a group it does not serve with a plain-text 404.
    let no_crd = FakeApiServer::start(|_| Reply::text(404, "404 page not found"));
    let kubeconfig = no_crd.kubeconfig(k.dir(), "fake");
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("doesn't have a resource type \"clusters\""),
        "{out:?}"
    );
    assert!(out.stderr.contains("install the tkeha chart"), "{out:?}");
}

#[test]
fn context_selects_the_server_from_the_flag_file_or_kubeconfig_env() {
    let server = FakeApiServer::start(echo_created);
    let mut k = Kubectl::new();
    // The current context is the decoy (nothing listens there); only --context reaches the fake.
    let kubeconfig = server.kubeconfig(k.dir(), "decoy");
    let file = k.file("prod.yaml", PROD);
    let file = file.to_str().unwrap();

    let out = k.tkeha(&[
        "create",
        "-f",
        file,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.starts_with("error: talking to the API server"),
        "{out:?}"
    );
    assert!(server.requests().is_empty());

    let out = k.tkeha(&[
        "create",
        "-f",
        file,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--context",
        "fake",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.requests().len(), 1);

    // Without --kubeconfig the file comes from $KUBECONFIG, as with kubectl.
    k.set_kubeconfig_env(&kubeconfig);
    let out = k.tkeha(&["create", "-f", file, "--context", "fake"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.requests().len(), 2);

    let out = k.tkeha(&["create", "-f", file, "--context", "nowhere"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("context nowhere"), "{out:?}");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn server_dry_run_asks_for_dry_run_all_and_client_dry_run_sends_nothing() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let file = k.file("prod.yaml", PROD);
    let file = file.to_str().unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap();

    let out = k.tkeha(&[
        "create",
        "-f",
        file,
        "--kubeconfig",
        kubeconfig,
        "--dry-run=server",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod created (server dry run)\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        pairs(&requests[0].query),
        ["dryRun=All", "fieldManager=kubectl-tkeha"]
    );

    for args in [["--dry-run", "-ojson"], ["--dry-run=client", "-ojson"]] {
        let mut all = vec!["create", "-f", file, "--kubeconfig", kubeconfig];
        all.extend(args);
        let out = k.tkeha(&all);
        assert_eq!(out.code, 0, "{out:?}");
        let printed: Value = serde_json::from_str(&out.stdout).unwrap();
        let mut expected = the_defaulted_prod();
        for machine in expected["spec"]["machines"].as_array_mut().unwrap() {
            machine["password"] = json!("<redacted>");
        }
        assert_eq!(printed, expected, "the object, SSH passwords never shown");
    }
    assert_eq!(server.requests().len(), 1, "client dry runs sent a request");

    let out = k.tkeha(&["create", "-f", file, "--dry-run"]);
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod created (dry run)\n"
    );
    let out = k.tkeha(&["create", "-f", file, "--dry-run=client", "-o", "name"]);
    assert_eq!(out.stdout, "cluster.platform.tkestack.io/cls-prod\n");
}

#[test]
fn stdin_without_api_version_and_kind_is_sent_with_both_and_warnings_go_to_stderr() {
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    // Two masters: allowed, with the webhook's warning about an even etcd member count.
    let manifest = PROD
        .replace("apiVersion: platform.tkestack.io/v1\nkind: Cluster\n", "")
        .replace(
            "    - {ip: 192.168.1.4, username: root, password: MTIzNDU2}\n",
            "",
        );
    assert!(!manifest.contains("kind:"), "{manifest}");
    let out = k.tkeha_stdin(
        &[
            "create",
            "-f",
            "-",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        manifest.as_bytes(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout,
        "cluster.platform.tkestack.io/cls-prod created\n"
    );
    assert!(
        out.stderr.starts_with("Warning: spec.machines: 2 masters"),
        "{out:?}"
    );
    let body = server.requests()[0].json();
    assert_eq!(body["apiVersion"], "platform.tkestack.io/v1");
    assert_eq!(body["kind"], "Cluster");
    assert_eq!(body["spec"]["machines"].as_array().unwrap().len(), 2);
}

#[test]
fn a_bad_private_key_is_refused_as_validate_refuses_it_and_nothing_is_sent() {
    use base64::Engine as _;
    let b64 = |path: &std::path::Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
    };
    let server = FakeApiServer::start(echo_created);
    let k = Kubectl::new();
    let kubeconfig = server.kubeconfig(k.dir(), "fake");
    let key = crate::init::keygen(&k, "id_create", "", &[]);
    let public = b64(&key.with_extension("pub"));
    let encrypted = b64(&crate::init::keygen(&k, "id_create_enc", "s3cret", &[]));
    // Machine 0 logs in with a public key; machine 1's jump server with an encrypted key and no
    // passPhrase.
    let bad = PROD
        .replace(
            "{ip: 192.168.1.2, username: root, password: MTIzNDU2}",
            &format!("{{ip: 192.168.1.2, username: root, privateKey: {public}}}"),
        )
        .replace(
            "{ip: 192.168.1.3, username: root, password: MTIzNDU2}",
            &format!(
                "{{ip: 192.168.1.3, username: root, password: MTIzNDU2, proxy: {{type: \
                 SSHJumpServer, ip: 10.0.0.1, port: 22, username: jump, privateKey: {encrypted}}}}}"
            ),
        );
    let file = k.file("bad-key.yaml", bad);
    let out = create(&k, &file, &kubeconfig, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "", "nothing was created");
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    let validate = k.tkeha(&["validate", "-f", file.to_str().unwrap()]);
    assert_eq!(validate.code, 1, "{validate:?}");
    for expected in [
        "spec.machines[0].privateKey: Invalid value: once decoded, this is a public key",
        "spec.machines[1].proxy.passPhrase: Required value: the privateKey is encrypted",
    ] {
        assert!(validate.stdout.contains(expected), "{validate:?}");
    }
    assert!(
        out.stderr.ends_with(&validate.stdout),
        "{out:?}\nvs\n{validate:?}"
    );
    for shown in [&out.stderr, &validate.stdout, &validate.stderr] {
        assert!(
            !shown.contains(&public[..24]) && !shown.contains(&encrypted[..40]),
            "{shown}"
        );
    }
}

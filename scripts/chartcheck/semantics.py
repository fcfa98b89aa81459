"""What the rendered chart must say, per values set: the checks no schema can make.

Each checker takes the merged values, the rendered objects that are part of the release (hooks
apart) and NOTES.txt, and returns the failed checks. The `helm test` hooks are checked by
`check_test_hooks` for every values set.
"""

from __future__ import annotations

import base64
import pathlib
import subprocess
import tempfile
from typing import Any, Callable

from .helmcli import NAMESPACE, RELEASE
from .report import Failures

def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    if len(found) != 1:
        raise AssertionError(f"expected one {kind}, found {len(found)}")
    return found[0]


def openssl(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)


def check_generated_certs(f: Failures, objects: list[dict[str, Any]], service_dns: str) -> None:
    secret = one(objects, "Secret")
    ca = secret["data"]["ca.crt"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        bundle = one(objects, kind)["webhooks"][0]["clientConfig"].get("caBundle")
        f.check(bundle == ca, f"{kind} caBundle is the Secret's ca.crt (one CA per render)")
    with tempfile.TemporaryDirectory() as tmpdir:
        ca_file = pathlib.Path(tmpdir) / "ca.crt"
        cert_file = pathlib.Path(tmpdir) / "tls.crt"
        ca_file.write_bytes(base64.b64decode(ca))
        cert_file.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
        verify = openssl(["verify", "-CAfile", str(ca_file), str(cert_file)])
        f.check(verify.returncode == 0, f"serving certificate verifies against the CA: {verify.stdout!r}{verify.stderr!r}")
        hostname = openssl(["x509", "-in", str(cert_file), "-noout", "-checkhost", service_dns])
        f.check(
            b"does match" in hostname.stdout and b"NOT" not in hostname.stdout,
            f"serving certificate covers {service_dns}: {hostname.stdout!r}",
        )
    key = base64.b64decode(secret["data"]["tls.key"])
    f.check(b"PRIVATE KEY" in key, "Secret tls.key holds a PEM private key")


def check_webhooks(f: Failures, objects: list[dict[str, Any]], values: dict[str, Any], service: dict[str, Any]) -> None:
    for kind, path, policy in (
        ("MutatingWebhookConfiguration", "/mutate", values["webhook"]["mutatingFailurePolicy"]),
        ("ValidatingWebhookConfiguration", "/validate", "Fail"),
    ):
        hooks = one(objects, kind)["webhooks"]
        f.check(len(hooks) == 1, f"{kind} has one webhook")
        hook = hooks[0]
        f.check(hook["failurePolicy"] == policy, f"{kind} failurePolicy {policy}")
        f.check(hook["sideEffects"] == "None", f"{kind} sideEffects None")
        f.check(hook["timeoutSeconds"] == 5, f"{kind} timeoutSeconds 5")
        f.check(hook["admissionReviewVersions"] == ["v1"], f"{kind} admissionReviewVersions [v1]")
        f.check(hook["matchPolicy"] == "Equivalent", f"{kind} matchPolicy Equivalent")
        rules = hook["rules"]
        f.check(
            rules == [{
                "apiGroups": ["platform.tkestack.io"],
                "apiVersions": ["v1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["clusters"],
                "scope": "Cluster",
            }],
            f"{kind} matches Cluster CREATE/UPDATE only, never clusters/status: {rules}",
        )
        svc = hook["clientConfig"]["service"]
        f.check(
            svc == {"name": service["metadata"]["name"], "namespace": NAMESPACE, "path": path, "port": 443},
            f"{kind} calls the Service on 443{path}: {svc}",
        )
        f.check(
            hook.get("objectSelector") == {"matchExpressions": [{
                "key": "tkeha.tkestack.io/skip-admission", "operator": "NotIn", "values": ["true"]}]},
            f"{kind} honours the opt-out label",
        )
        f.check("matchConditions" not in hook, f"{kind} has no matchConditions by default")
        if kind == "MutatingWebhookConfiguration":
            f.check(hook.get("reinvocationPolicy") == "IfNeeded", "mutating reinvocationPolicy IfNeeded")


def check_default(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    service = one(objects, "Service")
    service_dns = f"{service['metadata']['name']}.{NAMESPACE}.svc"
    check_webhooks(f, objects, values, service)
    check_generated_certs(f, objects, service_dns)

    deployment = one(objects, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    f.check(spec["replicas"] == 2, "webhook runs 2 replicas")
    selector = spec["selector"]["matchLabels"]
    f.check(
        all(spec["template"]["metadata"]["labels"].get(k) == v for k, v in selector.items()),
        "pod template carries the selector labels",
    )
    f.check(
        selector == {"app.kubernetes.io/name": "tkeha", "app.kubernetes.io/instance": RELEASE,
                     "app.kubernetes.io/component": "webhook"},
        f"selector uses only immutable labels: {selector}",
    )
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    f.check(anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector, "preferred anti-affinity on the pods")
    f.check(anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname", "anti-affinity spreads over nodes")
    psc = pod["securityContext"]
    f.check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 65532, "pod runs as non-root 65532")
    f.check(psc.get("seccompProfile") == {"type": "RuntimeDefault"}, "seccomp RuntimeDefault")
    csc = container["securityContext"]
    f.check(csc.get("readOnlyRootFilesystem") is True, "read-only root filesystem")
    f.check(csc.get("allowPrivilegeEscalation") is False, "no privilege escalation")
    f.check(csc.get("capabilities") == {"drop": ["ALL"]}, "all capabilities dropped")
    f.check(pod.get("automountServiceAccountToken") is False, "webhook pods mount no API token")
    f.check(bool(container["resources"].get("requests")) and bool(container["resources"].get("limits")),
            "resource requests and limits set")
    f.check(container["command"] == ["tkeha-webhook"], "container runs tkeha-webhook")
    f.check(container["image"] == "tkeha/tkeha:0.1.0", f"image defaults to the appVersion: {container['image']}")
    f.check(
        container["args"] == [
            "--listen=0.0.0.0:8443",
            "--health-listen=0.0.0.0:8080",
            "--tls-cert=/tls/tls.crt",
            "--tls-key=/tls/tls.key",
            "--third-party-single-master=error",
        ],
        f"webhook flags: {container['args']}",
    )
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    f.check(ports == {"https": 8443, "health": 8080}, f"container ports {ports}")
    f.check(container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}, "readiness GET /readyz")
    f.check(container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}, "liveness GET /healthz")
    tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    f.check(tls_volume["secret"]["secretName"] == one(objects, "Secret")["metadata"]["name"],
            "pods mount the Secret the chart generated")

    svc_ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    f.check(svc_ports == {"https": (443, "https"), "health": (8080, "health")}, f"Service ports {svc_ports}")
    f.check(service["spec"]["selector"] == selector, "Service selects the webhook pods")

    pdb = one(objects, "PodDisruptionBudget")
    f.check(pdb["spec"]["minAvailable"] == 1, "PDB minAvailable 1")
    f.check(pdb["spec"]["selector"]["matchLabels"] == selector, "PDB selects the webhook pods")

    crd = one(objects, "CustomResourceDefinition")
    f.check(crd["metadata"]["name"] == "clusters.platform.tkestack.io", "CRD name")
    f.check(crd["spec"]["scope"] == "Cluster", "CRD is cluster-scoped")
    f.check(crd["spec"]["group"] == "platform.tkestack.io", "CRD group")
    versions = crd["spec"]["versions"]
    f.check([v["name"] for v in versions] == ["v1"], "CRD serves v1")
    f.check(versions[0].get("subresources", {}).get("status") == {}, "CRD has the status subresource")
    f.check(crd["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep",
            "CRD survives helm uninstall")

    cluster_role = one(objects, "ClusterRole")
    f.check(
        cluster_role["rules"] == [
            {"apiGroups": ["platform.tkestack.io"], "resources": ["clusters"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["platform.tkestack.io"], "resources": ["clusters/status"], "verbs": ["get", "patch", "update"]},
        ],
        f"provisioner ClusterRole: {cluster_role['rules']}",
    )
    roles = {o["metadata"]["name"]: o for o in by_kind(objects, "Role")}
    f.check(sorted(roles) == ["tkeha-provision-user", "tkeha-provisioner"], f"Roles: {sorted(roles)}")
    role = roles.get("tkeha-provisioner", {"rules": []})
    f.check(role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
            f"provisioner Role only reads Secrets: {role['rules']}")
    # What the plugin's caller needs for `provision NAME --in-cluster` (create the Job, find its
    # pod, follow the log), as a Role bound to nobody: never bound to the provisioner itself.
    user_role = roles.get("tkeha-provision-user", {"rules": []})
    f.check(
        user_role["rules"] == [
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        ],
        f"provision-user Role: {user_role['rules']}",
    )
    f.check(
        all(b["roleRef"]["name"] != "tkeha-provision-user" for b in by_kind(objects, "RoleBinding")),
        "the provision-user Role is bound to nobody by the chart",
    )
    accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    f.check("tkeha-provisioner" in accounts, f"provisioner ServiceAccount tkeha-provisioner: {accounts}")
    for binding_kind in ("ClusterRoleBinding", "RoleBinding"):
        subjects = one(objects, binding_kind)["subjects"]
        f.check(subjects == [{"kind": "ServiceAccount", "name": "tkeha-provisioner", "namespace": NAMESPACE}],
                f"{binding_kind} binds the provisioner ServiceAccount")

    required = ("helm.sh/chart", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                "app.kubernetes.io/managed-by", "app.kubernetes.io/version")
    for o in objects:
        labels = o["metadata"].get("labels", {})
        missing = [k for k in required if k not in labels]
        f.check(not missing, f"{o['kind']}/{o['metadata']['name']} has the standard labels (missing {missing})")
        if o["kind"] not in {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                             "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}:
            f.check(o["metadata"].get("namespace") == NAMESPACE, f"{o['kind']}/{o['metadata']['name']} in the release namespace")
    f.check(not by_kind(objects, "Certificate"), "no cert-manager objects by default")
    f.check("--in-cluster" in text and "--known-hosts-configmap" in text,
            "NOTES show a provision --in-cluster command the plugin accepts (with a host-key policy)")
    f.check("--role=tkeha-provision-user" in text, "NOTES explain binding the provision-user Role")
    f.check("helm test tkeha -n tkeha-system" in text and "kubectl create --dry-run=server" in text
            and "clusters.validate.tkeha.tkestack.io" in text,
            "NOTES say how to test a rejected Cluster (helm test, and a server-side dry run by hand)")
    return f


def check_cert_manager(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    service = one(objects, "Service")
    f.check(not by_kind(objects, "Secret"), "cert-manager mode renders no Secret of its own")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        timeout = one(objects, kind)["webhooks"][0]["timeoutSeconds"]
        f.check(timeout == values["webhook"]["timeoutSeconds"], f"{kind} timeoutSeconds follows the values: {timeout}")
    certificates = {o["metadata"]["name"]: o for o in by_kind(objects, "Certificate")}
    issuers = {o["metadata"]["name"]: o for o in by_kind(objects, "Issuer")}
    serving = certificates.get("tkeha-webhook-serving")
    f.check(serving is not None, f"serving Certificate exists: {sorted(certificates)}")
    f.check(len(certificates) == 2 and len(issuers) == 2, "self-signed Issuer, CA Certificate, CA Issuer, serving Certificate")
    ca_cert = certificates.get("tkeha-webhook-ca", {})
    f.check(ca_cert.get("spec", {}).get("isCA") is True, "CA Certificate isCA")
    f.check(ca_cert.get("spec", {}).get("issuerRef", {}).get("name") == "tkeha-selfsigned", "CA signed by the self-signed Issuer")
    f.check(issuers.get("tkeha-selfsigned", {}).get("spec") == {"selfSigned": {}}, "self-signed Issuer")
    f.check(issuers.get("tkeha-webhook-ca", {}).get("spec") == {"ca": {"secretName": "tkeha-webhook-ca"}}, "CA Issuer")
    if serving:
        dns = serving["spec"]["dnsNames"]
        f.check(f"{service['metadata']['name']}.{NAMESPACE}.svc" in dns, f"serving Certificate covers the Service: {dns}")
        f.check(serving["spec"]["issuerRef"]["name"] == "tkeha-webhook-ca", "serving Certificate issued by the CA Issuer")
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        tls_volume = next(v for v in pod["volumes"] if v["name"] == "tls")
        f.check(tls_volume["secret"]["secretName"] == serving["spec"]["secretName"], "pods mount the cert-manager Secret")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        config = one(objects, kind)
        annotation = config["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
        f.check(annotation == f"{NAMESPACE}/tkeha-webhook-serving", f"{kind} inject-ca-from: {annotation}")
        f.check("caBundle" not in config["webhooks"][0]["clientConfig"], f"{kind} leaves caBundle to cainjector")
    return f


def check_no_crd(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    f.check(not by_kind(objects, "CustomResourceDefinition"), "crd.install=false leaves the CRD out")
    f.check(len(by_kind(objects, "ValidatingWebhookConfiguration")) == 1, "webhooks still rendered without the CRD")
    f.check("The CRD was NOT installed" in text and "tke-platform-api" in text, "NOTES explain the tke-platform-api case")
    return f


def check_options(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    f.check("--allowed-versions=1.30.2,1.31.1" in container["args"], f"allowed versions passed: {container['args']}")
    f.check("--third-party-single-master=warning" in container["args"], "single-master policy passed")
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        hook = one(objects, kind)["webhooks"][0]
        f.check("objectSelector" not in hook, f"{kind}: empty optOutLabel removes the objectSelector")
        f.check(
            hook.get("matchConditions") == [{
                "name": "skip-listed-users",
                "expression": "!(request.userInfo.username in [\"system:serviceaccount:tke:tke-platform-controller\"])",
            }],
            f"{kind} skips listed users by CEL: {hook.get('matchConditions')}",
        )
    f.check(one(objects, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Ignore",
            "mutatingFailurePolicy is honoured")
    f.check(one(objects, "ValidatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Fail",
            "validating webhook stays Fail")
    role = one(objects, "Role")
    f.check(role["metadata"]["name"] == "tkeha-provisioner", "userRole.create=false leaves the provision-user Role out")
    f.check(role["rules"][0].get("resourceNames") == ["ssh-keys"], "secretNames narrow the Secret access")
    f.check(not by_kind(objects, "PodDisruptionBudget"), "PDB can be turned off")
    return f




def check_custom_image(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    container = pod["containers"][0]
    f.check(container["image"] == image, f"webhook image {container['image']} is {image}")
    f.check(container["imagePullPolicy"] == values["image"]["pullPolicy"], "imagePullPolicy is honoured")
    f.check(pod.get("imagePullSecrets") == values["imagePullSecrets"], f"imagePullSecrets: {pod.get('imagePullSecrets')}")
    f.check(f"--image {image}" in text, "NOTES give the provision command the same image")
    return f


def check_replicas(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    f.check(one(objects, "Deployment")["spec"]["replicas"] == 3, "3 webhook replicas")
    f.check(one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 2, "PDB minAvailable 2")
    f.check("(3 replicas)" in text, "NOTES count 3 replicas")
    return f


def check_labels_annotations(values: dict[str, Any], objects: list[dict[str, Any]], text: str) -> Failures:
    f = Failures()
    deployment = one(objects, "Deployment")
    meta = deployment["spec"]["template"]["metadata"]
    for key, value in values["webhook"]["podLabels"].items():
        f.check(meta["labels"].get(key) == value, f"pod label {key}={value}")
    f.check(meta.get("annotations") == values["webhook"]["podAnnotations"], f"pod annotations: {meta.get('annotations')}")
    selector = deployment["spec"]["selector"]["matchLabels"]
    f.check(not set(values["webhook"]["podLabels"]) & set(selector), "extra pod labels stay out of the immutable selector")
    return f


def hook_objects(hooks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [h for h in hooks if h["kind"] == kind]


def check_test_hooks(values: dict[str, Any], hooks: list[dict[str, Any]], service_dns: str) -> Failures:
    """The `helm test` hooks: the TLS probe, and (with the CRD) the rejected-Cluster test and its RBAC."""
    f = Failures()
    for h in hooks:
        annotations = h["metadata"].get("annotations", {})
        f.check(annotations.get("helm.sh/hook") == "test", f"{h['kind']}/{h['metadata']['name']} is a test hook only")
        policy = set(annotations.get("helm.sh/hook-delete-policy", "").split(","))
        f.check({"before-hook-creation", "hook-succeeded"} <= policy,
                f"{h['kind']}/{h['metadata']['name']} is replaced on rerun and removed after success: {policy}")
    pods = {p["metadata"]["name"]: p for p in hook_objects(hooks, "Pod")}
    probe = pods.get("tkeha-test-webhook")
    if f.check(probe is not None, f"TLS probe test Pod: {sorted(pods)}") and probe:
        script = probe["spec"]["containers"][0]["args"][0]
        f.check(f"http://{service_dns}:8080/readyz" in script, "helm test probes /readyz on the health port")
        f.check("--cacert /tls/ca.crt" in script and f"https://{service_dns}:443/" in script,
                "helm test verifies the TLS port against the CA")
    reject = pods.get("tkeha-test-reject")
    if not values["crd"]["install"]:
        f.check(reject is None and len(hooks) == 1, "without the CRD only the TLS probe runs (the webhooks are never called)")
        return f
    if not f.check(reject is not None, "rejected-Cluster test Pod tkeha-test-reject") or reject is None:
        return f
    spec = reject["spec"]
    f.check(spec.get("serviceAccountName") == "tkeha-test-reject" and spec.get("automountServiceAccountToken") is True,
            "the test Pod authenticates as its own ServiceAccount")
    f.check(spec["containers"][0]["command"] == ["/bin/sh", "/cluster/test.sh"], "the Pod runs the ConfigMap's test.sh")
    f.check(spec["volumes"][0] == {"name": "cluster", "configMap": {"name": "tkeha-test-reject"}}, "the ConfigMap is mounted")
    (role,) = hook_objects(hooks, "ClusterRole") or [None]
    f.check(role is not None and role["rules"] == [
        {"apiGroups": ["platform.tkestack.io"], "resources": ["clusters"], "verbs": ["create"]}],
        "the test's ClusterRole may only create Clusters")
    (binding,) = hook_objects(hooks, "ClusterRoleBinding") or [None]
    f.check(binding is not None and binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "tkeha-test-reject", "namespace": NAMESPACE}]
        and binding["roleRef"]["name"] == "tkeha-test-reject", "the binding grants it to the test ServiceAccount")
    weight = lambda h: int(h["metadata"]["annotations"].get("helm.sh/hook-weight", "0"))  # noqa: E731
    rbac = [h for h in hooks if h["kind"] != "Pod"]
    f.check(all(weight(h) < weight(reject) for h in rbac), "RBAC and the ConfigMap are created before the Pod (hook weights)")
    return f


# Values sets: name -> (overrides on values.yaml, checker). Every set is linted, rendered,
# schema-checked and stable-checked; the checker adds what only that set can show.
SETS: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any], list[dict[str, Any]], str], Failures]]] = {
    "default": ({}, check_default),
    # cert-manager's chain; timeoutSeconds 10 is the API server's default (?timeout=10s).
    "cert-manager": ({"certManager": {"enabled": True}, "webhook": {"timeoutSeconds": 10}}, check_cert_manager),
    "no-crd": ({"crd": {"install": False}}, check_no_crd),
    "custom-image": (
        {
            "image": {"repository": "registry.example.com:5000/platform/tkeha", "tag": "0.1.0-rc.1", "pullPolicy": "Always"},
            "imagePullSecrets": [{"name": "registry-credentials"}],
            "tests": {"image": "registry.example.com:5000/mirror/curl:8.11.1"},
        },
        check_custom_image,
    ),
    "replicas-3": ({"webhook": {"replicas": 3, "podDisruptionBudget": {"minAvailable": 2}}}, check_replicas),
    "labels-annotations": (
        {"webhook": {"podLabels": {"team": "platform", "cost-center": "k8s"},
                     "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}}},
        check_labels_annotations,
    ),
    "options": (
        {
            "webhook": {
                "allowedVersions": ["1.30.2", "1.31.1"],
                "thirdPartySingleMaster": "warning",
                "optOutLabel": "",
                "skipUsernames": ["system:serviceaccount:tke:tke-platform-controller"],
                "mutatingFailurePolicy": "Ignore",
                "podDisruptionBudget": {"enabled": False},
            },
            "provisioner": {"rbac": {"secretNames": ["ssh-keys"]}, "userRole": {"create": False}},
        },
        check_options,
    ),
}

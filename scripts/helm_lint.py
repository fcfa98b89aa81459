#!/usr/bin/env python3
"""The Helm gate for charts/tkeha, with the real Helm library (no helm binary exists here).

Stages (each a sub-command, run in its own process: two Go runtimes must not share one):

  sdkpy   helm-sdkpy Lint (what the issue asks for) of chart copies with default values,
          certManager.enabled=true and crd.install=false. Lint cannot take values, so each case
          is a temporary copy of the chart with a modified values.yaml. Any message of severity
          >= 3 or any entry in Errors fails. helm-sdkpy loses most messages ({}), so only the
          path is printed. Then it proves the gate can fail: a chart copy with a template syntax
          error, and one with a value the schema forbids, must both be reported as failures.
  schema  values.yaml defaults against values.schema.json (jsonschema, draft 7), and values
          the schema must refuse.
  render  helm-python-sdk (Helm v4 library with an offline render and readable lint messages):
          strict lint with the same value sets, then render each and check the manifests: the
          generated CA is the caBundle of both webhook configurations and signed the serving
          certificate for the Service's DNS name (openssl verify), webhook settings, security
          context, probes, PDB, RBAC, labels, cert-manager wiring, the CRD toggle.

Exit status: 0 when every check passed, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Callable

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "tkeha"
RELEASE = "tkeha"
NAMESPACE = "tkeha-system"

# The value sets every stage checks.
CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "cert-manager": {"certManager": {"enabled": True}},
    "no-crd": {"crd": {"install": False}},
}


class Failures:
    """Collects failed checks so one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.items.append(what)
            print(f"FAIL {what}", file=sys.stderr)

    def exit(self, stage: str) -> None:
        if self.items:
            print(f"helm-lint[{stage}]: {len(self.items)} check(s) failed", file=sys.stderr)
            sys.exit(1)
        print(f"helm-lint[{stage}]: ok")


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of `over` into a copy of `base` (Helm's --set semantics for maps)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def default_values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def chart_copy(tmp: pathlib.Path, name: str, overrides: dict[str, Any]) -> pathlib.Path:
    """A copy of the chart under tmp/name/tkeha with `overrides` merged into values.yaml."""
    dest = tmp / name / "tkeha"
    shutil.copytree(CHART, dest)
    values = merge(default_values(), overrides)
    (dest / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return dest


# ----------------------------------------------------------------------------- sdkpy stage


def sdkpy_problems(path: pathlib.Path) -> list[str]:
    """helm-sdkpy lint of one chart directory: the failing paths (empty when it passed)."""
    import helm_sdkpy

    result = asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration(namespace=NAMESPACE)).run(str(path)))
    problems = []
    for message in result.get("Messages") or []:
        if message.get("Severity", 0) >= 3:
            problems.append(f"severity {message.get('Severity')} in {message.get('Path')}: {message.get('Err')}")
    for error in result.get("Errors") or []:
        problems.append(f"error: {error}")
    return problems


def stage_sdkpy() -> None:
    failures = Failures()
    with tempfile.TemporaryDirectory(prefix="tkeha-helm-lint-") as tmpdir:
        tmp = pathlib.Path(tmpdir)
        for name, overrides in CASES.items():
            problems = sdkpy_problems(chart_copy(tmp, name, overrides))
            for problem in problems:
                print(f"  {name}: {problem}", file=sys.stderr)
            failures.check(not problems, f"helm-sdkpy lint, values '{name}'")

        # The gate must be able to fail, or a broken chart would pass silently.
        broken = chart_copy(tmp, "broken-template", {})
        service = broken / "templates" / "service.yaml"
        service.write_text(service.read_text() + "\n{{ if }}\n")
        failures.check(bool(sdkpy_problems(broken)), "helm-sdkpy lint reports a template syntax error")

        bad_value = chart_copy(tmp, "broken-value", {"webhook": {"mutatingFailurePolicy": "Maybe"}})
        failures.check(bool(sdkpy_problems(bad_value)), "helm-sdkpy lint reports a value the schema forbids")
    failures.exit("sdkpy")


# ----------------------------------------------------------------------------- schema stage


def stage_schema() -> None:
    import jsonschema

    failures = Failures()
    schema = json.loads((CHART / "values.schema.json").read_text())
    validator_cls = jsonschema.Draft7Validator
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    defaults = default_values()
    for name, overrides in CASES.items():
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(merge(defaults, overrides))]
        for error in errors:
            print(f"  {name}: {error}", file=sys.stderr)
        failures.check(not errors, f"values '{name}' match values.schema.json")

    must_refuse = {
        "unknown top-level key": {"replicas": 3},
        "unknown webhook key": {"webhook": {"replica": 3}},
        "mutatingFailurePolicy Maybe": {"webhook": {"mutatingFailurePolicy": "Maybe"}},
        "timeoutSeconds 31": {"webhook": {"timeoutSeconds": 31}},
        "thirdPartySingleMaster deny": {"webhook": {"thirdPartySingleMaster": "deny"}},
        "allowedVersions v1.30": {"webhook": {"allowedVersions": ["v1.30"]}},
        "certManager.duration 90d": {"certManager": {"duration": "90d"}},
        "crd.install 'yes'": {"crd": {"install": "yes"}},
        "empty provisioner SA name": {"provisioner": {"serviceAccount": {"name": ""}}},
        "userRole.create 'yes'": {"provisioner": {"userRole": {"create": "yes"}}},
        "quote in skipUsernames": {"webhook": {"skipUsernames": ["a'b"]}},
    }
    for what, overrides in must_refuse.items():
        failures.check(not validator.is_valid(merge(defaults, overrides)), f"schema refuses {what}")
    failures.exit("schema")


# ----------------------------------------------------------------------------- render stage


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    from helm_python.chart import Chart

    with Chart.load(str(CHART)) as chart:
        manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("_path", path)
                objects.append(doc)
    return objects


def notes(values: dict[str, Any]) -> str:
    from helm_python.chart import Chart

    with Chart.load(str(CHART)) as chart:
        manifests = chart.render(values=values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return next((text for path, text in manifests.items() if path.endswith("NOTES.txt")), "")


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


def check_default(values: dict[str, Any], objects: list[dict[str, Any]]) -> Failures:
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

    test_pods = [o for o in by_kind(objects, "Pod") if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    f.check(len(test_pods) == 1, "one helm test Pod")
    if test_pods:
        script = test_pods[0]["spec"]["containers"][0]["args"][0]
        f.check(f"http://{service_dns}:8080/readyz" in script, "helm test probes /readyz on the health port")
        f.check(f"--cacert /tls/ca.crt" in script and f"https://{service_dns}:443/" in script,
                "helm test verifies the TLS port against the CA")

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
    text = notes(values)
    f.check("--in-cluster" in text and "--known-hosts-configmap" in text,
            "NOTES show a provision --in-cluster command the plugin accepts (with a host-key policy)")
    f.check("--role=tkeha-provision-user" in text, "NOTES explain binding the provision-user Role")
    return f


def check_cert_manager(values: dict[str, Any], objects: list[dict[str, Any]]) -> Failures:
    f = Failures()
    service = one(objects, "Service")
    f.check(not by_kind(objects, "Secret"), "cert-manager mode renders no Secret of its own")
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


def check_no_crd(values: dict[str, Any], objects: list[dict[str, Any]]) -> Failures:
    f = Failures()
    f.check(not by_kind(objects, "CustomResourceDefinition"), "crd.install=false leaves the CRD out")
    f.check(len(by_kind(objects, "ValidatingWebhookConfiguration")) == 1, "webhooks still rendered without the CRD")
    text = notes(values)
    f.check("The CRD was NOT installed" in text and "tke-platform-api" in text, "NOTES explain the tke-platform-api case")
    return f


def check_options(values: dict[str, Any], objects: list[dict[str, Any]]) -> Failures:
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


RENDER_CASES: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any], list[dict[str, Any]]], Failures]]] = {
    "default": (CASES["default"], check_default),
    "cert-manager": (CASES["cert-manager"], check_cert_manager),
    "no-crd": (CASES["no-crd"], check_no_crd),
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


def stage_render() -> None:
    from helm_python.chart import lint

    total = Failures()
    defaults = default_values()
    for name, (overrides, checker) in RENDER_CASES.items():
        values = merge(defaults, overrides)
        report = lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        for message in report.get("messages") or []:
            if message["severity"] >= 2:
                print(f"  {name}: severity {message['severity']} {message['path']}: {message['error']}", file=sys.stderr)
        total.check(
            not report.get("errors") and all(m["severity"] < 2 for m in report.get("messages") or []),
            f"helm-python-sdk strict lint, values '{name}'",
        )
        try:
            result = checker(values, render(values))
        except (AssertionError, KeyError, StopIteration, TypeError) as err:
            total.check(False, f"render '{name}': {type(err).__name__}: {err}")
            continue
        for item in result.items:
            total.items.append(f"{name}: {item}")
    total.exit("render")


STAGES = {"sdkpy": stage_sdkpy, "schema": stage_schema, "render": stage_render}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        print(f"usage: {sys.argv[0]} {{{'|'.join(STAGES)}}}", file=sys.stderr)
        sys.exit(2)
    STAGES[sys.argv[1]]()

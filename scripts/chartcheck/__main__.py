"""The chart gate of `make test` (scripts/helm-lint.sh): the real Helm CLI, the Kubernetes 1.33 schemas,
the API server's CRD rules, and the real webhook called as kube-apiserver calls it.

Stages (all run; every failure is reported; exit 1 if any failed):

  metadata      Chart.yaml: appVersion is the workspace version, kubeVersion admits 1.30-1.33 and
                refuses 1.29, the chart version is SemVer
  values        values.schema.json: every values set passes, values it must refuse are refused
  set:NAME      per values set: helm lint --strict, helm template, every object (hooks included)
                strictly against the Kubernetes 1.33 schemas, the CRD rules, the set's own render
                checks and the `helm test` hooks, and two renders equal but for the certificate
  package       helm package into a temporary dist, lint of the .tgz, helm show values/chart
  lookup        helm template --dry-run=server against a stand-in API server: an upgrade keeps the
                stored Secret's CA, certificate and key; plain helm template makes a new CA
  apiserver:*   the real tkeha-webhook with the self-signed Secret, and with certificates issued
                from the cert-manager Certificates, called by the Go client
  helm-test     the rendered `helm test` script against a stand-in API server that admits through
                the real webhook: passes on the rejection, fails when the Cluster is accepted
  fixtures      every broken chart under tests/chart-fixtures fails exactly its check

Usage: python scripts/chartcheck [STAGE-PREFIX...]   (no argument: every stage)
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from typing import Any

if __package__ in (None, ""):  # `python scripts/chartcheck`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    __package__ = "chartcheck"

import jsonschema  # noqa: E402
import yaml  # noqa: E402

from chartcheck import apiserver, certs, checks, helmcli, semantics, standin  # noqa: E402
from chartcheck.helmcli import NAMESPACE, ROOT  # noqa: E402
from chartcheck.report import Failures, Report  # noqa: E402

CHART = ROOT / "charts" / "tkeha"
FIXTURES = ROOT / "tests" / "chart-fixtures"


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of `over` into a copy of `base` (how Helm layers values files)."""
    out = json.loads(json.dumps(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = json.loads(json.dumps(value))
    return out


def defaults() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def values_of(name: str) -> dict[str, Any]:
    return merge(defaults(), semantics.SETS[name][0])


# ----------------------------------------------------------------------------- stages


def stage_metadata(f: Failures) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["version"]
    f.check(chart.get("appVersion") == workspace, f"appVersion {chart.get('appVersion')!r} is the workspace version {workspace!r}")
    f.check(bool(re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?", str(chart.get("version")))), "chart version is SemVer")
    f.check(bool(chart.get("kubeVersion")), "Chart.yaml has a kubeVersion constraint")
    for version, admitted in (("1.29.9", False), ("1.30.0", True), ("1.33.0", True)):
        result = helmcli.run(["template", "t", str(CHART), "-n", NAMESPACE, "--kube-version", version])
        f.check(result.ok == admitted, f"kubeVersion {chart.get('kubeVersion')!r} {'admits' if admitted else 'refuses'} "
                                       f"Kubernetes {version}: {result.why() if not result.ok else 'rendered'}")


def stage_values(f: Failures) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for name in semantics.SETS:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(values_of(name))]
        f.extend(f"values '{name}' against values.schema.json", errors)
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
        "tests.attempts 0": {"tests": {"attempts": 0}},
    }
    for what, overrides in must_refuse.items():
        f.check(not validator.is_valid(merge(defaults(), overrides)), f"values.schema.json refuses {what}")
    # Helm enforces the schema too: lint must fail on a refused value.
    f.check(bool(checks.lint_problems(CHART, merge(defaults(), {"webhook": {"mutatingFailurePolicy": "Maybe"}}))),
            "helm lint --strict refuses a value the schema forbids")


def stage_set(f: Failures, name: str) -> None:
    values = values_of(name)
    f.extend("lint", checks.lint_problems(CHART, values))
    rendered = checks.render(CHART, values)
    f.extend("schema", checks.schema_problems(rendered))
    f.extend("crd", checks.crd_problems(rendered))
    notes = helmcli.notes(CHART, values)
    if not f.check(notes.ok, f"helm install --dry-run=client (NOTES): {notes.why()}"):
        return
    checker = semantics.SETS[name][1]
    f.extend("render", checker(values, rendered.objects, notes.stdout).items)
    services = [o for o in rendered.objects if o["kind"] == "Service"]
    service_dns = f"{services[0]['metadata']['name']}.{NAMESPACE}.svc" if services else "?"
    f.extend("helm test hooks", semantics.check_test_hooks(values, rendered.hooks, service_dns).items)
    if values["crd"]["install"]:
        # The Cluster NOTES tell people to try by hand is the one `helm test` sends.
        match = re.search(r"save these lines as rejected\.yaml:\n(.*?)\nand run", notes.stdout, re.S)
        sent = [json.loads(c["data"]["cluster.json"]) for c in rendered.hooks if c["kind"] == "ConfigMap"]
        f.check(bool(match) and [yaml.safe_load(match.group(1))] == sent,
                "the invalid Cluster in NOTES is the one the helm test sends")
    f.extend("stable", checks.stable_problems(CHART, values))


def stage_package(f: Failures) -> None:
    with tempfile.TemporaryDirectory(prefix="tkeha-dist-") as dist:
        result = helmcli.run(["package", str(CHART), "-d", dist])
        if not f.check(result.ok, f"helm package: {result.why()}"):
            return
        chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
        tgz = pathlib.Path(dist) / f"tkeha-{chart['version']}.tgz"
        if not f.check(tgz.is_file(), f"helm package wrote {tgz.name}: {os.listdir(dist)}"):
            return
        lint = helmcli.run(["lint", "--strict", str(tgz), "-n", NAMESPACE])
        f.check(lint.ok, f"helm lint --strict of the package: {lint.why()}")
        shown = helmcli.run(["show", "values", str(tgz)])
        f.check(shown.ok and shown.stdout.strip() == (CHART / "values.yaml").read_text().strip(),
                "helm show values of the package is values.yaml")
        meta = helmcli.run(["show", "chart", str(tgz)])
        f.check(meta.ok and yaml.safe_load(meta.stdout).get("appVersion") == chart["appVersion"], "helm show chart: appVersion")
        ours = checks.normalized(checks.render(CHART, defaults()))
        packaged = checks.normalized(checks.render(tgz, defaults()))
        f.check([helmcli.strip_source(o) for o in ours] == [helmcli.strip_source(o) for o in packaged],
                "the package renders the same objects as the chart directory")


def tls_secret(rendered: checks.Render) -> dict[str, Any]:
    (secret,) = [s for s in rendered.kind("Secret") if s.get("type") == "kubernetes.io/tls"]
    return secret


def ca_bundles(rendered: checks.Render) -> list[str]:
    return [h["clientConfig"].get("caBundle") for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
            for c in rendered.kind(kind) for h in c["webhooks"]]


def stage_lookup(f: Failures) -> None:
    values = defaults()
    plain_a, plain_b = checks.render(CHART, values), checks.render(CHART, values)
    f.check(tls_secret(plain_a)["data"]["ca.crt"] != tls_secret(plain_b)["data"]["ca.crt"],
            "helm template (no cluster, no lookup) makes a new CA on every render, as docs/helm.md says")
    with standin.DiscoveryServer() as server, tempfile.TemporaryDirectory(prefix="tkeha-lookup-") as tmp:
        env = {"KUBECONFIG": str(server.kubeconfig(pathlib.Path(tmp)))}
        server_side = ["--dry-run=server", "--disable-openapi-validation"]
        first = checks.render(CHART, values, server_side, env)
        secret = tls_secret(first)
        f.check(any(p.endswith(f"/secrets/{secret['metadata']['name']}") for _, p in server.requests),
                f"the install render looked the Secret up: {server.requests[:3]}...")
        f.check(set(ca_bundles(first)) == {secret["data"]["ca.crt"]}, "install: both caBundles are the new Secret's CA")
        # The upgrade: the Secret of the first install is in the cluster now.
        stored = helmcli.strip_source(secret)
        stored["metadata"].update(labels={**stored["metadata"].get("labels", {}), "app.kubernetes.io/managed-by": "Helm"},
                                  annotations={"meta.helm.sh/release-name": helmcli.RELEASE,
                                               "meta.helm.sh/release-namespace": NAMESPACE})
        server.store(stored)
        upgrade = checks.render(CHART, values, server_side + ["--is-upgrade"], env)
        f.check(tls_secret(upgrade)["data"] == secret["data"], "upgrade: the Secret keeps its CA, certificate and key")
        f.check(set(ca_bundles(upgrade)) == {secret["data"]["ca.crt"]}, "upgrade: both caBundles stay the stored CA")
        # A stored Secret without its key is not reused: a fresh, consistent pair instead.
        broken = json.loads(json.dumps(stored))
        del broken["data"]["tls.key"]
        server.store(broken)
        regenerated = checks.render(CHART, values, server_side + ["--is-upgrade"], env)
        new = tls_secret(regenerated)["data"]
        f.check(new["ca.crt"] != secret["data"]["ca.crt"] and set(ca_bundles(regenerated)) == {new["ca.crt"]},
                "a stored Secret without tls.key is replaced by a new CA and pair, and the caBundles follow")


def stage_apiserver(f: Failures, name: str) -> None:
    rendered = checks.render(CHART, values_of(name))
    f.extend("apiserver client", checks.apiserver_problems(rendered))
    if name != "default":
        return
    # The client itself: a webhook that cannot speak HTTP/2 (Python's TLS server offers no h2)
    # is a failure, as it is for the API server, even when its answer is right.
    material = checks.serving_material(rendered)
    assert not isinstance(material, str), material
    cert, key, mutating, _ = material

    def http1(method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        uid = json.loads(body)["request"]["uid"]
        return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": True}}

    with standin.Server(http1, (cert, key)) as server:
        result = apiserver.call(mutating, f"127.0.0.1:{server.httpd.server_address[1]}", checks.seed_cluster())
        f.check(not result.ok and "the API server's client negotiates HTTP/2" in result.error,
                f"the Go client refuses an HTTP/1.1-only webhook: {result.error or result.summary}")


def run_test_script(script: str, cluster: str, api: str, ca: bytes, token: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="tkeha-helm-test-") as tmp:
        root = pathlib.Path(tmp)
        (root / "sa").mkdir()
        (root / "sa" / "ca.crt").write_bytes(ca)
        (root / "sa" / "token").write_text(token)
        (root / "cluster").mkdir()
        (root / "cluster" / "cluster.json").write_text(cluster)
        (root / "cluster" / "test.sh").write_text(script)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SA_DIR": str(root / "sa"), "API_URL": api,
               "CLUSTER_DIR": str(root / "cluster"), "OUT_DIR": tmp}
        return subprocess.run(["/bin/sh", str(root / "cluster" / "test.sh")], capture_output=True, text=True,
                              env=env, timeout=120, check=False)


def stage_helm_test(f: Failures) -> None:
    """The rendered `helm test` script, run by sh and curl against a stand-in API server."""
    values = merge(defaults(), {"tests": {"attempts": 2}})
    rendered = checks.render(CHART, values)
    (config_map,) = [c for c in rendered.kind("ConfigMap") if "test.sh" in c.get("data", {})]
    script, cluster = config_map["data"]["test.sh"], config_map["data"]["cluster.json"]
    material = checks.serving_material(rendered)
    assert not isinstance(material, str), material
    cert, key, mutating, validating = material
    ca, serving = certs.issue_chain({"isCA": True, "commonName": "stand-in apiserver CA", "duration": "1h"},
                                    {"dnsNames": ["localhost"], "usages": ["server auth", "digital signature"], "duration": "1h",
                                     "privateKey": {"algorithm": "ECDSA", "size": 256}})
    token = base64.b64encode(os.urandom(24)).decode()
    with apiserver.Webhook(cert, key) as webhook:
        def admit(obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            mutated, validated = apiserver.admit(mutating, validating, webhook.dial, obj)
            last = validated or mutated
            if not last.ok:
                return 500, {"kind": "Status", "code": 500, "message": f"failed calling webhook: {last.error}"}
            if not last.summary["allowed"]:
                hook = (validating if validated else mutating)["webhooks"][0]["name"]
                return standin.denial(hook, last.summary.get("status") or {})
            return 201, json.loads(json.dumps(mutated.summary.get("patchedObject") or obj))

        forbidden = (403, {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "RBAC not there yet"})
        cases = [
            ("the real webhook's rejection, after one 403 while RBAC propagates", admit, [forbidden], 0, "PASS: the invalid Cluster was rejected"),
            ("an API server that accepts the Cluster (webhook not called)", lambda obj: (201, obj), [], 1, "ACCEPTED"),
            ("a 422 from schema validation, not from the webhook", lambda obj: (422, {"kind": "Status", "code": 422,
             "message": 'Cluster.platform.tkestack.io "x" is invalid: spec.type: Unsupported value'}), [], 1, "not the denial of webhook"),
            ("RBAC never granted", lambda obj: forbidden, [], 1, "got 403"),
        ]
        for what, answer, canned, want_rc, want_text in cases:
            with standin.AdmissionServer(token, answer, (serving.cert, serving.key), canned) as server:
                proc = run_test_script(script, cluster, server.url, ca.cert, token)
                f.check(proc.returncode == want_rc and want_text in proc.stdout,
                        f"helm test script with {what}: exit {proc.returncode} (want {want_rc}), output: "
                        f"{(proc.stdout + proc.stderr).strip()[-600:]}")
                f.extend(f"stand-in API server ({what})", server.problems)


# ----------------------------------------------------------------------------- fixtures


def generic_problems(chart: pathlib.Path, values: dict[str, Any], wanted: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"lint": checks.lint_problems(chart, values)}
    try:
        rendered = checks.render(chart, values)
    except checks.RenderError as err:
        return {**out, "render": [str(err)]}
    out["schema"] = checks.schema_problems(rendered)
    out["crd"] = checks.crd_problems(rendered)
    out["stable"] = checks.stable_problems(chart, values)
    if "apiserver" in wanted:
        out["apiserver"] = checks.apiserver_problems(rendered)
    return out


def stage_fixtures(f: Failures) -> None:
    fixtures = sorted(p for p in FIXTURES.iterdir() if (p / "fixture.yaml").is_file())
    f.check(len(fixtures) >= 6, f"broken fixtures found: {[p.name for p in fixtures]}")
    covered: set[str] = set()
    for fixture in fixtures:
        spec = yaml.safe_load((fixture / "fixture.yaml").read_text())
        expect: dict[str, str] = spec["fails"]
        covered |= set(expect)
        problems = generic_problems(fixture, spec.get("values") or {}, set(expect))
        for check, text in expect.items():
            found = problems.get(check, [])
            f.check(any(text in p for p in found), f"{fixture.name}: the {check} check must fail with {text!r}; it reported {found}")
        for check, found in problems.items():
            if check not in expect:
                f.check(not found, f"{fixture.name}: only {sorted(expect)} may fail, but {check} reported {found}")
    f.check({"lint", "schema", "crd", "stable", "apiserver"} <= covered,
            f"every check is shown to fail on a fixture: {sorted(covered)}")


# ----------------------------------------------------------------------------- main


def stages() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("metadata", stage_metadata), ("values", stage_values)]
    out += [(f"set:{name}", lambda f, n=name: stage_set(f, n)) for name in semantics.SETS]
    out += [("package", stage_package), ("lookup", stage_lookup)]
    out += [("apiserver:self-signed", lambda f: stage_apiserver(f, "default")),
            ("apiserver:cert-manager", lambda f: stage_apiserver(f, "cert-manager"))]
    out += [("helm-test", stage_helm_test), ("fixtures", stage_fixtures)]
    return out


def main(argv: list[str]) -> int:
    start = time.monotonic()
    report = Report()
    print(f"helm-lint: helm {helmcli.helm_binary()}, webhook {apiserver.webhook_binary()}")
    for name, stage in stages():
        if argv and not any(name.startswith(prefix) for prefix in argv):
            continue
        with report.stage(name) as failures:
            stage(failures)
    return report.finish(time.monotonic() - start)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

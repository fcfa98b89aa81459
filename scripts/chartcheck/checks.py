"""The generic chart checks, each a function from a chart directory and values to a list of problems.

Used for the real chart (every values set) and for the broken fixtures under tests/chart-fixtures,
which must each fail exactly the check they were written for:

  lint       helm lint --strict (with --kube-version 1.33.0)
  schema     every rendered object, hooks included, against the Kubernetes 1.33 schemas, strictly
  crd        every rendered CRD against the API server's CRD schema rules (crdrules)
  stable     two renders are identical except for the generated certificate material
  apiserver  the real tkeha-webhook with the rendered (or cert-manager-issued) certificate, called
             by the Go client as kube-apiserver would, answers a valid and an invalid Cluster right
"""

from __future__ import annotations

import base64
import copy
import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

from . import apiserver, certs, crdrules, helmcli, kubeschema
from .helmcli import ROOT

# The seed's single-master TKE HA Cluster (webhook/tests/fixtures). Its expected patch is what
# `kubectl tkeha validate -o json` computes offline with the same rule engine.
SEED = ROOT / "webhook" / "tests" / "fixtures" / "review-create-tke-ha.json"
GENERATED = "<generated>"


@dataclass
class Render:
    """One `helm template`: release objects and test hooks apart."""

    manifest: str
    objects: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def everything(self) -> list[dict[str, Any]]:
        return self.objects + self.hooks

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.everything if o.get("kind") == kind]


class RenderError(Exception):
    """helm template failed; the message is helm's."""


def render(chart: pathlib.Path, values: dict[str, Any], extra: list[str] | None = None,
           env: dict[str, str] | None = None) -> Render:
    result = helmcli.template(chart, values, extra, env)
    if not result.ok:
        raise RenderError(result.why())
    out = Render(result.stdout)
    for obj in helmcli.objects(result.stdout):
        is_hook = "helm.sh/hook" in ((obj.get("metadata") or {}).get("annotations") or {})
        (out.hooks if is_hook else out.objects).append(obj)
    return out


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def lint_problems(chart: pathlib.Path, values: dict[str, Any]) -> list[str]:
    result = helmcli.lint(chart, values)
    if result.ok:
        return []
    # Lint's findings are on stdout ([ERROR]/[WARNING] lines; --strict fails on both).
    findings = [line.strip() for line in result.stdout.splitlines() if line.lstrip().startswith(("[ERROR]", "[WARNING]"))]
    return [f"helm lint --strict: {finding}" for finding in findings] or [f"helm lint --strict: {result.why()}"]


def schema_problems(rendered: Render) -> list[str]:
    problems = []
    for obj in rendered.everything:
        errors, _known = kubeschema.errors(helmcli.strip_source(obj))
        problems += [f"{name_of(obj)} ({obj.get('_source')}): {e}" for e in errors]
    return problems


def crd_problems(rendered: Render) -> list[str]:
    problems = []
    for crd in rendered.kind("CustomResourceDefinition"):
        problems += [f"{name_of(crd)}: {e}" for e in crdrules.check_crd(crd)]
    return problems


def normalized(rendered: Render) -> list[dict[str, Any]]:
    """The render with generated certificate material replaced by a placeholder."""
    out = []
    for obj in rendered.everything:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "Secret" and obj.get("type") == "kubernetes.io/tls":
            obj["data"] = {k: GENERATED for k in obj.get("data") or {}}
        for hook in obj.get("webhooks") or []:
            if "caBundle" in (hook.get("clientConfig") or {}):
                hook["clientConfig"]["caBundle"] = GENERATED
        out.append(obj)
    return out


def stable_problems(chart: pathlib.Path, values: dict[str, Any]) -> list[str]:
    first, second = normalized(render(chart, values)), normalized(render(chart, values))
    if len(first) != len(second):
        return [f"two renders gave {len(first)} and {len(second)} objects"]
    return [f"{name_of(a)} ({a.get('_source')}) differs between two renders of the same values "
            "(only the generated certificate may)" for a, b in zip(first, second) if a != b]


# ----------------------------------------------------------------------------- apiserver


def seed_cluster() -> dict[str, Any]:
    obj = json.loads(SEED.read_text())["request"]["object"]
    obj.setdefault("metadata", {})["name"] = "tke-ha"
    return obj


def serving_material(rendered: Render) -> tuple[bytes, bytes, dict[str, Any], dict[str, Any]] | str:
    """(cert, key, mutating, validating) as the API server and the pods would see them, or why not."""
    mutating = rendered.kind("MutatingWebhookConfiguration")
    validating = rendered.kind("ValidatingWebhookConfiguration")
    if len(mutating) != 1 or len(validating) != 1:
        return f"expected one Mutating- and one ValidatingWebhookConfiguration, got {len(mutating)} and {len(validating)}"
    secrets = [s for s in rendered.kind("Secret") if s.get("type") == "kubernetes.io/tls"]
    certificates = rendered.kind("Certificate")
    if secrets:
        data = secrets[0]["data"]
        return base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]), mutating[0], validating[0]
    if certificates:
        ca_specs = [c["spec"] for c in certificates if c["spec"].get("isCA")]
        serving_specs = [c["spec"] for c in certificates if not c["spec"].get("isCA")]
        if len(ca_specs) != 1 or len(serving_specs) != 1:
            return "cert-manager mode needs one CA Certificate and one serving Certificate"
        ca, serving = certs.issue_chain(ca_specs[0], serving_specs[0])
        return (serving.cert, serving.key, apiserver.with_ca_bundle(mutating[0], ca.cert),
                apiserver.with_ca_bundle(validating[0], ca.cert))
    return "neither a TLS Secret nor cert-manager Certificates were rendered"


def transport_problems(what: str, answer: apiserver.Answer, config: dict[str, Any]) -> list[str]:
    if not answer.ok:
        return [f"{what}: {answer.error}"]
    s = answer.summary
    problems = []
    timeout = config["webhooks"][0].get("timeoutSeconds", 10)
    if not s["url"].endswith(f"?timeout={timeout}s"):
        problems.append(f"{what}: {s['url']} does not carry ?timeout={timeout}s")
    if s["proto"] != "HTTP/2.0" or s["alpn"] != "h2":
        problems.append(f"{what}: {s['proto']} over ALPN {s['alpn']!r}, not HTTP/2")
    if s["uid"] != s["requestUID"]:
        problems.append(f"{what}: uid {s['uid']} does not echo {s['requestUID']}")
    return problems


def apiserver_problems(rendered: Render) -> list[str]:
    material = serving_material(rendered)
    if isinstance(material, str):
        return [material]
    cert, key, mutating, validating = material
    crds = rendered.kind("CustomResourceDefinition")
    rejected = [json.loads(cm["data"]["cluster.json"]) for cm in rendered.kind("ConfigMap") if "cluster.json" in cm.get("data", {})]
    problems: list[str] = []
    seed = seed_cluster()
    expected_patch = apiserver.plugin_patch(seed)
    if not expected_patch:
        problems.append("kubectl tkeha validate computes no defaults for the seed Cluster: nothing to compare the patch with")
    with apiserver.Webhook(cert, key) as webhook:
        # A valid Cluster: mutated with the documented defaults, then admitted.
        mutated, validated = apiserver.admit(mutating, validating, webhook.dial, seed)
        problems += transport_problems("mutate (valid Cluster)", mutated, mutating)
        if mutated.ok:
            s = mutated.summary
            if not s["allowed"] or s.get("patchType") != "JSONPatch" or s.get("patch") != expected_patch:
                problems.append(f"mutate (valid Cluster): allowed={s['allowed']} patchType={s.get('patchType')} "
                                f"patch={s.get('patch')}, expected kubectl tkeha validate's {expected_patch}")
            for crd in crds:
                problems += [f"the mutated valid Cluster against the CRD: {e}"
                             for e in crdrules.object_errors(s.get("patchedObject") or {}, crd, "v1")]
        if validated is not None:
            problems += transport_problems("validate (valid Cluster)", validated, validating)
            if validated.ok and (not validated.summary["allowed"] or validated.summary.get("patch")):
                problems.append(f"validate (valid Cluster): not admitted as is: {validated.summary}")
        elif mutated.ok:
            problems.append("validate (valid Cluster): never called, the mutating webhook refused it")
        # The helm test's invalid Cluster: the CRD schema admits it, the validating webhook must not.
        for cluster in rejected:
            for crd in crds:
                problems += [f"the helm test Cluster fails the CRD schema (so the webhook would never see it): {e}"
                             for e in crdrules.object_errors(cluster, crd, "v1")]
            mutated, validated = apiserver.admit(mutating, validating, webhook.dial, cluster)
            problems += transport_problems("mutate (helm test Cluster)", mutated, mutating)
            if validated is None:
                problems.append(f"the helm test Cluster never reached the validating webhook: {mutated.summary or mutated.error}")
                continue
            problems += transport_problems("validate (helm test Cluster)", validated, validating)
            if validated.ok:
                s = validated.summary
                status = s.get("status") or {}
                fields = [c.get("field") for c in (status.get("details") or {}).get("causes") or []]
                if s["allowed"] or status.get("code") != 422 or status.get("reason") != "Invalid" or "spec.machines[1].ip" not in fields:
                    problems.append(f"validate (helm test Cluster): expected a 422 Invalid denial naming spec.machines[1].ip, got "
                                    f"allowed={s['allowed']} status={json.dumps(status)[:300]}")
    return problems

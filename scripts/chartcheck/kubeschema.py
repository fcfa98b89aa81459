"""Strict validation of rendered objects against the Kubernetes 1.33 OpenAPI schemas (PyPI kubernetes-validate).

Strict means what server-side field validation (`fieldValidation=Strict`) means: a field the schema
does not know is an error, not something pruned away. The schemas are the package's
`v1.33.0-local-strict` set, loaded once and reused for every object (the package's own `validate`
re-reads the 1.4 MB definitions file per call and stops at the first error).

A kind in one of Kubernetes' own groups (core, the un-dotted legacy groups, `*.k8s.io`) must have a
schema: one without (e.g. apps/v1beta1 Deployment) is not served by Kubernetes 1.33 and is an error.
Kinds of other groups (cert-manager's Certificate and Issuer) are checked for their envelope only:
apiVersion, kind and a strict ObjectMeta; their spec is cert-manager's to judge and is covered by
the render checks and by the certificate the API-server-like client verifies.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

KUBE_VERSION = "1.33.0"
SCHEMA_SET = f"v{KUBE_VERSION}-local-strict"
OBJECT_META = "/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def schema_dir() -> Any:
    return resources.files("kubernetes_validate").joinpath("kubernetes-json-schema", SCHEMA_SET)


@functools.lru_cache(maxsize=None)
def registry() -> referencing.Registry:
    definitions = json.loads(schema_dir().joinpath("_definitions.json").read_text())
    return referencing.Registry().with_resource(
        definitions["$id"], referencing.Resource.from_contents(definitions, default_specification=referencing.jsonschema.DRAFT202012)
    )


def schema_file(api_version: str, kind: str) -> str:
    """kubernetes-validate's file name: apps/v1 Deployment -> deployment-apps-v1.json."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@functools.lru_cache(maxsize=None)
def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """The strict validator for one kind, or None when Kubernetes has no schema for it."""
    path = schema_dir().joinpath(schema_file(api_version, kind))
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # The file's own apiVersion/kind enums stop a kind from passing under another group's name.
    return jsonschema.Draft202012Validator(schema, registry=registry())


@functools.lru_cache(maxsize=None)
def envelope_validator() -> jsonschema.protocols.Validator:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://kubernetes.io/api/tkeha-envelope.json",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "properties": {
            "apiVersion": {"type": "string", "pattern": r"^[a-z0-9.-]+/v[0-9a-z]+$"},
            "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
            "metadata": {"$ref": OBJECT_META},
        },
    }
    return jsonschema.Draft202012Validator(schema, registry=registry())


def location(error: jsonschema.ValidationError) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "(root)"


def describe(error: jsonschema.ValidationError) -> str:
    """One line: the field, what is wrong, and (for unknown fields) which ones."""
    message = error.message
    if error.validator == "additionalProperties":
        message = message.replace("Additional properties are not allowed", "unknown field(s), not in the Kubernetes schema")
    if len(message) > 300:
        message = message[:297] + "..."
    return f"{location(error)}: {message}"


def errors(obj: dict[str, Any]) -> tuple[list[str], bool]:
    """(every schema error of `obj`, whether a Kubernetes schema exists for its kind)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind must both be strings"], False
    found = validator(api_version, kind)
    group = api_version.rpartition("/")[0]
    if found is None and ("." not in group or group.endswith(".k8s.io")):
        return [f"{api_version} {kind} is not served by Kubernetes {KUBE_VERSION} (no such kind in its API)"], False
    checker = found or envelope_validator()
    # Leaf-first: a oneOf/anyOf failure is reported by its most specific cause.
    out = []
    for error in sorted(checker.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path))):
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        out.append(describe(best))
    return out, found is not None

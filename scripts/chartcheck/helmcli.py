"""Runs the real Helm CLI (lint, template, install --dry-run, package, show values) over a chart directory.

Helm is found as `make test` finds it: $HELM, else `helm` on PATH (a user's own), else the one
scripts/deps.sh installed into .tools/bin. Values are always passed as a file, never --set, so
every values set is exactly the YAML written here.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE = "tkeha"
NAMESPACE = "tkeha-system"
KUBE_VERSION = "1.33.0"
TIMEOUT = 120


def helm_binary() -> str:
    """$HELM, else helm on PATH, else .tools/bin/helm (scripts/deps.sh); a clear error if none."""
    explicit = os.environ.get("HELM")
    if explicit:
        return explicit
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    tools = ROOT / os.environ.get("TKEHA_TOOLS", ".tools") / "bin" / "helm"
    if tools.is_file():
        return str(tools)
    raise SystemExit("chartcheck: no helm found ($HELM, PATH, .tools/bin/helm); run `bash scripts/deps.sh`")


@dataclass
class Result:
    """One helm run: the command, its exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def why(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-8:]) or f"exit status {self.returncode}"


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    # No cluster is ever contacted unless a test passes its own kubeconfig.
    full_env = {**os.environ, "KUBECONFIG": os.devnull, **(env or {})}
    full_env.pop("HELM_KUBECONTEXT", None)
    proc = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=TIMEOUT, env=full_env, check=False)
    return Result(args, proc.returncode, proc.stdout, proc.stderr)


class ValuesFile:
    """A temporary values file for one values set (context manager yielding its path)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.path: pathlib.Path | None = None

    def __enter__(self) -> str:
        handle = tempfile.NamedTemporaryFile("w", prefix="tkeha-values-", suffix=".yaml", delete=False)
        with handle:
            yaml.safe_dump(self.values, handle, sort_keys=False)
        self.path = pathlib.Path(handle.name)
        return str(self.path)

    def __exit__(self, *exc: object) -> None:
        if self.path:
            self.path.unlink(missing_ok=True)


def lint(chart: pathlib.Path, values: dict[str, Any]) -> Result:
    with ValuesFile(values) as path:
        return run(["lint", "--strict", str(chart), "-f", path, "-n", NAMESPACE, "--kube-version", KUBE_VERSION])


def template(chart: pathlib.Path, values: dict[str, Any], extra: list[str] | None = None, env: dict[str, str] | None = None) -> Result:
    with ValuesFile(values) as path:
        return run(["template", RELEASE, str(chart), "-f", path, "-n", NAMESPACE, "--kube-version", KUBE_VERSION, *(extra or [])], env)


def notes(chart: pathlib.Path, values: dict[str, Any]) -> Result:
    """NOTES.txt as `helm install` prints it (client-side dry run: no cluster contacted)."""
    with ValuesFile(values) as path:
        result = run(["install", RELEASE, str(chart), "-f", path, "-n", NAMESPACE, "--dry-run=client", "-o", "json"])
    if result.ok:
        import json

        result.stdout = json.loads(result.stdout)["info"].get("notes", "")
    return result


def objects(manifest: str) -> list[dict[str, Any]]:
    """The YAML documents of a rendered manifest, each with `_source` (the template it came from)."""
    out = []
    source = ""
    for chunk in manifest.split("\n---"):
        for line in chunk.splitlines():
            if line.startswith("# Source: "):
                source = line[len("# Source: "):]
                break
        doc = yaml.safe_load(chunk)
        if doc:
            if not isinstance(doc, dict):
                raise ValueError(f"{source}: a rendered document is not a mapping: {str(doc)[:80]}")
            doc["_source"] = source
            out.append(doc)
    return out


def strip_source(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "_source"}

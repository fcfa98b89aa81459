"""The real tkeha-webhook serving the chart's certificate, called the way kube-apiserver calls it.

`Webhook` runs the cargo-built binary (release or debug, whichever is newer; $TKEHA_WEBHOOK wins)
with the rendered certificate and key on loopback. `call` runs the Go client
(tests/chart/apiserver-client, built by scripts/helm-lint.sh, path in $TKEHA_APISERVER_CLIENT)
against one rendered webhook configuration, and `admit` chains the two the way the API server
does: the mutating webhook, its patch applied, then the validating webhook on the patched object.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from .helmcli import ROOT


def client_binary() -> str:
    path = os.environ.get("TKEHA_APISERVER_CLIENT")
    if not path or not pathlib.Path(path).is_file():
        raise RuntimeError("$TKEHA_APISERVER_CLIENT is not set to the built Go client (run through scripts/helm-lint.sh)")
    return path


def cargo_binary(name: str, env: str) -> pathlib.Path:
    """$env if set, else the newer of target/release/NAME and target/debug/NAME."""
    explicit = os.environ.get(env)
    if explicit:
        return pathlib.Path(explicit)
    built = [p for p in (ROOT / "target" / "release" / name, ROOT / "target" / "debug" / name) if p.is_file()]
    if not built:
        raise RuntimeError(f"no {name} binary in target/ (cargo build --workspace)")
    return max(built, key=lambda p: p.stat().st_mtime)


def webhook_binary() -> pathlib.Path:
    return cargo_binary("tkeha-webhook", "TKEHA_WEBHOOK")


def plugin_patch(obj: dict[str, Any]) -> Any:
    """The defaults `kubectl tkeha validate -o json` computes offline (the same rule engine)."""
    with tempfile.TemporaryDirectory(prefix="tkeha-plugin-") as tmp:
        path = pathlib.Path(tmp) / "cluster.json"
        path.write_text(json.dumps(obj))
        proc = subprocess.run([str(cargo_binary("kubectl-tkeha", "TKEHA_PLUGIN")), "validate", "-f", str(path), "-o", "json"],
                              capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"kubectl-tkeha validate: {proc.stderr.strip()}")
    return json.loads(proc.stdout)["patch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """tkeha-webhook on loopback with the given PEM pair; `dial` is its TLS address."""

    def __init__(self, cert: bytes, key: bytes) -> None:
        self.cert, self.key = cert, key
        self.tmp = tempfile.TemporaryDirectory(prefix="tkeha-webhook-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.dial = ""
        self.log = pathlib.Path(self.tmp.name) / "webhook.log"

    def __enter__(self) -> "Webhook":
        tmp = pathlib.Path(self.tmp.name)
        (tmp / "tls.crt").write_bytes(self.cert)
        (tmp / "tls.key").write_bytes(self.key)
        os.chmod(tmp / "tls.key", 0o600)
        for _ in range(3):  # a free port can be taken between the probe and the bind
            tls_port, health_port = free_port(), free_port()
            self.dial = f"127.0.0.1:{tls_port}"
            with self.log.open("wb") as log:
                self.proc = subprocess.Popen(
                    [str(webhook_binary()), f"--listen={self.dial}", f"--health-listen=127.0.0.1:{health_port}",
                     f"--tls-cert={tmp / 'tls.crt'}", f"--tls-key={tmp / 'tls.key'}"],
                    stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
                )
            if self.wait_ready(health_port):
                return self
            self.stop()
        raise RuntimeError(f"tkeha-webhook did not become ready: {self.log.read_text(errors='replace')[-2000:]}")

    def wait_ready(self, health_port: int) -> bool:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        # Graceful shutdown is the webhook tests' business; here it would only add its delay.
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.tmp.cleanup()


@dataclass
class Answer:
    """The Go client's result: its JSON summary, or the error it exited with."""

    ok: bool
    summary: dict[str, Any]
    error: str


def call(config: dict[str, Any], dial: str, obj: dict[str, Any], operation: str = "CREATE") -> Answer:
    with tempfile.TemporaryDirectory(prefix="tkeha-call-") as tmp:
        config_path = pathlib.Path(tmp) / "config.json"
        object_path = pathlib.Path(tmp) / "object.json"
        config_path.write_text(json.dumps({k: v for k, v in config.items() if k != "_source"}))
        object_path.write_text(json.dumps(obj))
        proc = subprocess.run(
            [client_binary(), "-config", str(config_path), "-dial", dial, "-object", str(object_path), "-operation", operation],
            capture_output=True, text=True, timeout=60, check=False,
        )
    if proc.returncode != 0:
        return Answer(False, {}, proc.stderr.strip() or f"exit status {proc.returncode}")
    return Answer(True, json.loads(proc.stdout), "")


def admit(mutating: dict[str, Any], validating: dict[str, Any], dial: str, obj: dict[str, Any]) -> tuple[Answer, Answer | None]:
    """Mutate, apply the patch, validate the result: the API server's admission order."""
    mutated = call(mutating, dial, obj)
    if not mutated.ok or not mutated.summary.get("allowed"):
        return mutated, None
    patched = mutated.summary.get("patchedObject") or obj
    return mutated, call(validating, dial, patched)


def with_ca_bundle(config: dict[str, Any], ca_pem: bytes) -> dict[str, Any]:
    """The configuration as cainjector leaves it: every webhook's caBundle set to the CA."""
    out = json.loads(json.dumps({k: v for k, v in config.items() if k != "_source"}))
    for hook in out.get("webhooks") or []:
        hook["clientConfig"]["caBundle"] = base64.b64encode(ca_pem).decode()
    return out

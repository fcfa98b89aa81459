"""Stand-ins for kube-apiserver, for the two things the chart asks of a live cluster.

`DiscoveryServer` answers what `helm template --dry-run=server` needs (version, discovery, GETs of
the release's objects) and serves stored Secrets, so the chart's `lookup` of its serving Secret
runs for real against HTTP. `AdmissionServer` answers the `helm test` script's POST of a Cluster
the way the API server would: bearer token and dry run checked, the object sent through the real
tkeha-webhook (mutate, then validate) with the Go client, a denial returned as the API server's
422 Status (`admission webhook "NAME" denied the request: ...`), an admission 201 otherwise; or a
scripted list of canned answers first. Both listen on loopback only.
"""

from __future__ import annotations

import http.server
import json
import pathlib
import ssl
import tempfile
import threading
from typing import Any, Callable

Handler = Callable[[str, str, bytes, dict[str, str]], tuple[int, dict[str, Any]]]

# group/version -> [(resource, kind, namespaced)] for every kind the chart renders.
RESOURCES = {
    "v1": [("secrets", "Secret", True), ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True),
           ("pods", "Pod", True), ("configmaps", "ConfigMap", True)],
    "apps/v1": [("deployments", "Deployment", True)],
    "policy/v1": [("poddisruptionbudgets", "PodDisruptionBudget", True)],
    "rbac.authorization.k8s.io/v1": [("clusterroles", "ClusterRole", False), ("clusterrolebindings", "ClusterRoleBinding", False),
                                     ("roles", "Role", True), ("rolebindings", "RoleBinding", True)],
    "admissionregistration.k8s.io/v1": [("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
                                        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False)],
    "apiextensions.k8s.io/v1": [("customresourcedefinitions", "CustomResourceDefinition", False)],
    "cert-manager.io/v1": [("certificates", "Certificate", True), ("issuers", "Issuer", True)],
}


def not_found(path: str) -> tuple[int, dict[str, Any]]:
    return 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                 "message": f"{path} not found"}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Server:
    """A loopback HTTP(S) server that hands every request to `handle`; records the requests."""

    def __init__(self, handle: Handler, tls: tuple[bytes, bytes] | None = None) -> None:
        self.handle = handle
        self.requests: list[tuple[str, str]] = []
        outer = self

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def respond(self, method: str) -> None:
                length = min(int(self.headers.get("Content-Length") or 0), 4 << 20)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((method, self.path))
                code, answer = outer.handle(method, self.path, body, dict(self.headers))
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.respond("GET")

            def do_POST(self) -> None:
                self.respond("POST")

        self.httpd = _Server(("127.0.0.1", 0), RequestHandler)
        self.scheme = "http"
        self.tmp = tempfile.TemporaryDirectory(prefix="tkeha-standin-")
        if tls:
            cert, key = pathlib.Path(self.tmp.name) / "tls.crt", pathlib.Path(self.tmp.name) / "tls.key"
            cert.write_bytes(tls[0])
            key.write_bytes(tls[1])
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://localhost:{self.httpd.server_address[1]}"

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.tmp.cleanup()


class DiscoveryServer(Server):
    """What `helm template --dry-run=server` reads: version, discovery, and stored objects by path."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        super().__init__(self.answer)

    def store(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.stored[f"/api/v1/namespaces/{meta['namespace']}/secrets/{meta['name']}"] = obj

    def answer(self, method: str, raw_path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        path = raw_path.split("?")[0]
        if method != "GET":
            return 405, {"kind": "Status", "code": 405, "message": "the stand-in only reads"}
        if path == "/version":
            return 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups = []
            for gv in RESOURCES:
                if "/" in gv:
                    group, version = gv.split("/")
                    entry = {"groupVersion": gv, "version": version}
                    groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
        for gv, resources in RESOURCES.items():
            if path == ("/api/v1" if gv == "v1" else f"/apis/{gv}"):
                return 200, {"kind": "APIResourceList", "groupVersion": gv, "resources": [
                    {"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k,
                     "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]} for r, k, ns in resources]}
        if path in self.stored:
            return 200, self.stored[path]
        return not_found(path)

    def kubeconfig(self, directory: pathlib.Path) -> pathlib.Path:
        path = directory / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "standin", "user": {"token": "standin"}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin"}}],
        }))
        path.chmod(0o600)
        return path


def denial(webhook: str, status: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The API server's answer to a webhook denial (webhookerrors.ToStatusErr)."""
    out = dict(status or {})
    out["code"] = max(int(out.get("code") or 400), 400)
    out["status"] = "Failure"
    prefix = f'admission webhook "{webhook}" denied the request'
    if out.get("message"):
        out["message"] = f"{prefix}: {out['message']}"
    elif out.get("reason"):
        out["message"] = f"{prefix}: {out['reason']}"
    else:
        out["message"] = f"{prefix} without explanation"
    return out["code"], {"kind": "Status", "apiVersion": "v1", "metadata": {}, **out}


class AdmissionServer(Server):
    """POST /apis/platform.tkestack.io/v1/clusters as the API server answers it, over TLS.

    `admit(obj)` returns the answer of admission (a code and a Status or the admitted object);
    `canned` answers come first, one per request (e.g. a 403 while RBAC propagates).
    """

    PATH = "/apis/platform.tkestack.io/v1/clusters"

    def __init__(self, token: str, admit: Callable[[dict[str, Any]], tuple[int, dict[str, Any]]],
                 tls: tuple[bytes, bytes], canned: list[tuple[int, dict[str, Any]]] | None = None) -> None:
        self.token, self.admit, self.canned = token, admit, list(canned or [])
        self.problems: list[str] = []
        super().__init__(self.answer, tls)

    def answer(self, method: str, raw_path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        path, _, query = raw_path.partition("?")
        if method != "POST" or path != self.PATH:
            return not_found(path)
        if headers.get("Authorization") != f"Bearer {self.token}":
            self.problems.append(f"Authorization header {headers.get('Authorization')!r} is not the token")
            return 401, {"kind": "Status", "code": 401, "reason": "Unauthorized", "message": "Unauthorized"}
        if "dryRun=All" not in query.split("&"):
            self.problems.append(f"not a dry run: {raw_path}")
        if headers.get("Content-Type") != "application/json":
            self.problems.append(f"Content-Type {headers.get('Content-Type')!r}")
        if self.canned:
            return self.canned.pop(0)
        try:
            obj = json.loads(body)
        except ValueError as err:
            return 400, {"kind": "Status", "code": 400, "message": f"body is not JSON: {err}"}
        return self.admit(obj)

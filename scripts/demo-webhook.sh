#!/usr/bin/env bash
# Demo of the admission webhook: start tkeha-webhook on loopback with a freshly generated CA and
# serving certificate, send it the seed's two manifests, a broken one and a VIP-changing update
# as AdmissionReviews over verified TLS (curl --cacert, as the API server uses caBundle), and
# print what the API server would tell the user. Everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$ROOT/target/release:$PATH"
die() { echo "demo-webhook: $*" >&2; exit 1; }
command -v tkeha-webhook >/dev/null || die "build first: cargo build --release -p tkeha-webhook"
command -v curl >/dev/null || die "curl missing (run: bash scripts/deps.sh)"
command -v python3 >/dev/null || die "python3 missing (run: bash scripts/deps.sh)"

WEBHOOK_SCRIPT=demo-webhook
# shellcheck source=lib/webhook.sh
source "$ROOT/scripts/lib/webhook.sh"

echo "==> A fresh CA and a serving certificate for localhost (what cert-manager or the chart would make)"
echo "\$ tkeha-webhook --gen-certs certs --gen-certs-host localhost,127.0.0.1"
webhook_certs | sed "s|$WORK/||g"
openssl x509 -in "$WORK/certs/tls.crt" -noout -subject -issuer -ext subjectAltName 2>/dev/null | sed 's/^/    /' || true

echo
echo "==> Start the webhook (TLS :$PORT for /mutate and /validate, plain :$HEALTH_PORT for health and metrics)"
echo "\$ tkeha-webhook --listen 127.0.0.1:$PORT --health-listen 127.0.0.1:$HEALTH_PORT --tls-cert certs/tls.crt --tls-key certs/tls.key"
webhook_start
echo "\$ curl http://127.0.0.1:$HEALTH_PORT/readyz"
curl -fsS "http://127.0.0.1:$HEALTH_PORT/readyz"; echo
echo "(every request below: curl --cacert certs/ca.crt https://localhost:$PORT/..., so the server is verified as the API server verifies it with caBundle)"

# The API server's part, played by Python: wrap each manifest in an AdmissionReview, call
# /mutate, apply the returned patch, call /validate with the patched object, and print what
# kubectl would show. All HTTP goes through curl with the CA.
python3 - "$ROOT" "$WORK" "https://localhost:$PORT" <<'EOF'
import base64, copy, json, subprocess, sys, uuid

root, work, url = sys.argv[1:]
ca = f"{work}/certs/ca.crt"

def strip_comments(text):
    """JSON with // and /* */ comments (the seed files) to plain JSON; strings are kept intact."""
    out, i, n, in_str = [], 0, len(text), False
    while i < n:
        c = text[i]
        if in_str:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1]); i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True; out.append(c)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n": i += 1
            continue
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        else:
            out.append(c)
        i += 1
    return json.loads("".join(out))

def review(operation, obj, old=None):
    gvk = {"group": "platform.tkestack.io", "version": "v1", "kind": "Cluster"}
    gvr = {"group": "platform.tkestack.io", "version": "v1", "resource": "clusters"}
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()), "kind": gvk, "resource": gvr, "requestKind": gvk,
            "requestResource": gvr, "name": obj.get("metadata", {}).get("name", ""),
            "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": False,
            "options": {"kind": f"{operation.title()}Options", "apiVersion": "meta.k8s.io/v1"},
        },
    }

def call(path, body):
    out = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--cacert", ca, "-H", "Content-Type: application/json",
         "--data-binary", "@-", url + path],
        input=json.dumps(body).encode(), capture_output=True, check=True)
    answer = json.loads(out.stdout)
    assert answer["response"]["uid"] == body["request"]["uid"], "uid not echoed"
    return answer["response"]

def pointer_parts(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]

def apply_patch(obj, ops):
    """RFC 6902 'add' (the only op the webhook sends: it only adds what is missing)."""
    obj = copy.deepcopy(obj)
    for op in ops:
        assert op["op"] == "add", op
        *parents, last = pointer_parts(op["path"])
        target = obj
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        if isinstance(target, list):
            target.append(op["value"]) if last == "-" else target.insert(int(last), op["value"])
        else:
            target[last] = op["value"]
    return obj

def kubectl_error(status, verb, filename, webhook):
    """What kubectl prints for a denial (checkErr in kubectl's cmd/util/helpers.go): a 422 Invalid
    with details as the kind, the name and one `* FIELD: MESSAGE` line per cause; otherwise the
    API server's message behind `Error from server (Reason)`."""
    details = status.get("details") or {}
    causes = []
    for c in details.get("causes", []):
        line = f'{c["field"]}: {c["message"]}'
        if line not in causes:
            causes.append(line)
    if status.get("reason") == "Invalid" and (details.get("kind") or details.get("name")) and causes:
        head = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid: '
        return head + causes[0] if len(causes) == 1 else head + "\n" + "\n".join(f"* {c}" for c in causes)
    return (f'Error from server ({status["reason"]}): error when {verb} "{filename}": admission webhook '
            f'"{webhook}" denied the request: {status["message"]}')

def show(title, filename, obj, operation="CREATE", old=None):
    name = obj.get("metadata", {}).get("name", "")
    verb = {"CREATE": "creating", "UPDATE": "applying"}[operation]
    print(f"\n==> {title}")
    print(f"$ kubectl {'create' if operation == 'CREATE' else 'apply'} -f {filename}")
    mutated = call("/mutate", review(operation, obj, old))
    if not mutated["allowed"]:
        status = mutated["status"]
        print(kubectl_error(status, verb, filename, "clusters.mutate.tkeha.tkestack.io"))
        return
    if "patch" in mutated:
        ops = json.loads(base64.b64decode(mutated["patch"]))
        print(f"  [mutating webhook] {mutated['patchType']}, decoded from base64:")
        for op in ops:
            print(f"      {op['op']} {op['path']} = {json.dumps(op['value'])}")
        obj = apply_patch(obj, ops)
        again = call("/mutate", review(operation, obj, old))
        print(f"  [mutating webhook] reinvoked on the patched object: {'no further patch' if 'patch' not in again else 'patch again?!'}")
    else:
        print("  [mutating webhook] nothing to default")
    validated = call("/validate", review(operation, obj, old))
    print("  What the user sees:")
    for w in validated.get("warnings", []):
        print(f"    Warning: {w}")
    if validated["allowed"]:
        print(f"    cluster.platform.tkestack.io/{name} {'created' if operation == 'CREATE' else 'configured'}")
    else:
        status = validated["status"]
        for line in kubectl_error(status, verb, filename, "clusters.validate.tkeha.tkestack.io").splitlines():
            print(f"    {line}")
        print(f"  (HTTP-level answer: allowed=false, status.code={status['code']}, "
              f"{len(status['details']['causes'])} cause(s) with field paths)")

seeds = f"{root}/api/tests/fixtures"
tke = strip_comments(open(f"{seeds}/seed-tke-ha.jsonc").read())
tke["metadata"] = {"name": "tke-ha"}
show("Seed example 1 (TKE HA, keepalived): seed-tke-ha.jsonc, named tke-ha", "seed-tke-ha.jsonc", tke)

lb = strip_comments(open(f"{seeds}/seed-third-party-ha.jsonc").read())
lb["metadata"] = {"name": "lb-ha"}
show("Seed example 2 (third-party LB, 3 masters): seed-third-party-ha.jsonc, named lb-ha",
     "seed-third-party-ha.jsonc", lb)

broken = copy.deepcopy(tke)
broken["metadata"] = {"name": "broken"}
broken["spec"]["machines"] = [
    {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "123456"},
    {"ip": "192.168.1.2", "port": 22, "username": "root", "password": "MTIzNDU2"},
]
broken["spec"]["features"]["ha"]["tke"]["vip"] = "192.168.1.300"
show("A broken one: VIP 192.168.1.300, the same master twice, a password that is not base64",
     "broken.json", broken)

# An update that moves the VIP of the stored (defaulted) third-party cluster.
stored = apply_patch(lb, json.loads(base64.b64decode(call("/mutate", review("CREATE", lb))["patch"])))
moved = copy.deepcopy(stored)
moved["spec"]["features"]["ha"]["thirdParty"]["vip"] = "192.168.1.6"
show("An update of lb-ha that moves its VIP to 192.168.1.6", "lb-ha.json", moved, "UPDATE", stored)
EOF

echo
echo "==> One log line per review (no object, no password); the first three:"
sleep 0.3   # log lines are written in batches, at least every 100 ms
grep '"message":"review"' "$WORK/server.log" | head -3 | sed 's/^/    /'
if grep -q 'MTIzNDU2\|123456' "$WORK/server.log"; then die "a password reached the log"; fi
echo "==> Metrics on the health listener:"
echo "\$ curl -s http://127.0.0.1:$HEALTH_PORT/metrics | grep admission_requests_total"
curl -fsS "http://127.0.0.1:$HEALTH_PORT/metrics" | grep '^tkeha_webhook_admission_requests_total' | grep -v ' 0$' | sed 's/^/    /'

echo
echo "==> SIGTERM: /readyz turns false, in-flight requests finish, the process exits 0"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" && echo "tkeha-webhook exited with status 0"
SERVER_PID=

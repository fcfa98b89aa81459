#!/usr/bin/env bash
# `make bench` part: tkeha-webhook throughput, latency and memory over keep-alive TLS with wrk.
#
# Starts the release tkeha-webhook with a fresh CA and serving certificate (its --gen-certs),
# then runs wrk against POST /validate and POST /mutate with a ~1 KB 3-master Cluster
# AdmissionReview (scripts/webhook-post.lua), and against GET /livez on the same TLS listener
# (the transport ceiling: same TLS, HTTP and router stack, no JSON, no rules). Writes the
# webhook section of BENCHMARKS.md.
#
# Knobs (environment): DURATION (default 10s), CONNECTIONS (16), PIN (0; 1 pins the server to
# the last core and wrk to the first), WORKERS (server --worker-threads; default one per core),
# NICE (-10 as root: server and wrk ahead of other work on this shared machine; 0 to disable).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
PIN=${PIN:-0}
NICE=${NICE:--10}
export PATH="$ROOT/target/release:$PATH"
# The allocator setting the image runs with (Dockerfile).
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-0}

die() { echo "bench-webhook: $*" >&2; exit 1; }
command -v tkeha-webhook >/dev/null || die "tkeha-webhook not on PATH (run: cargo build --release -p tkeha-webhook)"
command -v wrk >/dev/null || die "wrk missing (run: bash scripts/deps.sh)"
command -v curl >/dev/null || die "curl missing (run: bash scripts/deps.sh)"
command -v python3 >/dev/null || die "python3 missing (run: bash scripts/deps.sh)"

WEBHOOK_SCRIPT=bench-webhook
# shellcheck source=lib/webhook.sh
source "$ROOT/scripts/lib/webhook.sh"

webhook_certs >/dev/null

# The request body: the third-party HA seed (3 masters) as the API server sends it, compact.
python3 - "$ROOT/webhook/tests/fixtures/review-create-third-party-ha.json" "$WORK/review.json" <<'EOF'
import json, sys
review = json.load(open(sys.argv[1]))
review["request"]["name"] = "cls-bench"
review["request"]["object"]["metadata"] = {"name": "cls-bench"}
open(sys.argv[2], "w").write(json.dumps(review, separators=(",", ":")))
EOF
BODY_BYTES=$(wc -c <"$WORK/review.json")

CORES=$(nproc)
SERVER_CPU=() WRK_CPU=() PIN_NOTE="not pinned"
if [ "$PIN" = 1 ] && [ "$CORES" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=(taskset -c "$((CORES - 1))")
  WRK_CPU=(taskset -c 0)
  PIN_NOTE="server pinned to CPU $((CORES - 1)), wrk to CPU 0 (taskset)"
fi
PRIO=() PRIO_NOTE="default priority"
if [ "$NICE" != 0 ] && [ "$(id -u)" = 0 ]; then
  PRIO=(nice -n "$NICE")
  PRIO_NOTE="server and wrk at nice $NICE"
fi
SERVER_CPU=("${PRIO[@]}" "${SERVER_CPU[@]}")
WRK_CPU=("${PRIO[@]}" "${WRK_CPU[@]}")
WORKER_ARGS=()
if [ -n "${WORKERS:-}" ]; then WORKER_ARGS=(--worker-threads "$WORKERS"); fi

# Logs stay on (info, JSON, one line per review) and go to a file, as in a pod.
webhook_start "${SERVER_CPU[@]}" -- "${WORKER_ARGS[@]}"

URL="https://localhost:$PORT"
# Sanity: verified TLS, and the answers the benchmark counts are the real ones.
post() { curl -fsS --cacert "$WORK/certs/ca.crt" -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" "$URL$1"; }
post /validate | grep -q '"allowed":true' || die "/validate did not allow the 3-master seed"
post /mutate | grep -q '"patchType":"JSONPatch"' || die "/mutate returned no patch"
[ "$(curl -fsS --cacert "$WORK/certs/ca.crt" "$URL/livez")" = ok ] || die "/livez did not answer ok"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# run NAME CONNECTIONS: wrk output to $WORK/NAME-cC.txt, server CPU ticks used to .cpu.
run() {
  local name=$1 conns=$2 out="$WORK/$1-c$2.txt" t0 t1
  local args=(-t1 "-c$conns" "-d$DURATION" --latency)
  curl -fsS "http://127.0.0.1:$HEALTH_PORT/metrics" >"$out.metrics0"
  t0=$(cpu_ticks)
  if [ "${name%-ref}" = livez ]; then
    "${WRK_CPU[@]}" wrk "${args[@]}" "$URL/livez" >"$out"
  else
    "${WRK_CPU[@]}" wrk "${args[@]}" -s "$ROOT/scripts/webhook-post.lua" "$URL/$name" -- "$WORK/review.json" >"$out"
  fi
  t1=$(cpu_ticks)
  echo $((t1 - t0)) >"$out.cpu"
  curl -fsS "http://127.0.0.1:$HEALTH_PORT/metrics" >"$out.metrics1"
  grep -E 'Requests/sec' "$out" | sed "s|^|bench-webhook: $name -c$conns |" >&2
}

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Warm-up (connections, allocator, caches), not reported.
"${WRK_CPU[@]}" wrk -t1 "-c$CONNECTIONS" -d2s -s "$ROOT/scripts/webhook-post.lua" "$URL/validate" -- "$WORK/review.json" >/dev/null
for c in "$CONNECTIONS" 1; do
  for name in livez validate mutate; do run "$name" "$c"; done
done
HWM_KB=$(awk '/VmHWM/{print $2}' "/proc/$SERVER_PID/status")
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || die "tkeha-webhook did not exit cleanly on SIGTERM"
SERVER_PID=
# Counted after exit: the last batch of log lines is written on the way out.
REVIEW_LINES=$(grep -c '"message":"review"' "$WORK/server.log" || true)

# The floor under /validate's share: the same server stack with a handler that reads the body
# and answers a constant review (examples/bench_noop_server.rs), against its own /livez.
NOOP_NOTE="(not measured: cargo unavailable)"
if command -v "${CARGO:-cargo}" >/dev/null \
  && "${CARGO:-cargo}" build --release -q -p tkeha-webhook --example bench_noop_server; then
  WEBHOOK_BIN="$ROOT/target/release/examples/bench_noop_server" webhook_start "${SERVER_CPU[@]}" -- "${WORKER_ARGS[@]}"
  "${WRK_CPU[@]}" wrk -t1 "-c$CONNECTIONS" -d2s -s "$ROOT/scripts/webhook-post.lua" "$URL/noop" -- "$WORK/review.json" >/dev/null
  run livez-ref "$CONNECTIONS"
  run noop "$CONNECTIONS"
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=
  NOOP_NOTE=measured
fi

# Where one review's time goes, in-process on one thread (no TLS, no sockets).
SPLIT="(not measured: cargo unavailable)"
if command -v "${CARGO:-cargo}" >/dev/null; then
  SPLIT=$("${CARGO:-cargo}" run --release -q -p tkeha-webhook --example bench_admit -- 2 2>&1) \
    || SPLIT="(examples/bench_admit failed: $SPLIT)"
fi
printf '%s\n' "$SPLIT" >"$WORK/split.txt"

SECTION=$(python3 - "$WORK" "$CONNECTIONS" "$DURATION" "$HWM_KB" "$BODY_BYTES" "$PIN_NOTE" "$REVIEW_LINES" "$(getconf CLK_TCK)" "$PRIO_NOTE" "${WORKERS:-one per core}" "$LOAD_AT_START" "$NOOP_NOTE" <<'EOF'
import datetime, re, sys
work, conns, duration, hwm_kb, body_bytes, pin_note, review_lines, clk_tck, prio_note, workers, load, noop_note = sys.argv[1:]
conns, hwm_kb, clk_tck = int(conns), int(hwm_kb), int(clk_tck)

def seconds(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

def parse(name, c):
    text = open(f"{work}/{name}-c{c}.txt").read()
    if "Non-2xx" in text or "Socket errors" in text:
        sys.exit(f"bench-webhook: {name} -c{c} had errors:\n{text}")
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    ticks = int(open(f"{work}/{name}-c{c}.txt.cpu").read())
    inner = None
    if name != "livez":
        # In-server time (body read to answer built) from the latency histogram's buckets:
        # the smallest bucket bound under which 99% of this run's requests finished.
        def buckets(path):
            found = {}
            for m in re.finditer(r'_duration_seconds_bucket\{le="([^"]+)",endpoint="%s"\} (\d+)' % name, open(path).read()):
                found[float(m.group(1)) if m.group(1) != "+Inf" else float("inf")] = int(m.group(2))
            return found
        b0, b1 = buckets(f"{work}/{name}-c{c}.txt.metrics0"), buckets(f"{work}/{name}-c{c}.txt.metrics1")
        delta = {le: b1[le] - b0.get(le, 0) for le in b1}
        total = delta.get(float("inf"), 0)
        inner = next((le for le in sorted(delta) if total and delta[le] >= 0.99 * total), None)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
        "p50": seconds(dist["50"]), "p99": seconds(dist["99"]), "max": seconds(latency.group(3)),
        "cpu_us": ticks / clk_tck * 1e6 / requests,
        "inner_p99": inner,
    }

rows = {(n, c): parse(n, c) for c in (conns, 1) for n in ("livez", "validate", "mutate")}
label = {"livez": "GET /livez (ceiling)", "validate": "POST /validate", "mutate": "POST /mutate"}
def us(s): return f"{s * 1e6:.0f}"
out = []
out.append("## Webhook: `tkeha-webhook` over keep-alive TLS (wrk)")
out.append("")
out.append(f"Measured {datetime.date.today()} on {open('/proc/cpuinfo').read().count('processor')} shared cores, release build, "
           f"TLS 1.3 (rustls, ring), HTTP/1.1 keep-alive, `wrk -t1`, {duration} per run; {pin_note}, {prio_note}, "
           f"server worker threads: {workers}; load average before the runs: {load}. "
           f"Body: the third-party HA seed (3 masters) as an API-server AdmissionReview, {body_bytes} bytes. "
           f"Logging on (JSON, one line per review, {review_lines} lines written). "
           f"\"server CPU\" is the webhook's user+system time per request (/proc/PID/stat).")
out.append("")
out.append("| endpoint | connections | requests/s | p50 (µs) | p99 (µs) | max (µs) | server CPU (µs/req) | in-server p99 (µs) |")
out.append("|---|---|---|---|---|---|---|---|")
def inner(r):
    le = r["inner_p99"]
    return "–" if le is None else ("> 1 s" if le == float("inf") else f"≤ {le * 1e6:.0f}")
for (n, c), r in rows.items():
    out.append(f"| {label[n]} | {c} | {r['rps']:,.0f} | {us(r['p50'])} | {us(r['p99'])} | {us(r['max'])} | {r['cpu_us']:.1f} | {inner(r)} |")
out.append("")
v, ceil, v1 = rows[("validate", conns)], rows[("livez", conns)], rows[("validate", 1)]
ratio = v["rps"] / ceil["rps"]
hwm_mib = hwm_kb / 1024
def mark(ok): return "met" if ok else "**missed**"
out.append("| target | measured | |")
out.append("|---|---|---|")
out.append(f"| /validate ≥ 25,000 requests/s at -c{conns} | {v['rps']:,.0f} | {mark(v['rps'] >= 25000)} |")
out.append(f"| /validate p99 ≤ 0.5 ms with one connection | {v1['p99'] * 1e3:.3f} ms | {mark(v1['p99'] <= 0.0005)} |")
out.append(f"| /validate ≥ 70% of the ceiling (-c{conns}) | {ratio:.0%} | {mark(ratio >= 0.70)} |")
out.append(f"| peak RSS (VmHWM) < 20 MiB | {hwm_mib:.1f} MiB | {mark(hwm_mib < 20)} |")
out.append("")
out.append("Command: `bash scripts/bench-webhook.sh` (in `make bench`), which runs, per endpoint,")
out.append(f"`wrk -t1 -c{conns} -d{duration} --latency -s scripts/webhook-post.lua https://localhost:PORT/validate -- review.json`")
out.append(f"(and `/mutate`, and `GET /livez` without the script), then the same with `-c1`; peak RSS is VmHWM")
out.append("from /proc/PID/status after all runs. The ceiling is `GET /livez` on the same TLS listener: same")
out.append("TLS, HTTP and router path, constant body, no JSON and no rules. p50/p99/max are wrk's (client side,")
out.append("including both processes' scheduling on the shared cores); \"in-server p99\" is the bucket of the webhook's")
out.append("own latency histogram (`tkeha_webhook_admission_duration_seconds`, body read to answer built) under")
out.append("which 99% of that run's requests finished.")
out.append("")
out.append("The floor under that share: the same server stack (`examples/bench_noop_server.rs`: the webhook's")
out.append("flags, runtime, TLS, HTTP and router through `Args::serve`) with `POST /noop`, a handler")
out.append("that reads the same review body and answers a constant allowed review of the same size without")
out.append("looking at it, against that server's own `GET /livez`. /validate adds the JSON, the rules and the log")
out.append("line to this, so its share of the ceiling stays below the share of /noop.")
out.append("")
if noop_note == "measured":
    ref, noop = parse("livez-ref", conns), parse("noop", conns)
    out.append("| endpoint (reference server) | connections | requests/s | p99 (µs) | server CPU (µs/req) | share of its ceiling |")
    out.append("|---|---|---|---|---|---|")
    out.append(f"| GET /livez (ceiling) | {conns} | {ref['rps']:,.0f} | {us(ref['p99'])} | {ref['cpu_us']:.1f} | 100% |")
    out.append(f"| POST /noop (body read, constant answer) | {conns} | {noop['rps']:,.0f} | {us(noop['p99'])} | {noop['cpu_us']:.1f} | {noop['rps'] / ref['rps']:.0%} |")
    out.append(f"| POST /validate (above, for comparison) | {conns} | {v['rps']:,.0f} | {us(v['p99'])} | {v['cpu_us']:.1f} | {ratio:.0%} |")
else:
    out.append(f"Reference server {noop_note}.")
out.append("")
out.append("Where one review's time goes, in-process on one thread, best of 5 rounds")
out.append("(`cargo run --release -p tkeha-webhook --example bench_admit -- 2`):")
out.append("")
out.append("```")
out.append(open(f"{work}/split.txt").read().rstrip())
out.append("```")
print("\n".join(out))
EOF
)
echo "$SECTION"
echo "$SECTION" | python3 scripts/bench-section.py webhook BENCHMARKS.md

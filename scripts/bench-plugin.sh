#!/usr/bin/env bash
# Benchmark: wall time of `kubectl tkeha validate` for one 3-master Cluster file (target < 10 ms),
# direct binary and through kubectl's plugin dispatch, measured with hyperfine.
# Writes its section of BENCHMARKS.md between the bench:plugin markers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/target/release/kubectl-tkeha}
[ -x "$BIN" ] || cargo build --release -p kubectl-tkeha
if ! command -v hyperfine >/dev/null; then
  echo "bench-plugin: installing hyperfine" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi
WORK=$(mktemp -d /tmp/tkeha-bench-plugin.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Only this plugin's directory first on PATH, so kubectl dispatches to the release build.
mkdir -p "$WORK/bin"
ln -s "$BIN" "$WORK/bin/kubectl-tkeha"
export PATH="$WORK/bin:$PATH"

printf 123456 | "$BIN" init --ha tke --vip 192.168.1.10 \
  --master 192.168.1.2,192.168.1.3,192.168.1.4 --password-stdin --name bench >"$WORK/cluster.yaml"
"$BIN" validate -f "$WORK/cluster.yaml" >/dev/null

RUNS=${RUNS:-200}
cmds=(-n direct "$BIN validate -f $WORK/cluster.yaml"
      -n kubectl "kubectl tkeha validate -f $WORK/cluster.yaml")
# The Google Cloud SDK kubectl is a dispatcher that execs a versioned kubectl; time the real one too.
kdir=$(dirname "$(readlink -f "$(command -v kubectl)")")
real=$(ls "$kdir"/kubectl.1.* 2>/dev/null | sort -V | tail -1 || true)
if [ -n "$real" ]; then
  cmds+=(-n "$(basename "$real") (no dispatcher)" "$real tkeha validate -f $WORK/cluster.yaml")
fi
load=$(cut -d' ' -f1-3 /proc/loadavg)
hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$WORK/h.json" "${cmds[@]}" >&2

summary=$(python3 - "$WORK/h.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda s: f"{s * 1000:.2f}"
    print(f"| {r['command']} | {ms(r['mean'])} ± {ms(r['stddev'])} | {ms(r['median'])} | {ms(r['min'])} | {ms(r['max'])} |")
PY
)
kubectl_version=$(kubectl version --client 2>/dev/null | head -1 | sed 's/Client Version: //')
section=$(cat <<MD
<!-- bench:plugin:begin -->
## Plugin: \`kubectl tkeha validate\` wall time (one 3-master Cluster, YAML)

Target: under 10 ms per invocation. Measured $(date -u +%Y-%m-%d) on $(nproc) shared cores,
(load average before the run: ${load}), release build, hyperfine ${RUNS} runs after 20 warm-ups,
no shell (\`-N\`); kubectl ${kubectl_version}. "kubectl" rows include kubectl's own start-up and
plugin lookup on PATH before it execs the plugin: that part is kubectl's cost, not the plugin's.

| how | mean ± σ (ms) | median (ms) | min (ms) | max (ms) |
|---|---|---|---|---|
${summary}

Command: \`bash scripts/bench-plugin.sh\` (runs
\`hyperfine -N --warmup 20 --runs ${RUNS} 'kubectl-tkeha validate -f cluster.yaml' 'kubectl tkeha validate -f cluster.yaml'\`).
<!-- bench:plugin:end -->
MD
)
echo "$section"
BENCH_FILE="$ROOT/BENCHMARKS.md"
[ -f "$BENCH_FILE" ] || printf '# Benchmarks\n' >"$BENCH_FILE"
SECTION="$section" python3 - "$BENCH_FILE" <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
section = os.environ["SECTION"]
pattern = re.compile(r"<!-- bench:plugin:begin -->.*?<!-- bench:plugin:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY

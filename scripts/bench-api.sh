#!/usr/bin/env bash
# Benchmark: rule-engine throughput (tkeha_api::review) for a 3-master Cluster on one core
# (target >= 100,000 reviews/s). Runs api/examples/bench_review.rs pinned with taskset and
# writes its section of BENCHMARKS.md between the bench:api markers.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${SECS:-3}
CORE=${CORE:-1}
TARGET=100000
cargo build --release -q -p tkeha-api --example bench_review --example bench_review_mimalloc
BIN=$ROOT/target/release/examples/bench_review
BIN_MI=$ROOT/target/release/examples/bench_review_mimalloc
command -v taskset >/dev/null || { echo "bench-api: taskset (util-linux) is missing" >&2; exit 1; }
[ "$CORE" -lt "$(nproc)" ] || CORE=0

load=$(cut -d' ' -f1-3 /proc/loadavg)
rows=$(taskset -c "$CORE" "$BIN" "$SECS" --markdown)
printf "%s\n" "$rows" >&2
rows_mi=$(taskset -c "$CORE" "$BIN_MI" "$SECS" --markdown)
printf "%s\n" "$rows_mi" >&2
# The headline: a 3-master Cluster as a user submits it (defaults patch + every rule).
headline=$(echo "$rows" | awk -F'|' '/as submitted/ {gsub(/ /, "", $3); print $3; exit}')
best=$(echo "$rows" | awk -F'|' '/as submitted/ {gsub(/ /, "", $5); print $5; exit}')
[ -n "$headline" ] || { echo "bench-api: no 'as submitted' row in the output" >&2; exit 1; }
verdict=$([ "$headline" -ge "$TARGET" ] && echo "met" || echo "NOT met")
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)

python3 scripts/bench-section.py api BENCHMARKS.md <<MD
## Rule engine: \`tkeha_api::review\` throughput (3-master Cluster, one core)

Target: at least 100,000 reviews/s on one core. Headline (create, as submitted, which is what
the webhook's mutating and validating calls each run; median of 10 rounds):
**${headline} reviews/s, target ${verdict}** (best round: ${best} reviews/s).
Measured $(date -u +%Y-%m-%d) on ${cpu:-an unknown CPU} ($(nproc) shared cores; load average
before the run: ${load}), release build, one thread pinned to core ${CORE} with \`taskset\`,
${SECS} s per case in 10 rounds after a 200 ms warm-up, system allocator (glibc malloc). The
median shows the rate under the load of the moment; the best round, the engine's own speed
when nothing else takes the core. Every review returns the field errors, the warnings, the
JSON patch and the defaulted object.

| case | median reviews/s | µs/review | best round reviews/s | µs/review |
|---|---|---|---|---|
${rows}

The same cases with mimalloc, the allocator \`tkeha-webhook\` links (so: the rule engine as
the webhook runs it; \`api/examples/bench_review_mimalloc.rs\`):

| case | median reviews/s | µs/review | best round reviews/s | µs/review |
|---|---|---|---|---|
${rows_mi}

Command: \`bash scripts/bench-api.sh\` (runs
\`taskset -c ${CORE} target/release/examples/bench_review ${SECS} --markdown\`, then the same
with \`bench_review_mimalloc\`; source: \`api/examples/bench_review.rs\`).
MD
sed -n "/<!-- bench:api:begin -->/,/<!-- bench:api:end -->/p" BENCHMARKS.md

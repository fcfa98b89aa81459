#!/usr/bin/env bash
# `make bench` part: tkeha-webhook under the attacks of issue 13, measured against its targets.
#
# Runs webhook/examples/bench_attacks.rs against the release tkeha-webhook: for each attack and
# body size a fresh server process, the attack held open, then the server's peak RSS (VmHWM),
# what the attackers got, and normal reviews answered meanwhile. Writes the webhook-attacks
# section of BENCHMARKS.md, with the throughput target checked against the webhook section
# (run just before by scripts/bench-webhook.sh).
#
# Knobs (environment): SIZES (65536,1048576,3145728: body sizes up to the 3 MiB limit),
# ATTACKS (stall-h1,stall-h2,amplify,idle-h2), BEFORE (path to another tkeha-webhook, e.g. a
# build of main before issue 13: measured the same way and shown first; BEFORE_LABEL names it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${SIZES:-65536,1048576,3145728}
ATTACKS=${ATTACKS:-stall-h1,stall-h2,amplify,idle-h2}
export PATH="$ROOT/target/release:$PATH"

die() { echo "bench-webhook-attacks: $*" >&2; exit 1; }
command -v "${CARGO:-cargo}" >/dev/null || die "cargo missing"
command -v prlimit >/dev/null || die "prlimit missing (util-linux)"
command -v python3 >/dev/null || die "python3 missing (run: bash scripts/deps.sh)"
"${CARGO:-cargo}" build --release -q -p tkeha-webhook --bin tkeha-webhook --example bench_attacks
DRIVER="$ROOT/target/release/examples/bench_attacks"
WORK=$(mktemp -d /tmp/tkeha-bench-attacks.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "${BEFORE:-}" ]; then
  [ -x "$BEFORE" ] || die "BEFORE=$BEFORE is not an executable"
  echo "bench-webhook-attacks: before: $BEFORE" >&2
  "$DRIVER" --server "$BEFORE" --attacks "$ATTACKS" --sizes "$SIZES" --markdown >"$WORK/before.md"
fi
echo "bench-webhook-attacks: after: $ROOT/target/release/tkeha-webhook" >&2
"$DRIVER" --attacks "$ATTACKS" --sizes "$SIZES" --markdown >"$WORK/after.md"
LOAD_AT_END=$(cut -d' ' -f1-3 /proc/loadavg)

SECTION=$(python3 - "$WORK" "$LOAD_AT_START" "$LOAD_AT_END" "$SIZES" "${BEFORE:-}" "${BEFORE_LABEL:-${BEFORE:-}}" <<'EOF'
import datetime, os, re, sys
work, load0, load1, sizes, before, before_label = sys.argv[1:]
after = open(f"{work}/after.md").read().rstrip()
# The throughput target: /validate at -c16 in the webhook section of this same `make bench`,
# against the figure before issue 13 (BENCHMARKS.md at main a7a188a, 2026-11-26).
BASELINE = 40381
bench = open("BENCHMARKS.md").read()
section = bench.split("<!-- bench:webhook:begin -->")[-1].split("<!-- bench:webhook:end -->")[0]
m = re.search(r"^\| POST /validate \| 16 \| ([\d,]+) \|", section, re.M)
fresh = f"Measured {datetime.date.today()} " in section
if m and fresh:
    rps = int(m.group(1).replace(",", ""))
    ok = rps >= 0.9 * BASELINE
    row = f"| /validate throughput within 10% of {BASELINE:,} requests/s (-c16, before this work) | {rps:,} requests/s ({rps / BASELINE:.0%}), from the webhook section above | {'met' if ok else '**missed**'} |"
else:
    row = f"| /validate throughput within 10% of {BASELINE:,} requests/s | (the webhook section was not measured today: run `make bench`) | – |"
out = []
out.append("## Webhook under attack: memory, connections, answers (issue 13)")
out.append("")
out.append(f"Measured {datetime.date.today()} on {os.cpu_count()} shared cores, release build, every attack "
           f"against a fresh `tkeha-webhook` with its defaults (body budget 16 MiB, 256 connections, 32 HTTP/2 "
           f"streams per connection, idle timeout 10 s); load average {load0} before, {load1} after. Peak RSS is "
           f"the server's VmHWM with the attack held open. Attacks: `stall-h1`, 200 HTTP/1.1 connections each "
           f"announcing a body of the size shown and sending all but its last byte; `stall-h2`, one HTTP/2 "
           f"connection with 200 such streams; `amplify`, reviews of the size shown made of machines "
           f"`{{\"ip\":\"1\",\"port\":0,\"username\":\"\",\"password\":\"!\"}}` (/validate and /mutate once, "
           f"then /validate 4 at a time, twice); `idle-h2`, under `RLIMIT_NOFILE` 256, 243 HTTP/2 connections "
           f"that send one review and go silent, then a certificate rotation. The server runs with "
           f"`MIMALLOC_PURGE_DELAY=0`, as the image does. \"Normal reviews\" are {20} "
           f"reviews of the 3-master seed, one after another, each on a new TLS connection, during the attack.")
out.append("")
if before:
    out.append(f"Before ({before_label}, the same driver):")
    out.append("")
    out.append(open(f"{work}/before.md").read().rstrip())
    out.append("")
    out.append("After:")
    out.append("")
table, _, targets = after.partition("\n\n")
out.append(table)
out.append("")
out.append(targets)
out.append(row)
out.append("")
out.append("Command: `bash scripts/bench-webhook-attacks.sh` (in `make bench`), which runs")
out.append(f"`target/release/examples/bench_attacks --sizes {sizes} --markdown` (source: "
           "`webhook/examples/bench_attacks.rs`, attack clients in `webhook/tests/common/attack.rs`, "
           "the same ones `webhook/tests/attacks.rs` asserts on).")
print("\n".join(out))
EOF
)
echo "$SECTION"
echo "$SECTION" | python3 scripts/bench-section.py webhook-attacks BENCHMARKS.md

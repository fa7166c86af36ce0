#!/usr/bin/env bash
# What the SIP trace costs: the same SIPp load (bench/sipp_cps.sh, short calls without media:
# INVITE/100/180/200/ACK/BYE/200 on both legs, 14 messages a call) through one release build
# of trunkguard with `[recording] sip_trace = true` (every message captured, each call's trace
# compressed and stored) and `false`, alternating, ROUNDS times. Reports per rate the
# gateway's CPU per call in both settings and the difference (aim: < 10 % more per call).
#
# Not a test: nothing here runs under `cargo test`. Never run it while a test suite runs.
#
# Environment (all optional): RATES="500 1000" STEP_SECS=10 ROUNDS=2 NICE=0 NO_BUILD=1
#   OUT=/tmp/...
set -euo pipefail
cd "$(dirname "$0")/.."
RATES=${RATES:-"500 1000"}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d /tmp/trunkguard-trace-bench.XXXXXX)}
mkdir -p "$OUT"
export STEP_SECS=${STEP_SECS:-10} NICE=${NICE:-0} STOP_AFTER_FAILS=0 RATES

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --locked --quiet
fi
export NO_BUILD=1

for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        dir=$OUT/$mode-$round
        echo "== round $round, sip_trace $mode"
        trace=false
        [ $mode = on ] && trace=true
        SIP_TRACE=$trace BENCH_DIR=$dir bench/sipp_cps.sh >"$dir.log" 2>&1 || true
        grep -E "^ +rate" "$dir.log" || tail -5 "$dir.log"
    done
done

echo
echo "trunkguard SIP trace cost — $(nproc) CPUs, ${STEP_SECS} s per step, $ROUNDS rounds; files in $OUT"
printf '%-6s %-5s %-12s %-8s %-6s %-10s %-6s\n' rate trace ms_per_call failed ok others_s round
for round in $(seq "$ROUNDS"); do
    for mode in off on; do
        f=$OUT/$mode-$round/results.csv
        [ -f "$f" ] || continue
        awk -F, -v m=$mode -v r=$round 'NR > 1 { printf "%-6s %-5s %-12s %-8s %-6s %-10s %-6s\n", $1, m, $13, $5, $17, $15, r }' "$f"
    done
done
echo
for rate in $RATES; do
    off=$(cat "$OUT"/off-*/results.csv 2>/dev/null | awk -F, -v r="$rate" '$1 == r { s += $13; n++ } END { if (n) printf "%.3f", s / n }')
    on=$(cat "$OUT"/on-*/results.csv 2>/dev/null | awk -F, -v r="$rate" '$1 == r { s += $13; n++ } END { if (n) printf "%.3f", s / n }')
    if [ -n "$off" ] && [ -n "$on" ]; then
        awk -v r="$rate" -v a="$off" -v b="$on" 'BEGIN { printf "rate %s: %s ms/call without trace, %s ms/call with: %+.1f %% CPU per call\n", r, a, b, 100 * (b - a) / a }'
    fi
done

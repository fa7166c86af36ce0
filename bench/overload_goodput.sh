#!/usr/bin/env bash
# Overload benchmark (issue 16 item 6): the same SIPp load as bench/sipp_cps.sh, offered at the
# gateway's capacity, then at FACTORS times it, then at capacity again. The PBX's scenario
# (bench/sipp/overload_uac.xml) takes a 503 as an answer, so that a refusal is told apart from
# a failure: past capacity the gateway should answer more calls than it refuses would suggest
# (goodput near capacity), refuse the rest with 503 quickly (no SIPp timeouts, no failed
# calls), keep its memory bounded, and be back to zero refusals as soon as the load drops.
#
# Not a test. Environment: CAPACITY (calls/s, default 1000: the highest zero-failure rate of
# bench/sipp_cps.sh on this machine), FACTORS (default "2 4"), STEP_SECS (default 10); the
# rest as bench/sipp_cps.sh (BIN, NO_BUILD, NICE, BENCH_DIR…).
set -euo pipefail
cd "$(dirname "$0")/.."
CAPACITY=${CAPACITY:-1000}
FACTORS=${FACTORS:-"2 4"}
RATES="$CAPACITY"
for f in $FACTORS; do
    RATES="$RATES $((CAPACITY * f)) $CAPACITY"
done
export BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/trunkguard-overload.XXXXXX)}
RATES="$RATES" STEP_SECS=${STEP_SECS:-10} STOP_AFTER_FAILS=0 SETTLE_SECS=${SETTLE_SECS:-1} \
    UAC_SCENARIO=bench/sipp/overload_uac.xml bench/sipp_cps.sh

echo
echo "overload: capacity $CAPACITY calls/s; goodput = calls answered per second of the step"
printf "%-8s %-9s %-9s %-9s %-8s %-10s %-9s %-8s %-9s %s\n" offered answered refused failed carrier goodput of_cap rss_mib peak_mib ok
awk -F, -v cap="$CAPACITY" 'NR > 1 {
    printf "%-8s %-9s %-9s %-9s %-8s %-10s %-9s %-8s %-9s %s\n", $1, $18, $19, $5, $6, $20,
        sprintf("%.0f%%", 100 * $20 / cap), $21, $22, $17 }' "$BENCH_DIR/results.csv"

#!/usr/bin/env bash
# What being a cluster node costs: the same SIPp load (bench/sipp_cps.sh, short calls without
# media) through one release build of trunkguard on the embedded default (admission in memory)
# and as a one-node cluster on Redis (every admission one Lua script), alternating, ROUNDS
# times. Reports per rate the gateway's CPU per call in both modes and their ratio, and the
# admission duration (p50/p99, from /metrics' histogram) in both modes.
#
# Not a test: nothing here runs under `cargo test`. Never run it while a test suite runs.
#
# Redis: unless CLUSTER_REDIS names one, the bench starts its own redis-server (no persistence)
# on 127.0.0.1:$REDIS_PORT at the same nice level as the gateway and SIPp, so that the shared
# state's server competes for the CPU on equal terms (a Redis left at nice 0 beside a gateway
# and SIPp at nice -10 waits for them, which is the bench's artifact, not the cluster's cost),
# and reports its CPU per call beside the gateway's.
#
# Environment (all optional): RATES="500 1000" STEP_SECS=10 ROUNDS=2 NICE=0
#   CLUSTER_REDIS=redis://…  REDIS_PORT=6391  NO_BUILD=1  OUT=/tmp/...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=${RATES:-"500 1000"}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$(mktemp -d /tmp/trunkguard-cluster-bench.XXXXXX)}
mkdir -p "$OUT"
export STEP_SECS=${STEP_SECS:-10} NICE=${NICE:-0} STOP_AFTER_FAILS=0 RATES

command -v redis-cli >/dev/null || { echo "redis-cli not found: apt-get install redis-server" >&2; exit 1; }
REDIS_PID=
if [ -z "${CLUSTER_REDIS:-}" ]; then
    REDIS_PORT=${REDIS_PORT:-6391}
    CLUSTER_REDIS=redis://127.0.0.1:$REDIS_PORT/0
    nice -n "$NICE" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --dir "$OUT" >"$OUT/redis.log" 2>&1 &
    REDIS_PID=$!
    trap 'kill $REDIS_PID 2>/dev/null || true' EXIT
    for _ in $(seq 50); do
        redis-cli -u "$CLUSTER_REDIS" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
redis-cli -u "$CLUSTER_REDIS" ping >/dev/null || { echo "no Redis at $CLUSTER_REDIS" >&2; exit 1; }
# CPU seconds (user + system) the bench's own Redis has used so far.
redis_cpu() {
    [ -n "$REDIS_PID" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$REDIS_PID/stat"
}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --locked --quiet
fi
export NO_BUILD=1

for round in $(seq "$ROUNDS"); do
    for mode in embedded cluster; do
        dir=$OUT/$mode-$round
        echo "== round $round, $mode"
        if [ $mode = cluster ]; then
            before=$(redis_cpu)
            CLUSTER_REDIS=$CLUSTER_REDIS BENCH_DIR=$dir bench/sipp_cps.sh >"$dir.log" 2>&1 || true
            echo "$before $(redis_cpu)" >"$dir.redis-cpu"
        else
            env -u CLUSTER_REDIS BENCH_DIR=$dir bench/sipp_cps.sh >"$dir.log" 2>&1 || true
        fi
        grep -E "^ +rate|^admission" "$dir.log" || tail -5 "$dir.log"
    done
done

echo
echo "trunkguard cluster overhead — $(nproc) CPUs, ${STEP_SECS} s per step, $ROUNDS rounds; files in $OUT"
printf '%-6s %-9s %-12s %-12s %-8s %-14s\n' rate mode ms_per_call failed ok round
for round in $(seq "$ROUNDS"); do
    for mode in embedded cluster; do
        f=$OUT/$mode-$round/results.csv
        [ -f "$f" ] || continue
        awk -F, -v m=$mode -v r=$round 'NR > 1 { printf "%-6s %-9s %-12s %-12s %-8s %-14s\n", $1, m, $13, $5, $17, r }' "$f"
    done
done
echo
for mode in embedded cluster; do
    for round in $(seq "$ROUNDS"); do
        a=$OUT/$mode-$round/admission.txt
        [ -f "$a" ] && echo "$mode round $round: $(cat "$a")"
    done
done
echo
# Mean CPU per call per rate and mode over the rounds, and the ratio.
for rate in $RATES; do
    e=$(cat "$OUT"/embedded-*/results.csv 2>/dev/null | awk -F, -v r="$rate" '$1 == r { s += $13; n++ } END { if (n) printf "%.3f", s / n }')
    c=$(cat "$OUT"/cluster-*/results.csv 2>/dev/null | awk -F, -v r="$rate" '$1 == r { s += $13; n++ } END { if (n) printf "%.3f", s / n }')
    # Redis's CPU over a cluster run, shared out over the calls of all its steps.
    rc=$(for d in "$OUT"/cluster-*; do
        [ -f "$d.redis-cpu" ] && [ -f "$d/results.csv" ] || continue
        awk -F, 'NR > 1 { n += $3 } END { print n }' "$d/results.csv" | paste -d' ' "$d.redis-cpu" -
    done | awk '{ s += $2 - $1; n += $3 } END { if (n && s > 0) printf "%.3f", 1000 * s / n }')
    [ -n "$rc" ] && [ "$rate" = "${RATES%% *}" ] && echo "Redis: $rc ms CPU per call (all rates of the cluster runs)"
    if [ -n "$e" ] && [ -n "$c" ]; then
        awk -v r="$rate" -v e="$e" -v c="$c" 'BEGIN { printf "rate %s: %s ms/call embedded, %s ms/call cluster: %+.1f %% CPU per call\n", r, e, c, 100 * (c - e) / e }'
    fi
done

#!/usr/bin/env bash
# Calls-per-second benchmark: SIPp as the PBX (UAC) and as the carrier (UAS) around a release
# build of trunkguard, on loopback. Steps through increasing call rates; each step places
# RATE × STEP_SECS short calls without media (INVITE/100/180/200/ACK/BYE/200, no pause) and
# records the attempted and achieved rate, successful and failed calls, retransmissions, and the
# CPU time of the gateway and of SIPp. The result is the highest rate with zero failed calls (on
# either SIPp) at which SIPp also achieved at least 95 % of the attempted rate.
#
# Not a test: nothing here runs under `cargo test`. See bench/README.md.
#
# Environment (all optional):
#   RATES="250 500 1000 1500 1750 2000 2500 3000"   calls/s per step
#   STEP_SECS=10        seconds of calls per step (-m = RATE × STEP_SECS)
#   SETTLE_SECS=3       pause between steps (transactions expire, CDR queue drains)
#   STOP_AFTER_FAILS=2  stop after this many failing steps in a row (0 = run every step)
#   GW_LOG=info         RUST_LOG of the gateway (the shipped default is info)
#   BENCH_DIR=...       where configs, logs, SIPp traces and results.csv go (default: a new tempdir)
#   BASE_PORT=15060     gateway inside = BASE_PORT, outside = +10, carrier = +20, PBX = +1
#   NO_BUILD=1          skip `cargo build --release`
#   NICE=-10            run the gateway and both SIPp at this nice level (root only for < 0), so
#                       that other work on a shared machine disturbs the figures less
#   GW_PRELOAD=...      LD_PRELOAD for the gateway only (e.g. /usr/lib/x86_64-linux-gnu/libjemalloc.so.2
#                       to measure another allocator without rebuilding)
#   CLUSTER_REDIS=redis://127.0.0.1:6379/0   run the gateway as a one-node cluster on this Redis
#                       (a [cluster] table with its own key prefix, deleted afterwards): every
#                       admission takes its limits there (bench/cluster_overhead.sh compares)
#   TARGET_QUEUE_DELAY_MS=100  `[sip] target_queue_delay_ms` (default: the shipped one; 0 = only the
#                       hard limit)
#   WORKER_THREADS=1    `[runtime] worker_threads` (default: the shipped one, 0 = all the cores)
#   SIP_TRACE=false     `[recording] sip_trace` (default true: each call's SIP trace kept;
#                       bench/sip_trace_cost.sh compares)
#   BIN=...             the gateway binary (default target/release/trunkguard)
#   UAC_SCENARIO=...    the PBX's SIPp scenario (default tests/sipp/pbx_uac.xml);
#                       bench/sipp/overload_uac.xml takes a 503 as an answer: a refused call is
#                       then counted in `refused_503`, not `failed` (bench/overload_goodput.sh)
#   PROBE="perf strace"  per step, also attach `perf stat --per-thread` (CPU time and context
#                       switches per thread name, per call) and/or `strace -c -f` (syscalls per
#                       call) to the gateway; `record`: `perf record -F 499 -g` into the step's
#                       perf.data; both slow it down (strace a lot): never compare
#                       a probed step's CPU with an unprobed one
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RATES=${RATES:-"250 500 1000 1500 1750 2000 2500 3000"}
UAC_SCENARIO=${UAC_SCENARIO:-tests/sipp/pbx_uac.xml}
STEP_SECS=${STEP_SECS:-10}
SETTLE_SECS=${SETTLE_SECS:-3}
STOP_AFTER_FAILS=${STOP_AFTER_FAILS:-2}
GW_LOG=${GW_LOG:-info}
BASE_PORT=${BASE_PORT:-15060}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d /tmp/trunkguard-bench.XXXXXX)}
NICE=${NICE:-0}
mkdir -p "$BENCH_DIR"

PBX_IP=127.0.0.10
CARRIER_IP=127.0.0.11
INSIDE=127.0.0.20:$BASE_PORT
OUTSIDE=127.0.0.21:$((BASE_PORT + 10))
CARRIER_PORT=$((BASE_PORT + 20))
PBX_PORT=$((BASE_PORT + 1))
CALLER=+861012345678
CALLEE=8613800138000
CLK_TCK=$(getconf CLK_TCK)

command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 1; }

if [ -z "${NO_BUILD:-}" ]; then
    echo "== cargo build --release"
    cargo build --release --locked --quiet
fi
BIN=${BIN:-$ROOT/target/release/trunkguard}
HTTP=127.0.0.1:$((BASE_PORT + 40))

GW_PID=
UAS_PID=
cleanup() {
    for pid in $UAS_PID $GW_PID; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 1
    for pid in $UAS_PID $GW_PID; do
        kill -KILL "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# CPU ticks (user+system) a process has used so far, from /proc/PID/stat fields 14 and 15.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks the whole machine has been busy (user, nice, system, irq, softirq, steal).
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# UDP datagrams the kernel dropped machine-wide (receive buffer full, send buffer full, errors).
udp_drops() { awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { print $4 + $7 }' /proc/net/snmp; }

# Column NAME of the last row of a SIPp ';'-separated statistics file.
stat_col() {
    awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) col = i; next }
        NF > 1 { last = $col } END { print (col ? last : "NA") }' "$1"
}

cat >"$BENCH_DIR/bench.toml" <<EOF
# trunkguard bench config: loopback, limits out of the way.
[sip]
inside = "$INSIDE"
outside = "$OUTSIDE"
unknown_sources = "drop"
t1_ms = 500
ring_timeout_secs = 30
drain_timeout_secs = 5
${TARGET_QUEUE_DELAY_MS:+target_queue_delay_ms = $TARGET_QUEUE_DELAY_MS}

[runtime]
worker_threads = ${WORKER_THREADS:-0}

[database]
url = "sqlite://$BENCH_DIR/bench.db"
cdr_queue = 100000

# The bench's own recordings dir and an RTP range apart from the test suite's (21000-28999).
[media]
port_range = [18000, 19999]

[recording]
dir = "$BENCH_DIR/recordings"
sip_trace = ${SIP_TRACE:-true}

[http]
enabled = true
listen = "$HTTP"

[[trunks]]
name = "bench"
pbx = ["$PBX_IP/32"]
carrier = "$CARRIER_IP:$CARRIER_PORT"
inbound_to = "$PBX_IP:$((BASE_PORT + 30))"
numbers = ["$CALLER"]
max_concurrent = 100000
max_concurrent_per_caller_id = 100000
max_cps = 100000.0
allow_anonymous = false
calling_hours = "00:00-24:00"
timezone = "UTC"
max_call_secs = 600
blocked_numbers = []

[trunks.rules.over_frequent_callee]
enabled = false
EOF

CLUSTER_PREFIX=
if [ -n "${CLUSTER_REDIS:-}" ]; then
    CLUSTER_PREFIX=trunkguard-bench-$$
    cat >>"$BENCH_DIR/bench.toml" <<EOF

[cluster]
node_id = "bench"
redis_url = "$CLUSTER_REDIS"
heartbeat_secs = 1
node_timeout_secs = 5
on_shared_state_down = "refuse"
key_prefix = "$CLUSTER_PREFIX"
EOF
fi

echo "== starting the gateway ($INSIDE inside, $OUTSIDE outside, RUST_LOG=$GW_LOG); files in $BENCH_DIR"
RUST_LOG=$GW_LOG LD_PRELOAD=${GW_PRELOAD:-} nice -n "$NICE" "$BIN" --config "$BENCH_DIR/bench.toml" run >"$BENCH_DIR/gateway.log" 2>&1 &
GW_PID=$!
# Ready when both UDP sockets are bound (the "listening" log line may be filtered by GW_LOG).
listening() { [ "$(ss -Hunl "( src $INSIDE or src $OUTSIDE )" | wc -l)" -ge 2 ]; }
for _ in $(seq 100); do
    listening && break
    kill -0 "$GW_PID" 2>/dev/null || { echo "gateway exited:"; tail "$BENCH_DIR/gateway.log"; exit 1; }
    sleep 0.1
done
listening || { echo "gateway did not start"; tail "$BENCH_DIR/gateway.log"; exit 1; }
# A token to read /metrics at the end (the admission duration histogram).
TOKEN=$(RUST_LOG=warn "$BIN" --config "$BENCH_DIR/bench.toml" token create --role admin --name bench 2>/dev/null | grep -o 'tg_[A-Za-z0-9_-]*' | head -1 || true)

RESULTS=$BENCH_DIR/results.csv
echo "rate,achieved_cps,calls,successful,failed,uas_failed,retrans_uac,retrans_uas,udp_drops,wall_s,gw_cpu_s,gw_cpu_pct,gw_ms_per_call,sipp_cpu_s,other_cpu_s,load1,ok,answered,refused_503,goodput_cps,gw_rss_mib,gw_peak_rss_mib" >"$RESULTS"

best=0
best_achieved=0
fails_in_a_row=0
for rate in $RATES; do
    calls=$((rate * STEP_SECS))
    step_no=$((${step_no:-0} + 1))
    # Numbered: a rate may come twice (bench/overload_goodput.sh returns to its capacity).
    step=$BENCH_DIR/step-$step_no-$rate
    mkdir -p "$step"
    # Carrier: a fresh UAS per step so that its statistics are the step's own.
    (cd "$step" && exec nice -n "$NICE" sipp -sn uas -i $CARRIER_IP -p $CARRIER_PORT -t u1 -nostdin \
        -buff_size 4194304 -timeout $((STEP_SECS * 6 + 60))s \
        -trace_stat -stf uas_stat.csv -fd 1 -trace_err >uas_screen.txt 2>&1) &
    UAS_PID=$!
    sleep 0.5
    load1=$(cut -d' ' -f1 /proc/loadavg)
    gw_before=$(cpu_ticks $GW_PID)
    uas_before=$(cpu_ticks $UAS_PID)
    busy_before=$(busy_ticks)
    drops_before=$(udp_drops)
    PROBE_PIDS=
    case " ${PROBE:-} " in *" perf "*)
        perf stat --per-thread -e task-clock,context-switches,cpu-migrations -x, -p "$GW_PID" \
            -o "$step/perf_stat.csv" 2>/dev/null &
        PROBE_PIDS="$PROBE_PIDS $!" ;; esac
    case " ${PROBE:-} " in *" record "*)
        # A call-graph profile of the step (frame pointers: build with
        # RUSTFLAGS="-C force-frame-pointers=yes"); `perf report -i $step/perf.data`.
        perf record -F 499 -g -p "$GW_PID" -o "$step/perf.data" 2>/dev/null >/dev/null &
        PROBE_PIDS="$PROBE_PIDS $!" ;; esac
    case " ${PROBE:-} " in *" strace "*)
        strace -c -f -p "$GW_PID" -o "$step/strace.txt" 2>/dev/null &
        PROBE_PIDS="$PROBE_PIDS $!" ;; esac
    start_ns=$(date +%s%N)
    # PBX: RATE calls/s, CALLS calls, bounded by -timeout (and `timeout` as a last resort).
    set +e
    (cd "$step" && TIMEFORMAT='%U %S' && { time timeout $((STEP_SECS * 6 + 90)) \
        nice -n "$NICE" sipp -sf "$ROOT/$UAC_SCENARIO" -key caller "$CALLER" -s "$CALLEE" \
        -i $PBX_IP -p $PBX_PORT -t u1 -nostdin -buff_size 4194304 \
        -r "$rate" -m "$calls" -l $((rate * 20 + 1000)) -d 0 \
        -timeout $((STEP_SECS * 6 + 60))s -timeout_error \
        -trace_stat -stf uac_stat.csv -trace_counts -fd 1 -trace_err \
        "$INSIDE" >uac_screen.txt 2>&1; } 2>uac_time.txt)
    uac_rc=$?
    set -e
    end_ns=$(date +%s%N)
    for pid in $PROBE_PIDS; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in $PROBE_PIDS; do wait "$pid" 2>/dev/null || true; done
    gw_after=$(cpu_ticks $GW_PID)
    uas_after=$(cpu_ticks $UAS_PID)
    busy_after=$(busy_ticks)
    drops_after=$(udp_drops)
    # Let the carrier finish the last calls, then stop it (SIGUSR1: final statistics, exit).
    sleep 1
    kill -USR1 $UAS_PID 2>/dev/null || true
    for _ in $(seq 100); do kill -0 $UAS_PID 2>/dev/null || break; sleep 0.1; done
    kill -KILL $UAS_PID 2>/dev/null || true
    wait $UAS_PID 2>/dev/null || true
    UAS_PID=

    wall=$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
    ok_calls=$(stat_col "$step/uac_stat.csv" "SuccessfulCall(C)")
    failed=$(stat_col "$step/uac_stat.csv" "FailedCall(C)")
    created=$(stat_col "$step/uac_stat.csv" "OutgoingCall(C)")
    achieved=$(stat_col "$step/uac_stat.csv" "CallRate(C)")
    retr_uac=$(stat_col "$step/uac_stat.csv" "Retransmissions(C)")
    retr_uas=$(stat_col "$step/uas_stat.csv" "Retransmissions(C)")
    uas_failed=$(stat_col "$step/uas_stat.csv" "FailedCall(C)")
    gw_cpu=$(awk -v a="$gw_before" -v b="$gw_after" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    gw_pct=$(awk -v c="$gw_cpu" -v w="$wall" 'BEGIN { p = 0; if (w > 0) p = 100 * c / w; printf "%.0f", p }')
    sipp_cpu=$(awk -v a="$uas_before" -v b="$uas_after" -v t="$CLK_TCK" \
        '{ u = $1 + $2 } END { printf "%.2f", u + (b - a) / t }' "$step/uac_time.txt")
    # Everything else that ran on the machine meanwhile (other users, builds): a busy machine
    # makes a step fail early; this column says whether that happened.
    other_cpu=$(awk -v a="$busy_before" -v b="$busy_after" -v t="$CLK_TCK" -v g="$gw_cpu" -v s="$sipp_cpu" \
        'BEGIN { o = (b - a) / t - g - s; if (o < 0) o = 0; printf "%.2f", o }')
    gw_ms=$(awk -v c="$gw_cpu" -v n="$created" 'BEGIN { p = 0; if (n > 0) p = 1000 * c / n; printf "%.3f", p }')
    drops=$((drops_after - drops_before))
    # Per message of the scenario (-trace_counts): the first 200 received answers the INVITE.
    counts=$(ls "$step"/*_counts.csv 2>/dev/null | head -1)
    answered=NA
    refused=0
    if [ -n "$counts" ]; then
        answered=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /_200_Recv$/) { col = i; break }; next }
            NF > 1 { last = $col } END { print (col ? last : "NA") }' "$counts")
        refused=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i ~ /_503_Recv$/) col = i; next }
            NF > 1 { last = $col } END { print (col ? last : 0) }' "$counts")
    fi
    goodput=$(awk -v a="$answered" -v w="$wall" 'BEGIN { p = 0; if (w > 0 && a != "NA") p = a / w; printf "%.0f", p }')
    rss=$(awk '$1 == "VmRSS:" { printf "%.0f", $2 / 1024 }' "/proc/$GW_PID/status" 2>/dev/null || echo NA)
    peak=$(awk '$1 == "VmHWM:" { printf "%.0f", $2 / 1024 }' "/proc/$GW_PID/status" 2>/dev/null || echo NA)
    achieved=$(awk -v a="$achieved" 'BEGIN { printf "%.0f", a }')
    # A step passes when every call completed on both sides and SIPp kept (95 % of) the rate:
    # a gateway that falls behind makes SIPp place the calls late rather than fail them.
    ok=no
    if [ "$uac_rc" -eq 0 ] && [ "$failed" = 0 ] && [ "$ok_calls" = "$calls" ] && [ "$uas_failed" = 0 ] \
        && [ $((achieved * 100)) -ge $((rate * 95)) ]; then
        ok=yes
    fi
    echo "$rate,$achieved,$calls,$ok_calls,$failed,$uas_failed,$retr_uac,$retr_uas,$drops,$wall,$gw_cpu,$gw_pct,$gw_ms,$sipp_cpu,$other_cpu,$load1,$ok,$answered,$refused,$goodput,$rss,$peak" >>"$RESULTS"
    printf '   rate %5s: achieved %5s cps, %6s/%6s ok, %5s failed (carrier %s), retrans %s+%s, gateway CPU %ss (%s%%, %s ms/call), SIPp CPU %ss, others %ss%s\n' \
        "$rate" "$achieved" "$ok_calls" "$calls" "$failed" "$uas_failed" "$retr_uac" "$retr_uas" \
        "$gw_cpu" "$gw_pct" "$gw_ms" "$sipp_cpu" "$other_cpu" "$([ $ok = yes ] || echo "  <- not sustained (sipp exit $uac_rc)")"
    if [ -s "$step/perf_stat.csv" ] || [ -s "$step/strace.txt" ]; then
        python3 "$ROOT/bench/per_call_probe.py" "$step" "$created"
    fi
    if [ $ok = yes ]; then
        best=$rate
        best_achieved=$achieved
        fails_in_a_row=0
    else
        fails_in_a_row=$((fails_in_a_row + 1))
        if [ "$STOP_AFTER_FAILS" -gt 0 ] && [ $fails_in_a_row -ge "$STOP_AFTER_FAILS" ]; then
            echo "   $fails_in_a_row failing steps in a row: stopping"
            break
        fi
    fi
    sleep "$SETTLE_SECS"
done

if [ -n "$TOKEN" ]; then
    curl -fsS -H "Authorization: Bearer $TOKEN" "http://$HTTP/metrics" >"$BENCH_DIR/metrics.txt" 2>/dev/null \
        || echo "   (could not read /metrics)"
fi
echo "== stopping the gateway (SIGTERM: drain, flush CDRs)"
kill -TERM $GW_PID
for _ in $(seq 300); do kill -0 $GW_PID 2>/dev/null || break; sleep 0.1; done
wait $GW_PID 2>/dev/null || true
GW_PID=
cdr_rows=$(RUST_LOG=warn "$BIN" --config "$BENCH_DIR/bench.toml" cdrs --limit 100000000 2>/dev/null | wc -l)

echo
echo "trunkguard SIPp calls-per-second benchmark — $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), gateway RUST_LOG=$GW_LOG${GW_PRELOAD:+ LD_PRELOAD=$GW_PRELOAD}, nice $NICE"
echo "short calls without media, ${STEP_SECS} s per step; SIPp UAC, SIPp UAS and the gateway share the machine"
echo
column -s, -t "$RESULTS"
echo
echo "CDR rows written: $cdr_rows"
echo "highest rate with zero failed calls (and >= 95 % of it achieved): $best calls/s (achieved $best_achieved calls/s)"
if [ -s "$BENCH_DIR/metrics.txt" ]; then
    python3 "$ROOT/bench/admission_quantiles.py" "$BENCH_DIR/metrics.txt" | tee "$BENCH_DIR/admission.txt"
fi
if [ -n "$CLUSTER_PREFIX" ] && command -v redis-cli >/dev/null; then
    redis-cli -u "$CLUSTER_REDIS" --scan --pattern "{$CLUSTER_PREFIX}*" | xargs -r redis-cli -u "$CLUSTER_REDIS" del >/dev/null || true
fi
echo "files: $BENCH_DIR"

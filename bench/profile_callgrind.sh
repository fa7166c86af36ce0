#!/usr/bin/env bash
# Where the gateway's CPU goes, independent of machine load: run the release gateway under
# valgrind's callgrind, place CALLS short calls at RATE calls/s with SIPp (slow enough for
# valgrind), count instructions only while the calls run (not start-up, nor WARMUP calls placed
# before: the database connections' prepared statements, the allocator's pages), and print
# instructions per call, allocator calls per call and the top inclusive functions.
#
# Not a test. Needs valgrind (`apt-get install valgrind`) and sipp. See bench/README.md.
#
# Environment (all optional): CALLS=300 RATE=20 WARMUP=20 GW_LOG=info BIN=... (the gateway binary) GW_PRELOAD=... (LD_PRELOAD for the
# gateway, e.g. another allocator) OUT_DIR=... (default: a new tempdir) NO_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CALLS=${CALLS:-300}
RATE=${RATE:-20}
WARMUP=${WARMUP:-20}
GW_LOG=${GW_LOG:-info}
OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/trunkguard-callgrind.XXXXXX)}
mkdir -p "$OUT_DIR"
BASE_PORT=${BASE_PORT:-16060}
INSIDE=127.0.0.20:$BASE_PORT
OUTSIDE=127.0.0.21:$((BASE_PORT + 10))
CARRIER_PORT=$((BASE_PORT + 20))

command -v valgrind >/dev/null || { echo "valgrind not found: apt-get install valgrind" >&2; exit 1; }
command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 1; }
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release --locked --quiet
fi

cat >"$OUT_DIR/profile.toml" <<EOF
[sip]
inside = "$INSIDE"
outside = "$OUTSIDE"
drain_timeout_secs = 5
# Overload control off: under valgrind (~50× slower) the SIP queue stands late whenever the host
# is busy, and the calls it refused (503, a cheaper path) made the counts vary with the load.
max_queue_delay_ms = 0
[database]
url = "sqlite://$OUT_DIR/profile.db"

# The bench's own recordings dir and an RTP range apart from the test suite's (21000-28999).
[media]
port_range = [18000, 19999]

[recording]
dir = "$OUT_DIR/recordings"
[[trunks]]
name = "profile"
pbx = ["127.0.0.10/32"]
carrier = "127.0.0.11:$CARRIER_PORT"
inbound_to = "127.0.0.10:$((BASE_PORT + 30))"
numbers = ["+861012345678"]
max_concurrent = 10000
max_concurrent_per_caller_id = 10000
max_cps = 10000.0

[trunks.rules.over_frequent_callee]
enabled = false
EOF

GW_PID=
UAS_PID=
cleanup() {
    for pid in $UAS_PID $GW_PID; do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

OUT=$OUT_DIR/callgrind.out
# Instrumentation starts off and is switched on once the gateway listens.
env RUST_LOG="$GW_LOG" ${GW_PRELOAD:+LD_PRELOAD=$GW_PRELOAD} valgrind --tool=callgrind \
    --instr-atstart=no --callgrind-out-file="$OUT" \
    "${BIN:-$ROOT/target/release/trunkguard}" --config "$OUT_DIR/profile.toml" run \
    >"$OUT_DIR/gateway.log" 2>"$OUT_DIR/valgrind.log" &
GW_PID=$!
for _ in $(seq 600); do
    [ "$(ss -Hunl "( src $INSIDE or src $OUTSIDE )" | wc -l)" -ge 2 ] && break
    kill -0 $GW_PID 2>/dev/null || { echo "gateway exited"; tail "$OUT_DIR/valgrind.log"; exit 1; }
    sleep 0.1
done
(cd "$OUT_DIR" && exec sipp -sn uas -i 127.0.0.11 -p $CARRIER_PORT -t u1 -nostdin -timeout 600s \
    >uas_screen.txt 2>&1) &
UAS_PID=$!
sleep 1
if [ "$WARMUP" -gt 0 ]; then
    (cd "$OUT_DIR" && sipp -sf "$ROOT/tests/sipp/pbx_uac.xml" -key caller +861012345678 \
        -s 8613800138000 -i 127.0.0.10 -p $((BASE_PORT + 1)) -t u1 -nostdin -r "$RATE" \
        -m "$WARMUP" -d 0 -timeout 600s -timeout_error "$INSIDE" >warmup_screen.txt 2>&1) \
        || echo "warning: SIPp reported failed warm-up calls (see $OUT_DIR/warmup_screen.txt)"
    # The writers' linger and the traces' closing delay: their batches go before counting.
    sleep 3
fi
callgrind_control -i on $GW_PID >/dev/null
(cd "$OUT_DIR" && sipp -sf "$ROOT/tests/sipp/pbx_uac.xml" -key caller +861012345678 -s 8613800138000 \
    -i 127.0.0.10 -p $((BASE_PORT + 1)) -t u1 -nostdin -r "$RATE" -m "$CALLS" -d 0 \
    -timeout 600s -timeout_error -trace_stat -stf uac_stat.csv -fd 1 "$INSIDE" >uac_screen.txt 2>&1) \
    || echo "warning: SIPp reported failed calls (see $OUT_DIR/uac_screen.txt)"
sleep 2
callgrind_control -i off $GW_PID >/dev/null
kill -USR1 $UAS_PID 2>/dev/null || true
kill -TERM $GW_PID
wait $GW_PID 2>/dev/null || true
GW_PID=
wait $UAS_PID 2>/dev/null || true
UAS_PID=

echo "== callgrind: $CALLS calls at $RATE calls/s after $WARMUP, RUST_LOG=$GW_LOG${GW_PRELOAD:+, LD_PRELOAD=$GW_PRELOAD}"
python3 - "$OUT" "$CALLS" "$OUT_DIR" <<'PY'
import collections, re, sqlite3, sys
out, calls, out_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = None
names, edges = {}, collections.Counter()
# Per function: its own instructions and what its calls cost (inclusive), for the recorder's share.
own, callee_cost = collections.Counter(), collections.Counter()
fn = cfn = None
in_call = False
for line in open(out, errors="replace"):
    if line.startswith("totals:") or line.startswith("summary:"):
        total = int(line.split()[1])
    m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
    if m:
        kind, ident, name = m.groups()
        if name:
            names[ident] = name.strip()
        if kind == "fn":
            fn = ident
        else:
            cfn = ident
        continue
    m = re.match(r"calls=(\d+)", line)
    if m and cfn:
        edges[names.get(cfn, cfn)] += int(m.group(1))
        in_call = True
        continue
    if line[:1].isdigit() or line[:1] in "+-*":
        parts = line.split()
        if len(parts) >= 2 and fn is not None:
            cost = int(parts[-1])
            if in_call:
                if cfn != fn:
                    callee_cost[names.get(fn, fn)] += cost
            else:
                own[names.get(fn, fn)] += cost
        in_call = False
print(f"instructions (user space) per call: {total / calls:,.0f}")
# The recorder's threads write each call's WAV (silence here: no RTP) and digest it at the
# close. How much audio a call has follows its wall-clock length, which under valgrind follows
# the host's load; and SHA-256 runs in software under valgrind (no SHA-NI). Shown apart.
recorder = sum(own[f] + callee_cost[f] for f in ("trunkguard::recording::durable::run",
                                                 "trunkguard::recording::session::CallWriter::service"))
# SQLite's statements and commits (sqlx's worker threads): how many transactions a call's writes
# take depends on how they fall into the writers' batches, which varies from run to run.
sqlite = sum(own[f] + callee_cost[f] for f in (
    "<sqlx_sqlite::connection::execute::ExecuteIter as core::iter::traits::iterator::Iterator>::next",
    "sqlx_sqlite::connection::handle::ConnectionHandle::exec"))
print(f"  of which the recorder's threads (WAV samples, digest): {recorder / calls:,.0f}; "
      f"SQLite (statements, commits): {sqlite / calls:,.0f}; "
      f"the rest: {(total - recorder - sqlite) / calls:,.0f}")
for name in ("__rustc::__rust_alloc", "__rustc::__rust_realloc", "alloc::fmt::format::format_inner",
             "sendto", "recvfrom"):
    n = sum(c for k, c in edges.items() if k == name or k.startswith(name + "'"))
    print(f"calls to {name} per call: {n / calls:,.1f}")
try:
    db = sqlite3.connect(f"file:{out_dir}/profile.db?mode=ro", uri=True)
    answers = db.execute("SELECT final_status, count(*) FROM cdrs GROUP BY 1 ORDER BY 1").fetchall()
    print("CDRs by final status (warm-up calls included):",
          ", ".join(f"{s}: {n}" for s, n in answers))
except sqlite3.Error as e:
    print(f"(no CDR count: {e})")
PY
retrans=$(awk '/INVITE ---------->/ {print $4; exit}' "$OUT_DIR/uac_screen.txt" 2>/dev/null || true)
echo "INVITE retransmissions by SIPp (the gateway answered late): ${retrans:-?}"
echo
echo "== top inclusive costs (share of all instructions while the calls ran)"
callgrind_annotate --inclusive=yes --threshold=99 "$OUT" 2>/dev/null | python3 -c '
import re, sys
skip = re.compile(r"tokio::runtime|std::panic|catch_unwind|FnOnce|std::sys::|start_thread|clone3|std::thread::|unsafe_cell")
seen, shown = set(), 0
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*?):(\S.*?)(?: \[[^]]*\])?$", line)
    if not m or skip.search(m.group(4)) or m.group(4) in seen:
        continue
    seen.add(m.group(4))
    print(f"{m.group(2):>6}%  {m.group(4)[:150]}")
    shown += 1
    if shown == 40:
        break
'
echo
echo "files: $OUT_DIR (callgrind_annotate $OUT | less)"

#!/usr/bin/env python3
"""Per-call figures from one sipp_cps.sh step probed with PROBE="perf strace".

perf_stat.csv (perf stat --per-thread -x,): CPU ms and context switches per call, summed over
the gateway's threads and grouped by thread name (tokio workers, relay threads, the recording
pool, the SQLite worker...), so that the hand-offs between threads show where they happen.
strace.txt (strace -c -f): system calls per call, the most frequent first.

Usage: per_call_probe.py STEP_DIR CALLS
"""
import collections
import os
import re
import sys

step, calls = sys.argv[1], max(int(float(sys.argv[2] or 0)), 1)

perf = os.path.join(step, "perf_stat.csv")
if os.path.exists(perf) and os.path.getsize(perf) > 0:
    by_name = collections.defaultdict(lambda: collections.Counter())
    for line in open(perf):
        f = line.strip().split(",")
        if len(f) < 4 or line.startswith("#"):
            continue
        thread, value, event = f[0], f[1], f[3]
        name = re.sub(r"-\d+$", "", thread)
        # Numbered threads of one pool read as one line.
        name = re.sub(r"[-_ ]?\d+$", "", name) or thread
        try:
            by_name[name][event] += float(value)
        except ValueError:
            continue
    tot = collections.Counter()
    for c in by_name.values():
        tot.update(c)
    print(f"   perf per call ({calls} calls): CPU {tot['task-clock'] / calls:.3f} ms, "
          f"context switches {tot['context-switches'] / calls:.1f}, "
          f"migrations {tot['cpu-migrations'] / calls:.2f}")
    rows = sorted(by_name.items(), key=lambda kv: -kv[1]["task-clock"])
    for name, c in rows[:12]:
        print(f"     {name[:28]:<28} CPU {c['task-clock'] / calls:7.3f} ms  "
              f"switches {c['context-switches'] / calls:6.2f}")

trace = os.path.join(step, "strace.txt")
if os.path.exists(trace) and os.path.getsize(trace) > 0:
    rows = []
    for line in open(trace):
        f = line.split()
        # % time, seconds, usecs/call, calls, [errors], syscall
        if len(f) >= 5 and re.match(r"^[\d.]+$", f[0]) and f[-1] != "total":
            rows.append((int(f[3]), f[-1]))
    total = sum(n for n, _ in rows)
    top = ", ".join(f"{name} {n / calls:.1f}" for n, name in sorted(rows, reverse=True)[:12])
    print(f"   strace per call: {total / calls:.1f} syscalls ({top})")

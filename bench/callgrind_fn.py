#!/usr/bin/env python3
"""Calls into, and inclusive instructions of, named functions in a callgrind.out, per call placed.

Usage: bench/callgrind_fn.py OUT_DIR/callgrind.out CALLS NAME...   (NAME ending in `*`: every
function whose name contains the rest; otherwise the exact name, e.g. `sqlite3_prepare_v2`).
Counted from the call edges (`calls=` lines), so a function's own top-level cost is not in it.
For async functions the count is polls, not calls. Used for bench/README.md, "Session 14: the
CDR writer's transaction", next to bench/profile_callgrind.sh's summary.
"""
import collections
import re
import sys

out, calls = sys.argv[1], int(sys.argv[2])
names = {}
ncalls, incl = collections.Counter(), collections.Counter()
cfn = None
pending = None


def name(rest):
    # callgrind's name compression: "(id) name" defines, "(id)" refers.
    m = re.match(r"\((\d+)\)(?: (.*))?", rest)
    if not m:
        return rest
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), "?")


for line in open(out, errors="replace"):
    if line.startswith("cfn="):
        cfn = name(line[4:].strip())
    elif line.startswith("fn="):
        name(line[3:].strip())
    elif line.startswith("calls="):
        pending = int(line[6:].split()[0])
    elif pending is not None and line[:1] in "0123456789+-*":
        parts = line.split()
        if len(parts) >= 2:
            ncalls[cfn] += pending
            incl[cfn] += int(parts[1])
        pending = None
for p in sys.argv[3:]:
    fns = [f for f in ncalls if f == p or (p.endswith("*") and p[:-1] in f)]
    c = sum(ncalls[f] for f in fns)
    i = sum(incl[f] for f in fns)
    print(f"{p:60s} calls {c:>8} ({c / calls:6.2f}/call)  incl {i:>12,} ({i / calls:>10,.0f}/call)")

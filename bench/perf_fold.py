#!/usr/bin/env python3
"""perf script output -> folded stacks (root first, the thread name as the root frame).
Usage: perf script -i perf.data -F comm,ip,sym | bench/perf_fold.py > gw.folded
(then bench/perf_under.py gw.folded REGEX [DEPTH]: the share inside a function and below it)."""
import sys, re, collections, signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly
counts = collections.Counter()
comm = None; frames = []
def flush():
    global frames
    if comm is not None and frames:
        counts[";".join([comm] + frames[::-1])] += 1
    frames = []
for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.strip():
        flush(); comm = None; continue
    if not line.startswith((" ", "\t")):
        flush(); comm = line.strip().split()[0]; continue
    parts = line.strip().split(None, 1)
    sym = parts[1] if len(parts) > 1 else parts[0]
    sym = re.sub(r"\+0x[0-9a-f]+$", "", sym)
    sym = re.sub(r" \(.*\)$", "", sym)
    frames.append(sym)
flush()
for k, v in counts.items():
    print(f"{k} {v}")

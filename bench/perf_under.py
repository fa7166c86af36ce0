#!/usr/bin/env python3
"""perf_under.py FOLDED PATTERN [DEPTH]: share of all samples inside frames matching PATTERN (regex), and
breakdown by the next frame(s) below the (outermost) match."""
import sys, re, collections, signal
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # piped into head: stop quietly
f, pat = sys.argv[1], re.compile(sys.argv[2]); depth = int(sys.argv[3]) if len(sys.argv) > 3 else 1
tot = 0; inside = 0; below = collections.Counter()
for line in open(f):
    stack, n = line.rsplit(" ", 1); n = int(n); tot += n
    fr = stack.split(";")
    for i, s in enumerate(fr):
        if pat.search(s):
            inside += n
            below[" > ".join(x[:90] for x in fr[i+1:i+1+depth]) or "(self)"] += n
            break
print(f"{inside/tot*100:.1f}% of {tot} samples")
for k, v in below.most_common(25):
    print(f"  {v/tot*100:5.1f}%  {k}")

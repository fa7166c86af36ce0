#!/usr/bin/env python3
"""p50, p90, p99 of trunkguard_admission_duration_seconds from a /metrics dump.

Linear interpolation inside the bucket that holds the quantile (as Prometheus'
histogram_quantile does); the +Inf bucket answers its lower bound. Prints one line:
`admission: N calls, p50 X ms, p90 Y ms, p99 Z ms, mean M ms`.
"""
import math
import re
import sys

NAME = "trunkguard_admission_duration_seconds"


def read(path):
    buckets, total, count = [], 0.0, 0
    pattern = re.compile(NAME + r'_bucket\{le="([^"]+)"\} (\S+)')
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = pattern.match(line)
            if m:
                le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
                buckets.append((le, float(m.group(2))))
            elif line.startswith(NAME + "_sum "):
                total = float(line.split()[1])
            elif line.startswith(NAME + "_count "):
                count = int(float(line.split()[1]))
    buckets.sort()
    return buckets, total, count


def quantile(q, buckets, count):
    if count == 0:
        return float("nan")
    rank = q * count
    lower, below = 0.0, 0.0
    for le, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(le):
                return lower
            inside = cumulative - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (le - lower) * share
        lower, below = le, cumulative
    return lower


def main():
    buckets, total, count = read(sys.argv[1])
    if not buckets:
        print("admission: no histogram in", sys.argv[1])
        return 1
    ms = lambda s: f"{s * 1000:.3f}"
    mean = total / count if count else float("nan")
    print(
        f"admission: {count} calls, p50 {ms(quantile(0.5, buckets, count))} ms, "
        f"p90 {ms(quantile(0.9, buckets, count))} ms, p99 {ms(quantile(0.99, buckets, count))} ms, "
        f"mean {ms(mean)} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine by itself: installs what the tests need when it
# is missing (SIPp from `sip-tester`, SIPVicious from `sipvicious`, Redis from `redis-server`), starts
# Redis when none answers, then checks formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# SIPp (sip-tester) plays PBX and carrier; SIPVicious (svmap, svwar) plays the scanner.
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v svmap >/dev/null 2>&1 || missing+=(sipvicious)
# Redis holds the cluster's shared admission state (src/cluster's tests use 127.0.0.1:6379).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "== starting redis-server on 127.0.0.1:6379"
    redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install the Rust toolchain (rustup) first" >&2
    exit 1
fi
for tool in rustfmt clippy-driver; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: rustup component add rustfmt clippy" >&2; exit 1; }
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== fuzzing"
# Each fuzz target for FUZZ_SECONDS (default 20); scripts/fuzz.sh installs g++ and cargo-fuzz
# when missing and fails on a crash, naming the input. Before the tests, so that cargo test's
# summary closes the output.
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
echo "== cargo test"
# Integration tests start real gateways and SIPp on loopback; two at a time fit 2 cores.
# (--lib --bins --tests, not --all-targets: benchmarks under bench/ are load runs, not tests.)
cargo test --lib --bins --tests --locked -- --test-threads=2

#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine by itself: installs what the tests need when it
# is missing (SIPp from `sip-tester`, baresip from `baresip-core`, SIPVicious from `sipvicious`, Redis from `redis-server`,
# PostgreSQL from `postgresql`, Chromium from `chromium` and `chromium-driver`; schemathesis from
# PyPI into a venv under ~/.cache/trunkguard), starts Redis and PostgreSQL when none answers, then checks
# formatting and lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# SIPp (sip-tester) plays PBX and carrier; SIPVicious (svmap, svwar) plays the scanner.
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
# baresip (with its srtp and aufile modules) plays PBX and carrier with SRTP (tests/srtp_baresip.rs).
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
command -v svmap >/dev/null 2>&1 || missing+=(sipvicious)
# Redis holds the cluster's shared admission state (src/cluster's tests use 127.0.0.1:6379).
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The web console's browser tests (tests/console_browser.rs) drive Debian's Chromium through
# chromedriver; its Chinese pages need a CJK font to be readable in their screenshots.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
{ command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; } || missing+=(fonts-noto-cjk)
# PostgreSQL: the store's tests run on SQLite and on PostgreSQL (a fresh database per test), as
# do tests/pg.rs and crash.rs's PostgreSQL case. A server of your own: set TRUNKGUARD_TEST_PG
# (postgres://user@host:port, no database) and nothing is installed or started here.
if [ -z "${TRUNKGUARD_TEST_PG:-}" ]; then
    command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
fi
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
if [ -z "${TRUNKGUARD_TEST_PG:-}" ]; then
    pg_connects() { psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }
    pg_answers() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
    pg_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
    if ! pg_answers || ! pg_connects; then
        if [ -z "$pg_version" ]; then
            echo "no PostgreSQL cluster under /etc/postgresql (apt-get install postgresql makes one)" >&2
            exit 1
        fi
        # Trust for loopback: user postgres connects without a password (a test machine).
        hba=/etc/postgresql/$pg_version/main/pg_hba.conf
        if ! as_root grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
            echo "== PostgreSQL: trusting 127.0.0.1 in $hba"
            as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
        fi
        if pg_answers; then
            as_root pg_ctlcluster "$pg_version" main reload
        else
            echo "== starting PostgreSQL $pg_version on 127.0.0.1:5432"
            as_root pg_ctlcluster "$pg_version" main start || as_root service postgresql start
        fi
        for _ in $(seq 100); do
            pg_connects && break
            sleep 0.1
        done
        pg_connects || { echo "PostgreSQL does not accept user postgres on 127.0.0.1:5432" >&2; exit 1; }
    fi
    export TRUNKGUARD_TEST_PG=postgres://postgres@127.0.0.1:5432
fi
# schemathesis (PyPI) checks the API against its own OpenAPI document (tests/api_contract.rs):
# installed into a venv under ~/.cache/trunkguard when missing, and named to the test.
st_venv="${HOME}/.cache/trunkguard/schemathesis"
if [ -z "${TRUNKGUARD_SCHEMATHESIS:-}" ]; then
    if [ ! -x "$st_venv/bin/st" ]; then
        echo "== installing schemathesis into $st_venv"
        python3 -c 'import venv' 2>/dev/null || {
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
        }
        python3 -m venv "$st_venv"
        "$st_venv/bin/pip" install -q schemathesis
    fi
    export TRUNKGUARD_SCHEMATHESIS="$st_venv/bin/st"
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
echo "== cargo test: the end-to-end tests that use the database, again on PostgreSQL"
# The same in-process gateways, each on a fresh PostgreSQL database (tests/common picks the
# backend); the store's own tests already ran on both, and the cluster tests share PostgreSQL.
TRUNKGUARD_TEST_BACKEND=postgres cargo test --locked --test api --test api_admin \
    --test api_recordings --test call_flows --test endings --test media --test monitor \
    --test refusals --test trunks -- --test-threads=2

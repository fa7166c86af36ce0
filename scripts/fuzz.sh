#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz + libFuzzer, stable Rust, no sanitizer) of the SIP front
# end, SDP and RTP parsing: builds the targets under fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 30 s, every target)
#
# Installs what it needs when missing (g++ for libFuzzer, cargo-fuzz). Everything it writes
# stays in fuzz/target/ (the fuzz crate's own workspace): the build, the growing corpus (seeded from fuzz/corpus/<target>/,
# testdata/fuzz-regressions/<target>/ and, for SIP, testdata/sip-torture/) and crash inputs.
# Fails if any target crashes, times out or runs out of memory, naming the input; minimize it
# (`cargo fuzz tmin --sanitizer none <target> <input>`), add it to
# testdata/fuzz-regressions/<target>/ (tests/fuzz_regressions.rs then runs it in every
# `cargo test`) and fix the parser.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(sip_datagram sip_stream sdp rtp)
case "$seconds" in '' | *[!0-9]*) echo "seconds must be a number: $seconds" >&2; exit 2 ;; esac

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v c++ >/dev/null 2>&1; then
    echo "== installing g++ (libFuzzer is C++)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install --locked cargo-fuzz --version 0.13.2
fi

export CARGO_INCREMENTAL=0
out=fuzz/target
# --sanitizer none: ASan needs nightly; safe Rust's panics and overflow checks (on: cargo-fuzz
# builds with debug assertions) are what we look for. Sancov coverage works on stable.
fuzz=(cargo fuzz run --sanitizer none --codegen-units 16)

echo "== building fuzz targets"
mkdir -p "$out"
cargo fuzz build --sanitizer none --codegen-units 16 2>"$out/build.log" || { tail -n 40 "$out/build.log" >&2; exit 1; }

failed=()
for t in "${targets[@]}"; do
    work="$out/corpus/$t"
    artifacts="$out/artifacts/$t/"
    mkdir -p "$work" "$artifacts"
    seeds=("fuzz/corpus/$t")
    [ -d "testdata/fuzz-regressions/$t" ] && seeds+=("testdata/fuzz-regressions/$t")
    case "$t" in sip_*) seeds+=(testdata/sip-torture) ;; esac
    echo "== fuzzing $t for ${seconds} s"
    # the first corpus directory collects what libFuzzer finds; the seed directories stay as
    # they are. -timeout: an input taking 10 s is a hang, a finding like a panic.
    if ! "${fuzz[@]}" "$t" "$work" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=20000 \
        -artifact_prefix="$artifacts" -print_final_stats=1 >"$out/$t.log" 2>&1; then
        failed+=("$t")
        tail -n 40 "$out/$t.log"
        echo "!! $t failed; inputs: $(ls "$artifacts" | sed "s|^|$artifacts|" | tr '\n' ' ')" >&2
    else
        grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$out/$t.log" |
            tr '\n' ' ' | sed "s/^/   $t: /"
        echo
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzzing found crashes in: ${failed[*]} (logs in $out/)" >&2
    exit 1
fi
echo "== fuzzing: no crash in ${targets[*]}"

#!/usr/bin/env bash
# Run every cargo-fuzz target for a short while (default 60 s each) from the
# committed seed corpora. Skips (exit 0) when no nightly toolchain or no
# cargo-fuzz can be had, unless FUZZ_REQUIRE=1 (CI), where that fails; exits
# non-zero when any target crashes, hangs or fails to build. Crash inputs land
# in fuzz/artifacts/<target>/.
#
#   fuzz/smoke.sh            # 60 s per target
#   fuzz/smoke.sh 600        # 10 minutes per target
#   FUZZ_TARGETS="scan_input" fuzz/smoke.sh 30
#   fuzz/smoke.sh build      # only install cargo-fuzz if needed and build the targets
#   FUZZ_SANITIZER=none fuzz/smoke.sh 30   # without AddressSanitizer (CI: a faster build)
#   FUZZ_PROFILE=dev fuzz/smoke.sh 30      # unoptimised (CI: a much cheaper build; runs
#                                          # 10-60x slower; panics and hangs are still caught)
set -uo pipefail

secs="${1:-60}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
targets="${FUZZ_TARGETS:-order_intake template_parse scan_input config_parse scan_code}"
# AddressSanitizer by default; `none` still finds every panic and hang (the
# code under test is safe Rust but for one libc call).
sanitizer=(-s "${FUZZ_SANITIZER:-address}")
# Optimised (`-O`) by default, or `--dev`: the same flags for build and run,
# so the run does not build again.
case "${FUZZ_PROFILE:-release}" in
    release) profile=(-O); install_profile=() ;;
    dev) profile=(--dev); install_profile=(--debug) ;;
    *) echo "FUZZ_PROFILE must be release or dev"; exit 2 ;;
esac

skip() {
    if [ -n "${FUZZ_REQUIRE:-}" ]; then
        echo "fuzz smoke FAILED: $* (FUZZ_REQUIRE is set)"
        exit 1
    fi
    echo "fuzz smoke skipped: $*"
    exit 0
}

command -v cargo >/dev/null 2>&1 || skip "no cargo on PATH"
cargo +nightly --version >/dev/null 2>&1 || skip "no nightly toolchain (rustup toolchain install nightly)"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not installed; installing it (cargo install cargo-fuzz --locked ${install_profile[*]})"
    cargo install cargo-fuzz --locked "${install_profile[@]}" >/dev/null 2>&1 || skip "cargo-fuzz is not installed and could not be installed"
    cargo +nightly fuzz --version >/dev/null 2>&1 || skip "cargo-fuzz installed but does not run"
fi

cd "$fuzz_dir" || exit 1
echo "building fuzz targets ($(cargo +nightly --version))"
if ! cargo +nightly fuzz build "${profile[@]}" "${sanitizer[@]}"; then
    echo "fuzz smoke FAILED: the targets do not build"
    exit 1
fi
if [ "$secs" = "build" ]; then
    echo "fuzz targets built"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    echo "== $t: ${secs}s"
    # New inputs go to the scratch corpus (first directory); the committed
    # seeds (second) are only read.
    cargo +nightly fuzz run "${profile[@]}" "${sanitizer[@]}" "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "   ok: ${runs:-?} runs, ${speed:-?} exec/s, ${cov:-cov: ?}"
    else
        echo "   FAILED (exit $rc): ${runs:-?} runs; last lines of the log:"
        tail -n 40 "$log" | sed 's/^/   | /'
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]} (reproduce: cd fuzz && cargo +nightly fuzz run -O TARGET artifacts/TARGET/<file>)"
    exit 1
fi
echo "fuzz smoke passed: $targets"

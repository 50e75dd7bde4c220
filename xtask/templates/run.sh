#!/usr/bin/env bash
# fa3 bundle: runs on a Hopper (sm_90a) machine with the NVIDIA driver and no
# Rust toolchain. Made by `cargo xtask bundle`.
#
#   ./run.sh test [ARGS]       every test binary, GPU tests included
#   ./run.sh sanitize [ARGS]   compute-sanitizer memcheck, racecheck, synccheck
#                              and initcheck over the GPU tests
#   ./run.sh bench [ARGS]      the benchmark (bin/fa3-bench --help), output in ./bench-out,
#                              with the official FA3 wheels of peers/ installed for it
#
# ARGS go to each test binary (a name filter, --test-threads=1, ...).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The binaries and kernels travel packed (one xz tarball, a sixteenth of
# their size); unpacked afresh on every run so no stale binary survives.
if [ -f "$here/payload.tar.xz" ]; then
    rm -rf "$here/tests" "$here/bin" "$here/kernels"
    if ! tar -xJf "$here/payload.tar.xz" -C "$here"; then
        echo "run.sh: could not unpack payload.tar.xz (is xz installed?)" >&2
        exit 2
    fi
fi
# ptxas for the tests that assemble the PTX; compute-sanitizer.
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
    [ -d "$d" ] && PATH="$PATH:$d"
done
export PATH

mode="${1:-}"
shift || true

gpu_test_binaries() {
    for t in "$here"/tests/*; do
        if "$t" --ignored --list 2>/dev/null | grep -q ': test$'; then echo "$t"; fi
    done
}

case "$mode" in
test)
    fail=0
    for t in "$here"/tests/*; do
        echo "== $(basename "$t")"
        # Bounded, so a hung kernel names its binary instead of eating the run.
        timeout "${FA3_TEST_TIMEOUT:-300}" "$t" --include-ignored "$@"
        status=$?
        [ "$status" = 124 ] && echo "== $(basename "$t"): TIMED OUT after ${FA3_TEST_TIMEOUT:-300} s (hung kernel?)"
        [ "$status" = 0 ] || fail=1
    done
    [ "$fail" = 0 ] && echo "run.sh test: all test binaries passed" || echo "run.sh test: FAILURES above"
    exit "$fail"
    ;;
sanitize)
    if ! command -v compute-sanitizer >/dev/null; then
        echo "run.sh sanitize: compute-sanitizer not found" >&2
        exit 2
    fi
    fail=0
    summary=""
    logdir="${SANITIZE_LOGS:-$here/sanitize-logs}"
    mkdir -p "$logdir"
    for tool in memcheck racecheck synccheck initcheck; do
        extra=()
        [ "$tool" = memcheck ] && extra=(--leak-check full)
        for t in $(gpu_test_binaries); do
            name="$(basename "$t")"
            log="$logdir/$tool-$name.log"
            # Repeat-tests run twice and matrix tests on a reduced matrix
            # here: racecheck is ~100x slower.
            FA3_TEST_REPEATS=2 FA3_TEST_REDUCED=1 timeout "${FA3_TEST_TIMEOUT:-300}" \
                compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 99 \
                "$t" --ignored --test-threads=1 "$@" >"$log" 2>&1
            status=$?
            errors="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -n 1)"
            case "$status" in
            0) verdict="clean" ;;
            99) verdict="SANITIZER ERRORS"; fail=1 ;;
            124) verdict="TIMED OUT"; fail=1 ;;
            *) verdict="TESTS FAILED (exit $status)"; fail=1 ;;
            esac
            summary+="$(printf '%-10s %-28s %-18s %s' "$tool" "$name" "$verdict" "$errors")"$'\n'
        done
    done
    printf '%s' "$summary"
    echo "logs: $logdir"
    [ "$fail" = 0 ] && echo "run.sh sanitize: no errors" || echo "run.sh sanitize: ERRORS (see logs)"
    exit "$fail"
    ;;
bench)
    wheels=()
    if compgen -G "$here/peers/*.whl" >/dev/null; then
        wheels=(--peer-wheels "$here/peers")
    else
        echo "run.sh bench: no FA3 wheels in $here/peers: FA3 will be reported missing"
    fi
    exec "$here/bin/fa3-bench" "${wheels[@]}" "$@"
    ;;
*)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac

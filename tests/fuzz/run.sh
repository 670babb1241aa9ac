#!/bin/sh
# Builds the libFuzzer targets of the prep parsers with clang (ASan + UBSan) in their own
# tree and runs each for SECONDS seconds from the seed corpus in tests/fuzz/seeds, as many
# targets at a time as there are cores (FUZZ_JOBS).
#
#   tests/fuzz/run.sh SECONDS [BUILD_DIR]      (default BUILD_DIR: $TMPDIR/chainz-fuzz)
#
# Exit status: 0 no finding, 1 a target crashed, leaked, timed out or failed to build
# (the reproducer is kept under BUILD_DIR/artifacts; replay it with
#  BUILD_DIR/fuzz_TARGET ARTIFACT), 77 clang or its libFuzzer runtime is missing (ctest
# counts that as skipped). The corpus grows in BUILD_DIR/corpus and is reused next time.
set -u
secs=${1:-60}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-${TMPDIR:-/tmp}/chainz-fuzz}
targets="csv_text csv_numeric arff glove"

cc=$(command -v clang || true)
if [ -z "$cc" ]; then
    echo "fuzz: SKIP: clang not found (apt-get install clang libclang-rt-14-dev)"
    exit 77
fi
mkdir -p "$build" || exit 1
probe="$build/probe"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "$probe.c" -o "$probe" 2> "$probe.log"; then
    echo "fuzz: SKIP: clang cannot link libFuzzer with ASan/UBSan (libclang-rt-*-dev missing?)"
    sed 's/^/  /' "$probe.log"
    exit 77
fi

echo "fuzz: building in $build"
cmake -S "$src" -B "$build/tree" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCHAINZ_FUZZ=ON -DCHAINZ_TESTS=OFF > "$build/configure.log" 2>&1 ||
    { echo "fuzz: configure failed:"; tail -20 "$build/configure.log"; exit 1; }
build_targets=""
for t in $targets; do build_targets="$build_targets fuzz_$t"; done
# shellcheck disable=SC2086
cmake --build "$build/tree" -j2 --target $build_targets > "$build/build.log" 2>&1 ||
    { echo "fuzz: build failed:"; tail -30 "$build/build.log"; exit 1; }

# one target: fuzz it and write its verdict line (and the finding, if any) to BUILD_DIR/T.result
fuzz_one() {
    t=$1
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts"
    cp -n "$src/tests/fuzz/seeds/$t/"* "$corpus/" 2>/dev/null
    dict=""
    [ -f "$src/tests/fuzz/$t.dict" ] && dict="-dict=$src/tests/fuzz/$t.dict"
    log="$build/$t.log"
    # shellcheck disable=SC2086
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$build/tree/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" $dict "$corpus" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t: FAILED (exit $rc) after ${runs:-?} runs; log $log"
        grep -E 'ERROR|runtime error|SUMMARY|Test unit written' "$log" | head -10 | sed 's/^/  /'
    else
        echo "fuzz: $t: ok, ${runs:-?} runs in ${secs} s, $cov, corpus $(ls "$corpus" | wc -l) inputs"
    fi > "$build/$t.result"
    return $rc
}

# Each target is one single-threaded process: run as many at once as there are cores
# (FUZZ_JOBS to choose), each still for SECONDS seconds of its own. ctest runs this test
# alone (RUN_SERIAL), so on CI's 2 cores two targets at a time take half the wall time
# for the same fuzzing per target.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
status=0
pids="" running=0
for t in $targets; do
    fuzz_one "$t" &
    pids="$pids $!"
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        for p in $pids; do wait "$p" || status=1; done
        pids="" running=0
    fi
done
for p in $pids; do wait "$p" || status=1; done
for t in $targets; do cat "$build/$t.result"; done
exit $status

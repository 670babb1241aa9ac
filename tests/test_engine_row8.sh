#!/usr/bin/env bash
# ctest engine_row8_bits: the stream's rows of 8 (vector rows, AVX2 copies; src/engine/
# stream.c) give the bits of the general loops compiled for baseline x86-64, on 1 and 2
# threads: tests/stream_bits.c's output from both builds, byte for byte.
# Usage: test_engine_row8.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
"$build/stream_bits_plain" "$work/plain" 1 || exit 1
for t in 1 2; do
    "$build/stream_bits" "$work/row8-$t" "$t" || exit 1
    if cmp -s "$work/plain" "$work/row8-$t"; then
        echo "ok: rows of 8 on $t thread(s) == general loops, $(stat -c %s "$work/plain") bytes"
    else
        echo "FAIL: rows of 8 on $t thread(s) differ from the general loops: $(cmp "$work/plain" "$work/row8-$t")"
        fails=$((fails + 1))
    fi
done
[ "$fails" = 0 ]

#!/bin/bash
# chainz prep corrupt on the command line: help; a small IDX set through prep idx (which
# records image_rows / image_cols) corrupted by every kind; the same seed gives the same
# bytes (tests/h5bytes), another seed other noise and the same deterministic kinds; labels
# kept; --all-kinds names; usage and input errors (exit 1, message naming the file and what
# was expected, no output, no temporary); Debian's Fashion-MNIST test set when installed.
# Usage: test_corrupt_cli.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
chainz="$build/chainz"
h5bytes="$build/h5bytes"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
no_tmp() { ! ls "$work" | grep -q '\.tmp\.'; }
digest() { "$h5bytes" "$1" "$2" 2>/dev/null | sed 's/.*fnv1a64=//'; }

# expect_fail PATTERN args...: chainz prep corrupt exits 1 with PATTERN on stderr, writes nothing
expect_fail() {
    local pat=$1; shift
    rm -f "$work/bad-out.h5"
    "$chainz" prep corrupt "$@" >"$work/out.txt" 2>"$work/err.txt"
    local rc=$?
    if [ $rc -eq 1 ] && grep -qF -- "$pat" "$work/err.txt" && [ ! -e "$work/bad-out.h5" ] && no_tmp; then
        ok "exit 1: $pat"
    else
        bad "prep corrupt $* -> exit $rc, stderr: $(head -c 300 "$work/err.txt")"
    fi
}

"$chainz" prep corrupt --help >"$work/help.txt" 2>&1 || bad "--help exit status"
for o in --output --kind --severity --seed --image --all-kinds --severities gaussian_noise gaussian_blur \
         contrast pixelate impulse_noise "Default: 1."; do
    grep -qF -- "$o" "$work/help.txt" || bad "--help lacks $o"
done
"$chainz" prep --help >"$work/prep-help.txt" 2>&1
grep -qF "chainz prep corrupt IN.h5" "$work/prep-help.txt" && ok "--help documents every option" ||
    bad "prep --help does not mention corrupt"

# a 40-image 28x28 IDX set: smooth blobs, labels 0..9
# (integer arithmetic only, so that the input, and the golden digests below, are the same
# bytes on every machine)
python3 - "$work" <<'PY' || bad "python3 could not write the IDX files"
import struct, sys
w = sys.argv[1]
n = 40
pix = bytearray()
for i in range(n):
    cy, cx, r = 10 + i % 8, 10 + (3 * i) % 8, 5 + i % 6
    for y in range(28):
        for x in range(28):
            inside = (y - cy) ** 2 + (x - cx) ** 2 < r * r
            pix.append(64 + (7 * x + 13 * y + 29 * i) % 192 if inside else 0)
open(w + "/img.idx", "wb").write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(pix))
open(w + "/lab.idx", "wb").write(struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n)))
PY
"$chainz" prep idx "$work/img.idx" "$work/lab.idx" -o "$work/clean.h5" >/dev/null 2>"$work/err.txt" ||
    bad "prep idx: $(cat "$work/err.txt")"
grep -q '^/@image_rows int' <<<"$("$h5bytes" "$work/clean.h5")" && grep -q '^/@image_cols int' <<<"$("$h5bytes" "$work/clean.h5")" &&
    ok "prep idx records image_rows and image_cols" || bad "prep idx wrote no image shape"

labels=$(digest "$work/clean.h5" /labels)
for k in gaussian_noise gaussian_blur contrast pixelate impulse_noise; do
    if "$chainz" prep corrupt "$work/clean.h5" -o "$work/$k.h5" --kind $k --severity 3 >"$work/out.txt" 2>"$work/err.txt" &&
        grep -qF "40 images 28x28, $k severity 3" "$work/out.txt"; then
        "$chainz" prep corrupt "$work/clean.h5" -o "$work/$k-again.h5" --kind $k --severity 3 >/dev/null 2>&1
        "$chainz" prep corrupt "$work/clean.h5" -o "$work/$k-seed2.h5" --kind $k --severity 3 --seed 2 >/dev/null 2>&1
        f1=$(digest "$work/$k.h5" /features) f2=$(digest "$work/$k-again.h5" /features)
        f3=$(digest "$work/$k-seed2.h5" /features) f0=$(digest "$work/clean.h5" /features)
        [ -n "$f1" ] && [ "$f1" = "$f2" ] && [ "$f1" != "$f0" ] && ok "$k: same seed, same bytes; differs from the clean set" ||
            bad "$k: features $f1 / $f2 (clean $f0)"
        case $k in
        *noise) [ "$f1" != "$f3" ] && ok "$k: seed 2 gives other noise" || bad "$k: seed 2 gives the same bytes" ;;
        *) [ "$f1" = "$f3" ] && ok "$k: deterministic, the seed is not used" || bad "$k: the seed changed a deterministic kind" ;;
        esac
        [ "$(digest "$work/$k.h5" /labels)" = "$labels" ] && grep -q "^/features float/4 \[40x784\]" <<<"$("$h5bytes" "$work/$k.h5")" &&
            grep -q '^/@corruption string' <<<"$("$h5bytes" "$work/$k.h5")" && ok "$k: 40 x 784, labels kept, corruption recorded" ||
            bad "$k: labels or shape differ: $("$h5bytes" "$work/$k.h5" | tr '\n' ' ')"
    else
        bad "prep corrupt --kind $k: $(cat "$work/out.txt" "$work/err.txt")"
    fi
done
no_tmp && ok "no temporary files left" || bad "temporaries: $(ls "$work")"

# golden bytes: severity 3, seed 5 of the integer-made set above, as first written on
# 2026-11-30 (Release -O3 and Debug -O0 with sanitizers agreed). A different digest on
# another machine or compiler breaks the claim "the same bytes everywhere" (corrupt.h).
for kd in gaussian_noise:4b70e504eda5f4a2 gaussian_blur:7a75aa951c7229c9 contrast:2c7c8f288f9c1517 \
          pixelate:8411345d58f9b265 impulse_noise:cf00e281208f25d3; do
    k=${kd%%:*} want=${kd#*:}
    "$chainz" prep corrupt "$work/clean.h5" -o "$work/gold-$k.h5" --kind $k --severity 3 --seed 5 >/dev/null 2>&1
    got=$(digest "$work/gold-$k.h5" /features)
    [ "$got" = "$want" ] && ok "$k: the golden bytes ($want)" || bad "$k: /features digest $got, golden $want"
done

# --all-kinds
if "$chainz" prep corrupt "$work/clean.h5" -o "$work/all.h5" --all-kinds --severities 2-3 >"$work/out.txt" 2>"$work/err.txt"; then
    n=$(ls "$work" | grep -c '^all-.*-[23]\.h5$')
    [ "$n" -eq 10 ] && [ -f "$work/all-pixelate-2.h5" ] && [ "$(wc -l <"$work/out.txt")" -eq 10 ] &&
        ok "--all-kinds --severities 2-3: 10 files PREFIX-<kind>-<s>.h5" || bad "--all-kinds wrote: $(ls "$work")"
    [ "$(digest "$work/all-contrast-3.h5" /features)" = "$(digest "$work/contrast.h5" /features)" ] &&
        ok "--all-kinds gives the bytes of the single run" || bad "--all-kinds contrast 3 differs from --kind contrast"
else
    bad "--all-kinds: $(cat "$work/err.txt")"
fi

# errors
printf 'a,b,label\n0.5,3,0\n1,2,1\n' >"$work/num.csv"
"$chainz" prep numeric "$work/num.csv" -o "$work/num.h5" >/dev/null 2>&1 || bad "prep numeric failed"
out="$work/bad-out.h5"
expect_fail "--severity '0': expected an integer 1..5" "$work/clean.h5" -o "$out" --kind contrast --severity 0
# the input under another name (./, a hard link) is still the input: refused, the file intact
sum0=$(cksum <"$work/clean.h5")
ln -f "$work/clean.h5" "$work/clean-link.h5"
expect_fail "is the input file" "$work/clean.h5" -o "$work/./clean.h5" --kind contrast --severity 1
expect_fail "is the input file" "$work/clean.h5" -o "$work/clean-link.h5" --kind contrast --severity 1
[ "$(cksum <"$work/clean.h5")" = "$sum0" ] && ok "the input is untouched" || bad "the input changed"
rm -f "$work/clean-link.h5"
expect_fail "--severity '6': expected an integer 1..5" "$work/clean.h5" -o "$out" --kind contrast --severity 6
expect_fail "clean.h5: unknown --kind 'fog': expected one of gaussian_noise, gaussian_blur, contrast, pixelate, impulse_noise" \
    "$work/clean.h5" -o "$out" --kind fog --severity 1
expect_fail "missing --kind K" "$work/clean.h5" -o "$out" --severity 1
expect_fail "missing --severity S" "$work/clean.h5" -o "$out" --kind contrast
expect_fail "missing -o OUT.h5" "$work/clean.h5" --kind contrast --severity 1
expect_fail "--image needs ROWSxCOLS" "$work/clean.h5" -o "$out" --kind contrast --severity 1 --image 28
expect_fail "num.h5: no image shape" "$work/num.h5" -o "$out" --kind contrast --severity 1
expect_fail "num.h5: rows hold d = 2 features, but a 28x28 image (from --image) has 784 pixels: expected d = rows x cols" \
    "$work/num.h5" -o "$out" --kind contrast --severity 1 --image 28x28
expect_fail "num.h5: row 0, feature 1 (pixel 0, 1) is 3: expected image pixels in [0, 1]" \
    "$work/num.h5" -o "$out" --kind contrast --severity 1 --image 1x2
expect_fail "--image 14x56 disagrees with the file's image shape 28x28" "$work/clean.h5" -o "$out" --kind contrast \
    --severity 1 --image 14x56
expect_fail "nothing.h5" "$work/nothing.h5" -o "$out" --kind contrast --severity 1
expect_fail "--severities '4-2': expected A-B or S" "$work/clean.h5" -o "$work/bad-out" --all-kinds --severities 4-2
"$chainz" prep -o "$out" corrupt "$work/clean.h5" >/dev/null 2>"$work/err.txt"
[ $? -eq 1 ] && grep -qF "corrupt has options of its own and must follow prep directly" "$work/err.txt" &&
    [ ! -e "$out" ] && ok "prep -o OUT corrupt: told to put corrupt first" || bad "prep -o OUT corrupt: $(cat "$work/err.txt")"

# Debian's Fashion-MNIST test set (dataset-fashion-mnist), when installed
fm=/usr/share/datasets/fashion-mnist
if [ -r $fm/t10k-images-idx3-ubyte.gz ] && [ -r $fm/t10k-labels-idx1-ubyte.gz ]; then
    "$chainz" prep idx $fm/t10k-images-idx3-ubyte.gz $fm/t10k-labels-idx1-ubyte.gz -o "$work/fm.h5" >/dev/null &&
        "$chainz" prep corrupt "$work/fm.h5" -o "$work/fm-noise.h5" --kind gaussian_noise --severity 5 >"$work/out.txt" &&
        grep -qF "10000 images 28x28, gaussian_noise severity 5 (sigma 0.38), seed 1, mean |change| 0.18" "$work/out.txt" &&
        ok "Fashion-MNIST t10k: $(cat "$work/out.txt")" || bad "Fashion-MNIST: $(cat "$work/out.txt")"
else
    echo "note: $fm not installed (apt-get install dataset-fashion-mnist): real-data check skipped"
fi

if [ $fails -eq 0 ]; then echo "test_corrupt_cli: all passed"; exit 0; fi
echo "test_corrupt_cli: $fails failure(s)"
exit 1

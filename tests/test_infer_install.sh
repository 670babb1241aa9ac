#!/usr/bin/env bash
# libchainz_infer as a user gets it (issue 16): `cmake --install` into a temporary prefix,
# the README's example program (examples/infer_example.c) compiled against the installed
# tree with pkg-config, once on the shared library and once on the static one, and run on
# small trained models:
#  - the installed tree: header, libchainz_infer.so.0 (SONAME), the .a, chainz-infer.pc;
#    the shared library exports only czi_* and needs no MPI;
#  - the static program does not load libchainz_infer.so and prints what the shared one does;
#  - its predicted classes are right exactly as often as `chainz eval` counts (the same
#    labels), for an exact-stream model (n_1 > d) and a Gram-stream one (n_1 < d);
#  - an ordinal model and a run directory; a bad row, a row of d+1 numbers and a missing model
#    give errors.
# Usage: test_infer_install.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
src=$(cd "$(dirname "$0")/.." && pwd)
prefix="$work/prefix"

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || { echo "FAIL: install: $(tail -3 "$work/install.log")"; exit 1; }
pcdir=$(dirname "$(find "$prefix" -name chainz-infer.pc | head -1)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH="$pcdir"
for f in "$prefix/include/chainz/infer.h" "$libdir/libchainz_infer.a" "$libdir/libchainz_infer.so.0" "$pcdir/chainz-infer.pc"; do
    [ -e "$f" ] && ok "installed ${f#"$prefix"/}" || bad "missing $f"
done
soname=$(readelf -d "$libdir/libchainz_infer.so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libchainz_infer.so.0 ] && ok "SONAME $soname" || bad "SONAME '$soname'"
others=$(nm -D --defined-only "$libdir/libchainz_infer.so" | awk '$2 ~ /^[TDBRW]$/ && $3 !~ /^czi_/ {print $3}')
[ -z "$others" ] && ok "exports only czi_*" || bad "exports more than czi_*: $others"
if ldd "$libdir/libchainz_infer.so" | grep -qi mpi; then bad "libchainz_infer.so needs MPI: $(ldd "$libdir/libchainz_infer.so" | grep -i mpi)"
else ok "no MPI in libchainz_infer.so's dependencies"; fi

# the example, shared and static (-l:libchainz_infer.a picks the archive over the .so)
cc -O2 -Wall -Werror "$src/examples/infer_example.c" $(pkg-config --cflags --libs chainz-infer) \
    -Wl,-rpath,"$libdir" -o "$work/ex_shared" 2>"$work/cc.log" && ok "example built on the shared library" \
    || bad "shared build: $(cat "$work/cc.log")"
cc -O2 -Wall -Werror "$src/examples/infer_example.c" \
    $(pkg-config --static --cflags --libs chainz-infer | sed 's/-lchainz_infer\b/-l:libchainz_infer.a/') \
    -o "$work/ex_static" 2>"$work/cc.log" && ok "example built on the static library (pkg-config --static)" \
    || bad "static build: $(cat "$work/cc.log")"
ldd "$work/ex_static" | grep -q libchainz_infer && bad "the static example loads libchainz_infer.so" \
    || ok "the static example does not load libchainz_infer.so"

# rows of a chainz-data file as CSV, and its labels
to_csv() { "$py" -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r') as f:
    x = f['features'][:]
    y = f['labels'][:]
open(sys.argv[2], 'w').write(''.join(','.join(repr(float(v)) for v in r) + '\n' for r in x))
open(sys.argv[3], 'w').write(''.join('%d\n' % v for v in y))
" "$1" "$2" "$3"; }

check() { # check NAME MAKE_DATA_ARGS LAYERS
    local name=$1 args=$2 layers=$3
    "$build/make_data" "$work/$name.h5" $args --seed 3 >/dev/null || { bad "$name: make_data"; return; }
    "$chainz" train --data "$work/$name.h5" --out "$work/$name-run" --layers "$layers" --epochs 15 --batch 32 \
        --micro-batch 16 >"$work/$name-train.log" 2>&1 || { bad "$name: train: $(tail -3 "$work/$name-train.log")"; return; }
    to_csv "$work/$name.h5" "$work/$name.csv" "$work/$name.y" || { bad "$name: csv"; return; }
    "$work/ex_shared" "$work/$name-run" "$work/$name.csv" >"$work/$name-shared.out" 2>"$work/err.txt" \
        || { bad "$name: shared example: $(cat "$work/err.txt")"; return; }
    "$work/ex_static" "$work/$name-run" "$work/$name.csv" >"$work/$name-static.out" 2>"$work/err.txt" \
        || { bad "$name: static example: $(cat "$work/err.txt")"; return; }
    cmp -s "$work/$name-shared.out" "$work/$name-static.out" && ok "$name: static and shared print the same" \
        || bad "$name: static and shared differ"
    local n right acc
    n=$(wc -l <"$work/$name.y")
    [ "$(wc -l <"$work/$name-shared.out")" -eq "$n" ] || bad "$name: $n rows in, $(wc -l <"$work/$name-shared.out") out"
    right=$(paste -d' ' "$work/$name-shared.out" "$work/$name.y" | awk '$3 == $NF {c++} END {print c + 0}')
    "$chainz" eval --model "$work/$name-run" --data "$work/$name.h5" --json "$work/$name.json" >/dev/null 2>&1 \
        || { bad "$name: eval"; return; }
    acc=$("$py" -c "import json,sys; print(round(json.load(open(sys.argv[1]))['acc'] * $n))" "$work/$name.json")
    [ "$right" -eq "$acc" ] && ok "$name: $right of $n right, as chainz eval counts" \
        || bad "$name: the example gets $right of $n right, chainz eval $acc"
    local classes
    classes=$(awk '{print $3}' "$work/$name-shared.out" | sort -u | wc -l)
    [ "$classes" -ge 2 ] && ok "$name: $classes distinct classes predicted" || bad "$name: one class predicted for all rows"
    # input_norm may be 0 for a sample the model is certain of (the loss's gradient vanishes)
    awk '$7 < 0 || $9 <= 0 {bad = 1} $7 > 0 {pos++} END {exit bad || pos < NR / 2}' "$work/$name-shared.out" \
        && ok "$name: layer norms positive, input norms >= 0 (most > 0)" \
        || bad "$name: a zero or missing norm: $(head -2 "$work/$name-shared.out")"
}
check exact "--n 150 --d 6 --classes 3" 12,8     # n_1 = 12 > d: exact stream
check gram "--n 150 --d 20 --classes 4" 6,8      # n_1 = 6 < d: Gram stream
check ordinal "--n 150 --d 5 --classes 4 --task ordinal" 8
# trained without --head: config.json (and the checkpoints' config) name the head it trained
grep -q '"head": "ordinal"' "$work/ordinal-run/config.json" && ok "config.json records the data's head, ordinal" \
    || bad "config.json: $(grep -o '"head": "[a-z]*"' "$work/ordinal-run/config.json")"

# errors: a bad row, a missing model
printf '1,2,x,4,5\n' >"$work/bad.csv"
"$work/ex_shared" "$work/ordinal-run" "$work/bad.csv" >/dev/null 2>"$work/err.txt"
[ $? -eq 1 ] && grep -q "line 1" "$work/err.txt" && ok "bad row: $(cat "$work/err.txt")" || bad "bad row: $(cat "$work/err.txt")"
# a row with one number too many (a label column left in): refused, not read as its first d
printf '1,2,3,4,5\n1,2,3,4,5,6\n' >"$work/wide.csv"
"$work/ex_shared" "$work/ordinal-run" "$work/wide.csv" >/dev/null 2>"$work/err.txt"
[ $? -eq 1 ] && grep -q "line 2: expected 5 numbers" "$work/err.txt" && ok "a row of d+1 numbers: $(cat "$work/err.txt")" \
    || bad "a row of d+1 numbers: $(cat "$work/err.txt")"
"$work/ex_shared" "$work/nothing" "$work/bad.csv" >/dev/null 2>"$work/err.txt"
[ $? -eq 1 ] && grep -q "nothing" "$work/err.txt" && ok "missing model: $(cat "$work/err.txt")" \
    || bad "missing model: $(cat "$work/err.txt")"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"

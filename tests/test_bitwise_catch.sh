#!/usr/bin/env bash
# ctest bitwise_tests_catch_one_ulp: the comparison every bitwise test uses
# (tests/lib/bitwise.sh, tests/h5bytes) tells a checkpoint from the same checkpoint with ONE
# ulp changed in one number, wherever that number lives: a /model parameter, the input
# standardization, an optimizer moment, the saved RNG and epoch sums, a partial tau
# histogram; and metrics.h5 histograms/history and history.jsonl by one unit in the last
# place. It also shows what it must NOT see (the wall-clock columns) and that an unreadable
# file is an error, never "equal".
# Usage: test_bitwise_catch.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
unset CHAINZ_TEST_ULP_FLIP
# shellcheck source=lib/bitwise.sh
. "$src/tests/lib/bitwise.sh"
bw_init "$build" || exit 1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$build/make_data" "$work/train.h5" --n 300 --d 7 --classes 4 --seed 3 >/dev/null || exit 1
timeout 60 mpirun -np 1 --bind-to none "$build/chainz" train --data "$work/train.h5" --holdout 0.2 --layers 12,10 \
    --act poly --epochs 2 --batch 64 --micro-batch 16 --seed 7 --out "$work/a" >"$work/a.log" 2>&1 \
    || { bad "training the fixture run failed"; tail -5 "$work/a.log"; exit 1; }
cp -a "$work/a" "$work/b"
ck=$(bw_final_ckpt "$work/a")
cb=$(bw_final_ckpt "$work/b")

bw_same_run "$work/a" "$work/b"; rc=$?
[ $rc -eq 0 ] && ok "a copy of a run compares equal (checkpoint, metrics.h5, history.jsonl)" || bad "copy compares $rc"

# one ulp (floats) or +1 (integers) in a copy of the checkpoint, object by object
for ds in /model/layer_1/weight /model/layer_2/poly /model/output/bias /model/input/mean /model/input/std \
          /optimizer/m/layer_1/weight /optimizer/v/output/weight /state/rng /state/epoch_sums \
          /state/tau_param_grad/counts; do
    cp "$ck" "$work/flip.h5"
    msg=$("$build/ulp_flip" "$work/flip.h5" "$ds" 2>&1) || { bad "ulp_flip $ds: $msg"; continue; }
    bw_same_ckpt "$ck" "$work/flip.h5" 2>"$work/why"; rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$ds " "$work/why"; then
        ok "one ulp in $ds is reported: ${msg#*]: }"
    else
        bad "one ulp in $ds: bw_same_ckpt returned $rc"; cat "$work/why"
    fi
done
# what the old comparison (h5dump -g /model text, 6 digits) made of the same change
cp "$ck" "$work/flip.h5"
"$build/ulp_flip" "$work/flip.h5" /model/layer_1/weight >/dev/null
if cmp -s <(h5dump -g /model "$ck" | grep -v '^HDF5') <(h5dump -g /model "$work/flip.h5" | grep -v '^HDF5'); then
    echo "# the former h5dump-text comparison calls this one-ulp change equal"
fi

# metrics.h5: histograms and history columns as bytes; the wall-clock column is ignored
for ds in /tau/param_grad/counts /tau/input_grad/max /history/train_loss /history/val_acc; do
    cp "$work/a/metrics.h5" "$work/b/metrics.h5"
    "$build/ulp_flip" "$work/b/metrics.h5" "$ds" 2 >/dev/null 2>&1 || "$build/ulp_flip" "$work/b/metrics.h5" "$ds" >/dev/null \
        || { bad "ulp_flip metrics $ds"; continue; }
    bw_same_run "$work/a" "$work/b" metrics 2>/dev/null; rc=$?
    [ $rc -eq 1 ] && ok "one ulp in metrics.h5 $ds is reported" || bad "metrics.h5 $ds: returned $rc"
done
cp "$work/a/metrics.h5" "$work/b/metrics.h5"
"$build/ulp_flip" "$work/b/metrics.h5" /history/seconds >/dev/null
bw_same_run "$work/a" "$work/b" metrics; rc=$?
[ $rc -eq 0 ] && ok "metrics.h5 /history/seconds (wall clock) is not compared" || bad "seconds column compared ($rc)"
cp "$work/a/metrics.h5" "$work/b/metrics.h5"

# history.jsonl: the last printed digit of a loss; the seconds field is not compared
python3 - "$work/a/history.jsonl" "$work/b/history.jsonl" <<'PY' || bad "python edit of history.jsonl"
import re, sys
lines = open(sys.argv[1]).read().splitlines(True)
def bump(m):
    s = m.group(2)
    d = (int(s[-1]) + 1) % 10
    return m.group(1) + s[:-1] + str(d)
lines[0] = re.sub(r'("train_loss": )([0-9.e+-]+)', bump, lines[0], count=1)
open(sys.argv[2], "w").write("".join(lines))
PY
bw_same_run "$work/a" "$work/b" history 2>/dev/null; rc=$?
[ $rc -eq 1 ] && ok "the last digit of train_loss in history.jsonl is reported" || bad "history.jsonl edit: returned $rc"
sed -E 's/"seconds": [0-9.]+/"seconds": 987.654/' "$work/a/history.jsonl" >"$work/b/history.jsonl"
bw_same_run "$work/a" "$work/b" history; rc=$?
[ $rc -eq 0 ] && ok "history.jsonl \"seconds\" (wall clock) is not compared" || bad "seconds field compared ($rc)"
cp "$work/a/history.jsonl" "$work/b/history.jsonl"

# the hook the scripts use for the by-hand proof (docs/RELIABILITY.md section B)
CHAINZ_TEST_ULP_FLIP=/model/layer_1/weight bw_same_run "$work/a" "$work/b" 2>/dev/null; rc=$?
[ $rc -eq 1 ] && ok "CHAINZ_TEST_ULP_FLIP=/model/layer_1/weight makes a run differ from its own copy" || bad "ULP hook: $rc"

# unreadable is an error, never equal
rm -f "$cb"
bw_same_run "$work/a" "$work/b" ckpt 2>/dev/null; rc=$?
[ $rc -eq 2 ] && ok "a missing checkpoint is an error (2), not equal" || bad "missing checkpoint: returned $rc"
"$build/h5bytes" "$ck" /model/no_such >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "h5bytes on a missing object exits 2" || bad "h5bytes missing object: $rc"

echo "bitwise_tests_catch_one_ulp: $fails failure(s)"
[ "$fails" -eq 0 ]

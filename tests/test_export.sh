#!/usr/bin/env bash
# `chainz export --onnx` end to end (no mpirun):
#  - tiny models of each head and every activation (classify poly,relu,gelu with clip_z 1;
#    ordinal tanh,poly; regress gelu,identity without standardization), exported at opsets
#    13, 15 and 17, pass tests/onnx_check.py: onnx.checker (full), strict shape inference,
#    the graph contract, a numpy evaluation of the graph against a float64 forward of the
#    checkpoint (1e-5 relative) and against chainz eval's confusion / accuracy / MAE, and
#    mutated graphs that the comparison must reject;
#  - a run directory and a checkpoint file give the same bytes; the export is deterministic;
#  - errors: --onnx the checkpoint (left intact), an existing HDF5 file, FIFO, link or device
#    (left as they were), a directory, a missing directory, a bad
#    opset, a corrupt checkpoint (an existing output left intact), no temporary files.
# Needs Debian's python3-onnx: installed through launch/setup-debian.sh when missing (as
# root); still missing is a failure, not a skip.
# Usage: test_export.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
src=$(cd "$(dirname "$0")/.." && pwd)

if ! "$py" -c "import onnx, h5py, numpy" 2>/dev/null; then
    [ "$(id -u)" -eq 0 ] && bash "$src/launch/setup-debian.sh" >&2
    "$py" -c "import onnx, h5py, numpy" || { echo "FAIL: python3-onnx (with h5py, numpy) is not installed"; exit 1; }
fi

# ---- three heads, five activations, three opsets ----
# name task classes layers acts opset extra-train-options
cases=(
    "cls classify 3 10,8,6 poly,relu,gelu 13 --clip-z 1"
    "ord ordinal 4 8,6 tanh,poly 15 --lr 0.01"
    "reg regress 0 8,5 gelu,identity 17 --no-standardize"
)
for c in "${cases[@]}"; do
    read -r name task K layers acts opset extra <<<"$c"
    kopt=()
    [ "$K" -gt 0 ] && kopt=(--classes "$K")
    "$build/make_data" "$work/$name.h5" --n 257 --d 7 --task "$task" "${kopt[@]}" --seed 3 >/dev/null || exit 1
    # shellcheck disable=SC2086 # extra holds options
    if ! "$chainz" train --data "$work/$name.h5" --out "$work/run-$name" --layers "$layers" --act "$acts" \
        --epochs 3 --batch 32 $extra >"$work/train-$name.log" 2>&1; then
        bad "$name: train: $(tail -3 "$work/train-$name.log")"
        continue
    fi
    ckpt="$work/run-$name/checkpoints/$(cat "$work/run-$name/checkpoints/latest")"
    if "$chainz" export --model "$work/run-$name" --onnx "$work/$name.onnx" --opset "$opset" >"$work/exp-$name.log" 2>&1; then
        ok "$name: $(cat "$work/exp-$name.log")"
    else
        bad "$name: export: $(cat "$work/exp-$name.log")"
        continue
    fi
    "$chainz" eval --model "$ckpt" --data "$work/$name.h5" --json "$work/eval-$name.json" >/dev/null 2>&1 ||
        bad "$name: chainz eval failed"
    if "$py" "$src/tests/onnx_check.py" "$work/$name.onnx" "$ckpt" "$work/$name.h5" "$work/eval-$name.json" \
        "$opset" >"$work/check-$name.log" 2>&1; then
        ok "$name ($task, $acts, opset $opset): $(grep -c '^ok' "$work/check-$name.log") checks of onnx_check.py pass"
        sed 's/^/    /' "$work/check-$name.log"
    else
        bad "$name: onnx_check.py: $(grep -v '^ok' "$work/check-$name.log")"
    fi
done
grep -q "mutant 'clip bounds doubled' is caught" "$work/check-cls.log" && grep -q "mutant 'poly coefficients reversed' is caught" "$work/check-ord.log" &&
    grep -q "mutant 'erf replaced by tanh in GELU' is caught" "$work/check-reg.log" &&
    ok "the clip, poly and GELU mutants were tried and caught" || bad "a mutant was not tried: $(grep -h mutant "$work"/check-*.log)"

# ---- the checkpoint file gives the same bytes as its run directory; deterministic ----
ckpt="$work/run-cls/checkpoints/$(cat "$work/run-cls/checkpoints/latest")"
"$chainz" export --model "$ckpt" --onnx "$work/again.onnx" >/dev/null 2>&1 && cmp -s "$work/cls.onnx" "$work/again.onnx" &&
    ok "export of the checkpoint file = export of the run directory (same bytes)" || bad "exports differ"

# ---- errors ----
cp "$ckpt" "$work/ckpt-copy.h5"
expect_status 1 "is the checkpoint" "--onnx the checkpoint" -- "$chainz" export --model "$ckpt" --onnx "$ckpt"
cmp -s "$ckpt" "$work/ckpt-copy.h5" && ok "the checkpoint is unchanged" || bad "the checkpoint was modified"
expect_status 1 "is the checkpoint" "--onnx the run's checkpoint given as a run directory" -- \
    "$chainz" export --model "$work/run-cls" --onnx "$ckpt"
# the rename would replace a device (--onnx /dev/null as root), a FIFO or a link itself
mkfifo "$work/fifo.onnx"
echo important >"$work/target.txt"
ln -s target.txt "$work/link.onnx"
expect_status 1 "a FIFO" "--onnx an existing FIFO" -- "$chainz" export --model "$ckpt" --onnx "$work/fifo.onnx"
expect_status 1 "a symbolic link" "--onnx an existing symbolic link" -- "$chainz" export --model "$ckpt" --onnx "$work/link.onnx"
if [ "$(id -u)" -eq 0 ] && mknod "$work/null.onnx" c 1 3 2>/dev/null; then # /dev/null's numbers
    expect_status 1 "a device" "--onnx a device (a copy of /dev/null)" -- "$chainz" export --model "$ckpt" --onnx "$work/null.onnx"
    [ -c "$work/null.onnx" ] && ok "the device is still a device" || bad "the device was replaced: $(ls -l "$work/null.onnx")"
fi
[ -p "$work/fifo.onnx" ] && [ -L "$work/link.onnx" ] && [ "$(cat "$work/target.txt")" = important ] &&
    ok "the FIFO, the link and its target are unchanged" || bad "the FIFO or link was replaced: $(ls -l "$work"/*.onnx)"
# the arguments swapped by mistake: --onnx naming an existing HDF5 file (here the data set)
cp "$work/cls.h5" "$work/data-copy.h5"
expect_status 1 "is an HDF5 file" "--onnx an existing HDF5 file (the data set)" -- \
    "$chainz" export --model "$ckpt" --onnx "$work/cls.h5"
cmp -s "$work/cls.h5" "$work/data-copy.h5" && ok "the data set is unchanged" || bad "the data set was replaced"
expect_status 1 "is a directory" "--onnx a directory" -- "$chainz" export --model "$ckpt" --onnx "$work"
expect_status 2 "No such file or directory" "--onnx in a missing directory" -- \
    "$chainz" export --model "$ckpt" --onnx "$work/nodir/m.onnx"
expect_status 1 "expected an integer in 13..17" "--opset 12" -- "$chainz" export --model "$ckpt" --onnx "$work/x.onnx" --opset 12
expect_status 1 "expected an integer in 13..17" "--opset 1x" -- "$chainz" export --model "$ckpt" --onnx "$work/x.onnx" --opset 1x
expect_status 1 "--onnx OUT.onnx is required" "no --onnx" -- "$chainz" export --model "$ckpt"
expect_status 1 "no such file" "a missing model" -- "$chainz" export --model "$work/none.h5" --onnx "$work/x.onnx"
expect_status 1 "unknown option" "an unknown option" -- "$chainz" export --model "$ckpt" --onnx "$work/x.onnx" --bogus
head -c 3000 "$ckpt" >"$work/trunc.h5"
cp "$work/cls.onnx" "$work/keep.onnx"
expect_status 1 "trunc.h5" "a truncated checkpoint" -- "$chainz" export --model "$work/trunc.h5" --onnx "$work/keep.onnx"
cmp -s "$work/cls.onnx" "$work/keep.onnx" && ok "the existing output is untouched after a failed export" ||
    bad "a failed export changed the existing output"
[ -z "$(find "$work" -name '*.tmp.*')" ] && ok "no temporary files left" || bad "temporary files: $(find "$work" -name '*.tmp.*')"
"$chainz" export --help | grep -q "logits \[batch, K\]" && ok "export --help describes the outputs" || bad "export --help"

[ "$fails" -eq 0 ] && echo "test_export: all passed" || echo "test_export: $fails failed"
exit $((fails > 0))

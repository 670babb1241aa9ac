#!/usr/bin/env bash
# Hostile options and input files (issue 13 section 4; docs/RELIABILITY.md): each case must
# end promptly with the documented exit status and a message that names the problem.
#  - non-finite values for every numeric option of train; strict integers for eval;
#  - sizes that overflow (d = 2^61, classes = 2^32+3 or 2^31, --layers 100000000) and
#    the per-rank memory estimate (--max-memory), whose refusal names the --dreg-probes,
#    --dreg-mode and --micro-batch that would fit;
#  - --threads beyond the cores (warning) and absurd thread counts (refused);
#  - a FIFO as --data, /features as an external link, in external raw files or a virtual
#    dataset, the data format version; the data file written over while training;
#  - float64 beyond float32's range, int64 labels beyond int32, a NaN in the validation
#    set (found before training), regression targets around 1e7 and 1e14 (the loss sums
#    and the gradients have no fixed-point range) and a diverging gradient (the message
#    names the block), --epochs/--out messages and exit codes, chainz tau on a --no-tau run.
# Usage: test_bad_inputs.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
chainz="$build/chainz"
bad_data="$build/make_bad_data"
make_data="$build/make_data"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
n_case=0

# expect NAME STATUS REGEX [--timeout S] -- COMMAND...: the command must exit with STATUS
# within S seconds (default 20) and its output must match REGEX (grep -E).
expect() {
    local name=$1 want=$2 re=$3 limit=20
    shift 3
    if [ "$1" = --timeout ]; then limit=$2; shift 2; fi
    [ "$1" = -- ] && shift
    n_case=$((n_case + 1))
    local log="$work/case-$n_case.log"
    timeout -s KILL "$limit" "$@" >"$log" 2>&1
    local got=$?
    if [ "$got" != "$want" ]; then
        echo "FAIL: $name: exit $got, expected $want"; sed 's/^/    /' "$log" | tail -4
        fails=$((fails + 1))
    elif ! grep -Eq -- "$re" "$log"; then
        echo "FAIL: $name: output does not match /$re/"; sed 's/^/    /' "$log" | tail -4
        fails=$((fails + 1))
    else
        echo "ok: $name"; grep -Em1 -- "$re" "$log" | cut -c1-400 | sed 's/^/    /'
    fi
}
# 1 or 2 ranks (arrays: timeout runs programs, not shell functions)
# one rank: a singleton (mpirun takes ~2 s to tear down after a non-zero exit)
run1=("$chainz")
run2=(mpirun -np 2 --bind-to none "$chainz")
# ctest starts this test's singletons without an orted, one at a time (CMakeLists.txt:
# OMPI_MCA_ess_singleton_isolated); a few cases keep Open MPI's default start-up, the one a
# user's `chainz train` gets
run1_default=(env -u OMPI_MCA_ess_singleton_isolated -u OMPI_MCA_pml "$chainz")

"$make_data" "$work/good.h5" --n 64 --d 4 --classes 3 --seed 1 || exit 1
"$make_data" "$work/valnan.h5" --n 40 --d 4 --classes 3 --seed 2 --nan-row 17 || exit 1
small=(--data "$work/good.h5" --layers 8 --epochs 1 --batch 32 --micro-batch 16 --no-tau)

# ---- numeric options: non-finite values are usage errors (exit 1), parsed before MPI work ----
# nan for every option; inf and -inf where they used to pass a range check written as a
# comparison (--log-seconds inf and --lr-min inf ran, --weight-decay inf failed late)
for case in holdout:nan dropout:nan dreg:nan lr:nan lr-min:nan weight-decay:nan momentum:nan beta1:nan \
            beta2:nan log-seconds:nan holdout:inf dreg:inf lr-min:inf weight-decay:inf log-seconds:inf \
            dropout:-inf log-seconds:-inf; do
    opt=${case%%:*} v=${case#*:}
    expect "train --$opt $v" 1 "--$opt: '$v' is not a finite number" -- "$chainz" train "${small[@]}" --out "$work/r-$opt$v" --"$opt" "$v"
done
expect "train --max-memory nan" 1 "--max-memory: 'nan' is not a size" -- "${run1_default[@]}" train "${small[@]}" --out "$work/r" --max-memory nan
for v in 1.5 1e3 0; do
    expect "eval --micro-batch $v" 1 "--micro-batch.*integer" -- "$chainz" eval --model "$work/none" --data "$work/good.h5" --micro-batch "$v"
    expect "eval --threads $v" 1 "--threads.*integer" -- "$chainz" eval --model "$work/none" --data "$work/good.h5" --threads "$v"
done
expect "--epochs -1 names the range it checks" 1 "--epochs: '-1' is not an integer in 1\.\." -- "$chainz" train "${small[@]}" --out "$work/r" --epochs -1
expect "--epochs 0 is refused with the same range" 1 "--epochs: '0' is not an integer in 1\.\." -- "$chainz" train "${small[@]}" --out "$work/r" --epochs 0
# lenient parsing that ran something other than what was typed
for case in "layers:5,,5:--layers '5,,5': '' is not a positive width" "layers:5,5,:'' is not a positive width" \
            "act:poly,,relu:'' is not poly" "dreg-warmup:0x10:--dreg-warmup '0x10': expected" \
            "dreg-warmup:1e308:--dreg-warmup '1e308': expected" "dreg-warmup:-1:--dreg-warmup '-1': expected" \
            "log-seconds:0:--log-seconds must be > 0" "lr-min:1:--lr-min 1 is above --lr" "kernels::--kernels '': give auto" \
            "clip-grad-norm:-1:--clip-grad-norm must be >= 0" "clip-grad-norm:nan:--clip-grad-norm: 'nan' is not a finite number" \
            "clip-z:-1:--clip-z must be 0 \\(off\\) or in \\[0.5, 1e6\\]" "clip-z:0.1:--clip-z must be 0 \\(off\\) or in" "clip-z:1e30:--clip-z must be 0 \\(off\\) or in" \
            "clip-z:inf:--clip-z: 'inf' is not a finite number" "holdout-split:strat:--holdout-split 'strat': expected stratified or random" \
            "divergence-factor:1:--divergence-factor must be 0 \\(off\\) or >= 2" "divergence-factor:-5:--divergence-factor must be 0"; do
    opt=${case%%:*} rest=${case#*:}; v=${rest%%:*} re=${rest#*:}
    expect "train --$opt '$v'" 1 "$re" -- "$chainz" train "${small[@]}" --out "$work/r-lenient" --"$opt" "$v"
done
expect "--clip-z with --no-standardize is refused" 1 "--clip-z clips z-scores, which --no-standardize turns off" -- "$chainz" train "${small[@]}" --out "$work/r-cz" --clip-z 3 --no-standardize
expect "train --tau-jacobian-fraction 1e-400 (underflows to 0, auto)" 1 "--tau-jacobian-fraction: '1e-400' is too small for a double" -- "$chainz" train "${small[@]}" --out "$work/r-uf" --tau-jacobian-fraction 1e-400
expect "train --dreg 1e-400 (underflows to 0, a baseline)" 1 "--dreg: '1e-400' is too small for a double" -- "$chainz" train "${small[@]}" --out "$work/r-uf" --dreg 1e-400
expect "train --lr 0x1p-10 (a hex float)" 1 "--lr: '0x1p-10' is not a plain decimal number" -- "$chainz" train "${small[@]}" --out "$work/r-hex" --lr 0x1p-10
expect "train --lr ' 1e-3' (a leading blank)" 1 "--lr: ' 1e-3' is not a plain decimal number" -- "$chainz" train "${small[@]}" --out "$work/r-blank" --lr " 1e-3"
long=$(printf '8,%.0s' $(seq 1 200))8
expect "a --layers value longer than its buffer is refused, not cut" 1 "--layers: the value is 401 characters long" -- \
    "$chainz" train "${small[@]}" --out "$work/r-long" --layers "$long"
touch "$work/afile"
expect "--out under a regular file is an input error" 1 "cannot create directory \(Not a directory\): .*afile" -- "${run1[@]}" train "${small[@]}" --out "$work/afile/run"

# ---- threads ----
expect "--threads 1000 refused (it hung and ignored SIGTERM)" 1 "--threads.*at most" --timeout 15 -- "${run2[@]}" train "${small[@]}" --out "$work/t1000" --threads 1000
cores=$(nproc)
if [ $((4 * cores + 1)) -le 256 ]; then
    expect "--threads above 4 x the node's cores refused" 1 "at most 4 x the $cores cores" --timeout 20 -- "${run1[@]}" train "${small[@]}" --out "$work/t4x" --threads $((4 * cores + 1))
fi
expect "ranks x threads beyond the cores: a warning" 0 "warning: .*threads.*cores" --timeout 60 -- "${run1[@]}" train "${small[@]}" --out "$work/tw" --threads $((cores + 1)) --max-steps 1

# ---- sizes ----
"$bad_data" huge-d "$work/huge-d.h5"
expect "d = 2^61 in a 2 KB file" 1 "too large|overflow" -- "${run1[@]}" train --data "$work/huge-d.h5" --out "$work/hd" --layers 8
"$bad_data" classes "$work/k1.h5" $(((1 << 32) + 3))
expect "classes = 2^32+3" 1 "classes.*4294967299" -- "${run1[@]}" train --data "$work/k1.h5" --out "$work/k1" --layers 8
"$bad_data" classes "$work/k2.h5" $((1 << 31))
expect "classes = 2^31" 1 "classes.*2147483648" -- "${run1[@]}" train --data "$work/k2.h5" --out "$work/k2" --layers 8
# ulimit -v is a safety net should the estimate not refuse; ASan builds reserve terabytes of
# address space for their shadow memory and cannot start under it
vlimit="ulimit -v 6000000;"
ldd "$chainz" 2>/dev/null | grep -q libasan && vlimit=""
expect "--layers 100000000: refused with the estimate, before allocating" 1 "memory.*estimate|estimate.*memory" --timeout 20 -- \
    bash -c "$vlimit"' exec "$@"' _ mpirun -np 1 --bind-to none "$chainz" train "${small[@]}" --out "$work/big" --layers 100000000
expect "--max-memory below the estimate" 1 "needs about .* per rank.*--max-memory" -- "${run1[@]}" train "${small[@]}" --out "$work/mm" --max-memory 1K
expect "--max-memory above the estimate trains" 0 "done" -- "${run1_default[@]}" train "${small[@]}" --out "$work/mm2" --max-memory 1G
# a refusal names the options that would fit, with their estimates (d = 300, 256,256,
# micro-batch 64: the exact stream needs 46 MB a rank, probes at K = 16 12 MB, K = 64 25 MB)
"$make_data" "$work/wide.h5" --n 200 --d 300 --classes 3 --seed 3 >/dev/null || exit 1
wide=(--data "$work/wide.h5" --layers 256,256 --dreg 0.1 --micro-batch 64 --batch 64 --epochs 1 --no-tau --max-memory 20M)
expect "--max-memory, exact mode: names --dreg-mode probe and --micro-batch that fit" 1 \
    "These would fit the limit per rank: --dreg-mode probe \(an unbiased estimate at width 16: about [0-9.]+ MB\); --micro-batch [0-9]+ \(about [0-9.]+ MB" \
    -- "${run1[@]}" train "${wide[@]}" --dreg-mode exact --out "$work/mw1"
expect "--max-memory, probe mode: names the --dreg-probes that fits" 1 \
    "These would fit the limit per rank: --dreg-probes [0-9]+ \(about [0-9.]+ MB; now 64\)" \
    -- "${run1[@]}" train "${wide[@]}" --dreg-mode probe --dreg-probes 64 --out "$work/mw2"
k=$(grep -oE -- "--dreg-probes [0-9]+ \(about" "$work/case-$n_case.log" | grep -oE "[0-9]+")
expect "--max-memory: the suggested --dreg-probes ${k:-?} trains" 0 "done" \
    -- "${run1[@]}" train "${wide[@]}" --dreg-mode probe --dreg-probes "${k:-0}" --out "$work/mw3"
expect "--max-memory: --dreg-probes $((${k:-0} + 1)) is refused" 1 "needs about" \
    -- "${run1[@]}" train "${wide[@]}" --dreg-mode probe --dreg-probes "$((${k:-0} + 1))" --out "$work/mw4"

# ---- files ----
mkfifo "$work/fifo.h5"
expect "a FIFO as --data" 1 "not a regular file" --timeout 15 -- "${run1[@]}" train --data "$work/fifo.h5" --out "$work/ff" --layers 8
"$bad_data" classes "$work/other.h5" 3
"$bad_data" extlink "$work/ext.h5" "$work/other.h5"
expect "/features as an external link" 1 "external link" -- "${run1[@]}" train --data "$work/ext.h5" --out "$work/ext" --layers 8
"$bad_data" external "$work/extraw.h5" "$work/extraw.bin"
expect "/features in a complete external raw file trains" 0 "done" -- \
    "${run1[@]}" train --data "$work/extraw.h5" --out "$work/extraw-ok" --layers 8 --epochs 1 --no-tau
truncate -s 100 "$work/extraw.bin"
expect "/features in a short external raw file (HDF5 reads zeros)" 1 "keeps values outside the file: its external raw-data file .* holds 100 bytes" -- \
    "${run1[@]}" train --data "$work/extraw.h5" --out "$work/extraw" --layers 8
"$bad_data" virtual "$work/vds.h5" "$work/missing-source.h5"
expect "/features a virtual dataset over another file (missing: fill values)" 1 "keeps values outside the file: it is a virtual dataset" -- \
    "${run1[@]}" train --data "$work/vds.h5" --out "$work/vds" --layers 8
"$bad_data" virtual-self "$work/vself.h5"
expect "/features a virtual dataset over the same file trains" 0 "done" -- \
    "${run1[@]}" train --data "$work/vself.h5" --out "$work/vself" --layers 8 --epochs 1 --no-tau
"$bad_data" labels-virtual "$work/lvds.h5" "$work/missing-labels.h5"
expect "/labels a virtual dataset over a missing file (all labels would read 0)" 1 "/labels keeps values outside the file" -- \
    "${run1[@]}" train --data "$work/lvds.h5" --out "$work/lvds" --layers 8
expect "... also as eval data" 1 "/labels keeps values outside the file" -- \
    "${run1[@]}" eval --model "$work/vself" --data "$work/lvds.h5"

# ---- the data file written over while training: chainz must stop, not train on a mix ----
# (a chunked file without compression reads HDF5's zeros past a truncation; a same-size
# rewrite pairs new rows with the labels read at start); each run is stopped by the change.
# A chunked file is now loaded once into memory (issue 15) and 3 epochs took 0.1 s, ending
# before the change: 100 epochs keep the run going (the touch case runs them all, ~4 s)
"$bad_data" chunkraw "$work/cr-keep.h5" 40000
for how in truncate rewrite rewrite-old-mtime touch; do
    cp "$work/cr-keep.h5" "$work/cr-$how.h5"
    timeout -s KILL 60 "$chainz" train --data "$work/cr-$how.h5" --out "$work/cr-$how" --layers 8 --epochs 100 \
        --batch 64 --micro-batch 32 --no-tau --log-seconds 0.2 >"$work/cr-$how.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do grep -q "epoch 1/\|step" "$work/cr-$how.log" 2>/dev/null && break; sleep 0.1; done
    case $how in
    truncate) truncate -s 300000 "$work/cr-$how.h5" ;;
    rewrite) "$bad_data" chunkraw "$work/cr-$how.h5" 40000 1 >/dev/null ;;     # same size, other values
    rewrite-old-mtime) old=$(stat -c %y "$work/cr-$how.h5")
        "$bad_data" chunkraw "$work/cr-$how.h5" 40000 1 >/dev/null; touch -d "$old" "$work/cr-$how.h5" ;;
    touch) touch "$work/cr-$how.h5" ;;                                             # same content
    esac
    wait $pid; st=$?
    n_case=$((n_case + 1))
    if [ $how = touch ]; then
        if [ $st -eq 0 ]; then echo "ok: data file touched while training (content unchanged): the run goes on"
        else echo "FAIL: data file touched while training: exit $st"; tail -3 "$work/cr-$how.log"; fails=$((fails + 1)); fi
    elif [ $st -eq 2 ] && grep -q "cr-$how.h5: the file changed while chainz was reading it" "$work/cr-$how.log"; then
        echo "ok: data file changed in place while training ($how): exit 2 naming it"
    else
        echo "FAIL: data file changed in place while training ($how): exit $st"; tail -3 "$work/cr-$how.log"; fails=$((fails + 1))
    fi
done
"$bad_data" version "$work/v2.h5" 2
expect "a newer format version" 1 "version 2.*reads version 1" -- "${run1[@]}" train --data "$work/v2.h5" --out "$work/v2" --layers 8
"$bad_data" version "$work/v0.h5" -1
expect "no version attribute" 1 "attribute version" -- "${run1[@]}" train --data "$work/v0.h5" --out "$work/v0" --layers 8
"$bad_data" f64big "$work/f64.h5"
expect "float64 1e300" 1 "is 1e\+300, out of float32 range" -- "${run1[@]}" train --data "$work/f64.h5" --out "$work/f64" --layers 8 --no-standardize
"$bad_data" label64 "$work/l64.h5"
expect "int64 label 2^32" 1 "row 7 is 4294967296" -- "${run1[@]}" train --data "$work/l64.h5" --out "$work/l64" --layers 8
expect "NaN in the validation set found before training" 1 "valnan.h5: /features row 17 column 0 is not finite" -- \
    "${run2[@]}" train "${small[@]}" --val "$work/valnan.h5" --out "$work/vn" --epochs 2
if grep -q "step" "$work/case-$n_case.log"; then echo "FAIL: the validation NaN was found after training steps"; fails=$((fails + 1)); fi

# ---- scalars and gradients in the exact reduction ----
"$bad_data" regress "$work/r7.h5" 1e7
expect "regression targets around 1e7 train (exact on 1 and 2 ranks)" 0 "done" --timeout 60 -- \
    "${run1[@]}" train --data "$work/r7.h5" --out "$work/r7a" --layers 8 --epochs 2 --batch 32 --micro-batch 8 --lr 1e-3 --no-tau
expect "regression targets around 1e7, 2 ranks" 0 "done" --timeout 60 -- \
    "${run2[@]}" train --data "$work/r7.h5" --out "$work/r7b" --layers 8 --epochs 2 --batch 32 --micro-batch 8 --lr 1e-3 --no-tau
if [ ! -s "$work/r7a/history.jsonl" ] || ! cmp -s <(sed -E 's/, "seconds": [0-9.]+//' "$work/r7a/history.jsonl") <(sed -E 's/, "seconds": [0-9.]+//' "$work/r7b/history.jsonl"); then
    echo "FAIL: the loss sums of 1 and 2 ranks differ"; fails=$((fails + 1))
else
    echo "ok: loss sums of 1 and 2 ranks are identical"
fi
# gradients of 1e13 and more: the exact reduction sums floats, it has no fixed-point range
"$bad_data" regress "$work/r14.h5" 1e14
expect "targets around 1e14 train (no range limit in the exact reduction)" 0 "done" -- \
    "${run2[@]}" train --data "$work/r14.h5" --out "$work/r14" --layers 8 --epochs 1 --batch 32 --micro-batch 8 --no-tau --no-standardize
"$bad_data" regress "$work/r37.h5" 1e37
expect "a diverging gradient names the block and the value" 2 "step 1: the summed gradient of (layer [0-9]+|output) (weight|bias|poly).* = -?(inf|nan) is not finite" -- \
    "${run1[@]}" train --data "$work/r37.h5" --out "$work/r37" --layers 8 --epochs 1 --batch 32 --no-tau --no-standardize

expect "eval: the memory estimate against --max-memory" 1 "needs about .* per rank.*--max-memory" -- \
    "${run1[@]}" eval --model "$work/r7a" --data "$work/r7.h5" --max-memory 1K

# ---- chainz tau on a --no-tau run ----
expect "chainz tau on a --no-tau run" 1 "trained with --no-tau" -- "$chainz" tau "$work/r7a"

echo "$n_case cases, $fails failed"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# Chunked, deflated inputs (issue 15): a copy of a data set written by h5py with
# chunks=True and gzip is loaded once per node into shared memory and trains to the same
# bytes as the contiguous original:
#  - 1 and 2 ranks: the final checkpoint's /model equal to the contiguous run's (h5diff
#    without tolerance, and the checksum attribute), and the validation history in
#    metrics.h5 (a chunked --val file) equal too;
#  - rank 0 logs the load once, naming the chunk shape and the filter;
#  - --val naming the --data file (by another path) loads it once: both share the copy;
#  - chainz eval on the chunked file: the same report as on the contiguous one;
#  - a memory limit too small for the matrix: refused before training, naming the file,
#    the dataset, chunk shape, filter, both sizes and the h5repack command; that command,
#    run as printed, gives a file that trains (mapped) to the same /model.
# Usage: test_chunked_input.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
command -v h5diff >/dev/null && command -v h5repack >/dev/null || { echo "SKIP: h5diff/h5repack (hdf5-tools) missing"; exit 0; }
mpi() { local np=$1; shift; timeout 120 mpirun -np "$np" "$@"; }

"$build/make_data" "$work/x.h5" --n 1200 --d 24 --classes 3 --seed 4 >/dev/null || exit 1
"$build/make_data" "$work/v.h5" --n 300 --d 24 --classes 3 --seed 5 >/dev/null || exit 1
# the natural h5py copy: chunks chosen by h5py (they split the columns too), gzip level 4
"$py" - "$work" <<'PY' || exit 1
import sys, h5py
w = sys.argv[1]
for name in ("x", "v"):
    with h5py.File(f"{w}/{name}.h5", "r") as src, h5py.File(f"{w}/{name}z.h5", "w") as dst:
        for k in ("features", "labels"):
            dst.create_dataset(k, data=src[k][:], chunks=True, compression="gzip")
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        assert dst["features"].chunks is not None and dst["features"].compression == "gzip"
PY
common=(--layers 12,8 --epochs 2 --batch 64 --micro-batch 16 --seed 3)
train() { # train NP DATA VAL OUT
    mpi "$1" "$chainz" train --data "$2" --val "$3" --out "$4" "${common[@]}" >"$4.log" 2>&1 ||
        bad "train $2 on $1 rank(s): $(tail -3 "$4.log")"
}
final() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"; }
attr() { "$py" -c "import h5py,sys; print(h5py.File(sys.argv[1],'r').attrs['checksum'])" "$1"; }
train 1 "$work/x.h5" "$work/v.h5" "$work/c1"
for np in 1 2; do
    train $np "$work/xz.h5" "$work/vz.h5" "$work/z$np"
    a=$(final "$work/c1") b=$(final "$work/z$np")
    if h5diff -q "$a" "$b" /model /model && [ -n "$(attr "$a")" ] && [ "$(attr "$a")" = "$(attr "$b")" ]; then
        ok "$np rank(s): chunked+gzip gives the contiguous run's /model bytes (checksum $(attr "$b"))"
    else
        bad "$np rank(s): /model differs from the contiguous run: $(h5diff "$a" "$b" /model /model 2>&1 | head -3)"
    fi
    h5diff -q "$work/c1/metrics.h5" "$work/z$np/metrics.h5" /history/val_loss /history/val_loss &&
        ok "$np rank(s): the chunked --val set gives the same validation losses" ||
        bad "$np rank(s): validation losses differ"
    n=$(grep -c "xz.h5: /features is chunked (chunk [0-9]*x[0-9]*, deflate level 4): loaded once per node into shared memory" "$work/z$np.log")
    m=$(grep -c "vz.h5: /features is chunked .*loaded once per node" "$work/z$np.log")
    [ "$n" = 1 ] && [ "$m" = 1 ] && ok "$np rank(s): the load logged once per file" ||
        bad "$np rank(s): load lines $n and $m, expected 1 and 1: $(grep -i chunked "$work/z$np.log")"
done
grep -q "node shared memory" "$work/z2.log" && ok "the configuration echo says where rows come from" ||
    bad "no 'node shared memory' in the echo"

# ---- --val naming the --data file (by another path): loaded once, shared by both ----
mpi 2 "$chainz" train --data "$work/xz.h5" --val "$work/../$(basename "$work")/xz.h5" --out "$work/same" \
    --layers 12,8 --epochs 1 --batch 64 --micro-batch 16 --seed 3 >"$work/same.log" 2>&1 ||
    bad "--val = --data: $(tail -3 "$work/same.log")"
mpi 2 "$chainz" train --data "$work/x.h5" --val "$work/x.h5" --out "$work/samec" \
    --layers 12,8 --epochs 1 --batch 64 --micro-batch 16 --seed 3 >"$work/samec.log" 2>&1 ||
    bad "--val = --data, contiguous: $(tail -3 "$work/samec.log")"
n=$(grep -c "loaded once per node into shared memory" "$work/same.log")
m=$(grep -c "xz.h5: /features is chunked .*: the same file as the one loaded above: its shared copy serves both" "$work/same.log")
if [ "$n" = 1 ] && [ "$m" = 1 ] && h5diff -q "$work/same/metrics.h5" "$work/samec/metrics.h5" /history/val_loss /history/val_loss; then
    ok "--val = --data (chunked): loaded once, shared by both, the contiguous run's validation losses"
else
    bad "--val = --data: $n load(s), $m shared line(s), or validation losses differ: $(grep -i chunked "$work/same.log")"
fi

# ---- eval on the chunked file (the same path) ----
for f in x xz; do
    mpi 2 "$chainz" eval --model "$work/c1" --data "$work/$f.h5" --micro-batch 16 >"$work/e$f.log" 2>&1 ||
        bad "eval $f: $(tail -2 "$work/e$f.log")"
done
grep -q "xz.h5: /features is chunked .*loaded once per node" "$work/exz.log" &&
    diff <(grep -A20 '^loss' "$work/ex.log") <(grep -A20 '^loss' "$work/exz.log") >/dev/null &&
    ok "eval: loaded once per node, the same loss, accuracy and confusion" ||
    bad "eval on the chunked file: $(grep -i 'chunked\|^loss' "$work/ex.log" "$work/exz.log")"

# ---- too large for the memory limit: refused, with the command that fixes it ----
# a 6000 x 50 matrix (1.2 MB): the run's own estimate fits 700K per rank, the run on 2
# ranks plus the matrix does not fit 2 x 700K
"$build/make_data" "$work/big.h5" --n 6000 --d 50 --classes 3 --seed 6 >/dev/null || exit 1
"$py" -c "
import sys, h5py
with h5py.File(sys.argv[1], 'r') as s, h5py.File(sys.argv[2], 'w') as d:
    d.create_dataset('features', data=s['features'][:], chunks=(100, 50), compression='gzip')
    d.create_dataset('labels', data=s['labels'][:], chunks=(1000,), compression='gzip')
    for k, v in s.attrs.items(): d.attrs[k] = v
" "$work/big.h5" "$work/bigz.h5" || exit 1
small=(--layers 8 --epochs 1 --batch 64 --micro-batch 16 --no-tau --max-steps 5)
mpi 2 "$chainz" train --data "$work/bigz.h5" --out "$work/refused" "${small[@]}" --max-memory 700K \
    >"$work/ref.out" 2>"$work/ref.err"
st=$?
msg=$(cat "$work/ref.err")
if [ $st -ne 0 ] && [ ! -e "$work/refused" ] &&
    grep -qF "$work/bigz.h5: /features is chunked (chunk 100x50, deflate level 4)" <<<"$msg" &&
    grep -qE "it needs [0-9.]+ [KM]B per node \(2 ranks x [0-9.]+ KB for the run \+ 1.2 MB for /features\) but 1.4 MB is available" <<<"$msg" &&
    grep -qF "h5repack -l /features:CONTI $work/bigz.h5 $work/bigz-contiguous.h5" <<<"$msg"; then
    ok "refused before training: $(head -c 600 <<<"$msg")"
else
    bad "expected the refusal, status $st: $msg"
fi
# the command exactly as printed makes a file that trains, mapped, to the same bytes
cmd=$(grep -oE "h5repack -l /features:CONTI [^ ]+ [^ ]+" <<<"$msg")
if [ -n "$cmd" ] && $cmd && mpi 2 "$chainz" train --data "$work/bigz-contiguous.h5" --out "$work/rp" "${small[@]}" \
    --max-memory 700K >"$work/rp.log" 2>&1 && grep -q "shared mapping" "$work/rp.log" &&
    mpi 2 "$chainz" train --data "$work/big.h5" --out "$work/rb" "${small[@]}" >"$work/rb.log" 2>&1 &&
    h5diff -q "$(final "$work/rp")" "$(final "$work/rb")" /model /model; then
    ok "'$cmd' gives a mapped file within the limit, and the original's /model"
else
    bad "the printed command: '$cmd': $(tail -3 "$work/rp.log")"
fi
# without the limit it loads (in two bands of chunk rows, 5300 + 700) to the same bytes
if mpi 2 "$chainz" train --data "$work/bigz.h5" --out "$work/rz" "${small[@]}" >"$work/rz.log" 2>&1 &&
    grep -q "bigz.h5: /features is chunked (chunk 100x50, deflate level 4): loaded once" "$work/rz.log" &&
    h5diff -q "$(final "$work/rz")" "$(final "$work/rb")" /model /model; then
    ok "bigz.h5 without the limit: loaded, the contiguous original's /model"
else
    bad "bigz.h5 loaded: $(tail -3 "$work/rz.log")"
fi
# labels behind a filter this HDF5 lacks (h5py's lzf): an input error (status 1) naming the
# filter, not a bare "cannot read /labels" with status 2
"$py" - "$work" <<'PY' || exit 1
import sys, h5py
w = sys.argv[1]
with h5py.File(f"{w}/x.h5", "r") as src, h5py.File(f"{w}/xlzf.h5", "w") as dst:
    dst.create_dataset("features", data=src["features"][:])
    dst.create_dataset("labels", data=src["labels"][:], chunks=True, compression="lzf")
    for k, v in src.attrs.items():
        dst.attrs[k] = v
PY
st=0; mpi 1 "$chainz" train --data "$work/xlzf.h5" --out "$work/rl" "${small[@]}" >"$work/rl.log" 2>&1 || st=$?
if [ $st -eq 1 ] && grep -q "xlzf.h5: cannot read /labels (chunked, lzf (id 32000, not available to this HDF5))" "$work/rl.log"; then
    ok "lzf labels: refused as an input error naming the filter"
else
    bad "lzf labels: status $st, $(grep -m1 error "$work/rl.log")"
fi
[ $fails -eq 0 ] && echo "test_chunked_input: all passed" || echo "test_chunked_input: $fails failed"
exit $((fails > 0))

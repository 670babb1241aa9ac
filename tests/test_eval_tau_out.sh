#!/usr/bin/env bash
# `chainz eval --tau-out NORMS.h5` end to end (the per-sample norms behind eval's tau):
#  - 1, 2 and 3 ranks write the same file: whole-file cmp and every dataset's and
#    attribute's stored bytes (build/h5bytes);
#  - the raw norms against eval's JSON: count, mean and max (to the JSON's 9 digits),
#    p99 (the same order statistic as the histogram's, nearest rank, ceil(0.99 N) - 1) within the
#    histogram's bin resolution alpha = 1 %, and so tau;
#  - rows in file order and labels: /row = 0..N-1, /label = the data file's labels;
#  - row placement: a copy of the data file with its rows permuted gives, at each row, the
#    norms of the original row it holds (an off-by-one or a swap in the gather fails here,
#    as a permutation leaves every mean, p99 and rank comparison unchanged);
#  - a regression set (float32 /label), the attributes, errors: a directory, a missing
#    directory, the data file itself; an existing file replaced only when the new one is
#    complete; no temporary files.
# Usage: test_eval_tau_out.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
mpi() { local np=$1; shift; timeout 120 mpirun -np "$np" "$@"; }
# ---- a small CR model (2 hidden layers) and its data ----
"$build/make_data" "$work/x.h5" --n 301 --d 6 --classes 3 --seed 2 >/dev/null || exit 1
"$chainz" train --data "$work/x.h5" --out "$work/run" --layers 12,8 --epochs 2 --batch 32 \
    --micro-batch 8 >"$work/train.log" 2>&1 || { echo "FAIL: train: $(tail -3 "$work/train.log")"; exit 1; }

# ---- 1, 2, 3 ranks (micro-batch 16: 19 chunks, uneven shares) ----
for np in 1 2 3; do
    if mpi $np "$chainz" eval --model "$work/run" --data "$work/x.h5" --micro-batch 16 \
        --tau-out "$work/n$np.h5" --json "$work/e$np.json" >"$work/eval$np.log" 2>&1; then
        ok "eval --tau-out on $np rank(s)"
    else
        bad "eval on $np rank(s): $(tail -3 "$work/eval$np.log")"
    fi
done
grep -q "per-sample norms: $work/n1.h5 (301 samples" "$work/eval1.log" && ok "eval names the norms file" ||
    bad "eval's report lacks the norms line: $(cat "$work/eval1.log")"
for np in 2 3; do
    if "$build/h5bytes" "$work/n1.h5" >"$work/b1.txt" && "$build/h5bytes" "$work/n$np.h5" >"$work/b$np.txt" &&
        [ "$(grep -c '^/norms/[^@ ]* float/8 \[301\]' "$work/b1.txt")" -eq 4 ] && cmp -s "$work/b1.txt" "$work/b$np.txt"; then
        ok "1 vs $np ranks: the same bytes in every dataset and attribute ($(wc -l <"$work/b1.txt") objects)"
    else
        bad "1 vs $np ranks differ: $(diff "$work/b1.txt" "$work/b$np.txt" | head -4)"
    fi
    cmp -s "$work/n1.h5" "$work/n$np.h5" && ok "1 vs $np ranks: identical files" || bad "1 vs $np ranks: files differ"
done

# ---- the raw norms against eval's own figures ----
cat >"$work/check.py" <<'PY'
import json, math, sys
import h5py, numpy as np
norms, data, js = sys.argv[1], sys.argv[2], sys.argv[3]
fails = 0
def check(cond, what):
    global fails
    print(("ok: " if cond else "FAIL: ") + what)
    fails += 0 if cond else 1
with h5py.File(norms, "r") as f, h5py.File(data, "r") as d:
    rep = json.load(open(js))
    N = rep["samples"]
    A = dict(f.attrs)
    s = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    check(s(A["format"]) == "chainz-norms" and int(A["version"]) == 1 and int(A["samples"]) == N,
          "format chainz-norms version 1, samples %d" % N)
    check(s(A["checkpoint"]).endswith(".h5") and "checkpoints/ckpt-" in s(A["checkpoint"])
          and s(A["data"]) == data, "attributes name the checkpoint and the data file")
    fams = s(A["families"]).split(",")
    check(sorted(fams) == sorted(rep["tau"].keys()), "families %s = eval's tau families" % fams)
    check(f["row"].dtype == np.uint64 and np.array_equal(f["row"][...], np.arange(N)),
          "/row uint64 = 0..N-1 (file order)")
    check(np.array_equal(f["label"][...], d["labels"][...].astype(f["label"].dtype)),
          "/label = the data file's labels (%s)" % f["label"].dtype)
    alpha = 0.01
    for fam in fams:
        x = f["norms/" + fam][...]
        t = rep["tau"][fam]
        check(x.dtype == np.float64 and x.shape == (N,) and len(s(f["norms/" + fam].attrs["meaning"])) > 20,
              "%s: float64 [N] with a meaning" % fam)
        check(t["count"] == N and np.all(np.isfinite(x)) and np.all(x > 0), "%s: %d finite positive norms" % (fam, N))
        mean = math.fsum(x) / N
        # eval's JSON has 9 significant digits
        check(abs(mean - t["mean"]) <= 1e-8 * mean, "%s: mean %.12g = eval's %.12g" % (fam, mean, t["mean"]))
        check(abs(x.max() - t["max"]) <= 1e-8 * t["max"], "%s: max %.12g = eval's %.12g" % (fam, x.max(), t["max"]))
        p99 = np.sort(x)[max(int(math.ceil(0.99 * N)) - 1, 0)]
        check(abs(t["p99"] - p99) <= alpha * p99 * (1 + 1e-9),
              "%s: p99 of the raw norms %.6g, eval's %.6g (within %g %%)" % (fam, p99, t["p99"], 100 * alpha))
        tau = p99 / mean
        check(abs(t["tau"] - tau) <= (alpha + 1e-6) * tau,
              "%s: tau from the raw norms %.5f, eval's %.5f" % (fam, tau, t["tau"]))
sys.exit(1 if fails else 0)
PY
"$py" "$work/check.py" "$work/n2.h5" "$work/x.h5" "$work/e2.json" || fails=$((fails + 1))

# ---- rows permuted: each row carries its own sample's norms ----
cat >"$work/perm.py" <<'PY'
import shutil, sys
import h5py, numpy as np
src, dst = sys.argv[1], sys.argv[2]
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    n = f["labels"].shape[0]
    perm = np.random.default_rng(7).permutation(n)
    f["features"][...] = f["features"][...][perm]
    f["labels"][...] = f["labels"][...][perm]
    f.create_dataset("perm", data=perm)
PY
cat >"$work/permcheck.py" <<'PY'
import sys
import h5py, numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b, h5py.File(sys.argv[3], "r") as d:
    perm = d["perm"][...]
    bad = 0
    fams = a.attrs["families"]
    for fam in (fams.decode() if isinstance(fams, bytes) else fams).split(","):
        x, y = a["norms/" + fam][...], b["norms/" + fam][...]
        err = np.max(np.abs(y - x[perm]) / x[perm])
        print("%s %s: row i of the permuted file has the norms of original row perm[i] (max rel diff %.2g)"
              % ("ok:" if err < 1e-5 else "FAIL:", fam, err))
        bad += err >= 1e-5
    ok = np.array_equal(b["label"][...], a["label"][...][perm])
    print(("ok:" if ok else "FAIL:") + " labels follow the permutation")
    sys.exit(1 if bad or not ok else 0)
PY
if "$py" "$work/perm.py" "$work/x.h5" "$work/xp.h5" &&
    mpi 3 "$chainz" eval --model "$work/run" --data "$work/xp.h5" --micro-batch 16 --tau-out "$work/np.h5" >"$work/evp.log" 2>&1; then
    "$py" "$work/permcheck.py" "$work/n1.h5" "$work/np.h5" "$work/xp.h5" || fails=$((fails + 1))
else
    bad "eval on the permuted file: $(tail -3 "$work/evp.log")"
fi

# ---- regression: float32 labels ----
"$build/make_data" "$work/r.h5" --n 50 --d 4 --task regress >/dev/null &&
    "$chainz" train --data "$work/r.h5" --out "$work/rrun" --layers 6 --epochs 1 --batch 16 >/dev/null 2>&1 &&
    "$chainz" eval --model "$work/rrun" --data "$work/r.h5" --tau-out "$work/rn.h5" >/dev/null 2>&1 &&
    "$py" -c 'import h5py,sys,numpy as np; f=h5py.File(sys.argv[1]); d=h5py.File(sys.argv[2])
sys.exit(not (f["label"].dtype == np.float32 and np.array_equal(f["label"][...], d["labels"][...].astype(np.float32))
              and f["norms/jacobian/layer_1"].shape == (50,) and "jacobian/layer_2" not in f["norms/jacobian"]))' \
        "$work/rn.h5" "$work/r.h5" && ok "regression set: float32 /label, one jacobian layer" || bad "regression --tau-out"

# ---- errors and atomic replacement ----
mkdir -p "$work/adir"
expect_status 1 "is a directory" "--tau-out a directory" -- "$chainz" eval --model "$work/run" --data "$work/x.h5" --tau-out "$work/adir"
expect_status 1 "directory $work/nodir does not exist" "--tau-out in a missing directory" -- \
    "$chainz" eval --model "$work/run" --data "$work/x.h5" --tau-out "$work/nodir/n.h5"
expect_status 1 "is the data file: refused" "--tau-out the data file" -- \
    "$chainz" eval --model "$work/run" --data "$work/x.h5" --tau-out "$work/x.h5"
expect_status 1 "are the same file: give two names" "--json and --tau-out one file" -- \
    "$chainz" eval --model "$work/run" --data "$work/x.h5" --tau-out "$work/same.x" --json "$work/same.x"
expect_status 1 "--json $work/x.h5 is the data file: refused" "--json the data file" -- \
    "$chainz" eval --model "$work/run" --data "$work/x.h5" --json "$work/x.h5"
echo "previous" >"$work/old.h5"
expect_status 1 "features but the model" "a failing eval" -- \
    "$chainz" eval --model "$work/run" --data "$work/r.h5" --tau-out "$work/old.h5"
[ "$(cat "$work/old.h5")" = previous ] && ok "a failed eval leaves the existing file as it was" || bad "old file changed"
"$chainz" eval --model "$work/run" --data "$work/x.h5" --micro-batch 16 --tau-out "$work/old.h5" >/dev/null 2>&1 &&
    cmp -s "$work/old.h5" "$work/n1.h5" && ok "a complete eval replaces it" || bad "existing file not replaced"
leftover=$(ls "$work" | grep '\.tmp\.')
[ -z "$leftover" ] && ok "no temporary files left" || bad "temporary files left: $leftover"

echo "test_eval_tau_out: $fails failure(s)"
[ "$fails" -eq 0 ]

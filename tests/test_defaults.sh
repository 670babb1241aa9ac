#!/usr/bin/env bash
# CR trains stably with the defaults on real data (issue 14, section 1): small versions of
# Pima Diabetes and weka's ReutersCorn (Debian's weka examples, launch/weka-examples.sh),
# Fashion-MNIST (Debian's dataset-fashion-mnist) and the Yelp-format corpus of
# bench/gen_yelp.c with the ordinal head, 2 ranks each, default options (fewer epochs).
# Each must end without a divergence warning and learn something. And the run from the
# issue (Fashion-MNIST, 10,000 rows, --layers 64,64 --dreg 0.001 --lr 3e-3, standardization
# on) trains; without --clip-z it diverges and the divergence is explained (term, layer,
# step); eval applies the clipping the checkpoint records.
# Usage: test_defaults.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
chainz="$build/chainz"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
run2() { timeout 600 mpirun -np 2 --bind-to none "$chainz" "$@"; }
# the last epoch's field of history.jsonl
last() { tail -1 "$1/history.jsonl" | sed -nE "s/.*\"$2\": ([-0-9.e+]+).*/\1/p"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
cd "$work" || exit 1

# trained: exit 0, no divergence warning, the last epoch's FIELD at least MIN (RUN = NAME)
trained() { # trained RUN LOG STATUS FIELD MIN [max]
    local v; v=$(last "$1" "$4")
    if [ "$3" != 0 ]; then bad "$1: exit $3"; tail -3 "$2"; return; fi
    if grep -q "warning: step" "$2"; then bad "$1: a divergence warning"; grep "warning: step" "$2" | head -2; return; fi
    if [ "${6:-}" = max ]; then
        ge "$5" "$v" && ok "$1: defaults train, last epoch $4 = $v (at most $5), no divergence warning" ||
            bad "$1: $4 = $v, want at most $5"
    else
        ge "$v" "$5" && ok "$1: defaults train, last epoch $4 = $v (at least $5), no divergence warning" ||
            bad "$1: $4 = $v, want at least $5"
    fi
}

weka=$(bash "$top/launch/weka-examples.sh" "$work/weka") || { bad "weka examples unavailable"; exit 1; }
fm=/usr/share/datasets/fashion-mnist
[ -f "$fm/train-images-idx3-ubyte.gz" ] ||
    { bad "Debian's dataset-fashion-mnist is not installed (launch/setup-debian.sh installs it)"; exit 1; }

# ---- Pima: all 768 rows, 80/20 stratified; the defaults exactly (256,256, 10 epochs) ----
"$chainz" prep arff "$weka/diabetes.arff" -o pima.h5 --split train=0.8,test=0.2 --seed 1 >/dev/null
run2 train --data pima-train.h5 --holdout 0.2 --out pima >pima.log 2>&1
trained pima pima.log $? val_acc 0.70
grep -q '"holdout_split": "stratified", "standardize": 1, "clip_z": 3' pima/config.json &&
    grep -q '"clip_grad_norm": 1,' pima/config.json &&
    h5dump -a /model/input/clip_z "pima/checkpoints/$(cat pima/checkpoints/latest)" 2>/dev/null | grep -q "(0): 3$" &&
    ok "pima: config.json and the checkpoint record the stratified holdout, clip_z 3 and clip_grad_norm 1" ||
    bad "pima: clip_z / holdout_split not recorded"

# ---- ReutersCorn (text, 1554 rows, hashed features): defaults, 2 epochs ----
"$chainz" prep arff "$weka/ReutersCorn-train.arff" -o corn.h5 --hash-dim 256 >/dev/null
run2 train --data corn.h5 --holdout 0.2 --epochs 2 --out corn >corn.log 2>&1
trained corn corn.log $? val_acc 0.971 # 0.971: the majority class's share

# ---- Yelp-format corpus, ordinal head: defaults, 5 epochs ----
"$build/gen_yelp" yelp.csv 2500 --seed 3 --vectors yelp.vec --dim 50 --vocab 3000 >/dev/null &&
    "$chainz" prep csv yelp.csv --embeddings yelp.vec -o yelp.h5 >/dev/null
run2 train --data yelp.h5 --head ordinal --holdout 0.2 --epochs 5 --out yelp >yelp.log 2>&1
trained yelp yelp.log $? val_mae 1.6 max # 1.6: guessing uniformly among 5 stars

# ---- Fashion-MNIST ----
# 58,000 | 2,000 stratified, then 10,000 of the 58,000 (1,000 per class)
"$chainz" prep idx "$fm/train-images-idx3-ubyte.gz" "$fm/train-labels-idx1-ubyte.gz" -o fm.h5 \
    --split train=0.966667,val=0.033333 --fraction 0.172414 --seed 1 >fm-prep.log 2>&1 ||
    { bad "prep idx"; cat fm-prep.log; }
# the defaults (256,256, DREG 0.01), 1,200 rows for 3 epochs: the stream at d = 784 is the cost
"$chainz" prep idx "$fm/train-images-idx3-ubyte.gz" "$fm/train-labels-idx1-ubyte.gz" -o fms.h5 \
    --fraction 0.02 --seed 2 >/dev/null
run2 train --data fms.h5 --val fm-val.h5 --epochs 3 --out fms >fms.log 2>&1
trained fms fms.log $? val_acc 0.65
grep -q "standardization: .* features have training values beyond 3 standard deviations, clipped to +-3.*feature [0-9]* (|z| up to" fms.log &&
    ok "fm: the clipped features are named with their largest |z| and std" || bad "fm: no standardization warning"

# the issue's run: standardization on, 4 epochs
issue=(--data fm-train.h5 --val fm-val.h5 --layers 64,64 --act poly --dreg 0.001 --lr 3e-3 --batch 128 --epochs 4 --no-tau)
run2 train "${issue[@]}" --out fmi >fmi.log 2>&1
trained fmi fmi.log $? val_acc 0.80
# eval of the checkpoint on the validation set gives the last epoch's accuracy: it clips too
run2 eval --model fmi --data fm-val.h5 --json fmi-eval.json >fmi-eval.log 2>&1
acc=$(sed -nE 's/.*"acc": ([0-9.e+-]+).*/\1/p' fmi-eval.json)
want=$(last fmi val_acc)
awk -v a="$acc" -v b="$want" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6) }' &&
    ok "eval applies the checkpoint's clipping: accuracy $acc = the run's last val_acc $want" ||
    bad "eval accuracy $acc differs from the run's last val_acc $want"
# the same run without clipping: layer 2's Jacobian explodes within the first epoch; the
# warning names the term, the layer and the step, and says what to try
run2 train "${issue[@]}" --clip-z 0 --out fmn >fmn.log 2>&1
st=$?
if grep -q "warning: step [0-9]* (epoch 1): the DREG term .* jumped to .*x its running level" fmn.log &&
   grep -q "Jacobian norms ||S_l||^2 per sample: layer 1 .*, layer 2 .* (largest: layer 2)" fmn.log &&
   grep -q "Try a lower --lr (now 0.003), a lower --dreg (now 0.001), a lower --clip-grad-norm (now 1); or a new run with --clip-z 3" fmn.log &&
   { [ "$st" = 0 ] || { [ "$st" = 2 ] && grep -q "training is diverging.*The run stops before applying" fmn.log; }; }; then
    ok "--clip-z 0: divergence warned in epoch 1 (exit $st), naming the term, layer 2's Jacobian, the step and what to try"
else
    bad "--clip-z 0 (status $st)"; grep -E "warning|error" fmn.log | cut -c1-300 | head -4
fi
[ $fails -eq 0 ] && echo "test_defaults: all passed" || echo "test_defaults: $fails failure(s)"
exit $((fails > 0))

#!/usr/bin/env bash
# The DREG stream modes end to end (docs/DESIGN.md section 6, "Jacobian stream modes"):
#  - gram trains the same model as exact to float rounding (final parameters within 1e-4
#    relative of the largest), and not by running exact (some byte differs);
#  - probe and gram: 1, 2 and 3 ranks give the same bytes (checkpoint, metrics, history),
#    and a run stopped and resumed equals the uninterrupted one;
#  - auto: exact, gram or probe from the shapes, logged and recorded in config.json;
#    a resume keeps the run's mode (auto adopts it, another --dreg-mode is refused);
#  - a lambda = 0 baseline measures the layer-Jacobian families on a seeded subsample:
#    the fraction is logged, the histograms hold that share of the samples, and 1 and 2
#    ranks give the same bytes;
#  - misuse is refused with a message (gram wider than the input, probes without probe).
# Usage: test_dreg_modes.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
# shellcheck source=lib/bitwise.sh
. "$(dirname "$0")/lib/bitwise.sh"
bw_init "$build" || exit 1
run() { local p=$1; shift; timeout 120 mpirun -np "$p" --bind-to none "$chainz" "$@"; }

"$build/make_data" "$work/x.h5" --n 600 --d 30 --classes 3 --seed 4 >/dev/null || exit 1
common=(train --data "$work/x.h5" --layers 12,8 --epochs 2 --batch 64 --micro-batch 16 --dropout 0.1 --dreg 0.05
        --seed 3 --log-seconds 1000)

# ---- gram == exact to rounding ----
run 1 "${common[@]}" --dreg-mode exact --out "$work/exact" >"$work/exact.log" 2>&1 || bad "exact run: $(tail -2 "$work/exact.log")"
run 1 "${common[@]}" --dreg-mode gram --out "$work/gram" >"$work/gram.log" 2>&1 || bad "gram run: $(tail -2 "$work/gram.log")"
cmp_out=$("$py" - "$(bw_final_ckpt "$work/exact")" "$(bw_final_ckpt "$work/gram")" <<'EOF' 2>&1
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst, same = 0.0, True
def visit(name, obj):
    global worst, same
    if isinstance(obj, h5py.Dataset) and (name.startswith("model/layer") or name.startswith("model/output")):
        x, y = obj[()].astype(np.float64), b[name][()].astype(np.float64)
        worst = max(worst, np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-30))
        same = same and obj[()].tobytes() == b[name][()].tobytes()
a.visititems(visit)
print(f"{worst:.3g} {int(same)}")
EOF
)
read -r worst same <<<"$cmp_out"
if awk -v w="$worst" 'BEGIN { exit !(w < 1e-4) }' && [ "$same" = 0 ]; then
    ok "gram trains the model exact trains: largest difference $worst of the largest parameter (not the same bytes)"
else
    bad "gram vs exact: '$cmp_out' (want < 1e-4, and bytes that differ)"
fi
grep -q "DREG stream gram at stream width 12 (--dreg-mode)" "$work/gram.log" && ok "the log names the stream" ||
    bad "no stream line: $(grep 'DREG stream' "$work/gram.log")"

# ---- probe and gram: any rank count, and resume ----
for mode in "probe --dreg-probes 4" "gram"; do
    name=${mode%% *}
    ref=""
    for p in 1 2 3; do
        out="$work/$name-$p"
        run "$p" "${common[@]}" --dreg-mode $mode --out "$out" >"$out.log" 2>&1 || { bad "$name on $p ranks: $(tail -2 "$out.log")"; continue; }
        if [ -z "$ref" ]; then ref=$out; continue; fi
        if bw_same_run "$ref" "$out"; then ok "$name: $p ranks give the bytes of 1 rank"; else bad "$name: $p ranks differ from 1"; fi
    done
    out="$work/$name-resumed"
    run 2 "${common[@]}" --dreg-mode $mode --out "$out" --max-steps 13 >"$out.1.log" 2>&1 || bad "$name: first part"
    run 3 "${common[@]}" --out "$out" --resume auto >"$out.2.log" 2>&1 || bad "$name: resume: $(tail -2 "$out.2.log")"
    # auto would pick gram for these shapes: a probe run is continued as probe, and says so
    want="DREG stream gram: exact Jacobians"
    [ "$name" = probe ] && want="DREG stream probe at stream width 4, as the run began (its configuration)"
    grep -qF "$want" "$out.2.log" || bad "$name: resumed with auto: $(grep 'DREG stream' "$out.2.log")"
    if bw_same_ckpt "$(bw_final_ckpt "$ref")" "$(bw_final_ckpt "$out")"; then
        ok "$name: stopped at step 13 on 2 ranks, resumed on 3 (auto): the bytes of the uninterrupted run"
    else
        bad "$name: the resumed run differs from the uninterrupted one"
    fi
done
st=0
run 1 "${common[@]}" --dreg-mode exact --out "$work/probe-1" --resume auto >"$work/mis.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "the run's DREG stream is probe with 4 directions, this run asks for exact (it cannot change within a run): resume with --dreg-mode probe --dreg-probes 4" "$work/mis.log" &&
    ok "another --dreg-mode on resume is refused" || bad "mode change on resume: status $st, $(tail -2 "$work/mis.log")"
# --dreg-mode probe without --dreg-probes names the run's mode: it continues with the run's 4
# directions (it was refused as "the stream is probe, this run asks for probe")
run 1 "${common[@]}" --dreg-mode probe --dreg-probes 4 --out "$work/pk" --max-steps 5 >"$work/pk.1.log" 2>&1 || bad "probe K=4 first part"
st=0; run 2 "${common[@]}" --dreg-mode probe --out "$work/pk" --resume auto >"$work/pk.2.log" 2>&1 || st=$?
if [ "$st" -eq 0 ] && grep -qF "DREG stream probe at stream width 4, as the run began" "$work/pk.2.log" &&
    bw_same_ckpt "$(bw_final_ckpt "$work/probe-1")" "$(bw_final_ckpt "$work/pk")"; then
    ok "--dreg-mode probe on resume keeps the run's 4 directions: the bytes of the uninterrupted run"
else
    bad "--dreg-mode probe on resume of a 4-direction run: status $st, $(grep -m1 'error\|DREG stream' "$work/pk.2.log")"
fi
st=0; run 1 "${common[@]}" --dreg-mode probe --dreg-probes 8 --out "$work/pk" --resume auto >"$work/pk.3.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "stream is probe with 4 directions, this run asks for probe with 8 directions" "$work/pk.3.log" &&
    ok "another --dreg-probes on resume is refused, naming both counts" || bad "--dreg-probes 8 on resume: status $st, $(grep -m1 error "$work/pk.3.log")"

# ---- auto ----
"$build/make_data" "$work/wide.h5" --n 96 --d 300 --classes 3 --seed 5 >/dev/null || exit 1
for case in "260:probe:16 random directions" "40:gram:exact Jacobians at stream width 40" "12,8:exact:"; do
    IFS=: read -r layers want words <<<"$case"
    data=$work/wide.h5
    [ "$want" = exact ] && data=$work/x.h5 && layers=40,8
    run 1 train --data "$data" --layers "$layers" --epochs 1 --batch 32 --out "$work/auto-$want" >"$work/auto-$want.log" 2>&1 ||
        { bad "auto $want: $(tail -2 "$work/auto-$want.log")"; continue; }
    if grep -q "DREG stream $want: .*$words" "$work/auto-$want.log" &&
        grep -q "\"dreg_mode\": \"$want\"" "$work/auto-$want/config.json"; then
        ok "auto picks $want for --layers $layers on d = $(grep -o 'd = [0-9]*' "$work/auto-$want.log" | head -1), logged and in config.json"
    else
        bad "auto $want: $(grep 'DREG stream' "$work/auto-$want.log"); $(grep -o '"dreg_mode": "[a-z]*"' "$work/auto-$want/config.json")"
    fi
done

# ---- a lambda = 0 baseline: Jacobian families on a seeded subsample ----
"$build/make_data" "$work/big.h5" --n 3000 --d 40 --classes 3 --seed 6 >/dev/null || exit 1
for p in 1 2; do
    run "$p" train --data "$work/big.h5" --layers 16,16 --act relu --epochs 1 --batch 128 --micro-batch 32 \
        --out "$work/base-$p" >"$work/base-$p.log" 2>&1 || bad "baseline on $p ranks: $(tail -2 "$work/base-$p.log")"
done
frac=$(sed -nE 's/.*tau layer-Jacobian families: exact on a seeded ([0-9.]+) % of each epoch.*/\1/p' "$work/base-1.log")
grep -q "DREG stream none: lambda is 0 for the whole run" "$work/base-1.log" || bad "baseline: no 'stream none' line"
# the default fraction costs about a quarter of a step: on 3000 rows that is fewer than 1000
# samples an epoch, and the log says how many and what one costs (no floor of 1000 since
# it made tau cost 3.7x a step on small sets)
grep -qE "tau layer-Jacobian families: .* of each epoch's samples \(about [0-9]+ an epoch: their p99 is rough below 1000; --tau-jacobian-fraction measures more, each sample up to [0-9]+x a training sample\)" "$work/base-1.log" &&
    ok "baseline: the log names the few samples an epoch and their cost" || bad "baseline: $(grep 'tau layer' "$work/base-1.log")"
counts=$("$py" -c '
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(int(f["tau/jacobian/layer_2/count"][0]), int(f["tau/input_grad/count"][0]))' "$work/base-1/metrics.h5" 2>&1)
read -r nj ni <<<"$counts"
if [ -n "$frac" ] && awk -v f="$frac" -v j="$nj" -v i="$ni" 'BEGIN { e = f / 100 * i; exit !(i == 3000 && j > 0.8 * e && j < 1.2 * e) }'; then
    ok "baseline: Jacobian norms of $nj of $ni samples (the logged $frac %), input gradients of all"
else
    bad "baseline: fraction '$frac', counts '$counts'"
fi
bw_same_run "$work/base-1" "$work/base-2" && ok "baseline: the subsample is the same on 2 ranks (bytes)" || bad "baseline: 1 and 2 ranks differ"
# a first layer narrower than d: the subsample's rows are R^T's (n_1 wide, one QR a step),
# the same bytes on 3 ranks, and the Jacobian counts follow the logged fraction
"$build/make_data" "$work/wide.h5" --n 1500 --d 60 --classes 3 --seed 7 >/dev/null || exit 1
for p in 1 3; do
    run "$p" train --data "$work/wide.h5" --layers 12,40,30 --act relu --dropout 0.2 --epochs 1 --batch 128 \
        --micro-batch 32 --out "$work/narrow-$p" >"$work/narrow-$p.log" 2>&1 || bad "narrow first layer on $p ranks: $(tail -2 "$work/narrow-$p.log")"
done
grep -qE "tau layer-Jacobian families: exact on a seeded [0-9.]+ % of each epoch's samples.*; rows of width 12 = n_1 \(R\^T of W_1\^T = QR, one QR a step\)" "$work/narrow-1.log" &&
    ok "narrow first layer: the log names rows of width n_1" || bad "narrow first layer: $(grep 'tau layer' "$work/narrow-1.log")"
bw_same_run "$work/narrow-1" "$work/narrow-3" && ok "narrow first layer: the same bytes on 3 ranks" || bad "narrow first layer: 1 and 3 ranks differ"

# ---- probe: the Jacobian families hold the exact subsample only, never the probe estimates ----
run 1 train --data "$work/x.h5" --layers 12,8 --epochs 1 --batch 64 --micro-batch 16 --dreg 0.05 --seed 3 \
    --log-seconds 1000 --dreg-mode probe --tau-jacobian-fraction 0.3 --out "$work/pfrac" >"$work/pfrac.log" 2>&1 ||
    bad "probe with --tau-jacobian-fraction 0.3: $(tail -2 "$work/pfrac.log")"
counts=$("$py" -c '
import sys, h5py
f = h5py.File(sys.argv[1], "r")
print(int(f["tau/jacobian/layer_1/count"][0]), int(f["tau/jacobian/layer_2/count"][0]), int(f["tau/input_grad/count"][0]))' "$work/pfrac/metrics.h5" 2>&1)
read -r nj1 nj2 ni <<<"$counts"
if [ "$ni" = 600 ] && [ "$nj1" = "$nj2" ] && [ "$nj1" -gt 120 ] 2>/dev/null && [ "$nj1" -lt 240 ]; then
    ok "probe: Jacobian norms of $nj1 of $ni samples (--tau-jacobian-fraction 0.3), no probe estimates among them"
else
    bad "probe --tau-jacobian-fraction 0.3: counts '$counts' (jacobian layer 1, layer 2, input_grad; want about 180 of 600)"
fi

# ---- a resume keeps the run's --tau-jacobian-fraction (it was silently replaced by auto) ----
pf=(--dreg-mode probe --dreg-probes 4 --tau-jacobian-fraction 0.3)
run 1 "${common[@]}" "${pf[@]}" --out "$work/fr-ref" >"$work/fr-ref.log" 2>&1 || bad "fraction reference: $(tail -2 "$work/fr-ref.log")"
run 2 "${common[@]}" "${pf[@]}" --out "$work/fr" --max-steps 13 >"$work/fr.1.log" 2>&1 || bad "fraction: first part"
cp -r "$work/fr" "$work/fr-other"
run 3 "${common[@]}" --out "$work/fr" --resume auto >"$work/fr.2.log" 2>&1 || bad "fraction: resume: $(tail -2 "$work/fr.2.log")"
if grep -q "on a seeded 30 % of each epoch's samples, as the run began" "$work/fr.2.log" &&
    bw_same_run "$work/fr-ref" "$work/fr"; then
    ok "--tau-jacobian-fraction 0.3 kept by a resume without it: the bytes (metrics too) of the uninterrupted run"
else
    bad "resume without --tau-jacobian-fraction: $(grep 'tau layer' "$work/fr.2.log")"
fi
st=0; run 1 "${common[@]}" --out "$work/fr-other" --resume auto --tau-jacobian-fraction 0.9 >"$work/fr.3.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "on a seeded 0.3 of each epoch's samples, this run asks for 0.9 (--tau-jacobian-fraction; it cannot change within a run)" "$work/fr.3.log" &&
    ok "another --tau-jacobian-fraction on resume is refused" || bad "fraction 0.9 on resume: status $st, $(grep -m1 error "$work/fr.3.log")"

# ---- misuse ----
st=0; run 1 train --data "$work/x.h5" --layers 40 --dreg-mode gram --out "$work/m1" >"$work/m1.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "needs the first hidden layer (40) no wider than the input (d = 30)" "$work/m1.log" &&
    ok "gram wider than the input: refused" || bad "gram n_1 > d: status $st, $(tail -1 "$work/m1.log")"
st=0; "$chainz" train --data "$work/x.h5" --out "$work/m2" --dreg-mode exact --dreg-probes 8 >"$work/m2.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "dreg-probes applies to --dreg-mode probe" "$work/m2.log" && ok "--dreg-probes with exact: refused" ||
    bad "--dreg-probes with exact: status $st, $(tail -1 "$work/m2.log")"
run 1 train --data "$work/x.h5" --layers 12,8 --epochs 1 --batch 64 --dreg-probes 8 --out "$work/m4" >"$work/m4.log" 2>&1 &&
    grep -q "DREG stream gram: .*; --dreg-probes 8 is unused (no probes in gram mode)" "$work/m4.log" &&
    ok "--dreg-probes while auto picks gram: the log says it is unused" ||
    bad "--dreg-probes with auto picking gram: $(grep 'DREG stream' "$work/m4.log")"
st=0; "$chainz" train --data "$work/x.h5" --out "$work/m3" --dreg-mode fast >"$work/m3.log" 2>&1 || st=$?
[ "$st" -eq 1 ] && grep -q "expected exact, gram, probe or auto" "$work/m3.log" && ok "--dreg-mode fast: refused" ||
    bad "--dreg-mode fast: status $st"

[ $fails -eq 0 ] && echo "test_dreg_modes: all passed" || echo "test_dreg_modes: $fails failure(s)"
[ $fails -eq 0 ]

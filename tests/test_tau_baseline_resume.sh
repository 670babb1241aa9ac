#!/usr/bin/env bash
# A lambda = 0 baseline with tau (its Jacobian families from the seeded subsample,
# chainz/jacnorm.h) continued with DREG on, and what its log says:
#  - resumed with --dreg > 0 in probe mode and in exact mode, the run goes on (its checkpoint
#    records dreg_mode "none", which no --dreg-mode names: it was refused as "unknown"), and
#    its layer-Jacobian families keep counting (probe: the subsample; exact: every sample);
#  - the other way, an exact DREG run (Jacobian families from its stream, recorded fraction
#    1) resumed as a baseline (--dreg 0): the subsample's fraction is planned afresh (auto),
#    not kept at 100 % (every sample at up to a step's cost), and --tau-jacobian-fraction
#    is accepted (it was refused as "cannot change within a run");
#  - a first layer narrower than d (the subsample's rows d or n_1 wide, picked for the
#    fraction): a run begun with --tau-jacobian-fraction 0.002 (rows d wide), stopped
#    mid-epoch and resumed without it, re-picks width d for the adopted fraction (the plan
#    alone picks n_1 for its own): the same bytes as the uninterrupted run;
#  - one hidden layer: a measured sample costs less than a training sample, and the log
#    says so ("up to 0.4x"), not "up to 0x".
# Usage: test_tau_baseline_resume.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
# shellcheck source=lib/bitwise.sh
. "$(dirname "$0")/lib/bitwise.sh"
bw_init "$build" || exit 1
"$build/make_data" "$work/x.h5" --n 600 --d 20 --classes 3 --seed 3 >/dev/null || exit 1
args=(--data "$work/x.h5" --layers 30,25,20 --act poly --epochs 3 --batch 64 --micro-batch 16)

# the Jacobian families' counts of every epoch, one line per layer
counts() {
    "$py" -c '
import sys, h5py
h = h5py.File(sys.argv[1] + "/metrics.h5", "r")
for l in (1, 2, 3):
    print(" ".join("%d" % c for c in h["tau/jacobian/layer_%d/count" % l][...]))' "$1"
}

for mode in probe exact; do
    run="$work/base-$mode"
    "$chainz" train "${args[@]}" --out "$run" --dreg 0 --max-steps 12 >"$run.log" 2>&1 ||
        { bad "baseline ($mode): $(tail -2 "$run.log")"; continue; }
    if "$chainz" train "${args[@]}" --out "$run" --dreg 0.01 --dreg-mode "$mode" --resume auto \
        >"$run-resume.log" 2>&1; then
        ok "a lambda = 0 baseline resumed with --dreg 0.01 --dreg-mode $mode"
    else
        bad "baseline resumed with --dreg-mode $mode: $(grep error "$run-resume.log")"
        continue
    fi
    grep -q "DREG stream $mode" "$run-resume.log" && ok "$mode: the log names the new stream" ||
        bad "$mode: $(grep 'DREG stream' "$run-resume.log")"
    c=$(counts "$run" 2>&1)
    # 10 steps an epoch: epoch 2 holds 2 steps of the baseline and 8 with DREG, epoch 3 DREG
    # alone: every epoch measured something; in exact mode epoch 3 every one of its 600 samples
    if [ "$(echo "$c" | awk 'NF == 3 && $1 > 0 && $2 > 0 && $3 > 0' | wc -l)" -eq 3 ] &&
        { [ "$mode" = probe ] || [ "$(echo "$c" | awk '$3 == 600' | wc -l)" -eq 3 ]; }; then
        ok "$mode: Jacobian counts per epoch: $(echo "$c" | head -1)"
    else
        bad "$mode: Jacobian counts per epoch: $c"
    fi
done

for opt in "" "--tau-jacobian-fraction 0.1"; do
    run="$work/dreg-base${opt:+-f}"
    "$chainz" train "${args[@]}" --out "$run" --dreg 0.01 --dreg-mode exact --max-steps 12 >"$run.log" 2>&1 ||
        { bad "exact DREG run: $(tail -2 "$run.log")"; continue; }
    # shellcheck disable=SC2086
    if "$chainz" train "${args[@]}" --out "$run" --dreg 0 --resume auto $opt >"$run-resume.log" 2>&1; then
        line=$(grep "tau layer-Jacobian families" "$run-resume.log")
        want="exact on a seeded 5.26 % of each epoch's samples (about"
        [ -n "$opt" ] && want="exact on a seeded 10 % of each epoch's samples (--tau-jacobian-fraction)"
        echo "$line" | grep -qF "$want" && ok "exact DREG run resumed with --dreg 0 ${opt:-(auto)}: ${line#*: }" ||
            bad "exact DREG run resumed with --dreg 0 ${opt:-(auto)}: $line"
    else
        bad "exact DREG run resumed with --dreg 0 $opt: $(grep error "$run-resume.log")"
    fi
done

"$chainz" train --data "$work/x.h5" --layers 10 --act relu --dreg 0 --epochs 1 --out "$work/one" \
    >"$work/one.log" 2>&1 || bad "one hidden layer: $(tail -2 "$work/one.log")"
line=$(grep "tau layer-Jacobian families" "$work/one.log")
if echo "$line" | grep -qE "each sample up to 0\.[1-9]x a training sample"; then
    ok "one hidden layer: ${line##*(}"
else
    bad "one hidden layer: $line"
fi

"$build/make_data" "$work/w.h5" --n 1500 --d 60 --classes 3 --seed 7 >/dev/null || exit 1
nargs=(--data "$work/w.h5" --layers 12,40,30 --act relu --dropout 0.2 --epochs 2 --batch 128 --micro-batch 32
       --ckpt-every-steps 3 --seed 4)
"$chainz" train "${nargs[@]}" --tau-jacobian-fraction 0.002 --out "$work/nref" >"$work/nref.log" 2>&1 ||
    bad "narrow first layer: $(tail -2 "$work/nref.log")"
"$chainz" train "${nargs[@]}" --tau-jacobian-fraction 0.002 --max-steps 5 --out "$work/ncut" >"$work/ncut.log" 2>&1 &&
    "$chainz" train "${nargs[@]}" --resume auto --out "$work/ncut" >"$work/ncut-resume.log" 2>&1 ||
    bad "narrow first layer, stopped and resumed: $(tail -2 "$work/ncut-resume.log")"
grep -q "as the run began; rows of width 60 = d" "$work/ncut-resume.log" &&
    ok "narrow first layer: the resume adopts 0.2 % and its width d" ||
    bad "narrow first layer: $(grep 'tau layer' "$work/ncut-resume.log")"
bw_same_run "$work/nref" "$work/ncut" && ok "narrow first layer: resumed mid-epoch, the same bytes as uninterrupted" ||
    bad "narrow first layer: the resumed run differs"

echo "test_tau_baseline_resume: $fails failure(s)"
[ "$fails" -eq 0 ]

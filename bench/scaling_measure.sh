#!/bin/bash
# Step times of `chainz train` on 1, 2 and 3 ranks of this machine, for the scaling model
# (bench/scaling_model.py, docs/BENCHMARKS.md "Scaling model (issue 15)").
#
#   bench/scaling_measure.sh BUILD_DIR DATA.h5 [WORK_DIR] [REPS] [RANKS] [STEPS_LO STEPS_HI]
#   defaults: WORK_DIR $TMPDIR/chainz-scaling, REPS 2, RANKS "1 2 3", steps 2 and 12.
#   HI_PROBE and HI_RELU (environment) override STEPS_HI for the cheap cases, whose 10
#   steps are shorter than the noise of a process start on a shared machine.
#
# The model is the Yelp-like one: --layers 512,512 --head ordinal --batch 128 on a
# Yelp-format set (d = 300; make one with gen_yelp + chainz prep csv, see the doc).
# Cases: poly + DREG exact, poly + DREG probe (K = 16), ReLU baseline (--dreg 0), each with
# --reduce exact and --reduce float. Each run is timed end to end (mpirun included);
# ms per step = (wall(STEPS_HI) - wall(STEPS_LO)) / (STEPS_HI - STEPS_LO), which cancels
# start-up, data mapping, standardization and the final checkpoint. With REPS > 1 the
# repetitions are interleaved (every case once, then every case again) and each rep's
# per-step figure is printed; the summary takes the median over reps.
# Output: lines "RESULT mode reduce ranks rep ms_per_step wall_lo wall_hi steps_hi", then a
# table of the median [min] per case.
set -euo pipefail
build=$(cd "$1" && pwd)
data=$(readlink -f "$2")
work=${3:-${TMPDIR:-/tmp}/chainz-scaling}
reps=${4:-2}
ranks_list=${5:-"1 2 3"}
lo=${6:-2}
hi=${7:-12}
chainz="$build/chainz"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$work"
ncpu=$(nproc)
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -r), $ncpu CPUs ($(lscpu | sed -n 's/^Model name: *//p'))"
echo "data: $data; steps $lo and $hi; reps $reps; ranks $ranks_list"

common=(--data "$data" --layers 512,512 --head ordinal --batch 128 --epochs 1 --no-tau)
case_args() {
    case $1 in
        exact) echo "--dreg-mode exact" ;;
        probe) echo "--dreg-mode probe --dreg-probes 16" ;;
        relu)  echo "--act relu --dreg 0" ;;
    esac
}

# wall MODE REDUCE P STEPS: seconds of one run, end to end
wall() {
    local mode=$1 red=$2 p=$3 steps=$4 out="$work/run-$1-$2-$3-$4"
    rm -rf "$out"
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    mpirun -np "$p" --bind-to none "$chainz" train "${common[@]}" $(case_args "$mode") \
        --reduce "$red" --max-steps "$steps" --out "$out" >"$out.log" 2>&1 ||
        { echo "run failed: $mode $red $p $steps (log $out.log)" >&2; tail -5 "$out.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    grep -q "kernels" "$out.log" && [ ! -e "$work/kernels.txt" ] && grep -m1 "kernels" "$out.log" >"$work/kernels.txt"
    rm -rf "$out"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

: >"$work/results.txt"
for rep in $(seq 1 "$reps"); do
    for p in $ranks_list; do
        for mode in exact probe relu; do
            for red in exact float; do
                wl=$(wall "$mode" "$red" "$p" "$lo")
                h=$hi
                [ "$mode" = probe ] && h=${HI_PROBE:-$hi}
                [ "$mode" = relu ] && h=${HI_RELU:-$hi}
                wh=$(wall "$mode" "$red" "$p" "$h")
                ms=$(awk -v a="$wl" -v b="$wh" -v n=$((h - lo)) 'BEGIN { printf "%.1f", (b - a) * 1000 / n }')
                echo "RESULT $mode $red $p $rep $ms $wl $wh $h" | tee -a "$work/results.txt"
            done
        done
    done
done
cat "$work/kernels.txt" 2>/dev/null || true
echo
echo "ms per step, median [min] over $reps reps (ranks > $ncpu oversubscribe the $ncpu cores)"
printf "%-6s %-6s" mode reduce
for p in $ranks_list; do printf " %15s" "P=$p"; done
echo
for mode in exact probe relu; do
    for red in exact float; do
        printf "%-6s %-6s" "$mode" "$red"
        for p in $ranks_list; do
            med=$(awk -v m="$mode" -v r="$red" -v p="$p" '$2 == m && $3 == r && $4 == p { print $6 }' "$work/results.txt" |
                  sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f[%.1f]", m, v[1] }')
            printf " %15s" "$med"
        done
        echo
    done
done

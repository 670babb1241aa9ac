#!/usr/bin/env bash
# ms per training step of --reduce exact and --reduce float on a ReLU baseline (lambda 0,
# --no-tau) of the Yelp shape (d = 300, 512,512, batch 128 = one micro-batch), for one or
# more chainz binaries side by side (docs/BENCHMARKS.md, "Exact reduction (issue 15)").
# A step's cost is (wall time of STEPS steps - wall time of 2 steps) / (STEPS - 2) (start-up,
# the feature statistics and the final checkpoint cancel); the runs of every binary, mode
# and rank count are interleaved, REPS times; printed: the medians, and the median of the
# per-repetition ratios exact / float (robust when the machine's speed drifts).
#
#   [STEPS=12] bench/reduce_bench.sh DATA.h5 REPS LABEL=BIN [LABEL=BIN ...]
#   (DATA.h5: build/make_data DATA.h5 --n 8192 --d 300 --classes 5 --seed 3; STEPS must
#   stay within one epoch: STEPS * 128 <= rows)
set -euo pipefail
data=$1 reps=$2 steps=${STEPS:-12}
shift 2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

run() { # BIN RANKS MODE STEPS -> seconds on stdout
    local out="$work/run" t0 t1
    rm -rf "$out"
    t0=$EPOCHREALTIME
    mpirun -np "$2" "$1" train --data "$data" --out "$out" --layers 512,512 --act relu --dreg 0 --no-tau \
        --batch 128 --micro-batch 128 --epochs 1 --max-steps "$4" --reduce "$3" >/dev/null 2>&1 ||
        { echo "run failed: $*" >&2; exit 1; }
    t1=$EPOCHREALTIME
    echo "$t1 - $t0" | bc -l
}

declare -A ms t
for ((r = 0; r < reps; r++)); do
    for spec in "$@"; do
        for np in 1 2; do
            for mode in exact float; do
                a=$(run "${spec#*=}" "$np" "$mode" 2)
                b=$(run "${spec#*=}" "$np" "$mode" "$steps")
                t[$mode]=$(echo "($b - $a) * 1000 / ($steps - 2)" | bc -l)
                ms["${spec%%=*} $np $mode"]+="${t[$mode]} "
            done
            ms["${spec%%=*} $np ratio"]+="$(echo "${t[exact]} / ${t[float]}" | bc -l) "
        done
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
printf "%-8s %5s %10s %10s %14s\n" build ranks "exact ms" "float ms" "exact/float"
for spec in "$@"; do
    for np in 1 2; do
        e=$(echo "${ms["${spec%%=*} $np exact"]}" | median)
        f=$(echo "${ms["${spec%%=*} $np float"]}" | median)
        q=$(echo "${ms["${spec%%=*} $np ratio"]}" | tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
        printf "%-8s %5d %10s %10s %14s\n" "${spec%%=*}" "$np" "$e" "$f" "$q"
    done
done

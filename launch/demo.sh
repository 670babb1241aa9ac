#!/usr/bin/env bash
# The main job, from a fresh Debian machine: installs what chainz needs (apt-get), builds,
# prepares Pima Diabetes from Debian's weka examples (diabetes.arff, taken from the weka
# package without installing Java: launch/weka-examples.sh), trains a CR network with DREG on 2 MPI ranks, writes
# checkpoints and the run's tau histograms (metrics.h5) under checkpoints/pima-cr/,
# evaluates the final model on the held-out test split and prints the tau table.
#
#   bash launch/demo.sh            (re-running reuses the build and the prepared data)
#   RANKS=4 EPOCHS=80 bash launch/demo.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ranks=${RANKS:-2}
epochs=${EPOCHS:-40}
run="$top/checkpoints/pima-cr"
data="$top/data"

"$top/launch/setup-debian.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=Release -DCHAINZ_TESTS=OFF >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target chainz >/dev/null
chainz="$top/build/chainz"

mkdir -p "$data"
if [ ! -f "$data/pima-train.h5" ]; then
    arff="$("$top/launch/weka-examples.sh")/diabetes.arff"
    "$chainz" prep arff "$arff" -o "$data/pima.h5" --split train=0.7,val=0.1,test=0.2 --seed 1
    echo
fi

rm -rf "$run"
"$top/launch/mpirun.sh" -n "$ranks" -t 1 -- "$chainz" train \
    --data "$data/pima-train.h5" --val "$data/pima-val.h5" --out "$run" \
    --layers 32,32 --act poly --dreg 0.01 --epochs "$epochs" --batch 32 --micro-batch 8 \
    --lr 3e-3 --seed 1
"$top/launch/mpirun.sh" -n "$ranks" -t 1 -- "$chainz" eval --model "$run" \
    --data "$data/pima-test.h5" --tau --json "$run/test.json"
# the per-epoch gradient-norm statistics (tau = p99/mean) recorded in metrics.h5
"$chainz" tau "$run" --family input_grad
echo "demo: run directory $run (config.json, history.jsonl, metrics.h5, checkpoints/, test.json)"

#!/usr/bin/env bash
# libchainz_infer against PyTorch eager on the same weights (issue 16; docs/BENCHMARKS.md,
# "Inference library"): a Pima-sized model (d = 8, 64,64, poly, 2 classes) and a Yelp-like
# one (d = 300, 512,512, poly, ordinal, 5 classes), trained briefly on make_data sets (the
# weights do not change the cost). Rounds interleave build/infer_bench and
# bench/torch_infer.py, 1 thread each, so both see the same machine load; the table gives
# per-round medians' median and the ratios. The first round also checks that PyTorch's
# predicted classes equal chainz's on 256 rows.
#   bench/infer_bench.sh BUILD_DIR [ROUNDS=5] [SECONDS_PER_RUN=2]
set -uo pipefail
build=$(cd "${1:?usage: infer_bench.sh BUILD_DIR [ROUNDS] [SECONDS]}" && pwd)
rounds=${2:-5}
secs=${3:-2}
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1 OMP_WAIT_POLICY=passive

"$build/make_data" "$work/pima.h5" --n 768 --d 8 --classes 2 --seed 1 >/dev/null
"$build/chainz" train --data "$work/pima.h5" --out "$work/pima" --layers 64,64 --epochs 3 >/dev/null 2>&1 \
    || { echo "train pima failed"; exit 1; }
"$build/make_data" "$work/yelp.h5" --n 512 --d 300 --classes 5 --task ordinal --seed 1 >/dev/null
"$build/chainz" train --data "$work/yelp.h5" --out "$work/yelp" --layers 512,512 --epochs 1 >/dev/null 2>&1 \
    || { echo "train yelp failed"; exit 1; }

for r in $(seq 1 "$rounds"); do
    for model in pima yelp; do
        ck="$work/$model/checkpoints/$(cat "$work/$model/checkpoints/latest")"
        lab=()
        [ "$r" -eq 1 ] && lab=(--labels "$work/$model.labels")
        "$build/infer_bench" "$ck" --seconds "$secs" "${lab[@]}" | sed "s/^/$model $r /" >>"$work/raw.txt"
        "$py" "$(dirname "$0")/torch_infer.py" "$ck" --seconds "$secs" "${lab[@]}" | sed "s/^/$model $r /" >>"$work/raw.txt" \
            || { echo "torch run failed or its classes differ from chainz's ($model)"; cat "$work/raw.txt"; exit 1; }
    done
done
"$py" - "$work/raw.txt" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
v = {}
for model, r, who, what, norms, val in rows:
    v.setdefault((model, who, what, int(norms)), []).append(float(val))
med = {k: st.median(x) for k, x in v.items()}
names = {0: "prediction", 1: "+ both norms", 2: "+ layer norms only", 3: "+ input norm only"}
for model in ("pima", "yelp"):
    if (model, "torch", "labels_differ", 0) in med:
        print("%s: PyTorch's classes differ from chainz's on %d of 256 rows" % (model, med[(model, "torch", "labels_differ", 0)]))
    t_lat, t_thr = med[(model, "torch", "latency_us", 0)], med[(model, "torch", "throughput_rows_s", 0)]
    print("%s  (medians of %d interleaved rounds, 1 thread)" % (model, len(v[(model, "torch", "latency_us", 0)])))
    print("  %-28s %12s %14s %16s %18s" % ("", "latency us", "vs torch", "rows/s (B=256)", "vs torch"))
    print("  %-28s %12.2f %14s %16.0f %18s" % ("PyTorch eager forward", t_lat, "1", t_thr, "1"))
    for n in range(4):
        lat, thr = med[(model, "chainz", "latency_us", n)], med[(model, "chainz", "throughput_rows_s", n)]
        print("  %-28s %12.2f %13.2fx %16.0f %17.2fx" % ("chainz " + names[n], lat, t_lat / lat, thr, thr / t_thr))
    p, b, l, i = (med[(model, "chainz", "latency_us", n)] for n in range(4))
    print("  B=1, on top of the prediction: both norms %.2f us, the stream alone (layer norms) %.2f us: "
          "%.2fx the stream; the input norm alone (reverse pass) %.2f us" % (b - p, l - p, (b - p) / (l - p), i - p))
PY

#!/usr/bin/env bash
# Corruption robustness of the Fashion-MNIST Fair Fight models (docs/RESULTS.md): the
# papers' CIFAR-10-C claim transferred to what Debian ships. Takes the runs of
# bench/fmnist-fairfight.json at one training-set size, makes 2,000 stratified images of
# Fashion-MNIST's own test set (t10k, never used in training) and 25 corrupted copies with
# `chainz prep corrupt --all-kinds` (5 kinds x 5 severities, seeded: docs/PREP.md), and
# evaluates every model and seed on the clean and the corrupted sets: accuracy, and tau
# (p99/mean of the per-sample input-gradient norms) on each set for the first seed.
# Writes RUN_ROOT/corruption/corruption.csv and corruption.md.
#   bash bench/fmnist-corruption.sh [SIZE_LABEL (frac-0.1)] [RUN_ROOT (runs/fmnist-fairfight)]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
chainz=${CHAINZ:-$top/build/chainz}
size=${1:-frac-0.1}
root=${2:-$top/runs/fmnist-fairfight}
fm=/usr/share/datasets/fashion-mnist
out="$root/corruption"
mkdir -p "$out"
if [ ! -f "$out/clean.h5" ]; then
    "$chainz" prep idx "$fm/t10k-images-idx3-ubyte.gz" "$fm/t10k-labels-idx1-ubyte.gz" -o "$out/clean.h5" \
        --fraction 0.2 --seed 1 >/dev/null
    "$chainz" prep corrupt "$out/clean.h5" -o "$out/fmc" --all-kinds --severities 1-5 --seed 1 >/dev/null
fi
csv="$out/corruption.csv"
echo "model,seed,kind,severity,acc,tau_input_grad" >"$csv.part"
for mdir in "$root"/*/"$size"; do
    model=$(basename "$(dirname "$mdir")")
    for sdir in "$mdir"/seed-*; do
        seed=${sdir##*-}
        [ -f "$sdir/result.json" ] || continue
        # the run the cell chose (run/, or a grid point's folder)
        sel=$(sed -nE 's/.*"run": "([^"]+)".*/\1/p' "$sdir/result.json" | head -1)
        run="$sdir/${sel:-run}"
        for f in "$out/clean.h5" "$out"/fmc-*.h5; do
            b=$(basename "$f" .h5)
            if [ "$b" = clean ]; then kind=clean sev=0; else kind=$(echo "$b" | sed -E 's/^fmc-(.*)-([0-9])$/\1/'); sev=${b##*-}; fi
            tau=()
            [ "$seed" = "$(ls -d "$mdir"/seed-* | head -1 | sed 's/.*-//')" ] && tau=(--tau)
            "$chainz" eval --model "$run" --data "$f" --micro-batch 500 "${tau[@]}" --json "$out/e.json" >/dev/null 2>&1
            acc=$(sed -nE 's/.*"acc": ([0-9.e+-]+).*/\1/p' "$out/e.json")
            t=$(sed -nE 's/.*"input_grad": \{[^}]*"tau": ([0-9.e+-]+).*/\1/p' "$out/e.json")
            echo "$model,$seed,$kind,$sev,$acc,${t:-}" >>"$csv.part"
        done
        echo "corruption: $model seed $seed done" >&2
    done
done
mv "$csv.part" "$csv"
/usr/bin/python3 - "$csv" "$out/corruption.md" <<'PY'
import csv, sys, collections, numpy as np
rows = list(csv.DictReader(open(sys.argv[1])))
acc = collections.defaultdict(list)    # (model, kind, sev) -> [acc over seeds]
for r in rows: acc[(r["model"], r["kind"], int(r["severity"]))].append(float(r["acc"]))
models = list(dict.fromkeys(r["model"] for r in rows))
kinds = [k for k in dict.fromkeys(r["kind"] for r in rows) if k != "clean"]
md = ["| model | clean | " + " | ".join(kinds) + " | mean corrupted | drop |", "|---" * (len(kinds) + 4) + "|"]
for m in models:
    clean = np.mean(acc[(m, "clean", 0)])
    per = [np.mean([np.mean(acc[(m, k, s)]) for s in range(1, 6)]) for k in kinds]
    mc = np.mean(per)
    md.append(f"| {m} | {clean:.4f} | " + " | ".join(f"{v:.4f}" for v in per) + f" | {mc:.4f} | {clean - mc:.4f} |")
md += ["", "Accuracy by severity (mean over kinds and seeds):", "",
       "| model | " + " | ".join(f"s{s}" for s in range(1, 6)) + " |", "|---" * 6 + "|"]
for m in models:
    md.append(f"| {m} | " + " | ".join(f"{np.mean([np.mean(acc[(m, k, s)]) for k in kinds]):.4f}" for s in range(1, 6)) + " |")
# does tau on a test batch predict the accuracy drop? Spearman over the 25 corrupted sets (first seed)
md += ["", "tau (input_grad, first seed) on each corrupted set against its accuracy drop from clean:",
       "Spearman rank correlation over the 25 sets per model.", "", "| model | tau clean | tau corrupted (mean) | Spearman(tau, drop) |", "|---|---|---|---|"]
def ranks(x):
    o = np.argsort(x, kind="stable"); r = np.empty(len(x)); r[o] = np.arange(len(x)); 
    for v in set(x):  # average ranks of ties
        i = [j for j in range(len(x)) if x[j] == v]; r[i] = np.mean(r[i])
    return r
for m in models:
    t = [(r["kind"], int(r["severity"]), float(r["tau_input_grad"]), float(r["acc"])) for r in rows
         if r["model"] == m and r["tau_input_grad"]]
    tc = [x for x in t if x[0] == "clean"]
    tk = [x for x in t if x[0] != "clean"]
    if not tc or len(tk) < 3: continue
    drop = [tc[0][3] - x[3] for x in tk]; tau = [x[2] for x in tk]
    rho = np.corrcoef(ranks(tau), ranks(drop))[0, 1]
    md.append(f"| {m} | {tc[0][2]:.3f} | {np.mean(tau):.3f} | {rho:+.2f} |")
open(sys.argv[2], "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY

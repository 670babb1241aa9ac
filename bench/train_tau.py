#!/usr/bin/python3
"""Training-time gradient volatility of a `chainz protocol` study (docs/RESULTS.md).

For every finished run of the spec, RUN_ROOT/<model>/<size>/seed-<s>/ (its chosen run
directory), reads the per-epoch parameter-gradient histograms of metrics.h5 through
`chainz tau RUN --family param_grad --csv` (one norm per optimizer step, so tau = p99/mean
of the step gradient norms of an epoch) and prints, per model x size, mean +- sd over
seeds of: the last epoch's tau, the mean of tau over epochs, and the peak tau over
epochs ("peak gradient volatility"); then the peak of each baseline relative to the
first model's.
  /usr/bin/python3 bench/train_tau.py SPEC.json [CHAINZ] > table.md
"""
import csv, json, os, subprocess, sys, tempfile, statistics as st

spec = json.load(open(sys.argv[1]))
root = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), spec["run_root"])
chainz = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "build", "chainz")
models, sizes, vals = [], [], {}
for model in [m["name"] for m in spec["models"]]:
    mdir = os.path.join(root, model)
    if not os.path.isdir(mdir):
        continue
    for size in os.listdir(mdir):
        for seed in sorted(os.listdir(os.path.join(mdir, size))):
            cell = os.path.join(mdir, size, seed)
            res = os.path.join(cell, "result.json")
            if not os.path.exists(res):
                continue
            run = os.path.join(cell, json.load(open(res)).get("run") or "run")
            with tempfile.NamedTemporaryFile(suffix=".csv") as t:
                r = subprocess.run([chainz, "tau", run, "--family", "param_grad", "--csv", t.name],
                                   capture_output=True, text=True)
                if r.returncode:
                    print(f"skip {run}: {r.stderr.strip()}", file=sys.stderr)
                    continue
                taus = [float(row["tau"]) for row in csv.DictReader(open(t.name)) if row["family"] == "param_grad"]
            if not taus:
                continue
            models += [model] if model not in models else []
            sizes += [size] if size not in sizes else []
            vals.setdefault((model, size), []).append((taus[-1], sum(taus) / len(taus), max(taus)))

sizes.sort(key=lambda z: -float(z.split("-", 1)[1]) if z.startswith("frac-") else 0)


def ms(xs):
    return f"{st.mean(xs):.3f} ± {st.stdev(xs):.3f}" if len(xs) > 1 else f"{xs[0]:.3f}"

for k, name in ((0, "last epoch"), (1, "mean over epochs"), (2, "peak over epochs")):
    print(f"\nparam_grad tau ({name}), mean ± sd over seeds:\n")
    print("| model | " + " | ".join(sizes) + " |")
    print("|---" * (len(sizes) + 1) + "|")
    for m in models:
        print(f"| {m} | " + " | ".join(ms([v[k] for v in vals[(m, s)]]) if (m, s) in vals else "" for s in sizes) + " |")
first = models[0] if models else None
print(f"\nPeak volatility (peak tau over epochs, mean over seeds) relative to the first model in the spec: "
      "(baseline - first) / baseline.\n")
print("| model | " + " | ".join(sizes) + " |")
print("|---" * (len(sizes) + 1) + "|")
for m in models:
    cells = []
    for s in sizes:
        if (m, s) in vals and (first, s) in vals:
            a = st.mean(v[2] for v in vals[(first, s)]); b = st.mean(v[2] for v in vals[(m, s)])
            cells.append(f"{(b - a) / b * 100:+.1f} %")
        else:
            cells.append("")
    print(f"| {m} | " + " | ".join(cells) + " |")

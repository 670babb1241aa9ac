#!/usr/bin/python3
"""Non-neural reference points for a `chainz protocol` study (docs/RESULTS.md): context,
not part of chainz. On exactly the split files the study trained and tested on
(RUN_ROOT/data/seed-<s>/<size>/d-train.h5 and d-test.h5, chainz-data HDF5), fits
logistic regression, an RBF SVM, a random forest and gradient boosting (Debian's
python3-sklearn) and XGBoost (python3-xgboost) when installed, with features
standardized by the training split's statistics, and prints test accuracy mean +- sd over
the seeds per size as a Markdown table.
  /usr/bin/python3 bench/pima-references.py SPEC.json
"""
import json, os, statistics as st, sys
import h5py, numpy as np
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

spec = json.load(open(sys.argv[1]))
root = os.path.join(os.path.dirname(os.path.abspath(sys.argv[1])), spec["run_root"], "data")
models = {
    "logistic regression": lambda s: LogisticRegression(max_iter=1000),
    "SVM (RBF)": lambda s: SVC(),
    "random forest": lambda s: RandomForestClassifier(n_estimators=300, random_state=s),
    "gradient boosting": lambda s: GradientBoostingClassifier(random_state=s),
}
try:
    from xgboost import XGBClassifier
    models["XGBoost"] = lambda s: XGBClassifier(n_estimators=200, max_depth=4, learning_rate=0.1, random_state=s,
                                                n_jobs=1, verbosity=0)
except ImportError:
    pass


def load(p):
    with h5py.File(p, "r") as f:
        return np.asarray(f["features"], dtype=np.float64), np.asarray(f["labels"]).astype(int)


sizes = sorted({z for s in os.listdir(root) for z in os.listdir(os.path.join(root, s))},
               key=lambda z: -float(z.split("-", 1)[1]) if z.startswith("frac-") else 0)
acc = {}
for seed_dir in sorted(os.listdir(root)):
    seed = int(seed_dir.split("-")[1])
    for size in sizes:
        d = os.path.join(root, seed_dir, size)
        if not os.path.exists(os.path.join(d, "d-test.h5")):
            continue
        xtr, ytr = load(os.path.join(d, "d-train.h5"))
        xte, yte = load(os.path.join(d, "d-test.h5"))
        sc = StandardScaler().fit(xtr)
        for name, make in models.items():
            m = make(seed).fit(sc.transform(xtr), ytr)
            acc.setdefault((name, size), []).append(float((m.predict(sc.transform(xte)) == yte).mean()))
print("| model | " + " | ".join(sizes) + " |")
print("|---" * (len(sizes) + 1) + "|")
for name in models:
    cells = []
    for z in sizes:
        v = acc.get((name, z), [])
        cells.append(f"{st.mean(v):.4f} ± {st.stdev(v):.4f} ({len(v)})" if len(v) > 1 else "")
    print(f"| {name} | " + " | ".join(cells) + " |")

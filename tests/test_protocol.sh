#!/bin/bash
# chainz protocol end to end on Pima (weka's diabetes.arff, launch/weka-examples.sh):
#  - a tiny study (2 seeds x 2 training-set sizes x 2 models, one with a 2-point DREG grid,
#    3 epochs, 8 hidden units): the report files exist; every run's accuracy in report.csv
#    equals its test.json from chainz eval (and result.json); the paired statistics of
#    report.md equal values recomputed here in python3 (stdlib only, other methods than the
#    C code: the t-distribution through the incomplete beta function, the Wilcoxon p by
#    enumerating all sign patterns); the grid was chosen on the validation split;
#  - running again trains nothing (no log or checkpoint changes, "8 done already");
#  - a run killed (kill -9 of the whole process group) after a checkpoint resumes from it;
#  - a run on 2 ranks (mpirun);
#  - bad specs: errors name the file, the line and the key (or column), exit 1.
# Usage: test_protocol.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
chainz="$build/chainz"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
t0=$(date +%s)
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
note() { echo "# $(($(date +%s) - t0))s: $*"; }

dir=$(bash "$src/launch/weka-examples.sh") && [ -f "$dir/diabetes.arff" ] ||
    { echo "SKIP: diabetes.arff not available (launch/weka-examples.sh)"; exit 77; }
arff="$dir/diabetes.arff"
cd "$work" || exit 1

cat >tiny.json <<EOF
{
  "name": "tiny Pima",
  "run_root": "runs",
  "data": {"arff": "$arff"},
  "split": {"train": 0.7, "val": 0.1, "test": 0.2},
  "seeds": [1, 2],
  "fractions": [1, {"count": 64}],
  "models": [
    {"name": "cr", "train": ["--act", "poly"], "grid": {"dreg": [0.001, 0.03]}},
    {"name": "relu", "train": ["--act", "relu", "--dreg", "0"]}
  ],
  "budget": {"epochs": 3},
  "train": ["--layers", "8", "--batch", "32", "--lr", "3e-3", "--no-tau"],
  "alpha": 0.05
}
EOF
note "tiny study: 8 runs, 12 trainings"
if "$chainz" protocol tiny.json --jobs 2 >run1.log 2>&1; then ok "protocol ran (exit 0)"
else bad "protocol failed: $(tail -5 run1.log)"; fi
for f in report.md report.csv report.png; do
    [ -s "runs/$f" ] && ok "runs/$f exists" || bad "runs/$f missing"
done
grep -q "^## Paired comparisons: cr against each other model" runs/report.md && ok "report has the comparisons" ||
    bad "no comparison section"

# the CSV against each run's eval JSON, the statistics against a recomputation
cat >check.py <<'EOF'
import csv, itertools, json, math, re, sys
ok = True
def fail(msg):
    global ok
    ok = False
    print("FAIL:", msg)
rows = list(csv.DictReader(open("runs/report.csv")))
if len(rows) != 8: fail("report.csv has %d runs, expected 8" % len(rows))
for r in rows:
    d = "runs/%s/%s/seed-%s" % (r["model"], r["fraction"], r["seed"])
    test = json.load(open(d + "/test.json"))
    res = json.load(open(d + "/result.json"))
    if abs(float(r["acc"]) - test["acc"]) > 1e-12 or res["test"]["acc"] != test["acc"]:
        fail("%s: csv acc %s, eval json %r" % (d, r["acc"], test["acc"]))
    if not test["data"].endswith("data/seed-%s/%s/d-test.h5" % (r["seed"], r["fraction"])):
        fail("%s evaluated on %s" % (d, test["data"]))
    if r["model"] == "cr":  # the grid choice: the best validation accuracy, ties to the first
        vals = res["validation"]
        best = max(range(len(vals)), key=lambda i: (vals[i]["acc"], -i))
        if res["selected"] != vals[best]["options"] or r["selected"] != vals[best]["options"]:
            fail("%s: selected %s, validation %r" % (d, res["selected"], vals))
        if res["run"] != "grid-%d" % best: fail("%s: test run %s, best grid-%d" % (d, res["run"], best))
if ok: print("ok: report.csv accuracies equal the 8 runs' chainz eval JSON; grid choices follow validation")

def betacf(a, b, x):  # continued fraction of the incomplete beta (Numerical Recipes)
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / d
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d; c = 1 + aa / c; d = 1 / d; h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d; c = 1 + aa / c; d = 1 / d; h *= d * c
    return h
def betai(a, b, x):
    if x <= 0: return 0.0
    if x >= 1: return 1.0
    bt = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    return bt * betacf(a, b, x) / a if x < (a + 1) / (a + b + 2) else 1 - bt * betacf(b, a, 1 - x) / b
def ttest(d):
    n = len(d); m = sum(d) / n
    if n < 2: return m, 0.0, 0.0, 1.0
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    if sd == 0: return m, 0.0, 0.0, (1.0 if m == 0 else 0.0)
    t = m / (sd / math.sqrt(n)); df = n - 1
    return m, sd, t, betai(df / 2, 0.5, df / (df + t * t))
def wilcoxon(d):
    nz = [x for x in d if x != 0]
    if not nz: return 0, 0, 1.0
    a = sorted(abs(x) for x in nz)
    rank = {v: (a.index(v) + 1 + len(a) - a[::-1].index(v)) / 2 for v in a}
    wp = sum(rank[abs(x)] for x in nz if x > 0); wm = sum(rank[abs(x)] for x in nz if x < 0)
    ranks = [rank[abs(x)] for x in nz]
    if len(set(a)) == len(a):  # exact: every sign pattern
        sums = [sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=len(ranks))]
        p = 2 * min(sum(s <= wp for s in sums), sum(s >= wp for s in sums)) / len(sums)
    else:
        n = len(a); ties = sum(c ** 3 - c for c in (a.count(v) for v in set(a)))
        z = (wp - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - ties / 48)
        p = math.erfc(abs(z) / math.sqrt(2))
    return wp, wm, min(1.0, p)
acc = {(r["model"], r["fraction"], r["seed"]): float(r["acc"]) for r in rows}
table = {}
for line in open("runs/report.md"):
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    if len(c) == 13 and c[1] == "relu": table[c[0]] = c
m = re.search(r"(\d+) comparisons made, alpha = ([0-9.]+), per-comparison level alpha / \d+ = ([0-9.e-]+)", open("runs/report.md").read())
if not m or int(m.group(1)) != 2 or abs(float(m.group(3)) - 0.025) > 1e-12: fail("Bonferroni line: %r" % (m and m.group(0)))
for frac in ("frac-1", "count-64"):
    d = [acc[("cr", frac, s)] - acc[("relu", frac, s)] for s in ("1", "2")]
    mean, sd, t, p = ttest(d)
    wp, wm, pw = wilcoxon(d)
    wins = "%d/%d/%d" % (sum(x > 0 for x in d), sum(x == 0 for x in d), sum(x < 0 for x in d))
    c = table.get(frac)
    if not c: fail("no comparison row for " + frac); continue
    got = dict(n=int(c[2]), mean=float(c[3]), sd=float(c[4]), t=float(c[5]), p=float(c[6]), wp=float(c[7]), wm=float(c[8]), pw=float(c[9]), wins=c[11])
    want = dict(n=2, mean=mean, sd=sd, t=t, p=p, wp=wp, wm=wm, pw=pw, wins=wins)
    # the report prints mean and sd with 4 decimals, t with 3, p with 4 significant digits
    tol = dict(mean=5e-5, sd=5e-5, t=5e-4, p=5e-4 * max(p, 1e-3), pw=5e-4 * pw)
    for k in want:
        if k not in tol:
            if got[k] != want[k]: fail("%s %s: report %r, recomputed %r" % (frac, k, got[k], want[k]))
        elif abs(got[k] - want[k]) > tol[k]: fail("%s %s: report %r, recomputed %r" % (frac, k, got[k], want[k]))
    if ok: print("ok: %s cr vs relu: d = %s, t = %.3f, p = %.4g, Wilcoxon W+ = %g p = %.4g, %s: as recomputed" % (frac, d, t, p, wp, pw, wins))
sys.exit(0 if ok else 1)
EOF
if python3 check.py >check.log 2>&1; then cat check.log; else cat check.log; bad "report does not match the runs"; fi

# running again: nothing is trained
logs() { ls -l runs/*/*/*/*.log | awk '{print $5, $9}' | md5sum; }
before=$(logs)
ckpts=$(find runs -name 'ckpt-*.h5' | sort | md5sum)
if "$chainz" protocol tiny.json >run2.log 2>&1 && grep -q "8 runs (2 models x 2 fractions x 2 seeds), 8 done already, 0 to run" run2.log &&
    [ "$before" = "$(logs)" ] && [ "$ckpts" = "$(find runs -name 'ckpt-*.h5' | sort | md5sum)" ]; then
    ok "running again skips the 8 finished runs (no log or checkpoint changes)"
else bad "rerun: $(head -3 run2.log)"; fi
"$chainz" protocol tiny.json --task 5 >task5.log 2>&1 && grep -q "relu/frac-1/seed-2: done already" task5.log &&
    ok "--task 5 of a finished run: done already" || bad "--task 5: $(cat task5.log)"
note "skip checked"

# a killed run resumes from its checkpoint
python3 -c 'import json; s=json.load(open("tiny.json")); s.update(run_root="killed", seeds=[1], fractions=[1], models=s["models"][1:], budget={"epochs": 60}); s["train"][1]="64,64"; print(json.dumps(s))' >kill.json
setsid "$chainz" protocol kill.json >kill1.log 2>&1 &
pid=$!
cell=killed/relu/frac-1/seed-1
for _ in $(seq 400); do [ -s "$cell/run/checkpoints/latest" ] && break; sleep 0.025; done
kill -9 -- -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if [ -s "$cell/run/checkpoints/latest" ] && [ ! -f "$cell/result.json" ]; then
    ok "killed (kill -9 of the process group) after checkpoint $(cat "$cell/run/checkpoints/latest"), no result.json"
    if "$chainz" protocol kill.json >kill2.log 2>&1 && grep -q "chainz: resumed from" "$cell/train.log" &&
        [ -f "$cell/result.json" ] && [ "$(wc -l <"$cell/run/history.jsonl")" -eq 60 ]; then
        ok "the rerun resumed it ($(grep -o 'resumed from [^:]*: epoch [0-9]*' "$cell/train.log" | tail -1)) and finished 60 epochs"
    else bad "resume: $(tail -3 kill2.log; tail -3 "$cell/train.log")"; fi
else
    bad "could not kill the run between its first checkpoint and its end ($(ls "$cell" 2>&1 | tr '\n' ' '))"
fi
note "resume checked"

# 2 ranks per run: mpirun
python3 -c 'import json; s=json.load(open("kill.json")); s.update(run_root="mpi", ranks=2, budget={"epochs": 2}); print(json.dumps(s))' >mpi.json
if "$chainz" protocol mpi.json >mpi.log 2>&1 && grep -q "2 ranks x 1 thread" mpi/relu/frac-1/seed-1/train.log &&
    [ -f mpi/relu/frac-1/seed-1/result.json ]; then ok "ranks 2: trained by mpirun on 2 ranks"
else bad "ranks 2: $(tail -3 mpi.log)"; fi

# bad specs: file, line, key
expect_bad() { # DESCRIPTION PATTERN (the spec is bad.json)
    "$chainz" protocol bad.json >bad.out 2>&1
    local rc=$?
    if [ $rc -eq 1 ] && grep -qF -- "$2" bad.out; then ok "bad spec ($1): $(head -1 bad.out)"
    else bad "bad spec ($1): exit $rc, $(head -2 bad.out)"; fi
}
sed 's/"alpha": 0.05/"alpha": 0.05, "epochz": 3/' tiny.json >bad.json
expect_bad "unknown key" 'bad.json:14: unknown key "epochz" in the spec'
sed 's/"--no-tau"\]/"--no-tau",]/' tiny.json >bad.json
expect_bad "trailing comma" "bad.json:13:74: expected a value after ',' (no trailing commas), got ']'"
sed 's/"--act", "relu"/"--act", "relu", "--out", "x"/' tiny.json >bad.json
expect_bad "option set by the protocol" 'bad.json:10: "train": --out is set by the protocol'
sed 's/"fractions": \[1,/"fractions": [0,/' tiny.json >bad.json
expect_bad "fraction 0" 'bad.json:7: "fractions": expected numbers in (0, 1]'
sed 's/"grid": {"dreg"/"grid": {"--dreg"/' tiny.json >bad.json
expect_bad "grid key with dashes" 'bad.json:9: grid key "--dreg"'
grep -v '"budget"' tiny.json >bad.json
expect_bad "no budget" '"budget": expected an object'
sed 's/"val": 0.1, "test": 0.2/"test": 0.3/' tiny.json >bad.json
expect_bad "grid without validation" 'bad.json:9: "grid": expected a validation split'
sed 's/"models": \[/"models": [{"name": "cr", "train": []},/' tiny.json >bad.json
expect_bad "duplicate model" '"name": expected distinct model names'
printf '{"run_root": "r",\n "seeds": [1], "seeds": [2]}' >bad.json
expect_bad "duplicate key" 'bad.json:2: key "seeds" appears twice'
sed 's/"models": \[/"models": [{"name": "report.md", "train": []},/' tiny.json >bad.json
expect_bad "a model named like the report" '"name": expected a model name other than data, slurm, corruption and report.*'
sed 's/"alpha": 0.05/"alpha": 0.05, "metric": "mae"/' tiny.json >bad.json
expect_bad "mae without an ordinal head" '"metric": expected "acc" here: "mae" needs --head ordinal'
/usr/bin/python3 -c 'import json; s = json.load(open("tiny.json")); s["name"] = "T\nsystem \"touch PWNED\""; json.dump(s, open("bad.json", "w"))'
expect_bad "a newline in the name (it would reach gnuplot)" '"name": expected a short string without control characters'
[ ! -e PWNED ] && ok "nothing ran from the name" || bad "a command in the name ran"
mkfifo fifo.json
timeout 10 "$chainz" protocol fifo.json --check >fifo.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "not a regular file" fifo.out && ok "a FIFO as the spec: exit 1 at once" || bad "FIFO spec: exit $rc"
sed 's/"run_root": "[^"]*"/"run_root": "none-yet"/' tiny.json >empty.json
"$chainz" protocol empty.json --report >empty.out 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "none of the .* runs has finished yet" empty.out && [ ! -e none-yet/report.md ] &&
    ok "--report with no finished run: exit 1, says so, writes no report" || bad "--report with no runs: exit $rc, $(head -2 empty.out)"
sed 's/"epochs": 3/"epochs": 4/' tiny.json >bad.json
expect_bad "results of another spec" 'was made by another spec (first difference: this spec has "epochs=4'

note "done"
echo "test_protocol: $fails failure(s)"
[ $fails -eq 0 ]

#!/usr/bin/env bash
# The issue-15 benchmark in one command: chainz vs PyTorch, side by side in ONE run, one table.
#
#   bash bench/run.sh [--quick] [--build DIR] [--work DIR] [--keep]
#
#   --quick   smoke version (2 reps, probes K=16 only, short training runs, 8 s cap per
#             PyTorch form's warm-up step): a few minutes on 2 cores
#   default   full: 5 reps, probes K=8,16,32, longer training runs, 60 s cap
#   --build   build directory (default: <repo>/build; configured and built when needed)
#   --work    scratch directory for data and run directories (default: a mktemp dir, removed
#             at the end unless --keep)
#
# What it measures (every figure from this one run; the machine is shared and noisy, so
# read the ratios, not the absolute numbers):
#   1. per shape (yelp, fmnist, pima) and DREG mode: build/bench_step --config C --json
#      --mode M --probes K (BLIS sgemm rate on the stream shapes and chainz's step), and
#      bench/torch_step.py's PyTorch forms (dual, gram, probe K, vmap, plain), with the
#      ratio PyTorch time / chainz time (> 1: chainz is faster). If bench_step does not
#      accept --mode (non-zero exit), the gram and probe rows say so; the exact row then
#      falls back to bench_step without --mode (its only step, the exact stream);
#   2. end-to-end samples/s of `chainz train` on 1 and 2 ranks (yelp-shape synthetic data
#      from build/make_data; the time of an N+2-step run minus a 2-step run, --max-steps)
#      vs PyTorch DDP over gloo (bench/torch_ddp.py), for the CR model with DREG and for a
#      ReLU MLP (lambda 0), the latter also with --no-tau and with --reduce exact|float;
#   3. what tau costs a ReLU baseline's step, in one process: build/bench_tau on a checkpoint
#      of one epoch of that model (the step with and without tau, alternated; the ratio).
# A benchmark, never a test: it is not part of tests/run_all.sh or ctest.
# Needs /usr/bin/python3 with torch (Debian: apt-get install python3-torch).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build"
work=""
quick=0
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --build) build=$2; shift 2 ;;
        --work) work=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown option '$1'" >&2; exit 1 ;;
    esac
done
PY=${CHAINZ_BENCH_PYTHON:-/usr/bin/python3}
"$PY" -c 'import torch' 2>/dev/null || {
    echo "run.sh: $PY cannot import torch (Debian: apt-get install python3-torch)" >&2; exit 1; }

if [ $quick -eq 1 ]; then
    reps=2; probes="16"; cap=8; cr_steps=4; relu_steps=6; relu_fast_steps=50; ddp_cr_steps=3; ddp_relu_steps=20
else
    reps=5; probes="8 16 32"; cap=60; cr_steps=10; relu_steps=40; relu_fast_steps=200; ddp_cr_steps=10; ddp_relu_steps=100
fi
configs="yelp fmnist pima"

# build if needed (an up-to-date build is a no-op)
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" -j2 >/dev/null
for t in bench_step bench_tau chainz make_data; do
    [ -x "$build/$t" ] || { echo "run.sh: $build/$t missing after the build" >&2; exit 1; }
done

if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/chainz-run.XXXXXX")
    [ $keep -eq 1 ] || trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
res="$work/results.tsv"
: >"$res"
log() { echo "run.sh: $*" >&2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# ---- 1. chainz step (bench_step) per config and mode -------------------------------------
# result lines: chainz_step <TAB> config <TAB> mode <TAB> K <TAB> status <TAB> json|message
has_mode=0 # does this bench_step know --mode? (then a refusal is reported, not "no --mode")
bs_help=$("$build/bench_step" --help 2>&1 || true)
case "$bs_help" in *--mode*) has_mode=1 ;; esac
step_modes="exact gram"
for k in $probes; do step_modes="$step_modes probe:$k"; done
for c in $configs; do
    batch=128
    [ "$c" = pima ] && batch=64 # Pima's batch, as in torch_step.py
    for m in $step_modes; do
        mode=${m%%:*}; k=0
        [ "$mode" = probe ] && k=${m#probe:}
        margs=(--mode "$mode")
        [ "$mode" = probe ] && margs+=(--probes "$k") # K is probe mode's alone
        log "bench_step --config $c ${margs[*]}"
        # the JSON object of the run: its last line that starts with '{' (one line, tab-free)
        if out=$("$build/bench_step" --config "$c" --batch "$batch" --reps "$reps" --json \
                 "${margs[@]}" 2>"$work/bs.err" | grep '^{' | tail -n 1) && [ -n "$out" ]; then
            printf 'chainz_step\t%s\t%s\t%s\tok\t%s\n' "$c" "$mode" "$k" "$out" >>"$res"
        elif [ $has_mode -eq 1 ]; then
            # bench_step knows --mode but refused this one (e.g. gram where n_1 >= d): say why
            msg=$(tail -n 1 "$work/bs.err" | tr '\t' ' ' | cut -c1-60)
            printf 'chainz_step\t%s\t%s\t%s\tna\tn/a: %s\n' "$c" "$mode" "$k" "${msg:-failed}" >>"$res"
        elif [ "$mode" = exact ] &&
             out=$("$build/bench_step" --config "$c" --batch "$batch" --reps "$reps" --json \
                   2>>"$work/bs.err" | grep '^{' | tail -n 1) && [ -n "$out" ]; then
            # bench_step without --mode times the exact stream: the only DREG step it has
            printf 'chainz_step\t%s\t%s\t%s\tnomode\t%s\n' "$c" "$mode" "$k" "$out" >>"$res"
        else
            printf 'chainz_step\t%s\t%s\t%s\tna\tn/a (bench_step has no --mode)\n' "$c" "$mode" "$k" >>"$res"
        fi
    done
done

# ---- 1b. PyTorch forms ---------------------------------------------------------------------
for c in $configs; do
    log "torch_step.py --config $c"
    "$PY" "$here/torch_step.py" --config "$c" --reps "$reps" --probes "${probes// /,}" \
        --cap "$cap" --json | sed 's/^/torch_step\t/' >>"$res"
done

# ---- 2. end to end -------------------------------------------------------------------------
data="$work/yelp-shape.h5"
[ -s "$data" ] || "$build/make_data" "$data" --n 4096 --d 300 --classes 5 --seed 1 >/dev/null

# e2e NAME RANKS STEPS ARGS...: wall time of a (STEPS+2)-step run minus a 2-step run
e2e() {
    local name=$1 ranks=$2 steps=$3; shift 3
    local t=() n
    for n in 2 $((steps + 2)); do
        rm -rf "$work/run"
        local s e
        s=$(date +%s.%N)
        if ! "$root/launch/mpirun.sh" -n "$ranks" -- "$build/chainz" train --data "$data" \
             --out "$work/run" --layers 512,512 --batch 128 --epochs 1000 --ckpt-every-epochs 0 \
             --seed 1 --max-steps "$n" "$@" >"$work/train.log" 2>&1; then
            printf 'e2e\t%s\t%s\tfail\t%s\n' "$name" "$ranks" "$(tail -1 "$work/train.log")" >>"$res"
            return 0
        fi
        e=$(date +%s.%N)
        t+=("$(awk -v s="$s" -v e="$e" 'BEGIN { print e - s }')")
    done
    awk -v a="${t[0]}" -v b="${t[1]}" -v n="$steps" -v name="$name" -v r="$ranks" 'BEGIN {
        printf "e2e\t%s\t%s\tok\t%.2f\t%d steps in %.2f s\n", name, r, n * 128 / (b - a), n, b - a }' >>"$res"
}
for r in 1 2; do
    log "chainz train cr (poly, DREG 0.01, exact stream), $r rank(s)"
    e2e cr "$r" "$cr_steps" --act poly --dreg 0.01 --dreg-mode exact
    log "chainz train cr (poly, DREG 0.01, probe K=16: what auto picks here), $r rank(s)"
    e2e cr-probe "$r" "$cr_steps" --act poly --dreg 0.01 --dreg-mode probe --dreg-probes 16
done
for r in 1 2; do
    for tau in tau no-tau; do
        for red in exact float; do
            [ "$r" = 1 ] && [ "$red" = float ] && continue # one rank: nothing to reduce
            a=(--act relu --dreg 0 --reduce "$red")
            [ "$tau" = no-tau ] && a+=(--no-tau)
            log "chainz train relu $tau --reduce $red, $r rank(s)"
            n=$relu_steps
            [ "$tau" = no-tau ] && n=$relu_fast_steps # without tau a ReLU step is ms
            e2e "relu/$tau/$red" "$r" "$n" "${a[@]}"
        done
    done
done
log "bench_tau (tau's cost on the ReLU step, in one process)"
rm -rf "$work/relu-ckpt"
if "$build/chainz" train --data "$data" --out "$work/relu-ckpt" --layers 512,512 --act relu --dreg 0 --batch 128 \
       --epochs 1 --no-tau --seed 1 >"$work/train.log" 2>&1; then
    "$build/bench_tau" "$work/relu-ckpt/checkpoints/$(cat "$work/relu-ckpt/checkpoints/latest")" "$data" \
        --steps "$relu_fast_steps" >"$work/tau.out" 2>&1 || echo "bench_tau failed: $(tail -1 "$work/tau.out")" >"$work/tau.out"
else
    echo "bench_tau: the ReLU checkpoint failed: $(tail -1 "$work/train.log")" >"$work/tau.out"
fi
log "torch_ddp.py"
"$PY" "$here/torch_ddp.py" --model cr --procs 1,2 --steps "$ddp_cr_steps" --json | sed 's/^/ddp\t/' >>"$res"
"$PY" "$here/torch_ddp.py" --model relu --procs 1,2 --steps "$ddp_relu_steps" --json | sed 's/^/ddp\t/' >>"$res"

# ---- the table -----------------------------------------------------------------------------
"$PY" - "$res" "$quick" "$build" <<'EOF'
import json, sys, platform, datetime
res, quick, build = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
step, torch_rows, e2e, ddp = {}, {}, {}, {}
for line in open(res):
    f = line.rstrip("\n").split("\t")
    if f[0] == "chainz_step":
        c, m, k, st, rest = f[1], f[2], int(f[3]), f[4], f[5]
        step[(c, m, k)] = (st, json.loads(rest) if st in ("ok", "nomode") else rest)
    elif f[0] == "torch_step":
        r = json.loads(f[1]); torch_rows[(r["config"], r["form"], r["K"] or 0)] = r
    elif f[0] == "e2e":
        e2e[(f[1], int(f[2]))] = (f[3], f[4:])
    elif f[0] == "ddp":
        r = json.loads(f[1]); ddp[(r["model"], r["procs"])] = r
arch = next((v[1].get("blis_arch") for v in step.values() if isinstance(v[1], dict)), "?")
import torch
print(f"== chainz vs PyTorch, {'QUICK' if quick else 'FULL'} run, {datetime.datetime.now():%Y-%m-%d %H:%M}, "
      f"{platform.node()}, BLIS kernels {arch}, torch {torch.__version__}, 1 thread per process")
print()
print("Step (one training step, float32, 1 thread; medians; ratio = PyTorch ms / chainz ms, > 1: chainz faster)")
hdr = f"{'shape':7s} {'mode':9s} {'sgemm GF/s':>10s} {'chainz ms':>10s} {'chainz/sgemm':>12s}  {'PyTorch form':13s} {'torch ms':>10s} {'ratio':>7s}"
print(hdr); print("-" * len(hdr))
def tcell(c, form, k):
    r = torch_rows.get((c, form, k))
    if r is None: return None, "-"
    if r["status"] != "ok": return None, r["status"]
    return r["median_ms"], f"{r['median_ms']:.2f}"
for c in ("yelp", "fmnist", "pima"):
    ks = sorted({k for (cc, m, k) in step if cc == c and m == "probe"})
    modes = [("exact", 0, ["dual", "vmap"]), ("gram", 0, ["gram"])] + [("probe", k, ["probe"]) for k in ks]
    for m, k, forms in modes:
        st, v = step.get((c, m, k), ("na", "not run"))
        lab = m if m != "probe" else f"probe {k}"
        if st in ("ok", "nomode"):
            cms = v.get("step_ms")
            ccell = f"{cms:10.2f}" if cms is not None else f"{'?':>10s}"
            sg = f"{v['sgemm_gflops']:10.1f}" if "sgemm_gflops" in v else f"{'?':>10s}"
            rat = f"{100 * v['ratio']:11.1f}%" if v.get("ratio") else f"{'-':>12s}"
            if st == "nomode": lab += "*"
        else:
            cms, ccell, sg, rat = None, f"{v:>34s}", "", ""
        for i, form in enumerate(forms):
            tms, tc = tcell(c, form, k)
            ratio = f"{tms / cms:7.2f}" if (tms and cms) else f"{'-':>7s}"
            if st in ("ok", "nomode"):
                left = f"{c:7s} {lab:9s} {sg} {ccell} {rat}" if i == 0 else " " * 53
            else:
                left = f"{c:7s} {lab:9s} {v}" if i == 0 else ""
                left = f"{left:53s}"
            print(f"{left}  {form + (f' K={k}' if form == 'probe' else ''):13s} {tc:>10s} {ratio}")
    # plain MLP step
    pv = next((v for (cc, m, k), (st, v) in step.items() if cc == c and isinstance(v, dict)), None)
    tms, tc = tcell(c, "plain", 0)
    cms = pv.get("mlp_step_ms") if pv else None
    ratio = f"{tms / cms:7.2f}" if (tms and cms) else f"{'-':>7s}"
    print(f"{c:7s} {'plain':9s} {'':10s} {cms if cms is not None else float('nan'):10.3f} {'':12s}  {'plain':13s} {tc:>10s} {ratio}")
    print()
if any(st == "nomode" for st, v in step.values()):
    print("* bench_step has no --mode: the exact row is bench_step's default step (the exact stream)")
    print()
print("End to end (yelp shape d=300, 512,512, 5 classes, global batch 128; samples/s; chainz: (N+2)-step minus 2-step run)")
hdr = f"{'model':30s} {'ranks':>5s} {'chainz samples/s':>17s} {'DDP samples/s':>14s} {'chainz/DDP':>10s}"
print(hdr); print("-" * len(hdr))
rows = [("CR poly, DREG 0.01, exact", "cr", "cr"), ("CR poly, DREG 0.01, probe K=16", "cr-probe", "cr")] + [
    (f"ReLU, {t}, --reduce {r}", f"relu/{t}/{r}", "relu") for t in ("tau", "no-tau") for r in ("exact", "float")]
for label, key, dkey in rows:
    for n in (1, 2):
        if (key, n) not in e2e: continue
        st, rest = e2e[(key, n)]
        cz = float(rest[0]) if st == "ok" else None
        d = ddp.get((dkey, n))
        dv = d["samples_per_s"] if d else None
        ratio = f"{cz / dv:10.2f}" if (cz and dv) else f"{'-':>10s}"
        czs = f"{cz:17.1f}" if cz else f"{'fail':>17s}"
        print(f"{label:30s} {n:5d} {czs} {dv if dv else float('nan'):14.1f} {ratio}")
print("(DDP: the CR model in the explicit dual stream (exact) for both CR rows; the ReLU model is the same for every")
print(" chainz variant: PyTorch has no tau recording and sums gradients in float)")
EOF
echo
echo "tau's cost on the ReLU baseline's step (issue 15: at most 1.3x), in one process:"
cat "$work/tau.out"

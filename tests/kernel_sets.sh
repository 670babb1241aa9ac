#!/usr/bin/env bash
# Bitwise results on every BLIS kernel set this machine can run (issue 13, section 1).
# BLIS picks different micro-kernels per CPU; chainz's claim "the same bits for any rank
# count and thread count" must hold for each of them, not only for the one BLIS picks
# here. For each kernel set that tests/blis_kernels.c finds runnable (BLIS_ARCH_TYPE):
#  - test_engine's thread-count test (1 vs 2 threads, shapes on both sides of the
#    small-GEMM threshold, in exact, gram and probe mode);
#  - chainz train end to end on the issue's reproduction (5 classes, --layers 64,48,
#    --micro-batch 16, 4 chunks per step, dropout, DREG): 1 rank x 1 thread against 1x2, 2x2, 3x1
#    and 4x1, in one of the DREG stream modes (exact, gram, probe: they take turns over the
#    kernel sets), comparing the stored bytes of the final checkpoint (parameters, optimizer
#    moments, saved state), metrics.h5 and history.jsonl (tests/lib/bitwise.sh);
#  - and ranks on two different kernel sets (a mixed partition) are warned about.
# Usage: kernel_sets.sh BUILD_DIR [KERNEL_ID ...]   (default: every runnable set)
set -uo pipefail
build=$(cd "$1" && pwd); shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# the byte comparisons shared by every bitwise test (h5bytes digests of the stored bytes)
. "$(dirname "$0")/lib/bitwise.sh"
bw_init "$build" || exit 1
# more OpenMP threads than cores: spinning waits make oversubscribed runs ~20x slower
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

if [ $# -gt 0 ]; then sets=("$@"); else mapfile -t sets < <("$build/blis_kernels" | cut -d' ' -f1); fi
[ ${#sets[@]} -gt 0 ] || { echo "FAIL: no runnable BLIS kernel set found"; exit 1; }
echo "kernel sets: $("$build/blis_kernels" | tr '\n' ' ')"
"$build/make_data" "$work/d5.h5" --n 256 --d 24 --classes 5 --seed 3 >/dev/null || exit 1

# the DREG stream modes take turns over the kernel sets (each mode on a third of them; the
# engine's thread-count test above covers every mode on every set)
modes=("--layers 64,48 --dreg-mode exact" "--layers 16,48 --dreg-mode gram" "--layers 64,48 --dreg-mode probe --dreg-probes 4")
nset=0
for id in "${sets[@]}"; do
    export BLIS_ARCH_TYPE=$id
    mode=${modes[$((nset % 3))]}
    nset=$((nset + 1))
    if ! CZ_TEST_FILTER=test_engine_thread_count_does_not_change_bits "$build/test_engine" >"$work/eng.log" 2>&1; then
        bad "kernel set $id: test_engine thread-count test"; grep -E "FAILED|differ" "$work/eng.log" | head -3
    fi
    ref=""
    for cfg in "1 1" "1 2" "2 2" "3 1" "4 1"; do
        set -- $cfg
        out="$work/k$id-$1x$2"
        if ! timeout 120 mpirun -np "$1" --bind-to none "$build/chainz" train --data "$work/d5.h5" \
            --out "$out" $mode --batch 64 --micro-batch 16 --epochs 2 --dropout 0.1 \
            --dreg 0.01 --seed 5 --threads "$2" --log-seconds 1000 >"$out.log" 2>&1; then
            bad "kernel set $id: train on $1 ranks x $2 threads failed"; tail -3 "$out.log"; continue
        fi
        grep -q "kernels (BLIS_ARCH_TYPE=$id" "$out.log" || bad "kernel set $id: the log does not name the forced kernel set"
        if [ -z "$ref" ]; then ref=$out; continue; fi
        bw_same_run "$ref" "$out" ckpt metrics history
        case $? in
        0) ;;
        1) bad "kernel set $id ($(grep -o '[a-z0-9]* kernels' "$out.log" | head -1)): $1 ranks x $2 threads differ from 1 x 1" ;;
        *) bad "kernel set $id: could not compare $out with $ref" ;;
        esac
    done
    echo "kernel set $id ($(grep -o '[a-z0-9]* kernels' "$ref.log" | head -1)), $mode: checked"
done
# a mixed partition: ranks on different kernel sets must be told (MPMD: rank 0 on one set,
# ranks 1-2 on another)
if [ ${#sets[@]} -ge 2 ]; then
    a=${sets[0]} b=${sets[$((${#sets[@]} - 1))]}
    timeout 120 mpirun -np 1 -x BLIS_ARCH_TYPE="$a" "$build/chainz" train --data "$work/d5.h5" --out "$work/mixed" \
        --layers 8 --epochs 1 : -np 2 -x BLIS_ARCH_TYPE="$b" "$build/chainz" train --data "$work/d5.h5" \
        --out "$work/mixed" --layers 8 --epochs 1 >"$work/mixed.log" 2>&1 || bad "mixed kernel sets: the run failed"
    grep -q "ranks run different BLIS kernel sets (rank 0: .*, rank 2: " "$work/mixed.log" ||
        { bad "mixed kernel sets $a/$b: no warning"; tail -3 "$work/mixed.log"; }
fi
[ $fails -eq 0 ] && echo "kernel_sets: all bitwise" || echo "kernel_sets: $fails failure(s)"
[ $fails -eq 0 ]

#!/usr/bin/env bash
# The whole Release suite once per BLIS kernel set this machine can run (issue 13, "Done
# means": the suite passes with each kernel set forced). Not part of CI: about 5 minutes per
# set on 2 cores (10 sets here); CI runs the bitwise engine and MPI tests on every set
# through kernel_sets. kernel_sets itself is skipped (it forces each set on its own).
# Usage: tests/all_kernel_sets.sh BUILD_DIR [KERNEL_ID ...]   (default: every runnable set)
set -uo pipefail
build=$(cd "$1" && pwd); shift
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
if [ $# -gt 0 ]; then sets=("$@"); else mapfile -t sets < <("$build/blis_kernels" | cut -d' ' -f1); fi
[ ${#sets[@]} -gt 0 ] || { echo "no runnable BLIS kernel set found"; exit 1; }
fails=0
for k in "${sets[@]}"; do
    start=$(date +%s)
    log=$(mktemp)
    BLIS_ARCH_TYPE=$k ctest --test-dir "$build" -j"$(nproc)" -E '^kernel_sets$' --output-on-failure >"$log" 2>&1
    rc=$?
    echo "kernel set $k ($("$build/blis_kernels" | awk -v k="$k" '$1 == k {print $2}')): $(grep -E 'tests passed' "$log") ($(( $(date +%s) - start )) s)"
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        grep -E '\*\*\*Failed|FAIL' "$log" | head -10
    fi
    rm -f "$log"
done
echo "all_kernel_sets: $fails kernel set(s) with failures"
[ $fails -eq 0 ]

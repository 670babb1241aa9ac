#!/usr/bin/env bash
# Proves that the gradient tests can fail: copies the engine to a scratch tree, breaks one
# equation at a time (e.g. drops q*phi'' from dz) and requires test_gradcheck to FAIL on
# each mutant. Usage: tests/mutation_check.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/CMakeLists.txt" "$src/include" "$src/src" "$src/tests" "$src/bench" "$work/"
cmake -S "$work" -B "$work/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cp -r "$work/src" "$work/src.orig"

prev="" # the file the last mutant changed
mutate() { # mutate FILE NAME FROM TO   (FILE relative to src/engine; a target that is not
           # found fails the check: a refactoring must move the mutants with the code)
    # put back only the file the last mutant changed, with a new mtime so that make rebuilds
    # it (a fresh copy of the whole tree rebuilt every engine file for each mutant)
    [ -z "$prev" ] || cp "$work/src.orig/engine/$prev" "$work/src/engine/$prev"
    prev=$1
    local file="$work/src/engine/$1"; shift
    python3 - "$file" "$2" "$3" <<'PY'
import sys
p, a, b = sys.argv[1:4]
s = open(p).read()
if a not in s:
    sys.exit("mutation target not found: " + a)
open(p, "w").write(s.replace(a, b, 1))
PY
    cmake --build "$work/build" --target test_gradcheck >/dev/null
    if "$work/build/test_gradcheck" >/dev/null 2>&1; then
        echo "MUTANT SURVIVED: $1"; return 1
    fi
    echo "killed: $1"
}

fail=0
mutate engine.c "dz without q*phi''" 'dz[k] = gk * dphi[k] + qk * d2phi[k];' 'dz[k] = gk * dphi[k];' || fail=1
mutate engine.c "da2 without 2 z q" 'a2[i] += zk * (gk * zk + 2 * qk);' 'a2[i] += zk * (gk * zk);' || fail=1
mutate engine.c "da3 without 3 z^2 q" 'a3[i] += zk * zk * (gk * zk + 3 * qk);' 'a3[i] += zk * zk * (gk * zk);' || fail=1
mutate stream.c "U_{l-1} without 2 lambda S_{l-1}" 'params + L->w, n_in, V, Bk, c, ws->S[l - 1], Bk);' 'params + L->w, n_in, V, Bk, 0, ws->S[l - 1], Bk);' || fail=1
mutate stream.c "V_H = U_H (no D scaling; the top layer's backward fused into forward_row)" 'cz_real s = cd * Dv;' 'cz_real s = cd;' || fail=1
mutate stream.c "stream dW_l missing" 'cz_gemm(0, 1, n, n_in, Bk, 1, V, Bk, ws->S[l - 1], Bk, 1, grad + L->w, n_in);' ';' || fail=1
mutate stream.c "Gram: dW_1 += dF Q^T at half weight" 'cz_gemm(0, 0, n0, d, k, 1, ws->dseed, k, ws->qr, d, 1, grad + L->w, d);' 'cz_gemm(0, 0, n0, d, k, 0.5, ws->dseed, k, ws->qr, d, 1, grad + L->w, d);' || fail=1
mutate stream.c "probe directions scaled 1/K, not 1/sqrt(K)" 'cz_real v = (cz_real)(1.0 / sqrt((double)K));' 'cz_real v = (cz_real)(1.0 / (double)K);' || fail=1
mutate stream.c "probe: dW_1 += V_1 P missing" 'ws->P, d, 1, grad + L->w, d);' 'ws->P, d, 0, grad + L->w, d);' || fail=1
mutate engine.c "dropout mask missing in value stream" 'ws->h[l][k] *= ws->mask[l][k];' ';' || fail=1
mutate model.c "phi'' of tanh wrong sign" 'd2 = -2 * t * (1 - t * t);' 'd2 = 2 * t * (1 - t * t);' || fail=1
# control: the last mutant's file put back plus a change that changes nothing: test_gradcheck
# must pass again, or the rebuilds above did not restore the files (and a kill proved nothing)
if mutate engine.c "control: no change" 'ws->h[l][k] *= ws->mask[l][k];' 'ws->h[l][k] *= ws->mask[l][k];' >/dev/null; then
    echo "CONTROL FAILED: the restored engine fails test_gradcheck"; fail=1
else
    echo "control: the restored engine passes test_gradcheck"
fi
exit $fail

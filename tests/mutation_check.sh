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

mutate() { # mutate FILE NAME FROM TO   (FILE relative to src/engine)
    rm -rf "$work/src" && cp -r "$work/src.orig" "$work/src"
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
mutate engine.c "dz without q*phi''" 'dz[k] = gk * ws->dphi[l][k] + qk * ws->d2phi[k];' 'dz[k] = gk * ws->dphi[l][k];' || fail=1
mutate engine.c "da2 without 2 z q" 'da[2] += zk * (gk * zk + 2 * qk);' 'da[2] += zk * (gk * zk);' || fail=1
mutate engine.c "da3 without 3 z^2 q" 'da[3] += zk * zk * (gk * zk + 3 * qk);' 'da[3] += zk * zk * (gk * zk);' || fail=1
mutate engine.c "U_{l-1} without 2 lambda S_{l-1}" 'params + L->w, n_in, V, Bd, c, ws->S[l - 1], Bd);' 'params + L->w, n_in, V, Bd, 0, ws->S[l - 1], Bd);' || fail=1
mutate engine.c "V_H = U_H (no D scaling)" 'cz_real s = cd * Dv;' 'cz_real s = cd;' || fail=1
mutate engine.c "stream dW_l missing" 'cz_gemm(0, 1, n, n_in, Bd, 1, V, Bd, ws->S[l - 1], Bd, 1, grad + L->w, n_in);' ';' || fail=1
mutate engine.c "dropout mask missing in value stream" 'ws->h[l][k] *= ws->mask[l][k];' ';' || fail=1
mutate model.c "phi'' of tanh wrong sign" 'd2 = -2 * t * (1 - t * t);' 'd2 = 2 * t * (1 - t * t);' || fail=1
exit $fail

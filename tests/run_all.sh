#!/usr/bin/env bash
# The whole chainz test suite, from a fresh Debian machine: installs the build
# dependencies if missing, builds the Release tree and the ASan+UBSan tree, and runs
# every ctest test in both. Exits non-zero on any failure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/launch/setup-debian.sh"
# the parsers' fuzz test needs clang and its libFuzzer runtime (skipped if they cannot be had)
if ! command -v clang >/dev/null || ! dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q "ok installed"; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev \
        >/dev/null 2>&1 || echo "chainz tests: clang/libFuzzer not installable: fuzz_prep will be skipped"
fi
# mpirun as root (CI containers) and more ranks than cores are the project's business
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
jobs=$(nproc 2>/dev/null || echo 2)
for kind in release asan; do
    dir="$top/build-test-$kind"
    opts=(-DCMAKE_BUILD_TYPE=Release)
    [ "$kind" = asan ] && opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHAINZ_SANITIZE=ON)
    echo "== chainz tests: $kind build"
    cmake -S "$top" -B "$dir" "${opts[@]}" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    # the mutation check rebuilds the engine itself: once is enough
    skip=()
    [ "$kind" = asan ] && skip=(-LE "no-asan|fuzz")
    ctest --test-dir "$dir" --output-on-failure -j"$jobs" "${skip[@]}"
done
echo "== chainz tests: all passed"

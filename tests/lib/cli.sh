# The preamble the command-line test scripts share (source it, then cli_init "$1"):
# the build and chainz paths, mpirun as root and oversubscribed, ASan's leak check off for
# Open MPI's exit, passive OpenMP waits, a work directory removed on exit, ok/bad with a
# failure count, and the python3 that has h5py (Debian's, not a pyenv shim's).
cli_init() { # cli_init BUILD_DIR
    build=$(cd "$1" && pwd)
    chainz="$build/chainz"
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    fails=0
    py=/usr/bin/python3
    [ -x "$py" ] || py=python3
}
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# a refusal: the command exits with STATUS and its stderr contains PATTERN (a fixed string)
expect_status() { # expect_status STATUS PATTERN LABEL -- command...
    local want=$1 pat=$2 label=$3
    shift 4
    "$@" >"$work/out.txt" 2>"$work/err.txt"
    local st=$?
    if [ "$st" -eq "$want" ] && grep -qF -- "$pat" "$work/err.txt"; then
        ok "$label: status $st, $(head -c 200 "$work/err.txt")"
    else
        bad "$label: status $st (expected $want), stderr: $(cat "$work/err.txt") (expected to contain '$pat')"
    fi
}

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

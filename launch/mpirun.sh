#!/usr/bin/env bash
# chainz's mpirun wrapper: the settings a user should not have to remember.
#
#   launch/mpirun.sh [-n RANKS] [-t THREADS] [--hostfile FILE] [--dry-run] -- COMMAND [ARGS...]
#
#   -n RANKS      MPI ranks (default: SLURM_NTASKS, else 2)
#   -t THREADS    BLIS threads per rank (default: SLURM_CPUS_PER_TASK, else 1); passed to
#                 chainz as --threads when COMMAND is chainz train/eval and no --threads is given
#   --hostfile F  Open MPI hostfile for several nodes
#   --dry-run     print the mpirun command instead of running it
#
# What it sets, and why:
#   - running as root (containers, CI): OMPI_ALLOW_RUN_AS_ROOT=1 and ..._CONFIRM=1;
#   - more ranks than cores: --oversubscribe (otherwise Open MPI refuses to start);
#   - binding: one thread per rank binds ranks to cores (--bind-to core, stable timings);
#     several threads per rank bind each rank to THREADS cores (--map-by slot:PE=T), or
#     nothing when oversubscribed (bound ranks would share one core);
#   - BLIS_NUM_THREADS / OMP_NUM_THREADS = THREADS, exported to every rank (-x), and
#     BLIS_ARCH_TYPE when set, so that every node runs the kernel set chosen here (mpirun
#     does not pass the environment to other nodes; `chainz --kernels NAME` also works).
# Results do not depend on RANKS or THREADS with chainz's default --reduce exact.
set -euo pipefail
ranks=${SLURM_NTASKS:-2}
threads=${SLURM_CPUS_PER_TASK:-1}
hostfile=""
dry=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) ranks=$2; shift 2 ;;
        -t) threads=$2; shift 2 ;;
        --hostfile) hostfile=$2; shift 2 ;;
        --dry-run) dry=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "launch/mpirun.sh: no command given (see --help)" >&2; exit 1; }
case "$ranks$threads" in *[!0-9]*) echo "launch/mpirun.sh: -n and -t take numbers" >&2; exit 1 ;; esac

if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export BLIS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads

args=(-np "$ranks" -x BLIS_NUM_THREADS -x OMP_NUM_THREADS)
[ -n "${BLIS_ARCH_TYPE:-}" ] && args+=(-x BLIS_ARCH_TYPE)
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
cores=$(nproc 2>/dev/null || echo 1)
if [ -z "$hostfile" ] && [ $((ranks * threads)) -gt "$cores" ]; then
    args+=(--oversubscribe --bind-to none)
elif [ "$threads" -gt 1 ]; then
    args+=(--map-by "slot:PE=$threads" --bind-to core)
else
    args+=(--bind-to core)
fi

cmd=("$@")
# chainz train/eval: pass the thread count on unless the user chose one
if [ "${#cmd[@]}" -ge 2 ] && [[ "$(basename "${cmd[0]}")" == chainz* ]] && [[ "${cmd[1]}" == train || "${cmd[1]}" == eval ]]; then
    printf '%s\n' "${cmd[@]}" | grep -q -- '^--threads' || cmd+=(--threads "$threads")
fi
if [ "$dry" -eq 1 ]; then
    echo mpirun "${args[@]}" "${cmd[@]}"
    exit 0
fi
exec mpirun "${args[@]}" "${cmd[@]}"

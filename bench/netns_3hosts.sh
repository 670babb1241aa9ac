#!/bin/bash
# chainz train on 3 "hosts" over real TCP on one machine: three network namespaces joined
# by a bridge (in a namespace of its own), Open MPI's tcp BTL between them, one rank per
# host, daemons started through an rsh agent that enters the host's namespace (and a UTS
# namespace with the host's own name, so each daemon is a distinct node).
# Needs root. Deletes its namespaces, /etc/netns entries and temp files on exit (trap EXIT).
# Traffic goes only to the namespaces' private addresses (10.77.15.0/24, which exists only
# inside these namespaces) and loopback; every mpirun is bounded by `timeout`.
#
#   bench/netns_3hosts.sh BUILD_DIR DATA.h5 [STEPS_LO STEPS_HI] [REPS] [MODES] [REDUCES]
#   defaults: steps 2 and 12, REPS 1, MODES "exact probe relu" (an empty MODES: the network and placement check only), REDUCES "exact float".
#
# HI_PROBE and HI_RELU (environment) override STEPS_HI for those cases (their steps are
# short next to the noise of a process start). ALLREDUCE_BW=PATH (a build of
# bench/allreduce_bw.c) also times bare allreduces of the model's size over the 3 hosts.
# YIELD=1 makes waiting ranks yield the CPU (see below).
# For each case it prints the 3-host ms per step ((wall(HI) - wall(LO)) / (HI - LO), mpirun
# included, as in bench/scaling_measure.sh) next to a 1-rank run of the same case made in
# the same script (host 1, same launcher): "RESULT3H mode reduce ms_3hosts ms_1rank".
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "netns_3hosts: needs root (ip netns)" >&2; exit 1; }
build=$(cd "$1" && pwd)
data=$(readlink -f "$2")
lo=${3:-2}
hi=${4:-12}
reps=${5:-1}
modes=${6-"exact probe relu"}
reduces=${7:-"exact float"}
chainz="$build/chainz"
tag=cz15$$
br=${tag}b
hosts=("${tag}h1" "${tag}h2" "${tag}h3")
net=10.77.15
tmp=$(mktemp -d "${TMPDIR:-/tmp}/netns3.XXXXXX")

cleanup() {
    set +e
    for ns in "${hosts[@]}" "$br"; do
        if ip netns list | grep -qw "$ns"; then
            # processes still inside (a daemon of an interrupted run): stop them by pid
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null; done
            sleep 0.2
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
        rm -rf "/etc/netns/$ns"
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# network: bridge namespace, one veth pair per host (host end eth0), /etc/netns/H/hosts
ip netns add "$br"
ip -n "$br" link add br0 type bridge
ip -n "$br" link set br0 up
ip -n "$br" link set lo up
for i in 1 2 3; do
    h=${hosts[$((i - 1))]}
    ip netns add "$h"
    ip -n "$br" link add "v$i" type veth peer name eth0 netns "$h"
    ip -n "$br" link set "v$i" master br0
    ip -n "$br" link set "v$i" up
    ip -n "$h" addr add "$net.$i/24" dev eth0
    ip -n "$h" link set eth0 up
    ip -n "$h" link set lo up
    mkdir -p "/etc/netns/$h"
    {
        echo "127.0.0.1 localhost"
        for j in 1 2 3; do echo "$net.$j ${hosts[$((j - 1))]}"; done
    } >"/etc/netns/$h/hosts"
done
if command -v ping >/dev/null; then
    ip netns exec "${hosts[0]}" ping -c 1 -W 2 "$net.3" >/dev/null ||
        { echo "netns_3hosts: no connectivity between the namespaces" >&2; exit 1; }
fi  # (without ping, the placement check below is the connectivity test)

# the rsh agent: AGENT HOST COMMAND... runs COMMAND (a shell command line, as ssh would)
# in HOST's network namespace under its own host name
cat >"$tmp/agent.sh" <<'EOF'
#!/bin/bash
h=$1; shift
exec ip netns exec "$h" unshare --uts /bin/bash -c "hostname $h; $*"
EOF
chmod +x "$tmp/agent.sh"
printf '%s slots=1\n' "${hosts[@]}" >"$tmp/hostfile"

mpi_env=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1)
mca=(--mca plm_rsh_agent "$tmp/agent.sh" --mca btl tcp,self --mca pml ob1
     --mca btl_tcp_if_include eth0 --mca oob_tcp_if_include eth0)
# YIELD=1: --mca mpi_yield_when_idle 1. Each namespace host has one slot, so Open MPI does
# not know that the 3 ranks share this machine's 2 cores and busy-polls; a rank waiting in
# an allreduce then holds a core that a computing rank needs (measured: a 4-byte
# allreduce 8 ms without, see docs/BENCHMARKS.md). Real separate hosts need no such option.
[ "${YIELD:-0}" = 1 ] && mca+=(--mca mpi_yield_when_idle 1)

# in_host1 CMD...: run CMD in host 1's namespace under its name (mpirun lives there)
in_host1() {
    ip netns exec "${hosts[0]}" unshare --uts /bin/bash -c 'hostname "$0"; exec "$@"' "${hosts[0]}" \
        env "${mpi_env[@]}" "$@"
}

echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(uname -r), $(nproc) CPUs; hosts ${hosts[*]} on $net.0/24; YIELD=${YIELD:-0}"
echo "-- placement check (hostname of each rank):"
in_host1 timeout 60 mpirun -np 3 --hostfile "$tmp/hostfile" "${mca[@]}" hostname

if [ -n "${ALLREDUCE_BW:-}" ]; then
    echo "-- bare allreduces, 3 hosts over TCP:"
    in_host1 timeout 300 mpirun -np 3 --hostfile "$tmp/hostfile" "${mca[@]}" "$ALLREDUCE_BW"
    echo "-- bare allreduces, 3 ranks in host 1 (tcp over loopback):"
    in_host1 timeout 300 mpirun -np 3 "${mca[@]}" "$ALLREDUCE_BW"
fi

common=(--data "$data" --layers 512,512 --head ordinal --batch 128 --epochs 1 --no-tau)
case_args() {
    case $1 in
        exact) echo "--dreg-mode exact" ;;
        probe) echo "--dreg-mode probe --dreg-probes 16" ;;
        relu)  echo "--act relu --dreg 0" ;;
    esac
}
# wall NP MODE REDUCE STEPS: seconds of one end-to-end run (NP 3: one rank per host)
wall() {
    local np=$1 mode=$2 red=$3 steps=$4 out="$tmp/run-$1-$2-$3-$4" hf=()
    [ "$np" = 3 ] && hf=(--hostfile "$tmp/hostfile")
    local t0 t1
    t0=$(date +%s.%N)
    # shellcheck disable=SC2046
    in_host1 timeout 900 mpirun -np "$np" "${hf[@]}" "${mca[@]}" --bind-to none \
        "$chainz" train "${common[@]}" $(case_args "$mode") --reduce "$red" --max-steps "$steps" \
        --out "$out" >"$out.log" 2>&1 ||
        { echo "run failed: np $np $mode $red $steps" >&2; tail -5 "$out.log" >&2; exit 1; }
    t1=$(date +%s.%N)
    if [ "$np" = 3 ] && [ ! -e "$tmp/shown" ]; then
        grep -E "rank|kernels|model" "$out.log" | head -4; touch "$tmp/shown"
    fi
    rm -rf "$out"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
per_step() { awk -v a="$1" -v b="$2" -v n=$(($3 - lo)) 'BEGIN { printf "%.1f", (b - a) * 1000 / n }'; }

for rep in $(seq 1 "$reps"); do
    for mode in $modes; do
        for red in $reduces; do
            h=$hi
            [ "$mode" = probe ] && h=${HI_PROBE:-$hi}
            [ "$mode" = relu ] && h=${HI_RELU:-$hi}
            a=$(wall 3 "$mode" "$red" "$lo"); b=$(wall 3 "$mode" "$red" "$h")
            c=$(wall 1 "$mode" "$red" "$lo"); d=$(wall 1 "$mode" "$red" "$h")
            echo "RESULT3H $mode $red $(per_step "$a" "$b" "$h") $(per_step "$c" "$d" "$h") rep $rep steps $lo/$h"
        done
    done
done

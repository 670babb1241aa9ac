# A single-node SLURM cluster of its own for a test, sourced by tests/test_slurm.sh and
# tests/test_protocol_slurm.sh: installs Debian's slurmctld slurmd slurm-client munge if
# missing, writes its own munge key and socket and its own slurm.conf (SLURM_CONF, unusual
# ports; nothing under /etc changes), starts the daemons, waits for the node, and defines
# the helpers below (field, job_is, ended, requeued, release, ...). Expects the caller's
# variables and functions: build, src, t0, skip, ok, bad, note.
have_all() { for c in munged mungekey slurmctld slurmd sbatch scontrol squeue sinfo scancel; do command -v "$c" >/dev/null || return 1; done; }
if ! have_all; then
    note "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurmctld slurmd slurm-client munge)
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null 2>&1
        apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 || skip "apt-get install ${pkgs[*]} failed"
    fi
    have_all || skip "SLURM or munge commands missing after apt-get install"
fi

# nothing of an enclosing SLURM job (a CI runner inside SLURM) may leak into this cluster
for v in $(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset SBATCH_EXPORT SBATCH_PARTITION SQUEUE_FORMAT SINFO_FORMAT

# ---- the temporary cluster ----
work=$(mktemp -d /tmp/chainz-slurm.XXXXXX) || exit 1
chmod 755 "$work"
cleanup() {
    set +e
    trap - EXIT INT TERM
    if [ -f "$work/slurmctld.pid" ] && command -v squeue >/dev/null; then
        jobs=$(squeue -h -o %i 2>/dev/null)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null
            for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
        fi
    fi
    for d in slurmd slurmctld munge/munged; do
        f="$work/$d.pid"
        [ -f "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { echo "# $d (pid $pid) ignored SIGTERM: SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
    done
    if [ -n "${KEEP_SLURM_TEST:-}" ]; then echo "# kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "# interrupted"; exit 1' INT TERM
logs() { # the daemons' logs, for a failure that concerns them
    for f in "$work"/slurmctld.log "$work"/slurmd.log "$work"/munge/munged.log; do
        [ -f "$f" ] && { echo "---- tail $f"; tail -15 "$f"; }
    done
}

# munge: own key, socket, pid file; the socket's folder must be 0755
mkdir -m 755 "$work/munge"
mungekey --create --keyfile="$work/munge/munge.key" >/dev/null 2>&1 || skip "mungekey --create failed"
chmod 600 "$work/munge/munge.key"
sock="$work/munge/munge.socket"
munged --socket="$sock" --key-file="$work/munge/munge.key" --pid-file="$work/munge/munged.pid" \
    --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" >/dev/null 2>&1 \
    || { logs; skip "munged does not start"; }
munge -S "$sock" -n 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 || { logs; skip "munge credentials do not round-trip"; }

# two free TCP ports, far from Slurm's usual 6817/6818
port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
base=$((20000 + RANDOM % 20000))
while ! port_free "$base" || ! port_free $((base + 1)); do base=$((base + 2)); done
hw=$(slurmd -C 2>/dev/null | head -1 | sed -E 's/^NodeName=[^ ]* //; s/ ?RealMemory=[0-9]+//')
mem=$(slurmd -C 2>/dev/null | head -1 | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')
cpus=$(echo "$hw" | sed -nE 's/.*CPUs=([0-9]+).*/\1/p')
[ -n "$hw" ] && [ -n "$mem" ] && [ -n "$cpus" ] || skip "slurmd -C does not describe this machine"
extra=""
if [ "$cpus" -lt 2 ]; then # the test needs 2 tasks on the node: claim 2 CPUs anyway
    hw="CPUs=2"
    extra="SlurmdParameters=config_overrides"
fi
mkdir -p "$work/state" "$work/spool" "$work/jobs"
: >"$work/plugstack.conf"
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=chainztest
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
PlugStackConfig=$work/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerParameters=sched_interval=2
KillWait=30
MailProg=/bin/true
$extra
NodeName=localhost NodeAddr=127.0.0.1 $hw RealMemory=$((mem * 9 / 10))
PartitionName=chainz Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" >/dev/null 2>&1 || { logs; skip "slurmctld does not start"; }
slurmd -f "$SLURM_CONF" -N localhost >/dev/null 2>&1 || { logs; skip "slurmd does not start"; }
state=""
for _ in $(seq 150); do
    state=$(sinfo -h -N -n localhost -o %t 2>/dev/null)
    [ "$state" = idle ] && break
    sleep 0.2
done
[ "$state" = idle ] || { logs; skip "the node does not become idle (state '$state')"; }
note "SLURM up: slurmctld port $base, slurmd port $((base + 1)), node: $hw"

# ---- helpers ----
# field J NAME: a field of `scontrol show job` (the first task's for an array)
field() { scontrol show job -o "$1" 2>/dev/null | head -1 | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_until SECONDS DESCRIPTION COMMAND...: poll every 0.2 s
wait_until() {
    local n=$(($1 * 5)) what=$2
    shift 2
    for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
    bad "timed out after ${n}x0.2s waiting for: $what"
    return 1
}
job_is() { [ "$(field "$1" JobState)" = "$2" ]; }
ended() { case "$(field "$1" JobState)" in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE) return 0 ;; esac; return 1; }
requeued() { [ "$(field "$1" Restarts)" = 1 ] && job_is "$1" PENDING; }
# release J: end the ~120 s BeginTime hold of a requeued job. Not in the same second as the
# requeue: slurmd revoked the old run's credential with a 1-s clock, and a relaunch whose new
# credential carries the same second is refused ("Job credential revoked"): the job FAILS.
release() { sleep 2; scontrol update JobId="$1" StartTime=now; }
has_ckpt() { [ -s "$1/checkpoints/latest" ]; }

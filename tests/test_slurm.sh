#!/usr/bin/env bash
# launch/train.sbatch and launch/sweep.sbatch on a real single-node SLURM, started by this test
# inside a temporary folder (own munge key and socket, own slurm.conf through SLURM_CONF,
# unusual ports; nothing under /etc changes), as the machine notes (MACHINE-NOTES.md) describe:
#  (a) a reference training, uninterrupted, with mpirun on 2 ranks;
#  (b) the same training as a batch job (sbatch -n 2 train.sbatch), preempted after its first
#      checkpoint with SLURM's warning signal (scancel --signal=USR1 --batch): the job must
#      checkpoint, requeue itself (restart count 1), resume from the checkpoint and end with
#      a final checkpoint (parameters, moments, state), metrics.h5 and history with the same
#      BYTES as the reference (tests/lib/bitwise.sh); then the same with `scontrol requeue` from
#      outside (SIGTERM to the whole job) and with CHAINZ_LAUNCHER=srun (srun --mpi=pmix);
#  (c) a 2-task seed sweep (sbatch --array=1-2 sweep.sbatch) gives one run directory per task,
#      and a preempted array task requeues itself alone (ARRAYJOB_TASK) and ends bitwise equal
#      to an uninterrupted run with its seed.
# Requeued jobs are released from SLURM's ~120 s hold with scontrol update StartTime=now.
# Needs root and Debian's slurmctld slurmd slurm-client munge (installed with apt-get when
# missing). Exits 77 (SKIP) when the daemons cannot be installed or started.
# Usage: test_slurm.sh BUILD_DIR
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 1
src=$(cd "$(dirname "$0")/.." && pwd)
chainz="$build/chainz"
make_data="$build/make_data"
t0=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
note() { echo "# $(($(date +%s) - t0))s: $*"; }

[ -x "$chainz" ] && [ -x "$make_data" ] || { echo "FAIL: $chainz or $make_data not built"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "not root (the test starts munged, slurmctld and slurmd as root)"

# ---- the packages ----
# the cluster and its helpers (shared with the other SLURM test)
# shellcheck source=lib/slurm_cluster.sh
. "$src/tests/lib/slurm_cluster.sh"
# shellcheck source=lib/bitwise.sh
. "$src/tests/lib/bitwise.sh"
bw_init "$build" || exit 1
checksum_of() { h5dump -a checksum "$1" | sed -n 's/.*(0): "\(.*\)".*/\1/p'; }
final_ckpt() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest" 2>/dev/null)"; }
# expect LOG REGEX DESCRIPTION
expect() { if grep -Eq -- "$2" "$1"; then ok "$3"; else bad "$3: no /$2/ in $1"; fi; }

export CHAINZ="$chainz" # the build folder is the test's argument, not necessarily ROOT/build
cd "$work/jobs" || exit 1 # job logs (%x-%j.out) land in the folder sbatch runs in

# ---- (a) the reference: uninterrupted, mpirun on 2 ranks ----
"$make_data" "$work/train.h5" --n 6000 --d 50 --classes 4 --seed 5 >/dev/null || { bad "make_data"; exit 1; }
# 4 epochs = 376 steps: the reference and each job's rerun train them all (4 trainings in
# all, most of this test's time), and the run still goes on for seconds after the first
# checkpoint (step 5), where the test preempts it (12 epochs made each training 3x longer
# for nothing: the signal lands within a second)
opts=(--data "$work/train.h5" --layers "128,128" --epochs 4 --batch 64 --micro-batch 16
      --ckpt-every-steps 5 --seed 3)
# train.sbatch gives mpirun's kill sequence (SIGCONT, T s, SIGTERM, T s, SIGKILL) T = 10 s so
# that a large step and checkpoint fit in it; it also makes mpirun exit 75 only 2T after the
# ranks stopped on USR1, and every mpirun preemption here idled 20 s. This test's steps and
# checkpoints take milliseconds: T = 3 s (sbatch passes the environment on to the job)
export OMPI_MCA_odls_base_sigkill_timeout=3
note "(a) reference training, mpirun -n 2"
if ! timeout 180 "$src/launch/mpirun.sh" -n 2 -t 1 -- "$chainz" train "${opts[@]}" --out "$work/ref" \
        >"$work/ref.log" 2>&1; then
    bad "reference training failed"; tail -5 "$work/ref.log"; exit 1
fi
ref_ckpt=$(final_ckpt "$work/ref")
note "reference done: $(grep -o 'done, .*s,' "$work/ref.log"), checksum $(checksum_of "$ref_ckpt")"

# ---- (b) the same run as a batch job, preempted and requeued ----
# preempted NAME HOW [ENV...]: HOW is usr1 (SLURM's warning to the batch shell) or requeue
# (scontrol requeue from outside)
preempted() {
    local name=$1 how=$2 run="$work/$1" j log
    shift 2
    j=$(env "$@" sbatch --parsable -n 2 --job-name="$name" --time=10 "$src/launch/train.sbatch" \
        "$run" "${opts[@]}") || { bad "$name: sbatch failed"; return; }
    j=${j%%;*}
    log="$work/jobs/$name-$j.out"
    note "($name) job $j submitted"
    wait_until 30 "$name: job $j RUNNING" job_is "$j" RUNNING || { logs; return; }
    wait_until 60 "$name: a first checkpoint in $run" has_ckpt "$run" || { cat "$log"; return; }
    cp "$run/checkpoints/latest" "$work/$name.seen"
    if [ "$how" = usr1 ]; then
        scancel --signal=USR1 --batch "$j" || bad "$name: scancel --signal=USR1 --batch $j"
    else
        scontrol requeue "$j" || bad "$name: scontrol requeue $j"
    fi
    note "($name) job $j preempted ($how) after checkpoint $(cat "$work/$name.seen")"
    wait_until 90 "$name: job $j requeued (Restarts=1, PENDING)" requeued "$j" || { cat "$log"; logs; return; }
    note "($name) job $j requeued: $(field "$j" JobState) Reason=$(field "$j" Reason); releasing it"
    release "$j" || bad "$name: scontrol update JobId=$j StartTime=now"
    wait_until 150 "$name: job $j finished" ended "$j" || { cat "$log"; return; }
    note "($name) job $j: $(field "$j" JobState) exit $(field "$j" ExitCode) restarts $(field "$j" Restarts)"
    [ "$(field "$j" JobState)" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] \
        && ok "$name: job completed with exit 0:0 after one requeue" \
        || bad "$name: job ended $(field "$j" JobState) $(field "$j" ExitCode)"
    expect "$log" "train.sbatch: .* restart 0\$" "$name: first run printed restart 0"
    expect "$log" "train.sbatch: .* restart 1\$" "$name: rerun printed restart 1"
    expect "$log" "chainz: SLURM job=$j array=-_- restart=0" "$name: chainz saw restart=0"
    expect "$log" "chainz: SLURM job=$j array=-_- restart=1" "$name: chainz saw restart=1 after the requeue"
    local at seen resumed
    seen=$(sed -nE 's/^ckpt-0*([0-9]+)\.h5$/\1/p' "$work/$name.seen")
    resumed=$(sed -nE 's/^chainz: resumed from .*ckpt-0*([0-9]+)\.h5: .*written by SLURM job='"$j"' array=-_- restart=0.*/\1/p' "$log" | head -1)
    if [ "$how" = usr1 ]; then
        expect "$log" "chainz: stopping on a signal at step [0-9]+" "$name: chainz stopped on the signal with a checkpoint"
        at=$(sed -nE 's/.*stopping on a signal at step ([0-9]+).*/\1/p' "$log" | head -1)
        [ -n "$at" ] && [ "$resumed" = "$at" ] && ok "$name: rerun resumed from the step-$at checkpoint written on the signal" \
            || bad "$name: rerun resumed from step '$resumed', the signal's checkpoint was step '$at'"
    else
        # SLURM's SIGTERM reaches mpirun too, which then drops the ranks' last output lines:
        # the checkpoint written on the signal shows in the resume line instead
        grep -q "stopping on a signal" "$log" || echo "# ($name) the 'stopping on a signal' line is not in the log (mpirun got SIGTERM)"
        [ -n "$resumed" ] && [ "$resumed" -ge "$seen" ] && ok "$name: rerun resumed from step $resumed (>= step $seen checkpointed before the requeue)" \
            || bad "$name: rerun resumed from step '$resumed', expected >= $seen"
    fi
    if [ "$how" = usr1 ]; then
        expect "$log" "caught SIGUSR1: forwarding SIGUSR1" "$name: the batch shell caught and forwarded USR1"
        expect "$log" "step exited with status 75" "$name: the step exited 75"
        expect "$log" "requeueing job $j " "$name: the script requeued job $j itself"
    else
        expect "$log" "caught SIGTERM: forwarding SIGUSR1" "$name: the batch shell caught SIGTERM"
    fi
    expect "$log" "training complete" "$name: the rerun completed the training"
    local ck
    ck=$(final_ckpt "$run")
    if [ -f "$ck" ] && bw_same_run "$work/ref" "$run" ckpt metrics; then
        ok "$name: final checkpoint (parameters, moments, state) and metrics.h5 bytes equal to the reference (checksum $(checksum_of "$ck"))"
    else
        bad "$name: final checkpoint or metrics.h5 differs from the reference ($ck: $(checksum_of "$ck") vs $(checksum_of "$ref_ckpt"))"
    fi
    if bw_same_run "$work/ref" "$run" history; then
        ok "$name: history.jsonl equal to the reference (timings aside)"
    else
        bad "$name: history.jsonl differs from the reference"
    fi
    h5dump -a slurm "$ck" 2>/dev/null | grep -q "job=$j array=-_- restart=1" \
        && ok "$name: final checkpoint records restart=1" || bad "$name: final checkpoint's slurm attribute"
}
preempted usr1 usr1
preempted requeue requeue
preempted srun usr1 CHAINZ_LAUNCHER=srun

# ---- (c) a seed sweep as a job array; task 1 is preempted once ----
note "(c) sweep.sbatch --array=1-2"
sopts=(--data "$work/train.h5" --layers "64,64" --epochs 4 --batch 64 --micro-batch 16 --ckpt-every-steps 5)
a=$(sbatch --parsable --array=1-2 -n 1 --time=10 "$src/launch/sweep.sbatch" "$work/sweep" "${sopts[@]}")
a=${a%%;*}
if [ -n "$a" ]; then
    if wait_until 30 "array task ${a}_1 RUNNING" job_is "${a}_1" RUNNING \
        && wait_until 60 "a checkpoint of task 1" has_ckpt "$work/sweep/seed-1"; then
        scancel --signal=USR1 --batch "${a}_1"
        wait_until 60 "array task ${a}_1 requeued" requeued "${a}_1" && release "${a}_1"
    fi
    for t in 1 2; do
        wait_until 120 "array task ${a}_$t finished" ended "${a}_$t"
        st="$(field "${a}_$t" JobState) $(field "${a}_$t" ExitCode)"
        [ "$st" = "COMPLETED 0:0" ] && ok "array task $t: COMPLETED 0:0" || bad "array task $t ended $st"
        run="$work/sweep/seed-$t"
        log="$work/jobs/chainz-sweep-${a}_$t.out"
        [ -f "$(final_ckpt "$run")" ] && ok "array task $t: run directory seed-$t with a final checkpoint" \
            || bad "array task $t: no checkpoint in $run"
        grep -q "\"seed\": $t," "$run/config.json" 2>/dev/null && ok "array task $t trained with --seed $t" \
            || bad "array task $t: config.json has no seed $t"
        expect "$log" "chainz: SLURM job=[0-9]+ array=${a}_$t restart=0" "array task $t: chainz saw array=${a}_$t"
        expect "$log" "training complete" "array task $t: completed"
    done
    log="$work/jobs/chainz-sweep-${a}_1.out"
    expect "$log" "requeueing job ${a}_1 " "array task 1 requeued itself as ${a}_1"
    expect "$log" "chainz: SLURM job=[0-9]+ array=${a}_1 restart=1" "array task 1 reran with restart=1"
    expect "$log" "chainz: resumed from " "array task 1 resumed from its checkpoint"
    [ "$(field "${a}_2" Restarts)" = 0 ] && ok "array task 2 was not requeued" || bad "array task 2 restarts $(field "${a}_2" Restarts)"
    # task 1, preempted and resumed, ends where an uninterrupted seed-1 run ends
    if timeout 120 "$src/launch/mpirun.sh" -n 1 -t 1 -- "$chainz" train "${sopts[@]}" --seed 1 \
            --out "$work/sweep-ref" >"$work/sweep-ref.log" 2>&1 \
        && bw_same_run "$work/sweep-ref" "$work/sweep/seed-1"; then
        ok "array task 1 (preempted once) ends bitwise equal to an uninterrupted --seed 1 run"
    else
        bad "array task 1 differs from an uninterrupted --seed 1 run"
    fi
    c1=$(checksum_of "$(final_ckpt "$work/sweep/seed-1")")
    c2=$(checksum_of "$(final_ckpt "$work/sweep/seed-2")")
    [ -n "$c1" ] && [ "$c1" != "$c2" ] && ok "seeds 1 and 2 give different models ($c1, $c2)" || bad "seed checksums '$c1' '$c2'"
else
    bad "sbatch --array failed"
fi

if [ "$fails" -gt 0 ]; then
    echo "---- job logs"
    for f in "$work"/jobs/*.out; do echo "== $f"; cat "$f"; done
    logs
fi
note "done"
[ "$fails" -eq 0 ] && echo "test_slurm: all passed in $(($(date +%s) - t0)) s" || echo "test_slurm: $fails failure(s)"
[ "$fails" -eq 0 ]

#!/usr/bin/env bash
# chainz protocol --slurm on a real single-node SLURM started by this test (the cluster set-up
# is test_slurm.sh's: own munge key and socket, own slurm.conf through SLURM_CONF, unusual
# ports; nothing under /etc changes):
#  (a) --slurm --submit of a 4-run study (Pima, 2 seeds x 2 models; 1 rank per run, so that
#      two tasks share the 2 cores; test_protocol covers mpirun): one array task per run plus a report job with
#      --dependency=afterok on the array; every task and the report COMPLETE, and the report
#      holds the 4 runs;
#  (b) one array task preempted with SLURM's warning signal (scancel --signal=USR1 --batch)
#      after its first checkpoint: the task checkpoints, exits 75, requeues itself, and the
#      rerun resumes the training from the checkpoint;
#  (c) submitting again redoes nothing (only the report job is submitted); with one run's
#      folder removed, the array holds exactly that run.
# Needs root and Debian's slurmctld slurmd slurm-client munge (installed with apt-get when
# missing). Exits 77 (SKIP) when the daemons cannot be installed or started.
# Usage: test_protocol_slurm.sh BUILD_DIR
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd) || exit 1
src=$(cd "$(dirname "$0")/.." && pwd)
chainz="$build/chainz"
t0=$(date +%s)

skip() { echo "SKIP: $*"; exit 77; }
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
note() { echo "# $(($(date +%s) - t0))s: $*"; }

[ -x "$chainz" ] || { echo "FAIL: $chainz not built"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "not root (the test starts munged, slurmctld and slurmd as root)"
pima=$(bash "$src/launch/weka-examples.sh") && [ -f "$pima/diabetes.arff" ] || skip "diabetes.arff not available"

# ---- the packages ----
# the cluster and its helpers (shared with the other SLURM test)
# shellcheck source=lib/slurm_cluster.sh
. "$src/tests/lib/slurm_cluster.sh"
expect() { if grep -Eq -- "$2" "$1"; then ok "$3"; else bad "$3: no /$2/ in $1"; fi; }

cd "$work/jobs" || exit 1
cat >"$work/study.json" <<EOF
{
  "name": "slurm test",
  "run_root": "runs",
  "data": {"arff": "$pima/diabetes.arff"},
  "split": {"train": 0.8, "test": 0.2},
  "seeds": [1, 2],
  "fractions": [1],
  "models": [
    {"name": "cr", "train": ["--act", "poly"]},
    {"name": "relu", "train": ["--act", "relu"]}
  ],
  "budget": {"epochs": 30},
  "train": ["--layers", "64,64", "--batch", "32", "--lr", "3e-3"],
  "ranks": 1,
  "slurm": {"time": "0:10:00"}
}
EOF
runs="$work/runs"

# ---- (a) and (b) ----
if ! "$chainz" protocol "$work/study.json" --slurm --submit >submit1.log 2>&1; then
    bad "--slurm --submit failed: $(cat submit1.log)"; exit 1
fi
arr=$(sed -nE 's/.*submitted array job ([0-9]+) .*/\1/p' submit1.log)
rep=$(sed -nE 's/.* and report job ([0-9]+) \(afterok:.*/\1/p' submit1.log)
if [ -n "$arr" ] && [ -n "$rep" ]; then ok "submitted array job $arr and report job $rep"
else bad "no job ids: $(cat submit1.log)"; exit 1; fi
grep -q "(4 runs: 0-3)" submit1.log && ok "the array holds the 4 runs (0-3)" || bad "array: $(cat submit1.log)"
dep=$(field "$rep" Dependency)
case "$dep" in afterok:"$arr"*) ok "report job depends on the array: $dep" ;; *) bad "report dependency: '$dep'" ;; esac
# (b): preempt task 0 after its first checkpoint
cell="$runs/cr/frac-1/seed-1"
wait_until 90 "task ${arr}_0: a first checkpoint" has_ckpt "$cell/run" || { logs; exit 1; }
# in the background: here the task stops and requeues within a second, and scancel keeps
# retrying its delivery to the gone batch step for a minute and then reports a failure; the
# batch script's log below shows whether the signal arrived. It is stopped once the task is
# requeued: a retry reaching the rerun would preempt that too.
timeout 30 scancel --signal=USR1 --batch "${arr}_0" >/dev/null 2>&1 &
sc=$!
note "task ${arr}_0 signalled after checkpoint $(cat "$cell/run/checkpoints/latest")"
requeued0() { [ "$(field "${arr}_0" Restarts)" = 1 ] && job_is "${arr}_0" PENDING; }
# release it from its ~120 s hold (Reason=BeginTime), which slurmctld may set a few seconds
# after the task shows PENDING: wait for it, then release until it is gone
if wait_until 90 "task ${arr}_0 requeued" requeued0; then
    kill "$sc" 2>/dev/null
    wait "$sc" 2>/dev/null
    for _ in $(seq 100); do [ "$(field "${arr}_0" Reason)" = BeginTime ] && break; sleep 0.2; done
    for _ in $(seq 15); do
        [ "$(field "${arr}_0" Reason)" = BeginTime ] || break
        release "${arr}_0"
    done
    note "task ${arr}_0 released: $(field "${arr}_0" JobState) $(field "${arr}_0" Reason)"
fi
wait_until 300 "report job $rep" ended "$rep" || { logs; exit 1; }
note "report job $rep: $(field "$rep" JobState)"
[ "$(field "$rep" JobState)" = COMPLETED ] && ok "report job COMPLETED" || bad "report job $(field "$rep" JobState)"
for i in 0 1 2 3; do
    st=$(field "${arr}_$i" JobState)
    [ "$st" = COMPLETED ] && ok "array task $i COMPLETED" || bad "array task $i: $st"
done
log0="$runs/slurm/task-${arr}_0.out"
expect "$log0" "protocol.sbatch: caught SIGUSR1: forwarding SIGUSR1" "task 0: the batch shell forwarded the warning signal"
expect "$log0" "task exited with status 75" "task 0: chainz protocol --task exited 75 after the checkpoint"
expect "$log0" "requeueing ${arr}_0" "task 0 requeued itself"
expect "$log0" "restart 1\$" "task 0 ran again (restart 1)"
[ "$(field "${arr}_0" Restarts)" = 1 ] && ok "task 0 was requeued once" || bad "task 0 restarts: $(field "${arr}_0" Restarts)"
expect "$cell/train.log" "chainz: resumed from" "task 0's training resumed from its checkpoint"
expect "$cell/train.log" "1 rank x 1 thread" "task 0 trained on 1 rank"
if [ -s "$runs/report.md" ] && [ "$(tail -n +2 "$runs/report.csv" | wc -l)" -eq 4 ] &&
    grep -q "4 of 4 runs complete" "$runs/report.md"; then ok "report.md and report.csv with the 4 runs"
else bad "report: $(head -5 "$runs/report.md" 2>&1)"; fi

# ---- (c) ----
if "$chainz" protocol "$work/study.json" --slurm --submit >submit2.log 2>&1 &&
    grep -q "every run is done; submitted report job" submit2.log; then ok "submitting again: no array job, only the report"
else bad "resubmit: $(cat submit2.log)"; fi
rep2=$(sed -nE 's/.*submitted report job ([0-9]+).*/\1/p' submit2.log)
[ -n "$rep2" ] && wait_until 60 "report job $rep2" ended "$rep2"
rm -rf "$runs/relu/frac-1/seed-2"
if "$chainz" protocol "$work/study.json" --slurm --submit >submit3.log 2>&1 && grep -q "(1 runs: 3)" submit3.log; then
    ok "with run 3 removed, the array holds run 3 only"
else bad "partial resubmit: $(cat submit3.log)"; fi
arr3=$(sed -nE 's/.*submitted array job ([0-9]+) .*/\1/p' submit3.log)
rep3=$(sed -nE 's/.* and report job ([0-9]+) \(afterok:.*/\1/p' submit3.log)
[ -n "$rep3" ] && wait_until 120 "report job $rep3" ended "$rep3"
if [ -f "$runs/relu/frac-1/seed-2/result.json" ] && [ "$(field "${arr3}_3" JobState)" = COMPLETED ]; then
    ok "run 3 redone by array task ${arr3}_3"
else bad "run 3 not redone: $(field "${arr3}_3" JobState)"; fi

note "done"
echo "test_protocol_slurm: $fails failure(s)"
[ $fails -eq 0 ]

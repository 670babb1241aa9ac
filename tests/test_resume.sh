#!/usr/bin/env bash
# Checkpoints and exact resume (docs/DESIGN.md sections 3 and 6), end to end with mpirun:
#  - kill -9 of a 2-rank run (mpirun and every rank, by process id) at random moments, then
#    --resume auto, until it finishes; each kill must really have killed the run (status
#    137) and at least one must have hit it after it had written checkpoints, before it
#    ended; the final parameters, moments, state, metrics.h5 and history then equal the
#    uninterrupted run's BYTES (tests/lib/bitwise.sh);
#  - a kill in the middle of a checkpoint write loses nothing;
#  - a truncated newest checkpoint is skipped by --resume auto, with a message;
#  - a corrupted newest checkpoint (bytes of its parameter data flipped on disk) is
#    DETECTED: loading it fails with the checksum message and exit 1, --resume auto names it
#    as skipped for that reason and resumes from the one before;
#  - resuming 2 ranks -> 3 ranks continues (and, with --reduce exact, exactly);
#  - a configuration that contradicts the checkpoint is refused, naming the difference;
#  - SIGUSR1 / SIGTERM write a checkpoint on every rank and exit with status 75;
#  - retention keeps the newest --keep checkpoints (plus every --keep-every).
# CHAINZ_TEST_ULP_FLIP=DATASET: see tests/lib/bitwise.sh (every bitwise check must then fail).
# Usage: test_resume.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
chainz="$build/chainz"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # see test_train_mpi.sh
# shellcheck source=lib/bitwise.sh
. "$(dirname "$0")/lib/bitwise.sh"
bw_init "$build" || exit 1
work=$(mktemp -d)
bg="" # the background run of the moment (its process tree is killed on exit)
# tree PID...: PID and every descendant, by walking the parent links
tree() {
    local pids=("$@") i=0 c
    while [ $i -lt ${#pids[@]} ]; do
        for c in $(pgrep -P "${pids[$i]}"); do pids+=("$c"); done
        i=$((i + 1))
    done
    echo "${pids[@]}"
}
# kill_tree PID: SIGKILL to PID and all its descendants, by id; the tree is frozen with
# SIGSTOP first so that nothing it starts in between escapes. Sets killed_pids.
kill_tree() {
    local before="" now
    now=$(tree "$1")
    while [ "$now" != "$before" ]; do
        # shellcheck disable=SC2086
        kill -STOP $now 2>/dev/null
        before=$now
        now=$(tree "$1")
    done
    killed_pids=$now
    # shellcheck disable=SC2086
    kill -KILL $now 2>/dev/null
}
trap '[ -n "$bg" ] && kill_tree "$bg"; rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

same_as_ref() { # same_as_ref RUN_DIR LABEL
    if bw_same_run "$ref" "$1"; then
        ok "$2: checkpoint (parameters, moments, state), metrics.h5 and history bytes equal to the uninterrupted run"
    else
        bad "$2: differs from the uninterrupted run"
    fi
}
# the step of a run directory's newest checkpoint (0 when there is none)
latest_step() { local n; n=$(sed -nE 's/^ckpt-0*([0-9]+)\.h5$/\1/p' "$1/checkpoints/latest" 2>/dev/null); echo "${n:-0}"; }

"$build/make_data" "$work/train.h5" --n 3000 --d 40 --classes 5 --seed 1 || exit 1
args=(train --data "$work/train.h5" --holdout 0.1 --layers 96,96 --act poly --epochs 5 --batch 64
      --micro-batch 16 --lr 0.003 --dreg 0.02 --dropout 0.1 --ckpt-every-steps 4 --keep 3 --seed 5)
run() { local p=$1; shift; timeout 300 mpirun -np "$p" --bind-to none "$chainz" "$@"; }

ref="$work/ref"
start=$(date +%s.%N)
run 2 "${args[@]}" --out "$ref" >"$ref.log" 2>&1 || { bad "reference run failed"; tail "$ref.log"; exit 1; }
dur=$(echo "$(date +%s.%N) - $start" | bc)
ok "reference run: $(grep -c . "$ref/history.jsonl") epochs in ${dur}s"

# ---- kill -9 at random moments (mpirun and every rank), resume until done ----
# The first attempt is killed once it has written two checkpoints (a kill that surely hits
# a run in progress); the others at random moments (the first ones also hit start-up).
dir="$work/killed"
kills=0 midrun=0 finished=0
for attempt in $(seq 1 40); do
    before=$(latest_step "$dir")
    run 2 "${args[@]}" --out "$dir" --resume auto >"$dir.log.$attempt" 2>&1 &
    bg=$!
    if [ "$attempt" -eq 1 ]; then
        for _ in $(seq 600); do [ "$(ls "$dir/checkpoints" 2>/dev/null | grep -c '^ckpt-.*\.h5$')" -ge 2 ] && break; sleep 0.05; done
    else
        sleep "$(awk -v s="$RANDOM" -v d="$dur" 'BEGIN { srand(s); printf "%.3f", 0.2 + rand() * d * 0.4 }')"
    fi
    if kill -0 "$bg" 2>/dev/null; then
        kill_tree "$bg"
        wait "$bg"; status=$?
        bg=""
        cat "$dir.log.$attempt" >>"$dir.log"
        sleep 0.1
        alive=""
        # a zombie (state Z) is dead, only not yet reaped by its new parent
        for q in $killed_pids; do
            st=$(ps -o stat= -p "$q" 2>/dev/null)
            [ -n "$st" ] && [ "${st#Z}" = "$st" ] && alive="$alive $q($st)"
        done
        [ -z "$alive" ] || bad "attempt $attempt: processes$alive survived SIGKILL"
        if [ "$status" -ne 137 ]; then
            # it ended by itself between the check and the kill: a real end, not a kill
            grep -q "chainz: done" "$dir.log.$attempt" && { finished=1; break; }
            bad "attempt $attempt: status $status after SIGKILL, expected 137"; continue
        fi
        kills=$((kills + 1))
        after=$(latest_step "$dir")
        # interrupted mid-run: it had written checkpoints past where it started, and not ended
        if [ "$after" -gt "$before" ] && ! grep -q "chainz: done" "$dir.log.$attempt"; then
            midrun=$((midrun + 1))
            echo "# attempt $attempt: SIGKILL (status 137) mid-run, checkpoints from step $before to $after"
        fi
    else
        wait "$bg"; status=$?
        bg=""
        cat "$dir.log.$attempt" >>"$dir.log"
        [ "$status" -eq 0 ] && { finished=1; break; }
        bad "attempt $attempt ended with status $status"; tail -5 "$dir.log.$attempt"; break
    fi
done
if [ "$finished" -eq 0 ]; then
    run 2 "${args[@]}" --out "$dir" --resume auto >"$dir.log.final" 2>&1 || bad "final resume failed"
    cat "$dir.log.final" >>"$dir.log"
    attempt=final
fi
resumes=$(grep -c 'resumed from' "$dir.log")
if [ "$kills" -ge 1 ] && [ "$midrun" -ge 1 ] && [ "$resumes" -ge 1 ] && grep -q "resumed from" "$dir.log.$attempt" \
    && grep -q "chainz: done" "$dir.log.$attempt"; then
    ok "killed with SIGKILL $kills times (each exit status 137; $midrun mid-run, after new checkpoints), $resumes resumes; the last run resumed and finished"
else
    bad "kill loop: $kills kills (status 137), $midrun mid-run, $resumes resumes, last attempt $attempt: $(grep -E 'resumed from|chainz: done' "$dir.log.$attempt" | tr '\n' ' ')"
fi
same_as_ref "$dir" "kill -9 x $kills + resume"

# ---- a kill in the middle of the 3rd checkpoint write ----
dir="$work/ckptkill"
CHAINZ_FAULT_KILL_IN_CKPT=3 run 2 "${args[@]}" --out "$dir" >"$dir.log" 2>&1
status=$?
ls "$dir/checkpoints" | grep -q '\.tmp\.' && ok "killed during a checkpoint write (status $status): a partial temporary file is left, 'latest' still names $(cat "$dir/checkpoints/latest")" \
    || bad "fault injection did not leave a partial write: $(ls "$dir/checkpoints")"
run 2 "${args[@]}" --out "$dir" --resume auto >>"$dir.log" 2>&1 || bad "resume after a kill in a checkpoint write failed"
grep -q "removed .*interrupted checkpoint write" "$dir.log" && ok "the interrupted write is cleaned up on resume" || bad "partial write not reported"
same_as_ref "$dir" "kill inside a checkpoint write + resume"

# ---- truncated and corrupted newest checkpoints are skipped ----
dir="$work/trunc"
run 2 "${args[@]}" --out "$dir" --max-steps 50 >"$dir.log" 2>&1 || bad "--max-steps run failed"
newest="$dir/checkpoints/ckpt-00000050.h5"
prev="$dir/checkpoints/ckpt-00000048.h5"
[ -f "$newest" ] && [ -f "$prev" ] || bad "expected checkpoints 48 and 50: $(ls "$dir/checkpoints")"
truncate -s $(( $(stat -c %s "$newest") / 2 )) "$newest"
run 3 "${args[@]}" --out "$dir" --resume auto >>"$dir.log" 2>&1 || bad "resume after truncation failed"
if grep -q "skipped .*ckpt-00000050.h5" "$dir.log" && grep -q "resumed from .*ckpt-00000048.h5" "$dir.log"; then
    ok "truncated newest checkpoint skipped: $(grep -m1 skipped "$dir.log")"
else
    bad "truncated checkpoint not skipped"; grep -E "resum|skip" "$dir.log"
fi
grep -q "written by 2 ranks, continuing on 3" "$dir.log" && ok "2 ranks -> 3 ranks resume is reported" || bad "no rank-change note"
same_as_ref "$dir" "truncated newest + resume on 3 ranks"

dir="$work/corrupt"
run 2 "${args[@]}" --out "$dir" --max-steps 50 >"$dir.log" 2>&1 || bad "--max-steps run for the corruption case failed"
newest="$dir/checkpoints/ckpt-00000050.h5"
# bit rot on disk, outside HDF5: 16 bytes of the first weights of layer 1 XOR 0x5A (the file
# still opens; only the parameter checksum can tell)
off=$("$build/ulp_flip" --offset "$newest" /model/layer_1/weight) || bad "no offset of /model/layer_1/weight"
python3 - "$newest" "${off:-0}" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = bytearray(f.read(16))
    f.seek(off)
    f.write(bytes(x ^ 0x5A for x in b))
PY
detected="ckpt-00000050.h5: parameter checksum [0-9a-f]+ does not match the stored [0-9a-f]+ \(corrupted\)"
# loaded directly: refused, exit 1, the checksum named
run 1 eval --model "$newest" --data "$work/train.h5" >"$work/corrupt-eval.log" 2>&1
status=$?
if [ "$status" -eq 1 ] && grep -qE "$detected" "$work/corrupt-eval.log"; then
    ok "corrupted checkpoint detected by eval: exit 1, $(grep -m1 -oE "$detected" "$work/corrupt-eval.log")"
else
    bad "corrupted checkpoint given to eval: status $status"; tail -3 "$work/corrupt-eval.log"
fi
# named as the checkpoint to resume from (in a copy: the refusal must not touch the run)
cp -a "$dir" "$dir-explicit"
run 2 "${args[@]}" --out "$dir-explicit" --resume "$dir-explicit/checkpoints/ckpt-00000050.h5" >"$work/corrupt-explicit.log" 2>&1
status=$?
if [ "$status" -eq 1 ] && grep -qE "$detected" "$work/corrupt-explicit.log"; then
    ok "corrupted checkpoint named by --resume refused: exit 1, checksum mismatch reported"
else
    bad "--resume of a corrupted checkpoint: status $status"; tail -3 "$work/corrupt-explicit.log"
fi
# --resume auto: skipped for that reason, resumed from the one before, finished exactly
run 2 "${args[@]}" --out "$dir" --resume auto >"$dir.resume.log" 2>&1
status=$?
if [ "$status" -eq 0 ] && grep -qE "resume auto: skipped .*$detected" "$dir.resume.log" \
    && grep -q "resumed from .*ckpt-00000048.h5" "$dir.resume.log"; then
    ok "corrupted newest checkpoint detected and skipped by --resume auto: $(grep -m1 skipped "$dir.resume.log" | sed 's|.*/||' | cut -c1-160)"
else
    bad "--resume auto over a corrupted newest checkpoint: status $status"; grep -E "resum|skip|error" "$dir.resume.log"
fi
same_as_ref "$dir" "corrupted newest + resume"

# ---- contradictory configurations are refused, naming the difference ----
dir="$work/trunc"
expect_refusal() { # NAME PATTERN extra-args
    local name=$1 pattern=$2; shift 2
    run 2 "${args[@]}" --out "$dir" --resume "$dir/checkpoints/$(cat "$dir/checkpoints/latest")" "$@" >"$work/refuse.log" 2>&1
    local status=$?
    if [ "$status" -eq 1 ] && grep -qE -- "$pattern" "$work/refuse.log"; then
        ok "$name refused: $(grep -m1 error "$work/refuse.log" | cut -c1-220)"
    else
        bad "$name: status $status"; tail -3 "$work/refuse.log"
    fi
}
expect_refusal "different --layers" "checkpoint has --layers 96,96, this run asks for --layers 96,48" --layers 96,48
expect_refusal "different --act" "layer 1 of the checkpoint is poly, this run asks for relu" --act relu
expect_refusal "different --optim" "trained with --optim adamw, this run asks for sgd" --optim sgd
expect_refusal "different --batch" "batch = 64, this run asks for batch = 32" --batch 32
expect_refusal "different --seed" "seed = 5, this run asks for seed = 6" --seed 6
run 2 "${args[@]}" --out "$dir" --resume auto --epochs 6 >"$work/more.log" 2>&1 \
    && grep -q "epochs changes from 5 to 6" "$work/more.log" && [ "$(grep -c . "$dir/history.jsonl")" -eq 6 ] \
    && ok "--epochs may change on resume: 6 history lines, one per epoch" || bad "extending --epochs on resume"

# ---- signals: checkpoint on every rank, exit 75 ----
for sig in USR1 TERM; do
    dir="$work/sig-$sig"
    run 2 "${args[@]}" --out "$dir" >"$dir.log" 2>&1 &
    pid=$!
    bg=$pid
    # signal early (right after the first checkpoint), so that the run cannot finish first
    for i in $(seq 1 200); do ls "$dir/checkpoints" 2>/dev/null | grep -q '^ckpt' && break; sleep 0.05; done
    mpirun_pid=$(pgrep -f -- "^mpirun .*--out $dir" | head -1)
    if [ "$sig" = USR1 ]; then
        kill -USR1 "$mpirun_pid"      # mpirun forwards SIGUSR1 to every rank
    else
        # one rank alone (what a node-local kill or srun does): the others follow it
        rank_pid=$(pgrep -x chainz -P "$mpirun_pid" | tail -1)
        kill -TERM "$rank_pid"
    fi
    wait "$pid"; status=$?
    bg=""
    step=$(grep -oE 'stopping on a signal at step [0-9]+' "$dir.log" | grep -oE '[0-9]+$')
    if [ "$status" -eq 75 ] && [ -n "$step" ] && [ -f "$dir/checkpoints/ckpt-$(printf %08d "$step").h5" ]; then
        ok "SIG$sig: checkpoint at step $step, exit status 75"
    else
        bad "SIG$sig: status $status, step '$step'"; tail -5 "$dir.log"
    fi
done
dir="$work/sig-USR1"
run 2 "${args[@]}" --out "$dir" --resume auto >>"$dir.log" 2>&1 || bad "resume after SIGUSR1 failed"
same_as_ref "$dir" "SIGUSR1 + resume"

# ---- a signal during start-up (before the first step): the handler is in place from the
# start of main, so the rank checkpoints at step 0 and exits 75 (it used to die of the signal,
# exit 138); the resume is exact ----
dir="$work/sig-early"
"$chainz" "${args[@]}" --out "$dir" >"$dir.log" 2>&1 &
pid=$!
bg=$pid
# as early as the handler exists (SigCgt bit 10 = SIGUSR1): with the fix that is the start of
# main, before MPI_Init; before it, after option parsing (a signal in between killed the rank)
for _ in $(seq 1 500); do
    cgt=$(awk '/^SigCgt/ {print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$cgt" ] && [ $((0x$cgt & 0x200)) -ne 0 ] && break
    sleep 0.002
done
kill -USR1 "$pid"
wait "$pid"; status=$?
bg=""
if [ "$status" -eq 75 ]; then ok "SIGUSR1 during start-up: exit 75"; else bad "SIGUSR1 during start-up: status $status"; tail -3 "$dir.log"; fi
run 2 "${args[@]}" --out "$dir" --resume auto >>"$dir.log" 2>&1 || bad "resume after an early SIGUSR1 failed"
same_as_ref "$dir" "SIGUSR1 during start-up + resume"

# ---- retention ----
n=$(ls "$ref/checkpoints" | grep -c '^ckpt-.*\.h5$')
[ "$n" -eq 3 ] && ok "--keep 3 keeps 3 checkpoints" || bad "--keep 3 left $n: $(ls "$ref/checkpoints")"
dir="$work/keepevery"
run 2 "${args[@]}" --out "$dir" --epochs 2 --keep 2 --keep-every 20 >"$dir.log" 2>&1
kept=$(ls "$dir/checkpoints" | grep '^ckpt' | tr '\n' ' ')
# 2 epochs x 43 steps: multiples of 20 stay, plus the newest two
[ "$kept" = "ckpt-00000020.h5 ckpt-00000040.h5 ckpt-00000060.h5 ckpt-00000080.h5 ckpt-00000084.h5 ckpt-00000086.h5 " ] \
    && ok "--keep 2 --keep-every 20: $kept" || bad "--keep-every: $kept"
attrs=$(h5dump -A "$ref/checkpoints/$(cat "$ref/checkpoints/latest")")
grep -q '"chainz-checkpoint"' <<<"$attrs" && grep -q 'ATTRIBUTE "world_size"' <<<"$attrs" && ok "checkpoint attributes readable by h5dump" || bad "h5dump"

echo "test_resume: $fails failure(s)"
[ "$fails" -eq 0 ]

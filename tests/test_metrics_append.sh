#!/usr/bin/env bash
# metrics.h5 with many epochs (src/io/metrics.c deflates each epoch's histograms once and
# writes the chunks with H5Dwrite_chunk at every rewrite):
#  - a real run of many short epochs (tau on): every /tau/<family>/counts chunk holds the
#    bytes a fresh full rewrite through HDF5's deflate filter gives (same deflated bytes,
#    filter mask 0, same decoded counts), each row sums to its epoch's count;
#  - the same run stopped at --max-steps and resumed (the loaded epochs deflated again):
#    its /tau and /history bytes equal the uninterrupted run's;
#  - the cost per epoch does not grow with the epochs before it: bench_metrics' median cpu
#    time per append around epoch 400 is at most 3 x the one around epoch 50 (it grew
#    ~linearly when every rewrite deflated all earlier epochs again: ~8 x here).
# Usage: test_metrics_append.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
. "$(dirname "$0")/lib/bitwise.sh"
bw_init "$build" || exit 1

"$build/make_data" "$work/tiny.h5" --n 64 --d 8 --classes 2 --seed 1 >/dev/null 2>&1 || { echo "FAIL: make_data"; exit 1; }
# 2 steps per epoch, 300 epochs; --resume auto never finds a checkpoint on the first start
train() { timeout 300 "$chainz" train --data "$work/tiny.h5" --layers 8 --batch 32 --epochs 300 \
    --ckpt-every-epochs 100 --log-seconds 1000 "$@" >>"$work/train.log" 2>&1; }

if train --out "$work/full"; then
    ok "300-epoch run with tau: $(stat -c %s "$work/full/metrics.h5") bytes of metrics"
    if "$build/bench_metrics" --check "$work/full/metrics.h5" >"$work/check.txt" 2>&1; then
        ok "$(cat "$work/check.txt")"
    else
        bad "metrics.h5 of the run differs from a fresh full rewrite: $(cat "$work/check.txt")"
    fi
    E=$("$chainz" tau "$work/full" 2>/dev/null | head -1 | grep -o '[0-9]* epochs')
    [ "$E" = "300 epochs" ] && ok "chainz tau reads it: $E" || bad "chainz tau: '$E'"
else
    bad "training failed: $(tail -5 "$work/train.log")"
fi

# stopped at step 301 (epoch 150 and one step) and resumed: epochs loaded, then appended
if train --out "$work/resumed" --max-steps 301 && train --out "$work/resumed" --resume auto; then
    if bw_metrics_bytes "$work/full" >"$work/a.txt" && bw_metrics_bytes "$work/resumed" >"$work/b.txt" &&
        cmp -s "$work/a.txt" "$work/b.txt"; then
        ok "stopped at step 301 and resumed: /tau and /history bytes equal the uninterrupted run's"
    else
        bad "resumed run's metrics differ: $(diff "$work/a.txt" "$work/b.txt" | head -4)"
    fi
    "$build/bench_metrics" --check "$work/resumed/metrics.h5" >"$work/check2.txt" 2>&1 &&
        ok "resumed run: chunks equal a fresh full rewrite" || bad "resumed run: $(cat "$work/check2.txt")"
else
    bad "stop and resume failed: $(tail -5 "$work/train.log")"
fi

# the cost per epoch (cpu time: fsync latency is the disk's, not ours); two tries against noise
mkdir -p "$work/bench"
for try in 1 2; do
    if "$build/bench_metrics" "$work/bench" --epochs 400 --at 50,400 --max-ratio 3 >"$work/bench.txt" 2>&1; then
        ok "$(tr '\n' ' ' <"$work/bench.txt")"
        break
    elif [ $try = 2 ]; then
        bad "per-epoch metrics cost grows with the epochs: $(tr '\n' ' ' <"$work/bench.txt")"
    fi
done

echo "$fails failure(s)"
[ "$fails" -eq 0 ]

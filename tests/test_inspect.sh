#!/usr/bin/env bash
# `chainz inspect` on one file of each kind, values checked against what produced them:
#  - a chainz-data set (tests/make_data): N, d, task, class counts (numpy's bincount of
#    /labels), label range, contiguous; the same set written chunked: reported chunked with
#    the cost and the h5repack command, which run as printed gives a contiguous file;
#  - a tiny training run: the run directory, its latest checkpoint and its metrics.h5:
#    parameter count equal to the model formula, epoch/step/position, world size, lambda,
#    both checksums ok; the last epoch's count/mean/p99/tau equal to metrics.h5's own;
#  - corruption: bytes of /model/layer_1/weight flipped on disk: both checksums reported
#    failed, exit 1, still a full description; one ulp of an optimizer moment: only
#    checksum_all failed; the dropout attribute edited: only checksum_model failed; a run
#    directory whose latest is corrupt: exit 1;
#  - an unknown HDF5 file: described with its root attributes, exit 0, its JSON strict UTF-8
#    (a long value cut at a character, non-UTF-8 bytes of a value and the path as U+FFFD); a text file, a
#    missing file, no argument, two files: exit 1 and a message saying what was expected;
#  - --json for every kind parses (python's json) and carries the same values; a description
#    that cannot be written (stdout on /dev/full) is exit 2, not 0.
# Usage: test_inspect.sh BUILD_DIR
set -uo pipefail
# shellcheck source=lib/cli.sh
. "$(dirname "$0")/lib/cli.sh"
cli_init "$1"
inspect() { "$chainz" inspect "$@"; }
# jq-like: the value at a python expression on the parsed JSON of FILE ("j" is the object)
jv() { local f=$1 e=$2; shift 2; "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); print($e)" "$f" "$@" 2>/dev/null; }
expect() { # expect LABEL GOT WANT
    if [ "$2" = "$3" ]; then ok "$1 = $3"; else bad "$1: got '$2', expected '$3'"; fi
}

# ---- a chainz-data set ----
"$build/make_data" "$work/d.h5" --n 300 --d 8 --classes 3 --seed 1 >/dev/null || exit 1
counts=$("$py" -c "import h5py,numpy,sys; y=h5py.File(sys.argv[1],'r')['labels'][:]; print(', '.join(map(str, numpy.bincount(y, minlength=3))))" "$work/d.h5")
inspect "$work/d.h5" >"$work/d.txt" 2>&1; st=$?
expect "data: exit status" $st 0
grep -qx "n: 300" "$work/d.txt" && grep -qx "d: 8" "$work/d.txt" && grep -qx "task: classify" "$work/d.txt" &&
    grep -qx "classes: 3" "$work/d.txt" && grep -qx "class counts: $counts" "$work/d.txt" &&
    grep -qx "label range: min=0 max=2" "$work/d.txt" && grep -qx "  storage: contiguous" "$work/d.txt" &&
    ok "data text: N 300, d 8, classify, 3 classes, counts $counts, labels 0..2, contiguous" ||
    bad "data text: $(cat "$work/d.txt")"
inspect "$work/d.h5" --json >"$work/d.json"
expect "data json: n, d, class_counts, storage, file_bytes" \
    "$(jv "$work/d.json" "j['n'], j['d'], ', '.join(map(str, j['class_counts'])), j['layout']['storage'], j['file_bytes']")" \
    "300 8 $counts contiguous $(stat -c %s "$work/d.h5")"

# ---- the same set, chunked ----
"$build/make_data" "$work/dc.h5" --n 300 --d 8 --classes 3 --seed 1 --chunked >/dev/null || exit 1
(cd "$work" && inspect dc.h5 >dc.txt 2>&1); st=$?
if [ $st -eq 0 ] && grep -qx "  storage: chunked" "$work/dc.txt" && grep -qx "  chunk: 16, 8" "$work/dc.txt" &&
    grep -q "about 100x slower" "$work/dc.txt" && grep -qx "fix: h5repack -l /features:CONTI dc.h5 dc-contiguous.h5" "$work/dc.txt"; then
    ok "chunked: chunk 16x8, the cost and the h5repack command"
else
    bad "chunked not reported: status $st, $(cat "$work/dc.txt")"
fi
(cd "$work" && inspect dc.h5 --json >dc.json)
expect "chunked json: storage, chunk, filters" "$(jv "$work/dc.json" "j['layout']['storage'], j['layout']['chunk'], j['layout']['filters']")" \
    "chunked [16, 8] deflate level 1"
if command -v h5repack >/dev/null; then
    fix=$(jv "$work/dc.json" "j['fix']")
    (cd "$work" && $fix) && inspect "$work/dc-contiguous.h5" | grep -qx "  storage: contiguous" &&
        ok "the printed fix '$fix' gives a contiguous file" || bad "the fix '$fix' did not give a contiguous file"
fi

# ---- a tiny training run: run directory, checkpoint, metrics ----
timeout 120 mpirun -np 1 "$chainz" train --data "$work/d.h5" --out "$work/run" --layers 6,5 --epochs 2 --batch 32 \
    --micro-batch 16 --seed 3 --dreg 0.02 >"$work/train.log" 2>&1 || { bad "train: $(tail -3 "$work/train.log")"; exit 1; }
ck="$work/run/checkpoints/$(cat "$work/run/checkpoints/latest")"
step=$(basename "$ck" .h5); step=$((10#${step#ckpt-}))
# the model formula: weights d*n1 + n1*n2 + n2*K, biases n1 + n2 + K, 4 poly coefficients per hidden unit
params=$((8 * 6 + 6 * 5 + 5 * 3 + 6 + 5 + 3 + 4 * (6 + 5)))
inspect "$ck" >"$work/ck.txt" 2>&1; st=$?
expect "checkpoint: exit status" $st 0
grep -qx "  params: $params" "$work/ck.txt" && grep -qx "  layers: 6 poly, 5 poly" "$work/ck.txt" &&
    grep -qx "  epoch: 2" "$work/ck.txt" && grep -qx "  step: $step" "$work/ck.txt" &&
    grep -qx "  position: 0" "$work/ck.txt" && grep -qx "  ok: yes" "$work/ck.txt" &&
    ok "checkpoint text: $params parameters, layers 6 poly 5 poly, epoch 2, step $step, checksums ok" ||
    bad "checkpoint text: $(cat "$work/ck.txt")"
inspect "$ck" --json >"$work/ck.json"
expect "checkpoint json: params, d, outputs, epoch, step, world_size, lambda, optimizer, checksum" \
    "$(jv "$work/ck.json" "j['model']['params'], j['model']['d'], j['model']['outputs'], j['state']['epoch'], j['state']['step'], j['world_size'], j['state']['lambda'], j['optimizer'], j['checksum']['ok'], j['checksum']['params']['ok'], j['checksum']['all']['ok']")" \
    "$params 8 3 2 $step 1 0.02 adamw True True True"
expect "checkpoint json: config seed and batch, training data n" \
    "$(jv "$work/ck.json" "j['config']['seed'], j['config']['batch'], j['training_data']['n'], j['format_version']")" "3 32 300 2"

inspect "$work/run" --json >"$work/run.json"; st=$?
expect "run dir: exit status, kind, latest checkpoint, its step, metrics epochs" \
    "$st $(jv "$work/run.json" "j['kind'], j['checkpoint']['path'] == sys.argv[2], j['checkpoint']['state']['step'], j['metrics']['history_length'], j['config']['layers']" "$ck")" \
    "0 run True $step 2 6,5"
want=$("$py" -c "
import h5py,sys
g=h5py.File(sys.argv[1],'r')['tau/input_grad']
print(int(g['count'][-1]), repr(float(g['mean'][-1])), repr(float(g['p99'][-1])), repr(float(g['tau'][-1])))" "$work/run/metrics.h5")
inspect "$work/run/metrics.h5" --json >"$work/m.json"
expect "metrics json: input_grad's last count/mean/p99/tau (bit-exact)" \
    "$(jv "$work/m.json" "int(j['families']['input_grad']['count']), repr(j['families']['input_grad']['mean']), repr(j['families']['input_grad']['p99']), repr(j['families']['input_grad']['tau'])")" "$want"
inspect "$work/run/metrics.h5" >"$work/m.txt"
grep -qx "history length: 2" "$work/m.txt" && grep -q "^  input_grad: count=300 " "$work/m.txt" &&
    grep -q "^  jacobian/layer_2: count=" "$work/m.txt" && ok "metrics text: 2 epochs, input_grad over 300 samples, jacobian/layer_2" ||
    bad "metrics text: $(cat "$work/m.txt")"

# ---- corruption ----
cp "$ck" "$work/flip.h5"
off=$("$build/ulp_flip" --offset "$work/flip.h5" /model/layer_1/weight) || bad "no offset of /model/layer_1/weight"
"$py" - "$work/flip.h5" "${off:-0}" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:  # one byte of bit rot, outside HDF5
    f.seek(off + 1)
    b = f.read(1)
    f.seek(off + 1)
    f.write(bytes([b[0] ^ 0x10]))
PY
inspect "$work/flip.h5" --json >"$work/flip.json" 2>"$work/flip.err"; st=$?
if [ $st -eq 1 ] && [ "$(jv "$work/flip.json" "j['checksum']['ok'], j['checksum']['params']['ok'], j['checksum']['all']['ok'], j['model']['params']")" = "False False False $params" ] &&
    grep -q "flip.h5: the parameter checksum and checksum_all (everything a resume reads) does not match" "$work/flip.err"; then
    ok "a flipped byte in layer 1's weights: exit 1, both checksums failed, still described: $(cat "$work/flip.err")"
else
    bad "flipped weights: status $st, $(cat "$work/flip.json" "$work/flip.err")"
fi
cp "$ck" "$work/flipm.h5"
"$build/ulp_flip" "$work/flipm.h5" /optimizer/m/layer_2/bias >/dev/null || bad "ulp_flip of the optimizer moment"
inspect "$work/flipm.h5" >"$work/flipm.txt" 2>"$work/flipm.err"; st=$?
if [ $st -eq 1 ] && grep -q "^  params: ok=yes" "$work/flipm.txt" && grep -q "^  all: ok=no" "$work/flipm.txt" &&
    grep -q "flipm.h5: checksum_all (everything a resume reads) does not match" "$work/flipm.err"; then
    ok "one ulp of an optimizer moment: only checksum_all failed, exit 1"
else
    bad "optimizer flip: status $st, $(grep checksum -A3 "$work/flipm.txt") $(cat "$work/flipm.err")"
fi
# dropout edited (the parameters and everything checksum_all covers unchanged): checksum_model
cp "$ck" "$work/arch.h5"
"$py" -c "import h5py,sys; f=h5py.File(sys.argv[1],'r+'); f.attrs['dropout']=0.25" "$work/arch.h5"
inspect "$work/arch.h5" >"$work/arch.txt" 2>"$work/arch.err"; st=$?
inspect "$work/arch.h5" --json >"$work/arch.json" 2>/dev/null; stj=$?
if [ $st -eq 1 ] && [ $stj -eq 1 ] && grep -q "^  params: ok=yes" "$work/arch.txt" && grep -q "^  all: ok=yes" "$work/arch.txt" &&
    grep -q "^  model: ok=no" "$work/arch.txt" &&
    [ "$(jv "$work/arch.json" "j['checksum']['ok'], j['checksum']['params']['ok'], j['checksum']['all']['ok'], j['checksum']['model']['ok'], j['model']['dropout']")" = "False True True False 0.25" ] &&
    grep -q "arch.h5: checksum_model (the model's architecture attributes: activations, head, ...) does not match" "$work/arch.err"; then
    ok "dropout edited: only checksum_model failed, in text and JSON, exit 1"
else
    bad "dropout edit: status $st/$stj, $(grep -A4 '^checksum' "$work/arch.txt") $(cat "$work/arch.err")"
fi
cp -r "$work/run" "$work/run2"
cp "$work/flip.h5" "$work/run2/checkpoints/$(cat "$work/run2/checkpoints/latest")"
inspect "$work/run2" --json >"$work/run2.json" 2>"$work/run2.err"; st=$?
[ $st -eq 1 ] && [ "$(jv "$work/run2.json" "j['checkpoint']['checksum']['ok'], j['metrics']['history_length']")" = "False 2" ] &&
    ok "a run directory with a corrupt latest: exit 1, the rest still described" ||
    bad "run dir with a corrupt latest: status $st, $(cat "$work/run2.err")"

# ---- other files ----
"$py" -c "
import h5py, sys
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['format'] = 'someone-else'; f.attrs['rows'] = 7; f['x'] = [1, 2]" "$work/other.h5"
inspect "$work/other.h5" >"$work/other.txt" 2>&1; st=$?
[ $st -eq 0 ] && grep -q "unknown HDF5 file" "$work/other.txt" && grep -qx "  rows: 7" "$work/other.txt" &&
    grep -qx "  format: someone-else" "$work/other.txt" && grep -qx "  x: dataset" "$work/other.txt" &&
    ok "unknown HDF5: root attributes and members listed" || bad "unknown HDF5: status $st, $(cat "$work/other.txt")"
inspect "$work/other.h5" --json >"$work/other.json"
expect "unknown HDF5 json" "$(jv "$work/other.json" "j['kind'], j['format'], j['root_attributes']['rows']")" "hdf5 someone-else 7"
# JSON is UTF-8: a long UTF-8 value is cut at a character, bytes that are not UTF-8 (an
# attribute, the path) become U+FFFD; strict decoding of the bytes, not the locale's
mkdir -p "$work/"$'\xff'
"$py" -c "
import h5py, numpy, sys
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['format'] = 'x'; f.attrs['note'] = ('a' + 'é' * 60).encode(); f.attrs['raw'] = numpy.bytes_(b'v\xff\xfe')" \
    "$work/"$'\xff'"/u.h5"
inspect "$work/"$'\xff'"/u.h5" --json >"$work/u.json"; st=$?
inspect "$work/"$'\xff'"/u.h5" >"$work/u.txt"
expect "non-UTF-8 and cut UTF-8: exit, strict UTF-8 JSON, the cut value, the raw bytes, path, text UTF-8" "$st $("$py" -c "
import json, sys
j = json.loads(open(sys.argv[1], 'rb').read().decode('utf-8'))
a = j['root_attributes']
print(a['note'].startswith('aé') and a['note'].endswith('é...'), a['raw'] == 'v\ufffd\ufffd', j['path'].endswith('\ufffd/u.h5'))
open(sys.argv[2], 'rb').read().split(b'note: ')[1].split(b'\n')[0].decode('utf-8')" "$work/u.json" "$work/u.txt" 2>&1)" "0 True True True"
echo "a,b" >"$work/t.csv"
refused() { # refused LABEL PATTERN -- args...
    local label=$1 pat=$2; shift 3
    inspect "$@" >"$work/r.out" 2>"$work/r.err"; local st=$?
    if [ $st -eq 1 ] && [ ! -s "$work/r.out" ] && grep -q "$pat" "$work/r.err"; then ok "$label: exit 1, $(head -c 200 "$work/r.err")"
    else bad "$label: status $st, stdout $(wc -c <"$work/r.out") bytes, $(cat "$work/r.err")"; fi
}
refused "a CSV file" "t.csv: not an HDF5 file (expected a chainz checkpoint, a chainz-data set, a metrics.h5 or a run directory)" -- "$work/t.csv"
refused "a missing file" "nothing.h5: No such file or directory (expected a chainz checkpoint" -- "$work/nothing.h5" --json
refused "two files" "one FILE only" -- "$work/d.h5" "$work/dc.h5"
refused "an unknown option" "unknown option '--jsn'" -- "$work/d.h5" --jsn
inspect "$work/d.h5" --json >/dev/full 2>"$work/r.err"; st=$?
[ $st -eq 2 ] && grep -q "cannot write the description to standard output" "$work/r.err" &&
    ok "stdout on a full device: exit 2, $(cat "$work/r.err")" || bad "stdout on /dev/full: status $st, $(cat "$work/r.err")"
mkdir -p "$work/empty"
refused "a directory with nothing of a run" "empty: a directory without config.json" -- "$work/empty"

# every JSON output above is one valid object
nj=0
for f in d dc ck run m flip run2 other u; do
    "$py" -m json.tool "$work/$f.json" >/dev/null 2>&1 && nj=$((nj + 1)) || bad "$f.json is not valid JSON"
done
expect "--json outputs that parse as JSON" $nj 9
[ $fails -eq 0 ] && echo "test_inspect: all passed" || echo "test_inspect: $fails failed"
exit $((fails > 0))

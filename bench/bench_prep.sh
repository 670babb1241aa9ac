#!/bin/bash
# Benchmark of `chainz prep csv` on a Yelp-sized synthetic corpus: generates (once, kept in
# WORK) a Yelp-format CSV and a GloVe-format vector file with gen_yelp, then runs
# chainz prep csv under /usr/bin/time -v with the word vectors and with the hashing
# featurizer, and reports rows/s, input MB/s, wall time and peak RSS.
#
#   bench/bench_prep.sh BUILD_DIR [WORK_DIR] [ROWS] [VOCAB] [DIM]
#   defaults: WORK_DIR $TMPDIR/chainz-bench-prep, ROWS 650000 (Yelp review full: 650k
#   training rows), VOCAB 400000 and DIM 300 (GloVe 6B 300d: 400k words).
# Needs about 2 GB of disk for the inputs and 0.8 GB per output set.
set -euo pipefail
build=$(cd "$1" && pwd)
work=${2:-${TMPDIR:-/tmp}/chainz-bench-prep}
rows=${3:-650000}
vocab=${4:-400000}
dim=${5:-300}
chainz="$build/chainz"
gen="$build/gen_yelp"
[ -x /usr/bin/time ] || { echo "bench_prep: needs /usr/bin/time (apt-get install time)"; exit 1; }
mkdir -p "$work"
csv="$work/yelp-$rows.csv"
vec="$work/vec-$vocab-$dim.txt"
if [ ! -s "$csv" ] || [ ! -s "$vec" ]; then
    echo "generating $rows rows and $vocab x $dim vectors in $work ..."
    /usr/bin/time -f "gen_yelp: %e s" "$gen" "$csv" "$rows" --seed 1 --vectors "$vec" --dim "$dim" --vocab "$vocab"
fi
echo "input: $csv ($(du -m "$csv" | cut -f1) MB), vectors: $vec ($(du -m "$vec" | cut -f1) MB)"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo), $(uname -r)"

# run NAME ARGS...: one timed run; prints its summary and a result line
run() {
    local name=$1; shift
    local log="$work/$name.time" out="$work/$name.out"
    # drop the page cache effects of the previous run's outputs, not of the inputs
    rm -f "$work/$name"-*.h5
    echo
    echo "== $name: chainz prep csv $csv -o $work/$name.h5 $*"
    /usr/bin/time -v "$chainz" prep csv "$csv" -o "$work/$name.h5" "$@" >"$out" 2>"$log"
    cat "$out"
    local wall rss
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log" |
           awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
    local mb
    mb=$(du -m "$csv" | cut -f1)
    awk -v n="$rows" -v w="$wall" -v r="$rss" -v mb="$mb" -v name="$name" 'BEGIN {
        printf "RESULT %s: %d rows in %.1f s wall = %.0f rows/s, %.1f MB/s of CSV; peak RSS %.0f MB\n",
               name, n, w, n / w, mb / w, r / 1024 }'
    rm -f "$work/$name"-*.h5
}

run embeddings --embeddings "$vec" --split train=0.9,test=0.1
run hash --hash-dim "$dim" --split train=0.9,test=0.1

#!/bin/bash
# chainz prep on the command line: csv (hash and embeddings, split, fraction, skip-bad),
# numeric, arff with --fraction and with string attributes (and weka's ReutersCorn if present); help text; usage and input errors with their exit status
# and messages naming file and line; no output and no temporary file after a failure; a
# streamed file trains. Uses gen_yelp for a synthetic Yelp-format corpus.
# Usage: test_prep_cli.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
chainz="$build/chainz"
gen="$build/gen_yelp"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
no_tmp() { ! ls "$work" | grep -q '\.tmp\.'; }

# expect_fail STATUS PATTERN args...: chainz prep exits STATUS with PATTERN on stderr
expect_fail() {
    local want=$1 pat=$2; shift 2
    "$chainz" prep "$@" >"$work/out.txt" 2>"$work/err.txt"
    local rc=$?
    if [ $rc -eq "$want" ] && grep -qF -- "$pat" "$work/err.txt"; then ok "exit $rc: $pat"
    else bad "prep $* -> exit $rc (want $want), stderr: $(head -c 300 "$work/err.txt")"; fi
}

"$chainz" prep --help >"$work/help.txt" 2>&1 || bad "--help exit status"
for o in --output --split --fraction --count --count-per-class --seed --embeddings --hash-dim --l2-normalize --label-col --label \
         --label-base --classes --task --skip-bad --class --drop-missing "Default: 1" "Default: csv 1, numeric 0"; do
    grep -qF -- "$o" "$work/help.txt" || bad "--help lacks $o"
done
ok "--help documents every option"

"$gen" "$work/y.csv" 3000 --seed 7 --vectors "$work/y.vec" --dim 20 --vocab 2000 || bad "gen_yelp failed"
"$gen" "$work/y2.csv" 3000 --seed 7 --vocab 2000 >/dev/null && cmp -s "$work/y.csv" "$work/y2.csv" && ok "gen_yelp is deterministic" ||
    bad "gen_yelp differs for the same seed"
"$gen" "$work/a.csv" 50 --title && head -1 "$work/a.csv" | grep -q '^"[1-5]","[^"]*","' && ok "gen_yelp --title" ||
    bad "gen_yelp --title: $(head -c 40 "$work/a.csv")"

# csv, hashing, split
if "$chainz" prep csv "$work/y.csv" -o "$work/h.h5" --hash-dim 64 --split train=0.8,val=0.1,test=0.1 --seed 3 \
    >"$work/out.txt" 2>"$work/err.txt"; then
    # each class is cut separately: within a row per class (5 classes) of 2400/300/300
    read -r tr va te <<<"$(sed -E 's/.*train ([0-9]+), val ([0-9]+), test ([0-9]+).*/\1 \2 \3/' "$work/out.txt")"
    grep -q 'csv: 3000 rows, d 64, classify 5 classes' "$work/out.txt" && [ $((tr + va + te)) -eq 3000 ] &&
        [ $((tr - 2400)) -le 5 ] && [ $((2400 - tr)) -le 5 ] && [ $((va - 300)) -le 5 ] && [ $((300 - va)) -le 5 ] &&
        ok "csv --hash-dim with a split: train $tr, val $va, test $te" || bad "summary: $(cat "$work/out.txt")"
    [ -f "$work/h-train.h5" ] && [ -f "$work/h-val.h5" ] && [ -f "$work/h-test.h5" ] && no_tmp && ok "three files, no temporaries" ||
        bad "outputs: $(ls "$work")"
else
    bad "csv --hash-dim: $(cat "$work/err.txt")"
fi
# the same seed gives the same files (the timings are not in them): the stored bytes of
# every dataset and attribute (tests/h5bytes; h5dump text would show ~6 digits only)
"$chainz" prep csv "$work/y.csv" -o "$work/h2.h5" --hash-dim 64 --split train=0.8,val=0.1,test=0.1 --seed 3 >/dev/null 2>&1
for s in train val test; do
    if "$build/h5bytes" "$work/h-$s.h5" >"$work/a.txt" && "$build/h5bytes" "$work/h2-$s.h5" >"$work/b.txt" &&
        grep -q '^/features float' "$work/a.txt" && cmp -s "$work/a.txt" "$work/b.txt"; then
        ok "deterministic $s split: the same bytes in every dataset and attribute"
    else
        bad "$s split differs for the same seed (or unreadable)"; diff "$work/a.txt" "$work/b.txt" | head -4
    fi
done
if command -v h5dump >/dev/null; then
    h5dump -d /stats/mean -a /stats/meaning "$work/h-train.h5" >/dev/null 2>&1 && ok "/stats in the train file" ||
        bad "no /stats in h-train.h5"
    h5dump -d /stats/mean "$work/h-val.h5" >/dev/null 2>&1 && bad "/stats in the val file" || ok "no /stats in val"
    h5dump -a /featurizer "$work/h-train.h5" | grep -q 'signed hashing of unigrams and bigrams into 64' &&
        ok "featurizer attribute" || bad "featurizer attribute"
    h5dump -p -H -d /features "$work/h-train.h5" | grep -q CONTIGUOUS && ok "contiguous /features" || bad "layout"
fi

# csv, embeddings, fraction, l2
if "$chainz" prep csv "$work/y.csv" -o "$work/e.h5" --embeddings "$work/y.vec" --l2-normalize --task ordinal \
    --split train=0.5,test=0.5 --fraction 0.2 >"$work/out.txt" 2>"$work/err.txt"; then
    grep -q 'd 20, ordinal 5 classes' "$work/out.txt" && grep -q 'out of vocabulary' "$work/out.txt" &&
        grep -q 'fraction 0.2 of train' "$work/out.txt" && grep -q 'vectors 2000 x 20' "$work/out.txt" &&
        ok "csv --embeddings --fraction: $(grep -o 'train [0-9]*, test [0-9]*' "$work/out.txt")" ||
        bad "summary: $(cat "$work/out.txt")"
    n=$(grep -o 'train [0-9]*' "$work/out.txt" | cut -d' ' -f2)
    [ "$n" -ge 295 ] && [ "$n" -le 305 ] && ok "fraction 0.2 of 1500 train rows: $n" || bad "fraction gave $n rows"
else
    bad "csv --embeddings: $(cat "$work/err.txt")"
fi

# a streamed file trains (one rank)
if timeout 300 "$chainz" train --data "$work/h-train.h5" --layers 8 --epochs 1 --batch 64 --out "$work/run" \
    >"$work/train.log" 2>&1; then ok "chainz train reads the streamed file"
else bad "chainz train on h-train.h5: $(tail -3 "$work/train.log")"; fi

# bad input: messages with file and line, exit 1, nothing written
printf '"1","fine"\n"2","a "bad" quote"\n"3","fine"\n' >"$work/bad.csv"
expect_fail 1 "bad.csv:2: field 2: 'b' after the closing quote" csv "$work/bad.csv" -o "$work/bad.h5" --hash-dim 8
[ ! -e "$work/bad.h5" ] && no_tmp && ok "no output after an error" || bad "left-overs: $(ls "$work")"
if "$chainz" prep csv "$work/bad.csv" -o "$work/bad.h5" --hash-dim 8 --skip-bad 1 >"$work/out.txt" 2>"$work/err.txt"; then
    grep -q '2 rows (1 bad rows skipped)' "$work/out.txt" && grep -q 'the first: .*bad.csv:2:' "$work/err.txt" &&
        ok "--skip-bad 1 skips and reports" || bad "skip-bad summary: $(cat "$work/out.txt" "$work/err.txt")"
else bad "--skip-bad 1: $(cat "$work/err.txt")"; fi
printf '"1","a"\n"7","b"\n' >"$work/range.csv"
expect_fail 1 "range.csv:2: label (field 1) 7 is outside 1..5" csv "$work/range.csv" -o "$work/r.h5" --hash-dim 8 --classes 5
printf 'w 1 2 3\nv 1 2\n' >"$work/bad.vec"
expect_fail 1 "bad.vec:2: 2 values after the word 'v', expected 3" csv "$work/y.csv" -o "$work/r.h5" --embeddings "$work/bad.vec"
: >"$work/empty.csv"
expect_fail 1 "empty.csv: empty file" csv "$work/empty.csv" -o "$work/r.h5" --hash-dim 8
# an output that is an input (the data or the word vectors, under any name) is refused
cp "$work/y.csv" "$work/self.csv"
expect_fail 1 "is the input file" numeric "$work/self.csv" -o "$work/./self.csv"
cp "$work/y.vec" "$work/vv-train.h5" # word vectors where a split output would go
expect_fail 1 "is the input file" csv "$work/self.csv" -o "$work/vv" --split train=0.5,val=0.5 --embeddings "$work/vv-train.h5"
cmp -s "$work/y.csv" "$work/self.csv" && cmp -s "$work/y.vec" "$work/vv-train.h5" && ok "the inputs are untouched" ||
    bad "an input changed"
expect_fail 1 "nothere.csv: cannot open" csv "$work/nothere.csv" -o "$work/r.h5" --hash-dim 8
expect_fail 1 "cannot create" csv "$work/y.csv" -o "$work/no/such/dir/r.h5" --hash-dim 8

# usage errors
expect_fail 1 "csv needs a featurizer" csv "$work/y.csv" -o "$work/r.h5"
expect_fail 1 "not both" csv "$work/y.csv" -o "$work/r.h5" --hash-dim 8 --embeddings "$work/y.vec"
expect_fail 1 "--label NAME applies to numeric only" csv "$work/y.csv" -o "$work/r.h5" --hash-dim 8 --label y
expect_fail 1 "--fraction needs a number in (0, 1]" csv "$work/y.csv" -o "$work/r.h5" --hash-dim 8 --fraction 0
expect_fail 1 "--task for csv expects classify or ordinal" csv "$work/y.csv" -o "$work/r.h5" --hash-dim 8 --task regress
expect_fail 1 "--hash-dim needs an integer" csv "$work/y.csv" -o "$work/r.h5" --hash-dim 0
expect_fail 1 "apply to csv and arff only" numeric "$work/y.csv" -o "$work/r.h5" --hash-dim 8
expect_fail 1 "unknown input format" tsv "$work/y.csv" -o "$work/r.h5"

# numeric
printf 'age,"glucose level",outcome\n50,148,1\n31,85,0\n32,183,1\n21,89,0\n33,137,1\n' >"$work/n.csv"
if "$chainz" prep numeric "$work/n.csv" -o "$work/n.h5" --label outcome >"$work/out.txt" 2>"$work/err.txt"; then
    grep -q "5 rows, d 2, classify 2 classes \[2/3\], label 'outcome'" "$work/out.txt" && ok "numeric --label" ||
        bad "numeric summary: $(cat "$work/out.txt")"
else bad "numeric: $(cat "$work/err.txt")"; fi
"$chainz" prep numeric "$work/n.csv" -o "$work/n2.h5" --label-col 2 --task regress >"$work/out.txt" 2>&1 &&
    grep -q "d 2, regress, label 'glucose level'" "$work/out.txt" && ok "numeric --label-col --task regress" ||
    bad "numeric regress: $(cat "$work/out.txt")"
printf 'a,b\n1,0\n2,x\n' >"$work/nb.csv"
expect_fail 1 "nb.csv:3: column 2 ('b'): 'x' is not a number" numeric "$work/nb.csv" -o "$work/r.h5" --label a

# arff with --fraction (in memory): exactly round(0.5 * 10) = 5 rows kept (per-class rounding
# kept 3 + 3), and /stats
cat >"$work/t.arff" <<'EOF'
@relation t
@attribute x numeric
@attribute class {a,b}
@data
1,a
2,a
3,a
4,a
5,b
6,b
7,b
8,b
9,a
10,b
EOF
"$chainz" prep arff "$work/t.arff" -o "$work/t.h5" --fraction 0.5 >"$work/out.txt" 2>&1 &&
    grep -q "fraction 0.5 of train (5 rows left out)" "$work/out.txt" && ok "arff --fraction: exactly 5 of 10 rows" ||
    bad "arff --fraction: $(cat "$work/out.txt")"

# arff with a string attribute: the csv featurizer's options, errors without one
printf "@relation s\n@attribute Text string\n@attribute c {0,1}\n@data\n'corn up, \\\\'wheat\\\\' down',1\n'Maize',0\n\"rain\",0\n" >"$work/s.arff"
if "$chainz" prep arff "$work/s.arff" -o "$work/s.h5" --hash-dim 16 --l2-normalize >"$work/out.txt" 2>"$work/err.txt"; then
    grep -q 'arff: 3 rows, d 16, classify 2 classes \[2/1\]; text: 3 values, 6 tokens, 0 values without a token' \
        "$work/out.txt" && ok "arff string attribute --hash-dim" || bad "arff string summary: $(cat "$work/out.txt")"
    if command -v h5dump >/dev/null; then
        h5dump -a /featurizer "$work/s.h5" | grep -q "L2-normalized.*arff string attributes: 'Text' columns 0..15" &&
            ok "arff featurizer attribute" || bad "arff featurizer attribute: $(h5dump -a /featurizer "$work/s.h5")"
    fi
else bad "arff string --hash-dim: $(cat "$work/err.txt")"; fi
# the tokenizer keeps apostrophes: 'wheat' (quotes and all) is not the word wheat
printf 'corn 1 0\nwheat 0 1\n' >"$work/s.vec"
"$chainz" prep arff "$work/s.arff" -o "$work/s2.h5" --embeddings "$work/s.vec" >"$work/out.txt" 2>&1 &&
    grep -q 'd 2, .*text: 3 values, 6 tokens, 5 out of vocabulary (83.33%), 2 values without a known token; vectors 2 x 2' \
        "$work/out.txt" && ok "arff string attribute --embeddings" || bad "arff --embeddings: $(cat "$work/out.txt")"
expect_fail 1 "s.arff:2: attribute 'Text' has type string: text needs a featurizer, pass --hash-dim D or --embeddings" \
    arff "$work/s.arff" -o "$work/r.h5"
expect_fail 1 "no attribute has type string" arff "$work/t.arff" -o "$work/r.h5" --hash-dim 8
expect_fail 1 "not both" arff "$work/s.arff" -o "$work/r.h5" --hash-dim 8 --embeddings "$work/s.vec"
expect_fail 1 "--l2-normalize needs a featurizer" arff "$work/s.arff" -o "$work/r.h5" --l2-normalize
[ ! -e "$work/r.h5" ] && no_tmp || bad "left-overs after arff errors: $(ls "$work")"

# weka's ReutersCorn (a string attribute and a nominal class), when weka's examples are here
reuters=""
for f in /usr/share/doc/weka/examples/ReutersCorn-train.arff /tmp/weka-x/usr/share/doc/weka/examples/ReutersCorn-train.arff; do
    [ -f "$f" ] && { reuters=$f; break; }
done
if [ -n "$reuters" ]; then
    if "$chainz" prep arff "$reuters" -o "$work/corn.h5" --hash-dim 64 --split train=0.8,test=0.2 \
        >"$work/out.txt" 2>"$work/err.txt"; then
        grep -q 'arff: 1554 rows, d 64, classify 2 classes \[1509/45\]; text: 1554 values, [0-9]* tokens' \
            "$work/out.txt" && [ -f "$work/corn-train.h5" ] && [ -f "$work/corn-test.h5" ] &&
            ok "ReutersCorn-train.arff --hash-dim 64: $(grep -o 'train [0-9]*, test [0-9]*' "$work/out.txt")" ||
            bad "ReutersCorn summary: $(cat "$work/out.txt")"
    else bad "ReutersCorn: $(cat "$work/err.txt")"; fi
    expect_fail 1 "ReutersCorn-train.arff:3: attribute 'Text' has type string" arff "$reuters" -o "$work/r.h5"
else
    echo "skip: ReutersCorn-train.arff not found (apt-get download weka && dpkg-deb -x weka_*.deb /tmp/weka-x)"
fi

# exact sizes: --fraction keeps exactly round(F * n) rows in total, --count N exactly N,
# --count-per-class exactly A, B, ... (largest remainder, nested for the same seed)
labels_of() { # FILE -> one label per line
    h5dump -d /labels -y -w 0 -o "$work/lab.txt" "$1" >/dev/null 2>&1 && tr -d ' \n' <"$work/lab.txt" | tr ',' '\n'
}
xs_of() { # FILE -> the feature x (= the row id of the synthetic arff) per line
    h5dump -d /features -y -w 0 -o "$work/xs.txt" "$1" >/dev/null 2>&1 && tr -d ' \n' <"$work/xs.txt" | tr ',' '\n'
}
{ printf '@relation three\n@attribute x numeric\n@attribute class {a,b,c}\n@data\n'
  for i in $(seq 1 100); do
      if [ $i -le 50 ]; then c=a; elif [ $i -le 80 ]; then c=b; else c=c; fi; echo "$i,$c"; done; } >"$work/three.arff"
prev=""
for n in 7 13 40 77; do
    "$chainz" prep arff "$work/three.arff" -o "$work/n$n.h5" --count $n --seed 5 >/dev/null 2>&1 || bad "--count $n failed"
    got=$(labels_of "$work/n$n.h5" | sort | uniq -c | awk '{printf "%s ", $1}')
    # class counts within one row of n * (50, 30, 20) / 100, total exactly n
    if labels_of "$work/n$n.h5" | awk -v n=$n 'BEGIN{q[0]=.5;q[1]=.3;q[2]=.2} {c[$1]++; t++}
        END{ if (t != n) exit 1; for (k = 0; k < 3; k++) { d = c[k] - n * q[k]; if (d <= -1 || d >= 1) exit 1 } }'; then
        ok "--count $n on 50/30/20 rows: exactly $n ($got)"
    else bad "--count $n: class counts $got"; fi
    xs_of "$work/n$n.h5" | sort >"$work/xs$n.txt"
    if [ -n "$prev" ]; then
        [ -z "$(comm -23 "$work/xs$prev.txt" "$work/xs$n.txt")" ] && ok "--count $prev rows are among the --count $n rows" ||
            bad "--count $prev is not nested in --count $n"
    fi
    prev=$n
done
"$chainz" prep arff "$work/three.arff" -o "$work/pc.h5" --count-per-class 5,0,3 --seed 5 >/dev/null 2>&1 &&
    [ "$(labels_of "$work/pc.h5" | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')" = "0:5 2:3 " ] &&
    ok "--count-per-class 5,0,3: exactly 5 of class 0, 3 of class 2" || bad "--count-per-class 5,0,3: $(labels_of "$work/pc.h5" | sort | uniq -c)"
"$chainz" prep arff "$work/three.arff" -o "$work/pc2.h5" --count-per-class 10,0,6 --seed 5 >/dev/null 2>&1
xs_of "$work/pc.h5" | sort >"$work/pcx.txt"; xs_of "$work/pc2.h5" | sort >"$work/pcx2.txt"
[ -s "$work/pcx.txt" ] && [ -z "$(comm -23 "$work/pcx.txt" "$work/pcx2.txt")" ] && ok "--count-per-class nested" ||
    bad "--count-per-class 5,0,3 not nested in 10,0,6"
expect_fail 1 "count per class: class 2: 21 rows asked, the train split has only 20" arff "$work/three.arff" -o "$work/r.h5" --count-per-class 1,1,21
expect_fail 1 "count per class: 2 counts given, the data have 3 classes" arff "$work/three.arff" -o "$work/r.h5" --count-per-class 1,1
expect_fail 1 "count 101: the train split has only 100 rows" arff "$work/three.arff" -o "$work/r.h5" --count 101
expect_fail 1 "give at most one of --fraction, --count, --count-per-class" arff "$work/three.arff" -o "$work/r.h5" --count 5 --fraction 0.5
expect_fail 1 "--count needs a positive integer" arff "$work/three.arff" -o "$work/r.h5" --count 0
expect_fail 1 "--count-per-class needs counts" arff "$work/three.arff" -o "$work/r.h5" --count-per-class 1,,2
# Pima (weka's diabetes.arff, 500/268): train=0.8 gives 400/214 = 614 train rows
pima_dir=$(bash "$(dirname "$0")/../launch/weka-examples.sh" 2>/dev/null) || pima_dir=""
if [ -n "$pima_dir" ] && [ -f "$pima_dir/diabetes.arff" ]; then
    for c in "--fraction 0.05:31:20 11" "--count 32:32:21 11" "--count-per-class 16,16:32:16 16"; do
        opt=${c%%:*}; rest=${c#*:}; want_n=${rest%%:*}; want_k=${rest#*:}
        # shellcheck disable=SC2086
        "$chainz" prep arff "$pima_dir/diabetes.arff" -o "$work/pima.h5" --split train=0.8,test=0.2 --seed 3 $opt \
            >/dev/null 2>&1 || bad "pima $opt failed"
        got=$(labels_of "$work/pima-train.h5" | sort | uniq -c | awk '{printf "%s ", $1}')
        [ "$got" = "$want_k " ] && [ "$(labels_of "$work/pima-train.h5" | awk 'END{print NR}')" -eq "$want_n" ] &&
            ok "Pima $opt: exactly $want_n train rows ($got)" || bad "Pima $opt: $got (want $want_k)"
    done
else
    echo "skip: diabetes.arff not found (launch/weka-examples.sh)"
fi

echo "test_prep_cli: $fails failure(s)"
[ $fails -eq 0 ]

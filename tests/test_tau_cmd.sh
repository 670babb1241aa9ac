#!/usr/bin/env bash
# `chainz tau` end to end:
#  - fixture metrics files with known values (tests/make_metrics.c, HDF5 directly): the
#    one-run table's numbers and alignment, --family, the training accuracy of a run
#    without validation, the side-by-side comparison and its summary, labels, CSV;
#  - --plot: a valid PNG and a valid SVG, written atomically, temporary files removed;
#    with --plot-data, the gnuplot script and data: one colour per run (palette, then dash
#    styles past 7 runs), the same in both panels; the CCDF of each run non-increasing from
#    1 (the fixture's exact fractions), its x range that of the non-empty bins; the kept
#    script redraws the figure;
#  - errors (exit status 1 and a message naming the file or family): missing run dir or
#    file, wrong format, wrong version, inconsistent lengths, missing dataset, unknown
#    family, bad --plot name, gnuplot missing; a failing gnuplot (exit status 2);
#  - a real run of chainz train: its metrics file, table and figure.
# Usage: test_tau_cmd.sh BUILD_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
chainz="$build/chainz"
mk="$build/make_metrics"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work/tmp"
mkdir -p "$TMPDIR"
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# the last line of FILE whose first field is KEY, blanks squeezed
row() { awk -v k="$2" '$1 == k { $1 = $1; l = $0 } END { print l }' "$1"; }
expect_row() { # expect_row FILE KEY EXPECTED LABEL
    local got
    got=$(row "$1" "$2")
    if [ "$got" = "$3" ]; then ok "$4"; else bad "$4: got '$got', expected '$3'"; fi
}
# every line of the first table in FILE (from its 'epoch'/'run' header to a blank line)
# has the same length: the columns are aligned
aligned() { awk -v h="$2" '$1 == h { on = 1 } on && !NF { exit } on { print length($0) }' "$1" | sort -u | wc -l; }
png_ok() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
svg_ok() { python3 -c 'import xml.dom.minidom,sys; d = xml.dom.minidom.parse(sys.argv[1]); sys.exit(d.documentElement.tagName != "svg")' "$1"; }

# ---- fixtures (values in tests/make_metrics.c) ----
mkdir -p "$work/runA" "$work/runB" "$work/a/run" "$work/b/run"
"$mk" "$work/runA/metrics.h5" --epochs 3 --layers 2 || exit 1
"$mk" "$work/runB/metrics.h5" --epochs 4 --layers 3 --scale 2 --no-val || exit 1
"$mk" "$work/a/run/metrics.h5" && "$mk" "$work/b/run/metrics.h5" --scale 3 || exit 1

# ---- one run ----
if "$chainz" tau "$work/runA" >"$work/one.txt" 2>"$work/err.txt"; then
    ok "tau on one run: $(wc -l <"$work/one.txt") lines"
else
    bad "tau on one run failed: $(cat "$work/err.txt")"
fi
head -1 "$work/one.txt" | grep -q "runA: $work/runA/metrics.h5, 3 epochs" && ok "title names the run and file" ||
    bad "title: $(head -1 "$work/one.txt")"
# epoch, train loss, val acc | input_grad, sample_grad, param_grad, jacobian/layer_2:
# tau p50 p90 p99 mean max (m = 1, 3, 2, 5: tau = (3+e) m / 1.25, p99 = (3+e) m^2, ...)
expect_row "$work/one.txt" 2 "2 1 0.6000 3.2 1 2 4 1.25 11 9.6 3 6 36 3.75 99 6.4 2 4 16 2.5 44 16 5 10 100 6.25 275" \
    "one run, epoch 2: loss, val acc, and tau p50 p90 p99 mean max of the 4 default families"
expect_row "$work/one.txt" 3 "3 0.6667 0.7000 4 1 2 5 1.25 12 12 3 6 45 3.75 108 8 2 4 20 2.5 48 20 5 10 125 6.25 300" \
    "one run, epoch 3"
hdr=$(grep -m1 'input_grad' "$work/one.txt")
if [[ $hdr == *input_grad*sample_grad*param_grad*jacobian/layer_2* && $hdr != *layer_1* ]]; then
    ok "default families: input_grad, sample_grad, param_grad, the last layer's jacobian"
else
    bad "default family header: $hdr"
fi
grep -q '^epoch  train_loss  val_acc    tau  p50' "$work/one.txt" && ok "column headers" || bad "column headers: $(grep -m1 '^epoch' "$work/one.txt")"
[ "$(aligned "$work/one.txt" epoch)" -eq 1 ] && ok "one-run table aligned" || { bad "one-run table not aligned"; cat "$work/one.txt"; }

"$chainz" tau "$work/runA/metrics.h5" --family jacobian/layer_1,input_grad >"$work/fam.txt" 2>&1
expect_row "$work/fam.txt" 3 "3 0.6667 0.7000 16 4 8 80 5 192 4 1 2 5 1.25 12" "--family jacobian/layer_1,input_grad (file given directly)"
"$chainz" tau "$work/runA" --family jacobian/layer_1 --family input_grad >"$work/fam2.txt" 2>&1
cmp -s <(tail -n +2 "$work/fam.txt") <(tail -n +2 "$work/fam2.txt") && ok "--family repeated = comma list" || bad "--family repeated differs"
grep -q 'sample_grad' "$work/fam.txt" && bad "--family still shows sample_grad" || ok "--family shows only the chosen families"

"$chainz" tau "$work/runB" >"$work/noval.txt" 2>&1
expect_row "$work/noval.txt" 4 "4 0.5 0.7000 9.6 1 2 12 1.25 26 28.8 3 6 108 3.75 234 19.2 2 4 48 2.5 104 57.6 6 12 432 7.5 936" \
    "run without validation: train_acc column, jacobian/layer_3 as the last layer"
grep -q '^epoch  train_loss  train_acc' "$work/noval.txt" && ok "no validation: header says train_acc" || bad "no-val header"

# ---- several runs ----
"$chainz" tau "$work/runA" "$work/runB/" >"$work/many.txt" 2>"$work/err.txt" && ok "tau on two runs" || bad "two runs: $(cat "$work/err.txt")"
expect_row "$work/many.txt" 1 "1 2.4 7.2 4.8 12 0.5000 4.8 14.4 9.6 28.8 0.4000" "side by side, epoch 1: tau per family + acc per run"
expect_row "$work/many.txt" 4 "4 - - - - - 9.6 28.8 19.2 57.6 0.7000" "side by side, epoch 4: only runB has it"
grep -qE '^ +runA +runB$' "$work/many.txt" && ok "column groups labelled runA, runB" || bad "group labels: $(grep -m1 runA "$work/many.txt")"
grep -q 'runB: .*(jacobian/last = jacobian/layer_3)' "$work/many.txt" && ok "different depths: jacobian/last named per run" || bad "jacobian/last legend"
[ "$(aligned "$work/many.txt" epoch)" -eq 1 ] && ok "comparison aligned" || bad "comparison not aligned"
expect_row "$work/many.txt" runA "runA 3 0.7000 4 3.2 12 9.6 8 6.4 20 16" "summary runA: last and mean tau per family"
expect_row "$work/many.txt" runB "runB 4 0.7000 9.6 7.2 28.8 21.6 19.2 14.4 57.6 43.2" "summary runB"
[ "$(aligned "$work/many.txt" run)" -eq 1 ] && ok "summary aligned" || bad "summary not aligned"
"$chainz" tau "$work/a/run" "$work/b/run/metrics.h5" >"$work/dup.txt" 2>&1
expect_row "$work/dup.txt" "run#2" "run#2 3 0.7000 12 9.6 36 28.8 24 19.2 60 48" "two runs of the same name: run, run#2"

# ---- CSV ----
if "$chainz" tau "$work/runA" "$work/runB" --csv "$work/t.csv" >/dev/null 2>&1; then
    n=$(($(wc -l <"$work/t.csv") - 1))
    [ "$n" -eq 28 ] && ok "csv: 28 rows (7 epochs x 4 families)" || bad "csv has $n rows"
    got=$(awk -F, '$1 == "runB" && $2 == 4 && $13 == "sample_grad" {
        print $7 "|" ($5 - 0.7 < 1e-12 && 0.7 - $5 < 1e-12) "|" $16 "|" $18 "|" $20 }' "$work/t.csv")
    [ "$got" = "|1|3|108|28.8" ] && ok "csv row: empty val_acc, train_acc, p50, p99, tau" || bad "csv row: $got"
    head -1 "$work/t.csv" | grep -q '^run,epoch,step,train_loss' && ok "csv header" || bad "csv header"
else
    bad "--csv failed"
fi

# ---- plots ----
if "$chainz" tau "$work/runA" "$work/runB" --plot "$work/cmp.png" >/dev/null 2>"$work/err.txt" && png_ok "$work/cmp.png"; then
    ok "--plot PNG: $(stat -c %s "$work/cmp.png") bytes, PNG signature; $(cat "$work/err.txt")"
else
    bad "--plot PNG: $(cat "$work/err.txt")"
fi
if "$chainz" tau "$work/runA" --plot "$work/one.svg" >/dev/null 2>"$work/err.txt" && svg_ok "$work/one.svg"; then
    ok "--plot SVG: $(stat -c %s "$work/one.svg") bytes, parses as XML <svg>; $(cat "$work/err.txt")"
else
    bad "--plot SVG: $(cat "$work/err.txt")"
fi
grep -q 'jacobian/layer_2' "$work/one.svg" && grep -q 'input_grad (epoch 3)' "$work/one.svg" &&
    ok "SVG holds the tau lines' and the histogram's titles" || bad "SVG lacks the expected titles"
"$chainz" tau "$work/runB" --plot "$work/cmp.png" >/dev/null 2>&1 && png_ok "$work/cmp.png" &&
    ok "--plot replaces an existing figure" || bad "replacing a figure"
leftover=$(ls -A "$TMPDIR"; ls "$work" | grep '\.tmp\.')
[ -z "$leftover" ] && ok "no temporary files left" || bad "temporary files left: $leftover"

# ---- the figure's script and data (--plot-data): colours per run, the CCDF ----
# ccdf_check FILE: every block (a run) starts at 1 and falls, never rises, to a value > 0
# while x rises; prints "blocks first_x last_x y-values-of-block-1"
ccdf_check() {
    awk 'function endblock() { if (n) { blocks++; if (first != 1) bad = bad " first y " first } n = 0 }
         /^#/ { endblock(); next }
         NF == 2 && $1 != "NaN" {
             x = $1 + 0; y = $2 + 0
             if (!n) { first = y; if (!blocks) { lo = x } }
             else { if (y > py) bad = bad " rises at " x; if (x <= px) bad = bad " x not rising at " x }
             if (y <= 0 || y > 1) bad = bad " y out of (0,1] at " x
             if (x < lo) lo = x; if (x > hi) hi = x
             if (!blocks) ys = ys " " y
             n++; px = x; py = y; next }
         END { endblock(); if (bad != "") { print "BAD" bad; exit 1 } printf "%d %.17g %.17g%s\n", blocks, lo, hi, ys }' "$1"
}
# colour of each plotted line of FILE's plot command for DATA (tau.dat or ccdf.dat): "index colour dt"
line_styles() { grep -o "$2' index [0-9]* using [0-9:]* with [a-z]* [^t]*lc rgb '#[0-9A-Fa-f]*' dt [0-9]*" "$1" |
    sed -E "s/.* index ([0-9]+) .*lc rgb '(#[0-9A-Fa-f]+)' dt ([0-9]+)/\1 \2 \3/"; }
mkdir -p "$work/pd2" "$work/pd9"
if "$chainz" tau "$work/runA" "$work/runB" --plot "$work/cmp2.png" --plot-data "$work/pd2" >/dev/null 2>"$work/err.txt" &&
    png_ok "$work/cmp2.png" && [ -s "$work/pd2/plot.gp" ] && [ -s "$work/pd2/ccdf.dat" ]; then
    ok "--plot-data keeps plot.gp, tau.dat, ccdf.dat ($(ls "$work/pd2" | tr '\n' ' '))"
else
    bad "--plot-data: $(cat "$work/err.txt"; ls "$work/pd2")"
fi
gp="$work/pd2/plot.gp"
tau_cols=$(line_styles "$gp" tau.dat | sort -u | awk '{ print $1, $2 }' | sort -u)
ccdf_cols=$(line_styles "$gp" ccdf.dat | awk '{ print $1, $2 }')
if [ "$(echo "$ccdf_cols" | wc -l)" -eq 2 ] && [ "$(echo "$ccdf_cols" | awk '{ print $2 }' | sort -u | wc -l)" -eq 2 ] &&
    [ "$(echo "$tau_cols" | wc -l)" -eq 2 ] && [ "$tau_cols" = "$ccdf_cols" ]; then
    ok "one distinct colour per run, the same in both panels: $(echo $ccdf_cols)"
else
    bad "colours per run: tau panel '$(echo $tau_cols)', ccdf panel '$(echo $ccdf_cols)'"
fi
if got=$(ccdf_check "$work/pd2/ccdf.dat"); then
    read -r nb lo hi ys <<<"$got"
    # runA's last epoch (tests/make_metrics.c): 60 % at 1, 30 % at 2, 10 % at 5 (then the
    # last step's end); runB's (epoch 4) largest norm is its p99 in the table above, 12
    g=$(awk 'BEGIN { printf "%.17g", 1.01 / 0.99 }')
    if [ "$nb" -eq 2 ] && [ "$ys" = "1 0.4 0.1 0.1" ] &&
        awk -v lo="$lo" -v hi="$hi" -v g="$g" 'BEGIN { exit !(lo < 1 && lo * g >= 1 * (1 - 1e-12) && hi >= 12 && hi < 12 * g) }'; then
        ok "CCDF: non-increasing from 1 per run (runA: 1, 0.4, 0.1), x from $lo to $hi: the bins that hold data"
    else
        bad "CCDF values: blocks $nb, x $lo..$hi, runA's y '$ys'"
    fi
    xr=$(grep -o '^set xrange \[[^]]*\]' "$gp" | tail -1)
    [ "$xr" = "set xrange [$lo:$hi]" ] && ok "CCDF x range limited to the data: $xr" || bad "CCDF x range: '$xr', data $lo..$hi"
else
    bad "CCDF data: $got"
fi
for i in 1 2 3 4 5 6 7 8 9; do mkdir -p "$work/m$i" && "$mk" "$work/m$i/metrics.h5" --scale "$i" || exit 1; done
if "$chainz" tau "$work"/m? --plot "$work/nine.svg" --plot-data "$work/pd9" >/dev/null 2>"$work/err.txt" && svg_ok "$work/nine.svg"; then
    styles=$(line_styles "$work/pd9/plot.gp" ccdf.dat)
    if [ "$(echo "$styles" | wc -l)" -eq 9 ] && [ "$(echo "$styles" | awk '{ print $2, $3 }' | sort -u | wc -l)" -eq 9 ] &&
        [ "$(echo "$styles" | awk '{ print $2 }' | sort -u | wc -l)" -eq 7 ]; then
        ok "9 runs: 7 palette colours, then dash styles: every run's (colour, dash) distinct"
    else
        bad "9 runs' styles: $(echo $styles)"
    fi
else
    bad "9 runs, SVG: $(cat "$work/err.txt")"
fi
# the kept script redraws the figure by itself, from anywhere
rm -f "$work/cmp2.png"
(cd / && gnuplot "$work/pd2/plot.gp" 2>/dev/null) && png_ok "$work/cmp2.png" && ok "gnuplot DIR/plot.gp redraws the figure" ||
    bad "the kept plot.gp does not redraw $work/cmp2.png"
expect_status 1 "--plot-data needs --plot" "--plot-data without --plot" -- "$chainz" tau "$work/runA" --plot-data "$work/pd2"
expect_status 1 "not a writable directory" "--plot-data not a directory" -- "$chainz" tau "$work/runA" --plot "$work/x.png" --plot-data "$work/t.csv"

# ---- errors ----
mkdir -p "$work/empty" "$work/fakebin"
"$build/make_data" "$work/data.h5" --n 20 >/dev/null 2>&1
echo "not hdf5" >"$work/text.h5"
"$mk" "$work/v2.h5" --version 2
"$mk" "$work/short.h5" --short /history/val_acc
"$mk" "$work/shortc.h5" --short /tau/jacobian/layer_1/counts
"$mk" "$work/drop.h5" --drop /tau/param_grad/p99
"$mk" "$work/none.h5" --epochs 0
expect_status 1 "$work/nowhere: no such run directory" "missing run dir" -- "$chainz" tau "$work/nowhere"
expect_status 1 "$work/empty/metrics.h5: missing" "run dir without metrics.h5" -- "$chainz" tau "$work/runA" "$work/empty"
expect_status 1 "$work/data.h5: attribute format is 'chainz-data', expected 'chainz-metrics'" "a chainz-data file" -- "$chainz" tau "$work/data.h5"
expect_status 1 "$work/text.h5: not an HDF5 file" "not HDF5" -- "$chainz" tau "$work/text.h5"
expect_status 1 "$work/v2.h5: metrics version 2 is not supported" "version 2" -- "$chainz" tau "$work/v2.h5"
expect_status 1 "$work/short.h5: dataset /history/val_acc has 2 rows, expected 3" "short history" -- "$chainz" tau "$work/short.h5"
expect_status 1 "$work/shortc.h5: dataset /tau/jacobian/layer_1/counts has 2 rows, expected 3" "short counts" -- "$chainz" tau "$work/shortc.h5"
expect_status 1 "$work/drop.h5: dataset /tau/param_grad/p99 is missing" "missing dataset" -- "$chainz" tau "$work/drop.h5"
expect_status 1 "$work/none.h5: holds no epoch yet" "no epoch" -- "$chainz" tau "$work/none.h5"
expect_status 1 "family 'nosuch' is not in $work/runA/metrics.h5 (it has: input_grad," "unknown family" -- \
    "$chainz" tau "$work/runA" "$work/runB" --family input_grad,nosuch
expect_status 1 "family 'jacobian/layer_3' is not in $work/runA/metrics.h5" "family of the second run only" -- \
    "$chainz" tau "$work/runB" "$work/runA" --family jacobian/layer_3
expect_status 1 "must end in .png or .svg" "--plot OUT.pdf" -- "$chainz" tau "$work/runA" --plot "$work/x.pdf"
expect_status 1 "directory $work/nodir does not exist" "--plot in a missing directory" -- "$chainz" tau "$work/runA" --plot "$work/nodir/x.png"
expect_status 1 "apt-get install gnuplot-nox" "gnuplot missing" -- env PATH="$work/empty" "$chainz" tau "$work/runA" --plot "$work/x.png"
expect_status 1 "missing RUN_DIR" "no run dir" -- "$chainz" tau
expect_status 1 "unknown option '--bogus'" "unknown option" -- "$chainz" tau --bogus "$work/runA"
printf '#!/bin/sh\necho "line 7: boom" >&2\nexit 3\n' >"$work/fakebin/gnuplot"
chmod +x "$work/fakebin/gnuplot"
expect_status 2 "line 7: boom" "gnuplot failing: its exit status checked, its message shown" -- \
    env PATH="$work/fakebin:$PATH" "$chainz" tau "$work/runA" --plot "$work/fail.png"
[ ! -e "$work/fail.png" ] && [ -z "$(ls -A "$TMPDIR"; ls "$work" | grep '\.tmp\.')" ] &&
    ok "failed plot: no figure, no temporary files" || bad "failed plot left files"
"$chainz" tau --help | grep -q -- '--family NAME' && ok "tau --help" || bad "tau --help"
"$chainz" --help | grep -q '^  tau ' && ok "chainz --help lists tau" || bad "chainz --help lacks tau"

# ---- a real run ----
if "$build/make_data" "$work/x.h5" --n 500 --d 8 --classes 3 >/dev/null 2>&1 &&
    timeout 300 "$chainz" train --data "$work/x.h5" --holdout 0.2 --out "$work/real" --layers 16,8 \
        --epochs 3 --batch 32 --micro-batch 8 --dreg 0.01 >"$work/train.log" 2>&1; then
    mkdir -p "$work/pdr"
    if "$chainz" tau "$work/real" --plot "$work/real.png" --plot-data "$work/pdr" >"$work/real.txt" 2>"$work/err.txt" &&
        png_ok "$work/real.png"; then
        ok "real run: table and PNG"
    else
        bad "real run: $(cat "$work/err.txt")"
    fi
    if got=$(ccdf_check "$work/pdr/ccdf.dat"); then
        read -r nb lo hi ys <<<"$got"
        npts=$(echo $ys | wc -w)
        [ "$nb" -eq 1 ] && [ "$npts" -gt 10 ] && ok "real run: CCDF of $npts steps from 1 down, x $lo..$hi" ||
            bad "real run CCDF: $got"
    else
        bad "real run CCDF: $got"
    fi
    want=$(h5dump -m %.17g -y -w 0 -d /tau/input_grad/tau "$work/real/metrics.h5" |
           sed -n '/DATA {/{n;p}' | awk -F, '{ printf "%.4g", $NF }')
    got=$(row "$work/real.txt" 3 | cut -d' ' -f4)
    [ -n "$want" ] && [ "$want" = "$got" ] && ok "real run: last input_grad tau $got as in the file" ||
        bad "real run: input_grad tau '$got', file says '$want'"
    grep -q 'jacobian/layer_2' "$work/real.txt" && grep -q '^epoch  train_loss  val_acc' "$work/real.txt" &&
        ok "real run: val_acc and jacobian/layer_2 columns" || bad "real run header: $(sed -n 3,4p "$work/real.txt")"
    awk '$1 ~ /^[0-9]+$/ { n++; for (i = 2; i <= NF; i++) if ($i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) b++ } END { exit !(n == 3 && !b) }' \
        "$work/real.txt" && ok "real run: 3 epochs, every number present" || bad "real run: missing numbers"
    "$chainz" tau "$work/real" "$work/runA" --plot "$work/mixed.svg" >/dev/null 2>&1 && svg_ok "$work/mixed.svg" &&
        ok "real run beside a fixture, SVG" || bad "real + fixture comparison"
else
    bad "chainz train failed, no real metrics file: $(tail -3 "$work/train.log")"
fi

echo "test_tau_cmd: $fails failure(s)"
[ "$fails" -eq 0 ]

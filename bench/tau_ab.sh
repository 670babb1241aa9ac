#!/bin/bash
# tau on vs --no-tau on a lambda = 0 ReLU baseline, old vs new chainz, 1 rank
# usage: bench/tau_ab.sh OLD NEW DATA REPS HI
old=$1; new=$2; data=$3; reps=${4:-3}; hi=${5:-42}; lo=2
w=$(mktemp -d)
wall() { local bin=$1 tau=$2 steps=$3; rm -rf $w/o; local t0=$(date +%s.%N)
  $bin train --data $data --layers 512,512 --act relu --dreg 0 --batch 128 --epochs 1 $tau --max-steps $steps --out $w/o >$w/log 2>&1 || { echo FAIL; tail -3 $w/log; }
  local t1=$(date +%s.%N); awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.4f", b-a}'; }
for r in $(seq $reps); do for b in old new; do for tau in "" "--no-tau"; do
  bin=$old; [ $b = new ] && bin=$new
  a=$(wall $bin "$tau" $lo); z=$(wall $bin "$tau" $hi)
  echo "RESULT $b tau=${tau:-on} rep=$r ms/step $(awk -v a=$a -v z=$z -v n=$((hi-lo)) 'BEGIN{printf "%.2f", 1000*(z-a)/n}')"
done; done; done
grep "tau layer" $w/log
rm -rf $w

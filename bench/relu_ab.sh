#!/bin/bash
# A/B of the ReLU baseline step (Yelp-like 512,512 ordinal, batch 128, 4 chunks of 32):
# old vs new chainz, exact vs float reduction, 1 and 2 ranks; ms/step = (wall(HI)-wall(LO))/(HI-LO)
# usage: bench/relu_ab.sh OLD_CHAINZ NEW_CHAINZ DATA REPS [HI]
old=$1; new=$2; data=$3; reps=${4:-3}; hi=${5:-102}; lo=2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
w=$(mktemp -d)
wall() { local bin=$1 p=$2 red=$3 steps=$4; rm -rf $w/o; local t0=$(date +%s.%N);
  mpirun -np $p --bind-to none $bin train --data $data --layers 512,512 --head ordinal --batch 128 --epochs 1 --no-tau --act relu --dreg 0 --reduce $red --max-steps $steps --out $w/o >$w/log 2>&1 || { echo FAIL; tail -3 $w/log; }
  local t1=$(date +%s.%N); awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.4f", b-a}'; }
for r in $(seq $reps); do
 for p in 1 2; do for red in exact float; do for b in old new; do
  bin=$old; [ $b = new ] && bin=$new
  a=$(wall $bin $p $red $lo); z=$(wall $bin $p $red $hi)
  echo "RESULT $b P=$p $red rep=$r ms/step $(awk -v a=$a -v z=$z -v n=$((hi-lo)) 'BEGIN{printf "%.2f", 1000*(z-a)/n}')"
 done; done; done
done
rm -rf $w

#!/usr/bin/env bash
# Issue 12: recalibrate the PRO KBs of seeds 7304-7306 with the template ensemble (the new serving default).
set -euo pipefail
E=/work/main/.venv/bin/evdsearch
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
for s in 7304 7305 7306; do
  R=/work/seeds/s$s; F=$R/fusion
  for pair in "kb_t_pro_ens train" "kb_tv_pro_ens train,val"; do
    set -- $pair
    [ -f $F/.$1.calibrated ] && continue
    rm -rf $F/$1 && cp -r $R/kb $F/$1
    $E kb calibrate --kb $F/$1 --data $R/world --model $R/clip --splits $2 --rewriter $F/pro --cache-dir $F/cache --device cpu
    touch $F/.$1.calibrated
  done
done
echo "recal done $(date)"
